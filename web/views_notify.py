"""Notification pages: one's own subscriptions, shared endpoints with their delivery log, the
unsubscribe link (no sign-in) and the sandbox's sent-mail page."""

from __future__ import annotations

import contextlib
import email
import email.policy
from pathlib import Path

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from notify import catalog, selectors, services
from notify.models import Delivery, Endpoint, Subscription
from portal import access
from portal.models import Department

_CATALOG_ROLES = ("security", "editor", "auditor")


# --- Own subscriptions ------------------------------------------------------------------------------


def _subscription_rows(chosen: set[tuple[str, str]]) -> list[dict]:
    labels = dict(Subscription.Scope.choices)
    return [{"type": event, "scopes": [{"value": scope, "label": labels[scope], "checked": (event.name, scope) in chosen,
                                        "field": f"{event.name}|{scope}"}
                                       for scope in catalog.SCOPES_BY_FAMILY[event.family]]}
            for event in catalog.TYPES]


@login_required
@require_http_methods(["GET", "POST"])
def subscriptions(request):
    user = request.user
    if request.method == "POST":
        chosen = set()
        for value in request.POST.getlist("subscription"):
            event_type, _, scope = value.partition("|")
            chosen.add((event_type, scope))
        try:
            services.subscriptions_set(actor=user, user=user, chosen=chosen)
        except services.NotifyError as exc:
            return render(request, "notify/subscriptions.html",
                          {"rows": _subscription_rows(chosen), "error": exc.message}, status=422)
        return redirect("notify:subscriptions")
    current = services.subscriptions(user)
    return render(request, "notify/subscriptions.html", {
        "rows": _subscription_rows(current), "defaults": not selectors.customized(user),
        "no_email": not user.email})


@require_http_methods(["GET", "POST"])
@never_cache
def unsubscribe(request, token):
    """Signed link from a message: GET asks (mail scanners follow links), POST applies."""
    try:
        data = services.read_unsubscribe_token(token)
    except services.NotifyError as exc:
        return render(request, "notify/unsubscribe.html", {"error": exc.message}, status=400)
    what = "all Goldsmith e-mail" if data.get("t") == "*" else f"“{catalog.BY_NAME[data['t']].title}” e-mails" \
        if data.get("t") in catalog.BY_NAME else "these e-mails"
    if request.method == "POST":
        try:
            services.unsubscribe(token=token, user_model=get_user_model())
        except services.NotifyError as exc:
            return render(request, "notify/unsubscribe.html", {"error": exc.message}, status=400)
        return render(request, "notify/unsubscribe.html", {"done": True, "what": what})
    return render(request, "notify/unsubscribe.html", {"token": token, "what": what})


# --- Shared endpoints -------------------------------------------------------------------------------


class EndpointForm(forms.Form):
    name = forms.CharField(max_length=100, required=False, help_text="e.g. “web team channel”.")
    kind = forms.ChoiceField(choices=Endpoint.Kind.choices)
    url = forms.CharField(max_length=1000, label="URL or e-mail address",
                          help_text="An https URL (the incoming webhook's address), or an address for e-mail.")
    scope = forms.ChoiceField(label="Objects of")
    event_types = forms.MultipleChoiceField(choices=[(e.name, f"{e.name} — {e.title}") for e in catalog.TYPES],
                                            widget=forms.CheckboxSelectMultiple, label="Events")
    secret = forms.CharField(max_length=200, required=False, label="Secret (generic webhooks)",
                             help_text="Leave empty to have one generated and shown once.")

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        roles = access.roles_of(user)
        choices = [("all", "Everything I can see")] if (roles.security or roles.auditor) else []
        departments = Department.objects.all() if roles.security else \
            Department.objects.filter(pk__in=roles.editor_departments)
        choices += [(f"department:{d.slug}", d.name) for d in departments.order_by("name")]
        self.fields["scope"].choices = choices


def _endpoint_context(request, form=None, **extra) -> dict:
    return {"endpoints": selectors.endpoints_managed_by(request.user), "form": form or EndpointForm(user=request.user),
            **extra}


