"""Entra ID's authorize endpoint and its sign-in page (one button per user).
"""

from __future__ import annotations

import html
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

from emulator.core import Request, Response
from emulator.entra.backend import AadError, Entra, _b64url, _now, stable_oid

_LOOPBACK = {"localhost", "127.0.0.1", "::1", "[::1]"}
SESSION_COOKIE = "emulator_session"


class Authorize:
    """GET/POST <base>/<tenant>/oauth2/v2.0/authorize: a plain page to pick a seeded user."""

    def __init__(self, entra: Entra):
        self.entra = entra

    def handle(self, request: Request, tenant_path: str) -> Response:
        params = {key: values[0] for key, values in request.query.items() if values}
        if request.method == "POST":
            params.update({key: values[0] for key, values in parse_qs(request.body.decode(errors="replace"),
                                                                      keep_blank_values=True).items()})
        try:
            tenant = self.entra.resolve_tenant(tenant_path)
            self._check_client(params)
        except AadError as error:
            # Errors about the client or its redirect URI are shown, never redirected: the
            # redirect target is not trusted yet.
            return _error_page(error)
        if params.get("response_type", "").split() != ["code"]:
            return self._redirect_error(params, "unsupported_response_type", 700054,
                                        "response_type 'id_token' is not enabled for the application.")
        method = params.get("code_challenge_method")
        if method and method not in ("S256", "plain"):
            return self._redirect_error(params, "invalid_request", 501491,
                                        "Invalid size of Code_Challenge parameter.")
        chosen = self._chosen_user(request, params)
        if chosen is None:
            if params.get("prompt") == "none":
                return self._redirect_error(params, "login_required", 50058,
                                            "A silent sign-in request was sent but no user is signed in.")
            return self._page(request, params, tenant)
        return self._issue_code(request, params, tenant, chosen)

    def _check_client(self, params: dict[str, str]) -> None:
        client_id = params.get("client_id")
        if not client_id:
            raise AadError("invalid_request", 900144,
                           "The request body must contain the following parameter: 'client_id'.")
        redirect_uri = params.get("redirect_uri") or ""
        principal = self.entra.principal(client_id)
        if self.entra.strict and principal is None:
            raise AadError("unauthorized_client", 700016,
                           f"Application with identifier '{client_id}' was not found in the directory.")
        parts = urlsplit(redirect_uri)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise AadError("invalid_request", 90102, "'redirect_uri' value must be a valid absolute URI.")
        if self.entra.strict and not _redirect_allowed(redirect_uri, principal or {}):
            raise AadError("invalid_request", 50011,
                           f"The redirect URI '{redirect_uri}' specified in the request does not match the redirect "
                           f"URIs configured for the application '{client_id}'. Make sure the redirect URI sent in "
                           "the request matches one added to your application in the Azure portal.")

    def _chosen_user(self, request: Request, params: dict[str, str]) -> dict | None:
        """The user picked on the page, or named by login_hint / the session cookie for prompt=none."""
        if request.method == "POST" and params.get("username"):
            user = self.entra.user(params["username"])
            if user is None and not self.entra.strict:
                user = self.entra.add_user({"username": params["username"]})
            return user
        if params.get("prompt") == "none":
            hint = params.get("login_hint") or _cookie(request, SESSION_COOKIE)
            return self.entra.user(hint) if hint else None
        return None

    def _issue_code(self, request: Request, params: dict[str, str], tenant: str, user: dict) -> Response:
        code = f"1.A{_b64url(secrets.token_bytes(48))}"
        max_age = params.get("max_age")
        grant = {
            "client_id": params["client_id"], "redirect_uri": params["redirect_uri"],
            "scope": params.get("scope") or "openid profile", "nonce": params.get("nonce"),
            "code_challenge": params.get("code_challenge"), "code_challenge_method": params.get("code_challenge_method"),
            "username": user["username"], "tenant": user.get("tenant") or tenant, "issued": _now(), "redeemed": False,
            "auth_time": _now() if max_age is not None else None,
        }
        self.entra.app.store.put("entra-code", code, grant)
        values = {"code": code}
        if params.get("state") is not None:
            values["state"] = params["state"]
        values["session_state"] = stable_oid("session", user["oid"])
        cookie = f"{SESSION_COOKIE}={user['username']}; Path=/; HttpOnly; Secure; SameSite=None"
        return _deliver(params, values, extra_headers={"Set-Cookie": cookie})

    def _redirect_error(self, params: dict[str, str], error: str, code: int, description: str) -> Response:
        values = {"error": error, "error_description": f"AADSTS{code}: {description}"}
        if params.get("state") is not None:
            values["state"] = params["state"]
        return _deliver(params, values)

    def _page(self, request: Request, params: dict[str, str], tenant: str) -> Response:
        action = html.escape(request.path + "?" + urlencode(params))
        hint = (params.get("login_hint") or "").lower()
        rows = []
        for user in self.entra.users():
            roles = ", ".join(user["roles"]) or "no app roles"
            hinted = " (suggested)" if hint and hint in (user["username"].lower(), user["username"].split("@")[0]) else ""
            rows.append(
                f'<li><form method="post" action="{action}"><input type="hidden" name="username" '
                f'value="{html.escape(user["username"])}"><button type="submit">Sign in as '
                f'{html.escape(user["name"])}{hinted}</button> <span>{html.escape(user["username"])} &middot; '
                f'roles: {html.escape(roles)}</span></form></li>')
        other = "" if self.entra.strict else (
            f'<h2>Another account</h2><form method="post" action="{action}"><label for="username">User name</label> '
            f'<input id="username" name="username" autocomplete="username" required> '
            f'<button type="submit">Sign in</button></form>')
        client = html.escape(params.get("client_id", ""))
        body = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign in - Azure emulator</title>'
            '<meta name="viewport" content="width=device-width, initial-scale=1"></head><body><main>'
            f'<h1>Sign in to {client}</h1><p>Azure emulator, tenant {html.escape(tenant)}. '
            'Pick an account; no password is needed.</p>'
            f'<ul>{"".join(rows) or "<li>No users are seeded.</li>"}</ul>{other}</main></body></html>')
        return Response(200, body, content_type="text/html; charset=utf-8",
                        headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY"})


def _redirect_allowed(redirect_uri: str, principal: dict) -> bool:
    """Registered URIs match exactly; loopback ones on any port, as Entra allows for native apps."""
    if redirect_uri in principal.get("redirect_uris", []):
        return True
    return (urlsplit(redirect_uri).hostname or "") in _LOOPBACK


def _deliver(params: dict[str, str], values: dict[str, str], extra_headers: dict | None = None) -> Response:
    """Send the authorization response back by the response_mode the client asked for."""
    redirect_uri = params["redirect_uri"]
    mode = params.get("response_mode") or "query"
    headers = dict(extra_headers or {})
    if mode == "form_post":
        inputs = "".join(f'<input type="hidden" name="{html.escape(key)}" value="{html.escape(value)}">'
                         for key, value in values.items())
        body = ('<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Signing in</title></head>'
                f'<body onload="document.forms[0].submit()"><form method="post" action="{html.escape(redirect_uri)}">'
                f'{inputs}<noscript><p>Script is off: continue by hand.</p></noscript>'
                '<button type="submit">Continue</button></form></body></html>')
        return Response(200, body, content_type="text/html; charset=utf-8", headers={**headers,
                                                                                     "Cache-Control": "no-store"})
    separator = "#" if mode == "fragment" else ("&" if "?" in redirect_uri else "?")
    headers["Location"] = f"{redirect_uri}{separator}{urlencode(values)}"
    return Response(302, None, headers=headers)


def _error_page(error: AadError) -> Response:
    body = ('<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign-in error</title></head><body>'
            f'<main><h1>Sorry, but we are having trouble signing you in.</h1><p>AADSTS{error.code}: '
            f'{html.escape(error.description)}</p></main></body></html>')
    return Response(400, body, content_type="text/html; charset=utf-8")


def _cookie(request: Request, name: str) -> str | None:
    for part in (request.headers.get("Cookie") or "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name and value:
            return value
    return None


