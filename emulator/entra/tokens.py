"""Entra ID's token endpoint: client credentials, authorization code with PKCE, refresh tokens.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from typing import Any
from urllib.parse import parse_qs

import jwt

from emulator.core import Request, Response
from emulator.entra.backend import (
    ACCESS_TOKEN_SECONDS,
    ARM_AUDIENCES,
    CODE_SECONDS,
    GRAPH,
    REFRESH_SECONDS,
    RESERVED_SCOPES,
    AadError,
    Entra,
    _audience_of,
    _b64url,
    _now,
)


class TokenEndpoint:
    """POST <base>/<tenant>/oauth2/v2.0/token (and the v1 /oauth2/token with resource=)."""

    def __init__(self, entra: Entra):
        self.entra = entra
        self.store = entra.app.store

    def handle(self, request: Request, tenant_path: str, *, v1: bool = False) -> Response:
        try:
            form = self._form(request)
            if v1 and form.get("resource") and not form.get("scope"):
                form["scope"] = form["resource"].rstrip("/") + "/.default"
            tenant = self.entra.resolve_tenant(tenant_path)
            grant = form.get("grant_type")
            if not grant:
                raise AadError("invalid_request", 900144,
                               "The request body must contain the following parameter: 'grant_type'.")
            client_id = form.get("client_id") or ""
            if not client_id:
                raise AadError("invalid_request", 900144,
                               "The request body must contain the following parameter: 'client_id'.")
            handlers = {"client_credentials": self._client_credentials, "authorization_code": self._authorization_code,
                        "refresh_token": self._refresh_token}
            if grant not in handlers:
                raise AadError("unsupported_grant_type", 70003, f"The app requested an unsupported grant type "
                                                                f"'{grant}'.")
            return Response(200, handlers[grant](request, form, tenant), headers={"Cache-Control": "no-store",
                                                                                   "Pragma": "no-cache"})
        except AadError as error:
            return error.to_response(request.base_url)

    @staticmethod
    def _form(request: Request) -> dict[str, str]:
        fields = {key: values[0] for key, values in parse_qs(request.body.decode(errors="replace"),
                                                             keep_blank_values=True).items()}
        basic = request.headers.get("Authorization") or ""
        if basic.lower().startswith("basic "):
            # client_secret_basic: the id and secret travel in the header instead of the body.
            try:
                decoded = base64.b64decode(basic[6:], validate=True).decode(errors="replace")
            except ValueError:
                raise AadError("invalid_client", 7000216, "The Authorization header is not valid Basic "
                                                          "authentication.", status=401) from None
            client_id, _, secret = decoded.partition(":")
            fields.setdefault("client_id", client_id)
            fields.setdefault("client_secret", secret)
        return fields

    def _authenticate_client(self, form: dict[str, str], tenant: str, *, confidential_required: bool) -> dict | None:
        """Check the client's credentials; returns its principal (None for an ad-hoc one in default mode)."""
        client_id = form["client_id"]
        principal = self.entra.principal(client_id)
        secret, assertion = form.get("client_secret"), form.get("client_assertion")
        if self.entra.strict and principal is None:
            raise AadError("unauthorized_client", 700016,
                           f"Application with identifier '{client_id}' was not found in the directory '{tenant}'. "
                           "This can happen if the application has not been installed by the administrator of the "
                           "tenant or consented to by any user in the tenant. You may have sent your authentication "
                           "request to the wrong tenant.")
        if not secret and not assertion:
            if confidential_required or (principal and principal.get("secret")):
                raise AadError("invalid_client", 7000218,
                               "The request body must contain the following parameter: 'client_assertion' or "
                               "'client_secret'.", status=401)
            return principal
        if assertion:
            self._check_assertion(form, client_id)
        elif self.entra.strict and principal and principal.get("secret") != secret:
            raise AadError("invalid_client", 7000215,
                           "Invalid client secret provided. Ensure the secret being sent in the request is the client "
                           f"secret value, not the client secret ID, for a secret added to app '{client_id}'.",
                           status=401)
        return principal

    def _check_assertion(self, form: dict[str, str], client_id: str) -> None:
        """private_key_jwt: the emulator holds no client certificates, so only the claims are checked
        (and only in default mode; strict mode has no certificate credentials to check against)."""
        if form.get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
            raise AadError("invalid_request", 50027, "Invalid client_assertion_type.")
        try:
            claims = jwt.decode(form["client_assertion"], options={"verify_signature": False})
        except jwt.PyJWTError:
            raise AadError("invalid_client", 50027, "JWT token is invalid or malformed.", status=401) from None
        if self.entra.strict or claims.get("iss") != client_id or claims.get("sub") != client_id:
            raise AadError("invalid_client", 700027, "Client assertion failed signature validation.", status=401)

    def _scopes(self, form: dict[str, str]) -> list[str]:
        scope = (form.get("scope") or "").strip()
        if not scope:
            raise AadError("invalid_request", 900144, "The request body must contain the following parameter: 'scope'.")
        return scope.split()

    def _client_credentials(self, request: Request, form: dict[str, str], tenant: str) -> dict:
        principal = self._authenticate_client(form, tenant, confidential_required=True)
        scopes = self._scopes(form)
        if len(scopes) != 1 or not scopes[0].endswith("/.default"):
            raise AadError("invalid_scope", 1002012,
                           f"The provided value for scope {' '.join(scopes)} is not valid. Client credential flows "
                           "must have a scope value with /.default suffixed to the resource identifier (application "
                           "ID URI).")
        audience = _audience_of(scopes) or GRAPH
        if principal and principal.get("tenant") and self.entra.strict and principal["tenant"].lower() != tenant:
            raise AadError("unauthorized_client", 700016,
                           f"Application with identifier '{form['client_id']}' was not found in the directory "
                           f"'{tenant}'.")
        token, _ = self.entra.issue_access_token(client_id=form["client_id"], tenant=tenant, audience=audience)
        return {"token_type": "Bearer", "expires_in": ACCESS_TOKEN_SECONDS, "ext_expires_in": ACCESS_TOKEN_SECONDS,
                "access_token": token}

    def _authorization_code(self, request: Request, form: dict[str, str], tenant: str) -> dict:
        code = form.get("code") or ""
        grant = self.store.get("entra-code", code) if code else None
        if grant is None:
            raise AadError("invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.")
        if grant["client_id"] != form["client_id"]:
            raise AadError("invalid_grant", 70000, "The provided value for the 'code' parameter is not valid. The "
                                                   "code was issued to a different client.")
        self._authenticate_client(form, tenant, confidential_required=False)
        if grant.get("redeemed"):
            raise AadError("invalid_grant", 54005, "OAuth2 Authorization code was already redeemed, please retry "
                                                   "with a new valid code or use an existing refresh token.")
        if grant["issued"] + CODE_SECONDS < _now():
            raise AadError("invalid_grant", 70008, "The provided authorization code or refresh token has expired due "
                                                   "to inactivity. Send a new interactive authorization request for "
                                                   "this user and resource.")
        if (form.get("redirect_uri") or "") != grant["redirect_uri"]:
            raise AadError("invalid_grant", 500112, f"The reply address '{form.get('redirect_uri') or ''}' does not "
                                                    f"match the reply address '{grant['redirect_uri']}' provided when "
                                                    "requesting Authorization code.")
        _check_pkce(grant, form.get("code_verifier"))
        grant["redeemed"] = True
        self.store.put("entra-code", code, grant)
        scopes = (form.get("scope") or grant["scope"]).split()
        return self._user_tokens(request, form["client_id"], grant["tenant"], grant["username"], scopes,
                                 nonce=grant.get("nonce"), auth_time=grant.get("auth_time"),
                                 client_info=form.get("client_info") == "1")

    def _refresh_token(self, request: Request, form: dict[str, str], tenant: str) -> dict:
        token = form.get("refresh_token") or ""
        grant = self.store.get("entra-refresh", token) if token else None
        if grant is None or grant["client_id"] != form["client_id"]:
            raise AadError("invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.")
        self._authenticate_client(form, tenant, confidential_required=False)
        if grant["issued"] + REFRESH_SECONDS < _now():
            raise AadError("invalid_grant", 700082, "The refresh token has expired due to inactivity.")
        scopes = (form.get("scope") or grant["scope"]).split()
        return self._user_tokens(request, form["client_id"], grant["tenant"], grant["username"], scopes,
                                 nonce=None, auth_time=None, client_info=form.get("client_info") == "1")

    def _user_tokens(self, request: Request, client_id: str, tenant: str, username: str, scopes: list[str], *,
                     nonce: str | None, auth_time: int | None, client_info: bool) -> dict:
        user = self.entra.user(username)
        if user is None:
            raise AadError("invalid_grant", 50034, f"The user account {username} does not exist in the "
                                                   f"{tenant} directory. To sign into this application, the account "
                                                   "must be added to the directory.")
        audience = _audience_of(scopes) or GRAPH
        resource_scopes = [scope for scope in scopes if scope.lower() not in RESERVED_SCOPES]
        scp = "user_impersonation" if audience in ARM_AUDIENCES else " ".join(
            scope.rsplit("/", 1)[-1] for scope in resource_scopes if not scope.endswith("/.default")) or "User.Read"
        access, _ = self.entra.issue_access_token(client_id=client_id, tenant=tenant, audience=audience, user=user,
                                                  scp=scp)
        granted = [scope for scope in scopes if scope.lower() != "offline_access"]
        body: dict[str, Any] = {"token_type": "Bearer", "scope": " ".join(granted), "expires_in": ACCESS_TOKEN_SECONDS,
                                "ext_expires_in": ACCESS_TOKEN_SECONDS, "access_token": access}
        lowered = {scope.lower() for scope in scopes}
        if "offline_access" in lowered:
            refresh = f"1.A{_b64url(secrets.token_bytes(48))}"
            self.store.put("entra-refresh", refresh, {"client_id": client_id, "tenant": tenant, "username":
                                                      user["username"], "scope": " ".join(scopes), "issued": _now()})
            body["refresh_token"] = refresh
        if "openid" in lowered:
            body["id_token"], _ = self.entra.issue_id_token(client_id=client_id, tenant=tenant, user=user,
                                                            base_url=request.base_url, nonce=nonce, scopes=lowered,
                                                            auth_time=auth_time)
        if client_info:
            body["client_info"] = _b64url(json.dumps({"uid": user["oid"], "utid": tenant}).encode())
        return body


def _check_pkce(grant: dict, verifier: str | None) -> None:
    challenge = grant.get("code_challenge")
    if not challenge:
        return
    if not verifier:
        raise AadError("invalid_grant", 50148, "The code_verifier does not match the code_challenge supplied in the "
                                               "authorization request for PKCE.")
    method = (grant.get("code_challenge_method") or "plain").upper()
    computed = _b64url(hashlib.sha256(verifier.encode()).digest()) if method == "S256" else verifier
    if not secrets.compare_digest(computed, challenge):
        raise AadError("invalid_grant", 50148, "The code_verifier does not match the code_challenge supplied in the "
                                               "authorization request for PKCE.")


# -- OAuth: the authorize endpoint and its sign-in page ---------------------------------------
