"""Four-eyes pages: the approvals list (the approver's queue), a request with its composed
template and the diff against the previous published version, the decision form, channel
promotion requests, break-glass publishing (administrators) and the auditor's report.

The rules are builds/policies.py's and builds/approvals.py's; these views bind forms and call
one service each. Break-glass is marked in red everywhere, always with the words too.
"""

from __future__ import annotations

import datetime as dt

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from builds import access, approvals, diffing, policies, preflight, release, selectors, services
from builds.models import GoldImageVersion, LayerVersion, PublishDecision, PublishRequest


class DecisionForm(forms.Form):
    verdict = forms.ChoiceField(choices=PublishDecision.Verdict.choices, widget=forms.RadioSelect)
    comment = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=2000)


class PromotionForm(forms.Form):
    channel = forms.SlugField(max_length=50, initial="production")
    comment = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=2000)


class BreakGlassForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=2000,
                             help_text="Required. Shown to the security team and auditors with the version.")


class PeriodForm(forms.Form):
    start = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))


@access.role_required(access.SECURITY, access.EDITOR, access.AUDITOR)
@require_GET
def approval_list(request):
    visible = access.publish_requests(request.user)
    queue = list(approvals.pending_for(request.user).filter(pk__in=visible.values("pk"))[:100])
    mine = list(visible.filter(author=request.user)[:20])
    recent = list(visible.exclude(state=PublishRequest.State.PENDING)[:30])
    return render(request, "builds/approvals/list.html", {"queue": queue, "mine": mine, "recent": recent})


def _previous(target) -> GoldImageVersion | LayerVersion | None:
    """The newest published (or later) version below the target, to diff against."""
    if isinstance(target, GoldImageVersion):
        siblings = target.gold_image.versions.exclude(status=GoldImageVersion.Status.DRAFT)
    else:
        siblings = target.layer.versions.exclude(status=LayerVersion.Status.DRAFT)
    older = [v for v in siblings.exclude(pk=target.pk) if v.semver < target.semver]
    return max(older, key=lambda v: v.semver) if older else None


def _body(target) -> dict:
    return approvals.gold_body(target) if isinstance(target, GoldImageVersion) else approvals.layer_body(target)


@login_required
@require_GET
def approval_detail(request, request_uuid):
    publish_request = access.get_publish_request(request.user, request_uuid)
    target = publish_request.target
    deletion = publish_request.kind == PublishRequest.Kind.DELETION
    previous = None if deletion else _previous(target) if publish_request.kind != PublishRequest.Kind.PROMOTION else (
        publish_request.channel.gold_version if publish_request.channel else None)
    body = _body(target)
    diff = diffing.diff(_body(previous), body) if previous is not None else None
    refusal = policies.approval_refusal(request.user, publish_request) if publish_request.is_pending else ""
    current = approvals.request_sha256(publish_request.kind, target)
    return render(request, "builds/approvals/detail.html", {
        "publish_request": publish_request, "target": target, "previous": previous,
        "template": diffing.pretty(body), "diff": diff,
        "decisions": list(publish_request.decisions.select_related("approver")),
        "rule": policies.approval_rule(publish_request.kind), "refusal": refusal,
        "may_decide": publish_request.is_pending and not refusal, "form": DecisionForm(),
        "may_withdraw": publish_request.is_pending and publish_request.author_id == request.user.pk,
        "changed_since": publish_request.is_pending and current != publish_request.content_sha256,
        "deletion_ids": approvals.deletion_ids(target) if deletion and publish_request.is_pending else [],
    })


@login_required
@require_POST
def approval_decide(request, request_uuid):
    publish_request = access.get_publish_request(request.user, request_uuid, need="change")
    form = DecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose approve or reject.")
        return redirect("builds:approval-detail", request_uuid=publish_request.uuid)
    verdict, comment = form.cleaned_data["verdict"], form.cleaned_data["comment"]
    try:
        if verdict == PublishDecision.Verdict.APPROVE:
            decided = approvals.publish_request_approve(actor=request.user, request=publish_request, comment=comment)
        else:
            decided = approvals.publish_request_reject(actor=request.user, request=publish_request, comment=comment)
    except approvals.NotAllowed as exc:
        access.deny(request.user, exc.message, obj=publish_request, department=publish_request.department_id)
    except services.ServiceError as exc:
        messages.error(request, exc.message)
        return redirect("builds:approval-detail", request_uuid=publish_request.uuid)
    messages.success(request, {"approved": f"Approved: {decided.target} is "
                                           f"{_done_word(decided.kind)}.",
                               "pending": "Your approval is recorded; more approvals are needed.",
                               "rejected": "Rejected; the author sees your comment."}[decided.state])
    return redirect("builds:approval-detail", request_uuid=publish_request.uuid)


def _done_word(kind: str) -> str:
    return {"promotion": "promoted", "deletion": "having its gallery image versions deleted"}.get(kind, "published")


