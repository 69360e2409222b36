"""Build log pages: the whole log (paged, searchable, sections folded, the failing line marked),
the live tail fragment the build page polls, and the download. Every line comes redacted from
builds.buildlogs; pages never read a whole log (a page of PAGE_LINES lines, one gzip member of a
kept copy, or a streamed scan for search). `?log=validation` picks validation.log (a build with
validators has two logs, shown as two tabs); customization.log otherwise."""

from __future__ import annotations

from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from builds import access, buildlogs, packerlog
from web import htmx
from web.logpanel import tail_context as _tail_context
from web.views_builds import full_page, signed_in


def _int(value, default: int = 0) -> int:
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return default


def _log(request) -> str:
    return buildlogs.VALIDATION if request.GET.get("log") == buildlogs.VALIDATION else buildlogs.CUSTOMIZATION


def _tabs(build, log: str) -> list[dict]:
    """One plain link per log the build has (none when it has only customization.log)."""
    names = buildlogs.log_names(build)
    if len(names) < 2 and log == buildlogs.CUSTOMIZATION:
        return []
    base = reverse("builds:build-log", args=[build.uuid])
    return [{"name": name, "file": buildlogs.file_name(name), "current": name == log,
             "url": base if name == buildlogs.CUSTOMIZATION else f"{base}?log={name}"}
            for name in (*names, *((log,) if log not in names else ()))]


def _groups(lines, sections, failing_line):
    """A page's lines grouped by the step they belong to (lines before the first step alone)."""
    groups = []
    for number, text in lines:
        section = next((s for s in reversed(sections) if s.start_line <= number
                        and (s.end_line is None or number <= s.end_line)), None)
        if not groups or groups[-1]["section"] is not section:
            groups.append({"section": section, "lines": [], "continued": section is not None
                           and section.start_line < number})
        groups[-1]["lines"].append({"number": number, "text": text, "failing": number == failing_line,
                                    "error": packerlog.is_error(text)})
    return groups


@signed_in
@require_GET
@full_page
def build_log(request, build_uuid):
    build = access.get_build(request.user, build_uuid)
    log = _log(request)
    summary = buildlogs.summary(build, log)
    failing = summary.failed_step
    failing_line = failing.error_line or failing.start_line if failing else None
    query = (request.GET.get("q") or "").strip()[:200]
    log_query = "" if log == buildlogs.CUSTOMIZATION else f"log={log}&"
    context = {"build": build, "summary": summary, "failing": failing, "failing_line": failing_line,
               "query": query, "hits": (), "page": None, "groups": [], "error": "", "log": log,
               "log_file": buildlogs.file_name(log), "log_query": log_query, "tabs": _tabs(build, log)}
    if summary.available:
        try:
            if query:
                context["hits"] = buildlogs.search(build, query, log=log)
            else:
                line = _int(request.GET.get("line"))
                number = buildlogs.page_of_line(line) if line else _int(request.GET.get("page"), 1) or 1
                found = buildlogs.page(build, number, log=log)
                context["page"] = found
                context["groups"] = _groups(found.lines, summary.sections, failing_line)
                if found.total_lines:
                    context["last_page"] = buildlogs.page_of_line(found.total_lines)
        except buildlogs.Unavailable as exc:
            context["error"] = str(exc)
    context["failing_url"] = (f"{reverse('builds:build-log', args=[build.uuid])}?{log_query}line={failing_line}"
                              f"#line-{failing_line}") if failing_line else ""
    return render(request, "builds/build_log.html", context)


@signed_in
@require_GET
def build_log_tail(request, build_uuid):
    """New lines after ?after=<raw byte> (numbered from ?line=): the live panel's poll."""
    build = access.get_build(request.user, build_uuid)
    if not htmx.is_htmx(request):
        return redirect("builds:build-detail", build_uuid=build.uuid)
    first_line = _int(request.GET.get("line"), 1)  # 0: the panel started near the end, numbers unknown
    log = _log(request)
    found = buildlogs.tail(build, _int(request.GET.get("after")), first_line=first_line, log=log)
    switched = False
    if (log == buildlogs.CUSTOMIZATION and buildlogs.current_log(build) == buildlogs.VALIDATION
            and found.available and not found.lines and found.next >= found.size):
        # customization.log is read to its end and the build is validating: follow validation.log.
        log, first_line, switched = buildlogs.VALIDATION, 1, True
        found = buildlogs.tail(build, 0, first_line=1, log=log)
    return render(request, "builds/_log_tail.html", _tail_context(build, found, first_line, log=log,
                                                                  switched=switched))


@signed_in
@require_GET
def build_log_download(request, build_uuid):
    """The whole redacted log as text, streamed (?log=validation: validation.log)."""
    build = access.get_build(request.user, build_uuid)
    log = _log(request)
    try:
        chunks, size, _kind = buildlogs.opened(build, log=log)
    except buildlogs.Unavailable as exc:
        return HttpResponse(str(exc), status=404, content_type="text/plain; charset=utf-8")
    response = StreamingHttpResponse(chunks, content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{build.template_name}-{buildlogs.file_name(log)}"'
    if size is not None:
        response["Content-Length"] = str(size)
    return response
