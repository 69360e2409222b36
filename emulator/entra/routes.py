"""Entra ID (login host) routes: OIDC discovery, JWKS, token, authorize, logout, and the
users/principals/entra part of the control API.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from emulator.core import ArmError, Request, Response
from emulator.entra.backend import AadError, Entra
from emulator.entra.signin import SESSION_COOKIE, Authorize
from emulator.entra.tokens import TokenEndpoint
from emulator.resources.backend import DEFAULT_TENANT

# -- discovery ---------------------------------------------------------------------------------

# The pages a person's browser opens (everything else is called by servers and SDKs). With
# `--browser-http-port` they are also served over plain HTTP on loopback, which browsers treat
# as a secure context, so "Sign in with Microsoft" needs no trust in the emulator's private CA;
# discovery then announces them there, while the token endpoint, the keys and discovery itself
# stay on HTTPS, where the portal verifies the certificate as before.
BROWSER_OPERATIONS = frozenset({"Entra_Authorize", "Entra_Logout"})


def discovery_v2(base: str, tenant_path: str, tenant_id: str, browser_base: str = "") -> dict:
    """The v2 OpenID configuration; the authorize and logout endpoints on browser_base when set."""
    root = f"{base}/{tenant_path}"
    pages = f"{browser_base or base}/{tenant_path}"
    return {
        "token_endpoint": f"{root}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": f"{root}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        # Multi-tenant aliases announce the template, as Entra does.
        "issuer": f"{base}/{'{tenantid}' if tenant_path.lower() in ('common', 'organizations') else tenant_id}/v2.0",
        "request_uri_parameter_supported": False,
        "authorization_endpoint": f"{pages}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{pages}/oauth2/v2.0/logout",
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username",
                             "name", "tid", "ver", "at_hash", "c_hash", "email", "oid", "roles"],
        "tenant_region_scope": "NA",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
    }


def discovery_v1(base: str, tenant_path: str, tenant_id: str, browser_base: str = "") -> dict:
    root = f"{base}/{tenant_path}"
    pages = f"{browser_base or base}/{tenant_path}"
    return {
        "token_endpoint": f"{root}/oauth2/token",
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": f"{root}/discovery/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "token id_token", "token"],
        "scopes_supported": ["openid"],
        "issuer": f"https://sts.windows.net/{tenant_id}/",
        "authorization_endpoint": f"{pages}/oauth2/v2.0/authorize",
        "end_session_endpoint": f"{pages}/oauth2/v2.0/logout",
        "tenant_region_scope": "NA",
        "cloud_instance_name": "microsoftonline.com",
    }


# -- registration ------------------------------------------------------------------------------

_TENANT = r"/(?P<tenant>[^/_][^/]*)"


def register(app) -> None:
    """Register the login-host routes, the users/principals/entra control endpoints and the backend."""
    entra = Entra(app)
    app.services["entra"] = entra
    tokens = TokenEndpoint(entra)
    authorize = Authorize(entra)
    route = app.router.add
    # Outermost, ahead of the request log: the plain-HTTP listener answers nothing else at all.
    app.middlewares.insert(0, browser_pages_only)

    def aad(handler):
        """Answer AadError in Entra's shape rather than ARM's."""
        def wrapped(request: Request) -> Response:
            try:
                return handler(request)
            except AadError as error:
                return error.to_response(request.base_url)
        return wrapped

    @route("GET", _TENANT + r"/v2\.0/\.well-known/openid-configuration", "Entra_DiscoveryV2", auth="none")
    @aad
    def discovery(request: Request) -> Response:
        tenant = request.params["tenant"]
        return Response(200, discovery_v2(request.base_url, tenant, entra.resolve_tenant(tenant),
                                          app.config.entra_browser_url))

    @route("GET", _TENANT + r"/\.well-known/openid-configuration", "Entra_DiscoveryV1", auth="none")
    @aad
    def discovery_legacy(request: Request) -> Response:
        tenant = request.params["tenant"]
        return Response(200, discovery_v1(request.base_url, tenant, entra.resolve_tenant(tenant),
                                          app.config.entra_browser_url))

    @route("GET", _TENANT + r"/discovery(?:/v2\.0)?/keys", "Entra_Keys", auth="none")
    @aad
    def keys(request: Request) -> Response:
        tenant = entra.resolve_tenant(request.params["tenant"])
        return Response(200, entra.jwks(f"{request.base_url}/{tenant}/v2.0"))

    @route("POST", _TENANT + r"/oauth2/v2\.0/token", "Entra_Token", auth="none")
    def token(request: Request) -> Response:
        return tokens.handle(request, request.params["tenant"])

    @route("POST", _TENANT + r"/oauth2/token", "Entra_TokenV1", auth="none")
    def token_v1(request: Request) -> Response:
        return tokens.handle(request, request.params["tenant"], v1=True)

    for method in ("GET", "POST"):
        route(method, _TENANT + r"/oauth2/v2\.0/authorize", "Entra_Authorize", auth="none")(
            lambda request: authorize.handle(request, request.params["tenant"]))

    @route("GET", _TENANT + r"/oauth2/v2\.0/logout", "Entra_Logout", auth="none")
    def logout(request: Request) -> Response:
        target = request.arg("post_logout_redirect_uri")
        cookie = f"{SESSION_COOKIE}=; Path=/; Max-Age=0; Secure; SameSite=None"
        if target and urlsplit(target).scheme in ("http", "https"):
            return Response(302, None, headers={"Location": target, "Set-Cookie": cookie})
        page = ('<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Signed out</title></head>'
                '<body><main><h1>You signed out of your account</h1></main></body></html>')
        return Response(200, page, content_type="text/html; charset=utf-8", headers={"Set-Cookie": cookie})

    _register_control(app, entra)


def browser_pages_only(request: Request, route, call_next) -> Response:
    """Refuse, on the plain-HTTP listener, every route but the browser pages (BROWSER_OPERATIONS):
    tokens, keys, discovery, ARM and the control API are served over HTTPS only."""
    if request.base_url.startswith("http://") and route.operation not in BROWSER_OPERATIONS:
        raise ArmError(404, "NotFound", "Only the Entra ID sign-in and sign-out pages are served over plain "
                                        "HTTP; use the emulator's HTTPS address.")
    return call_next(request)


def _register_control(app, entra: Entra) -> None:
    route = app.router.add

    def body_of(request: Request) -> dict:
        body = request.json()
        if body is None:
            return {}
        if not isinstance(body, dict):
            raise ArmError(400, "InvalidRequestContent", "The request body must be a JSON object.")
        return body

    @route("GET", r"/_emulator/users", "Control_ListUsers", auth="none")
    def list_users(request: Request) -> Response:
        return Response(200, {"value": entra.users()})

    @route("POST", r"/_emulator/users", "Control_AddUser", auth="none")
    def add_user(request: Request) -> Response:
        return Response(201, entra.add_user(body_of(request)))

    @route("DELETE", r"/_emulator/users/(?P<username>[^/]+)", "Control_DeleteUser", auth="none")
    def delete_user(request: Request) -> Response:
        if not entra.delete_user(request.params["username"]):
            raise ArmError(404, "NotFound", f"User '{request.params['username']}' was not found.")
        return Response(204)

    @route("GET", r"/_emulator/principals", "Control_ListPrincipals", auth="none")
    def list_principals(request: Request) -> Response:
        return Response(200, {"value": app.store.list("entra-principal")})

    @route("POST", r"/_emulator/principals", "Control_AddPrincipal", auth="none")
    def add_principal(request: Request) -> Response:
        return Response(201, entra.add_principal(body_of(request)))

    @route("POST", r"/_emulator/entra/next-id-token", "Control_NextIdToken", auth="none")
    def next_id_token(request: Request) -> Response:
        body = body_of(request)
        if "exp_offset" in body and not isinstance(body["exp_offset"], int):
            raise ArmError(400, "InvalidRequestContent", "exp_offset must be a whole number of seconds.")
        app.store.put("entra-hook", "next-id-token", body)
        return Response(200, body)

    @route("DELETE", r"/_emulator/entra/next-id-token", "Control_ClearNextIdToken", auth="none")
    def clear_next_id_token(request: Request) -> Response:
        app.store.delete("entra-hook", "next-id-token")
        return Response(204)

    @route("POST", r"/_emulator/entra/tokens", "Control_IssueToken", auth="none")
    def issue_token(request: Request) -> Response:
        body = body_of(request)
        if body.get("exp_offset") is not None and not isinstance(body["exp_offset"], int):
            raise ArmError(400, "InvalidRequestContent", "exp_offset must be a whole number of seconds.")
        tenant = body.get("tenant") or DEFAULT_TENANT
        user = None
        if body.get("username"):
            user = entra.user(body["username"])
            if user is None:
                raise ArmError(404, "NotFound", f"User '{body['username']}' was not found.")
        token, claims = entra.issue_access_token(
            client_id=body.get("client_id") or "goldsmith-worker", tenant=tenant,
            audience=body.get("audience") or "https://management.azure.com", user=user,
            exp_offset=body.get("exp_offset"), extra=body.get("claims"))
        return Response(201, {"access_token": token, "claims": claims})

    @route("POST", r"/_emulator/entra/rotate-keys", "Control_RotateKeys", auth="none")
    def rotate(request: Request) -> Response:
        body = body_of(request)
        kid = entra.rotate_keys(keep_previous=body.get("keep_previous", True))
        return Response(200, {"kid": kid, "kids": [key.kid for key in entra.signing_keys()]})