@login_required
@require_POST
def approval_withdraw(request, request_uuid):
    publish_request = access.get_publish_request(request.user, request_uuid, need="change")
    try:
        approvals.publish_request_withdraw(actor=request.user, request=publish_request)
    except approvals.NotAllowed as exc:
        access.deny(request.user, exc.message, obj=publish_request, department=publish_request.department_id)
    except services.ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "The request is withdrawn.")
    return redirect("builds:approval-detail", request_uuid=publish_request.uuid)


@login_required
def approval_promote(request, slug, version):
    """Ask for a published gold version to be promoted to a channel (GET: the form)."""
    if request.method not in ("GET", "POST"):
        return HttpResponse(status=405, headers={"Allow": "GET, POST"})
    gold_version = access.get_gold_version(request.user, slug, version, need="change")
    form = PromotionForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            made = approvals.promotion_request_create(actor=request.user, gold_version=gold_version,
                                                      channel=form.cleaned_data["channel"],
                                                      comment=form.cleaned_data["comment"])
        except approvals.NotAllowed as exc:
            access.deny(request.user, exc.message, obj=gold_version)
        except services.ServiceError as exc:
            form.add_error(None, exc.message)
            status = 422
        else:
            messages.success(request, "Promotion requested: another member of the security team approves it.")
            return redirect("builds:approval-detail", request_uuid=made.uuid)
    elif request.method == "POST":
        status = 422
    channels = list(gold_version.gold_image.channels.select_related("gold_version"))
    return render(request, "builds/approvals/promote.html", {
        "gold_version": gold_version, "form": form, "channels": channels}, status=status)


@access.role_required(access.ADMIN)
def approval_break_glass(request, slug, version):
    """Administrators publish a draft without approvals, with a reason (GET: the form)."""
    if request.method not in ("GET", "POST"):
        return HttpResponse(status=405, headers={"Allow": "GET, POST"})
    try:
        gold_version = selectors.gold_version_get(slug, version)
    except selectors.NotFound as exc:
        raise Http404(str(exc)) from exc
    form = BreakGlassForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            approvals.gold_version_break_glass_publish(
                actor=request.user, gold_version=gold_version, reason=form.cleaned_data["reason"],
                extra_problems=preflight.publish_problems(gold_version))
        except approvals.NotAllowed as exc:
            access.deny(request.user, exc.message, obj=gold_version)
        except services.ServiceError as exc:
            form.add_error(None, exc.message)
            for problem in exc.problems:
                form.add_error(None, f"{problem.path}: {problem.message}" if problem.path else problem.message)
            status = 422
        else:
            messages.warning(request, f"BREAK-GLASS: {gold_version} is published without approvals.")
            return redirect("builds:approval-break-glass", slug=slug, version=version)
    elif request.method == "POST":
        status = 422
    return render(request, "builds/approvals/break_glass.html",
                  {"gold_version": gold_version, "form": form}, status=status)


@access.role_required(access.SECURITY, access.AUDITOR)
@require_GET
def approval_report(request):
    """Per period: every request with its decisions, the counts by outcome, break-glass first."""
    form = PeriodForm(request.GET or None)
    today = timezone.localdate()
    start, end = today - dt.timedelta(days=30), today
    if form.is_valid():
        start = form.cleaned_data["start"] or start
        end = form.cleaned_data["end"] or end
    rows = list(access.publish_requests(request.user)
                .filter(created_at__date__gte=start, created_at__date__lte=end)
                .prefetch_related("decisions__approver").order_by("-break_glass", "-created_at")[:1000])
    counts = {state: 0 for state in PublishRequest.State.values}
    for row in rows:
        counts[row.state] += 1
    waits = sorted((row.decided_at - row.created_at).total_seconds() / 3600 for row in rows
                   if row.decided_at and not row.break_glass)
    return render(request, "builds/approvals/report.html", {
        "form": form, "start": start, "end": end, "rows": rows, "counts": counts,
        "break_glass": sum(1 for row in rows if row.break_glass),
        "median_hours": waits[len(waits) // 2] if waits else None,
    })


@login_required
@require_POST
def artifacts_refresh(request, slug):
    """"Refresh from Azure": the security team asks for every gallery image version of the gold
    image to be read back (a job; audited). Back to the page it came from (lineage or gold image)."""
    gold_image = access.get_gold_image(request.user, slug)
    if not access.roles_of(request.user).security:
        access.deny(request.user, "only the security team refreshes the gallery state", obj=gold_image)
    count = release.refresh_request(actor=request.user, gold_image=gold_image)
    messages.success(request, f"Reading {count} gallery image version{'s' if count != 1 else ''} back from Azure: "
                              "reload the page in a moment.")
    back = "builds:gold-lineage" if request.POST.get("back") == "lineage" else "builds:gold-detail"
    return redirect(back, slug=gold_image.slug)
