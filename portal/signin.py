"""Sign-in and sign-out views: local accounts (throttled) and Microsoft Entra ID.

Every outcome is audited: `auth.login` (with the method), `auth.login_failed` (with a reason,
outcome "failure"), `auth.logout`. A successful sign-in goes through `start_session`, which
rotates the session key (Django's login() does) and starts the idle and absolute clocks.
"""

from __future__ import annotations

import unicodedata

from django.conf import settings
from django.contrib.auth import get_user_model, login, logout
from django.contrib.auth.forms import AuthenticationForm
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from portal import audit, entra, throttle
from portal.models import AuditEvent
from portal.security import SESSION_METHOD, stamp_new_session

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def client_address(request) -> str:
    return request.META.get("REMOTE_ADDR") or "unknown"


def safe_next(request, candidate: str) -> str:
    """`candidate` when it points inside this site, else the home page."""
    if candidate and url_has_allowed_host_and_scheme(candidate, allowed_hosts={request.get_host()},
                                                     require_https=request.is_secure()):
        return candidate
    return reverse(settings.LOGIN_REDIRECT_URL)


def start_session(request, user, *, method: str, details: dict | None = None) -> None:
    """Sign the user in: new session key, fresh timeout clocks, one auth.login event."""
    login(request, user, backend=MODEL_BACKEND)  # cycles the session key
    stamp_new_session(request, method)
    audit.record("auth.login", actor=user, obj=user, changes={"method": method, **(details or {})})


def known_account(username: str):
    """The account a typed name designates, however it was spelled, or None.

    The name as authentication sees it (NFKC, stripped) first; failing that, the one account
    whose name matches it ignoring case. So a fullwidth `victim` (U+FF56...)
    and `VICTIM ` are victim's failures.
    """
    name = unicodedata.normalize("NFKC", username).strip()
    if not name:
        return None
    users = get_user_model().objects
    exact = users.filter(username=name).first()
    if exact is not None:
        return exact
    alike = list(users.filter(username__iexact=name)[:2])
    return alike[0] if len(alike) == 1 else None


def _login_failed(request, *, method: str, reason: str, username: str = "", detail: str = "") -> None:
    # The actor is the account only when the name is one: an unknown "username" is sometimes
    # a password typed into the wrong field, and must not be stored.
    user = known_account(username) if username else None
    changes = {"method": method, "reason": reason}
    if detail:
        changes["detail"] = detail[:500]
    if method == "password":
        changes["username_known"] = user is not None
    audit.record_refusal("auth.login_failed", actor=user or "anonymous", obj=user, changes=changes,
                         outcome=AuditEvent.Outcome.FAILURE)


class SignInForm(AuthenticationForm):
    error_messages = {
        "invalid_login": "That username and password do not match an active account.",
        "inactive": "This account is disabled.",
    }


@sensitive_post_parameters("password")
@csrf_protect
@never_cache
@require_http_methods(["GET", "POST"])
def login_view(request):
    next_url = request.POST.get("next") or request.GET.get("next", "")
    if request.method == "GET" and request.user.is_authenticated:
        return redirect(safe_next(request, next_url))
    form = SignInForm(request, data=request.POST if request.method == "POST" else None)
    status, locked = 200, False
    if request.method == "POST":
        username = request.POST.get("username", "")[:150]
        address = client_address(request)
        if throttle.is_locked(username, address):
            locked, status = True, 429
            _login_failed(request, method="password", reason="throttled", username=username)
        elif form.is_valid():
            throttle.record_success(username, address)
            start_session(request, form.get_user(), method="password")
            return redirect(safe_next(request, next_url))
        elif username and request.POST.get("password"):
            # Only a real guess counts: an empty field is a form error, not an attempt.
            throttle.record_failure(username, address)
            _login_failed(request, method="password", reason="invalid credentials", username=username)
    context = {
        "form": form, "next": next_url, "locked": locked, "entra_enabled": entra.enabled(),
        "lockout_minutes": max(1, settings.LOGIN_LOCKOUT_SECONDS // 60),
        "expired": request.GET.get("expired", "") if request.method == "GET" else "",
        "signed_out": request.GET.get("signed_out") == "1",
    }
    return render(request, "registration/login.html", context, status=status)


@require_POST
@csrf_protect
def logout_view(request):
    """Ends the session on the server (the row is deleted, the old cookie is worthless); an
    Entra session also goes through Entra's sign-out."""
    login_url = reverse(settings.LOGOUT_REDIRECT_URL)
    if not request.user.is_authenticated:
        return redirect(login_url)
    method = request.session.get(SESSION_METHOD, "password")
    audit.record("auth.logout", actor=request.user, obj=request.user, changes={"method": method})
    logout(request)
    if method == "entra" and entra.enabled():
        return redirect(entra.logout_url(request.build_absolute_uri(f"{login_url}?signed_out=1")))
    return redirect(f"{login_url}?signed_out=1")


# --- Entra ID ---------------------------------------------------------------------------------


def _redirect_uri(request) -> str:
    return settings.ENTRA_REDIRECT_URI or request.build_absolute_uri(reverse("portal:entra-callback"))


def _refused(request, refusal: entra.SignInRefused, status: int = 403):
    _login_failed(request, method="entra", reason=refusal.reason, detail=refusal.detail)
    if refusal.reason not in entra.NO_MATCHING_FLOW:
        # No session survives a refused sign-in: not the half-finished flow, not an anonymous
        # session. A callback that matches no sign-in is not one: any site can link to it, so
        # it must not sign anybody out (or end a sign-in they started).
        request.session.flush()
    return render(request, "registration/signin_refused.html",
                  {"message": refusal.message, "reason": refusal.reason, "entra_enabled": entra.enabled()},
                  status=503 if refusal.reason == "unavailable" else status)


@require_GET
@never_cache
def entra_start(request):
    """Send the browser to Entra ID's sign-in page (a plain link starts it: no form, no CSRF
    token needed, and nothing changes until the callback)."""
    try:
        next_url = safe_next(request, request.GET.get("next", ""))
        return redirect(entra.begin(request.session, _redirect_uri(request), next_url))
    except entra.SignInRefused as refusal:
        return _refused(request, refusal, status=404 if refusal.reason == "not_configured" else 403)


@require_GET
@never_cache
def entra_callback(request):
    try:
        claims, next_url = entra.complete(request.session, request.GET.dict())
        outcome = entra.provision_user(claims)
    except entra.SignInRefused as refusal:
        return _refused(request, refusal, status=404 if refusal.reason == "not_configured" else 403)
    start_session(request, outcome.user, method="entra", details={
        "tenant": outcome.claims["tid"], "object_id": outcome.claims["oid"], "app_roles": outcome.claims.get("roles"),
        "created": outcome.created, "grants": outcome.grants, "added": outcome.added, "removed": outcome.removed,
    })
    return redirect(safe_next(request, next_url))