@access.role_required(*_CATALOG_ROLES)
@require_http_methods(["GET", "POST"])
@never_cache
def endpoints(request):
    if request.method == "GET":
        return render(request, "notify/endpoints.html", _endpoint_context(request))
    form = EndpointForm(request.POST, user=request.user)
    if not form.is_valid():
        return render(request, "notify/endpoints.html", _endpoint_context(request, form), status=422)
    data = form.cleaned_data
    department = None
    if data["scope"].startswith("department:"):
        department = Department.objects.get(slug=data["scope"].partition(":")[2])
    try:
        endpoint, secret = services.endpoint_create(actor=request.user, kind=data["kind"], url=data["url"],
                                                    event_types=data["event_types"], department=department,
                                                    secret=data["secret"], name=data["name"])
    except services.NotifyError as exc:
        form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        return render(request, "notify/endpoints.html", _endpoint_context(request, form), status=422)
    return render(request, "notify/endpoints.html",
                  _endpoint_context(request, new_endpoint=endpoint, new_secret=secret if not data["secret"] else ""),
                  status=201)


def _endpoint(request, endpoint_uuid) -> Endpoint:
    access.require(request.user, *_CATALOG_ROLES)
    endpoint = Endpoint.objects.select_related("owner", "department").filter(uuid=endpoint_uuid).first()
    if endpoint is None:
        raise Http404("No such endpoint.")
    if not services.may_manage(request.user, endpoint):
        access.deny(request.user, "notification endpoint of another owner", obj=endpoint,
                    department=endpoint.department_id, status=404)
    return endpoint


@access.role_required(*_CATALOG_ROLES)
@require_GET
def endpoint_detail(request, endpoint_uuid):
    endpoint = _endpoint(request, endpoint_uuid)
    return render(request, "notify/endpoint_detail.html",
                  {"endpoint": endpoint, "deliveries": selectors.delivery_log(endpoint)})


@access.role_required(*_CATALOG_ROLES)
@require_POST
def endpoint_delete(request, endpoint_uuid):
    services.endpoint_delete(actor=request.user, endpoint=_endpoint(request, endpoint_uuid))
    return redirect("notify:endpoints")


@access.role_required(*_CATALOG_ROLES)
@require_POST
def endpoint_enable(request, endpoint_uuid):
    endpoint = services.endpoint_enable(actor=request.user, endpoint=_endpoint(request, endpoint_uuid))
    return redirect("notify:endpoint-detail", endpoint.uuid)


@access.role_required(*_CATALOG_ROLES)
@require_POST
def delivery_redeliver(request, endpoint_uuid, delivery_uuid):
    endpoint = _endpoint(request, endpoint_uuid)
    delivery = Delivery.objects.filter(uuid=delivery_uuid, endpoint=endpoint).select_related("event").first()
    if delivery is None:
        raise Http404("No such delivery.")
    with contextlib.suppress(services.NotifyError):  # still on its way: the log says so
        services.delivery_redeliver(actor=request.user, delivery=delivery)
    return redirect("notify:endpoint-detail", endpoint.uuid)


# --- The sandbox's mailbox --------------------------------------------------------------------------


def read_mailbox(folder: Path, limit: int = 50) -> list[dict]:
    """The newest messages the sandbox's SMTP sink kept (one .eml file each)."""
    files = sorted(folder.glob("*.eml"), key=lambda path: path.name, reverse=True)[:limit] if folder.is_dir() else []
    messages = []
    for path in files:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        text = message.get_body(preferencelist=("plain",))
        messages.append({"id": path.stem, "subject": message["Subject"], "to": message["To"], "date": message["Date"],
                         "text": text.get_content() if text is not None else ""})
    return messages


@login_required
@require_GET
@never_cache
def sandbox_mail(request):
    if not settings.NOTIFY_ALLOW_LOOPBACK_HTTP:
        raise Http404("The sent-mail page exists in the sandbox only.")
    return render(request, "notify/sandbox_mail.html", {"messages_sent": read_mailbox(Path(settings.NOTIFY_SANDBOX_MAILDIR))})
