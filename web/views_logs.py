"""Build log pages: the whole log (paged, searchable, sections folded, the failing line marked),
the live tail fragment the build page polls, and the download. Every line comes redacted from
builds.buildlogs; pages never read a whole log (a page of PAGE_LINES lines, one gzip member of a
kept copy, or a streamed scan for search)."""

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
    summary = buildlogs.summary(build)
    failing = summary.failed_step
    failing_line = failing.error_line or failing.start_line if failing else None
    query = (request.GET.get("q") or "").strip()[:200]
    context = {"build": build, "summary": summary, "failing": failing, "failing_line": failing_line,
               "query": query, "hits": (), "page": None, "groups": [], "error": ""}
    if summary.available:
        try:
            if query:
                context["hits"] = buildlogs.search(build, query)
            else:
                line = _int(request.GET.get("line"))
                number = buildlogs.page_of_line(line) if line else _int(request.GET.get("page"), 1) or 1
                found = buildlogs.page(build, number)
                context["page"] = found
                context["groups"] = _groups(found.lines, summary.sections, failing_line)
                if found.total_lines:
                    context["last_page"] = buildlogs.page_of_line(found.total_lines)
        except buildlogs.Unavailable as exc:
            context["error"] = str(exc)
    context["failing_url"] = (f"{reverse('builds:build-log', args=[build.uuid])}?line={failing_line}"
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
    found = buildlogs.tail(build, _int(request.GET.get("after")), first_line=first_line)
    return render(request, "builds/_log_tail.html", _tail_context(build, found, first_line))


@signed_in
@require_GET
def build_log_download(request, build_uuid):
    """The whole redacted log as text, streamed."""
    build = access.get_build(request.user, build_uuid)
    try:
        chunks, size, _kind = buildlogs.opened(build)
    except buildlogs.Unavailable as exc:
        return HttpResponse(str(exc), status=404, content_type="text/plain; charset=utf-8")
    response = StreamingHttpResponse(chunks, content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{build.template_name}-customization.log"'
    if size is not None:
        response["Content-Length"] = str(size)
    return response
