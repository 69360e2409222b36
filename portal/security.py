"""Session lifetime and security headers, applied to every response.

SessionTimeoutMiddleware ends a signed-in session on the server once it has been idle for
SESSION_IDLE_TIMEOUT seconds or is older than SESSION_ABSOLUTE_TIMEOUT. Only page loads and
form posts count as activity: htmx GETs (status fragments that poll every few seconds) do not,
or an open build page would keep a session alive forever.

SecurityHeadersMiddleware adds the Content-Security-Policy from settings (Django 5.2 has none
built in), plus Permissions-Policy. X-Frame-Options, Referrer-Policy, HSTS, nosniff and
Cross-Origin-Opener-Policy come from Django's SecurityMiddleware and XFrameOptionsMiddleware.
"""

from __future__ import annotations

import time
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

from portal import audit
from portal.json_errors import BEARER_CHALLENGE, NOT_AUTHENTICATED, json_error

SESSION_STARTED = "goldsmith_started"  # epoch seconds of sign-in
SESSION_SEEN = "goldsmith_seen"  # epoch seconds of the last activity
SESSION_METHOD = "goldsmith_method"  # "password" or "entra"
# Writing the session on every request would cost a database write per page; a minute of
# slack on a thirty-minute timeout is not worth that.
_SEEN_RESOLUTION = 60


def stamp_new_session(request, method: str) -> None:
    """Called right after login(): the clocks the timeouts are measured against."""
    now = int(time.time())
    request.session[SESSION_STARTED] = now
    request.session[SESSION_SEEN] = now
    request.session[SESSION_METHOD] = method


def session_expiry(request) -> str | None:
    """Why the signed-in session must end now ("idle" or "absolute"), or None."""
    session = request.session
    now = int(time.time())
    started = session.get(SESSION_STARTED)
    seen = session.get(SESSION_SEEN)
    if started is None or seen is None:
        # A session from before these stamps existed (or made by the test client's login()):
        # start its clocks now rather than throwing it away.
        stamp_new_session(request, session.get(SESSION_METHOD, "password"))
        return None
    if now - int(started) >= settings.SESSION_ABSOLUTE_TIMEOUT:
        return "absolute"
    if now - int(seen) >= settings.SESSION_IDLE_TIMEOUT:
        return "idle"
    return None


def _is_activity(request) -> bool:
    return not (request.method in ("GET", "HEAD") and request.headers.get("HX-Request") == "true")


class SessionTimeoutMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and hasattr(request, "session"):
            reason = session_expiry(request)
            if reason:
                return self._expire(request, user, reason)
            if _is_activity(request):
                now = int(time.time())
                if now - int(request.session[SESSION_SEEN]) >= _SEEN_RESOLUTION:
                    request.session[SESSION_SEEN] = now
        return self.get_response(request)

    def _expire(self, request, user, reason: str):
        audit.record("auth.logout", actor=user, obj=user, changes={"reason": f"{reason} timeout"})
        logout(request)  # flushes the session row: the old cookie is worthless from now on
        login_url = reverse(settings.LOGIN_URL)
        if request.path.startswith("/api/"):
            return json_error(401, NOT_AUTHENTICATED, "Your session has expired: sign in again.",
                              {"WWW-Authenticate": BEARER_CHALLENGE})
        if request.headers.get("HX-Request") == "true":
            # An htmx swap would put the sign-in page inside a fragment: ask for a full navigation.
            response = HttpResponse(status=204)
            response["HX-Redirect"] = login_url
            return response
        return redirect(f"{login_url}?{urlencode({'expired': reason, 'next': request.get_full_path()})}")


def content_security_policy() -> str:
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in settings.CONTENT_SECURITY_POLICY.items())


class SecurityHeadersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        # Built per response (a dozen strings): tests and live servers may change the settings.
        response.setdefault("Content-Security-Policy", content_security_policy())
        response.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()")
        return response
