"""Portal sign-in: msal's authorization-code flow with PKCE against the emulator's login host.

The test plays the browser with requests: it follows msal's authorize URL, picks a user on the
sign-in page, and hands the redirect's parameters back to msal.
"""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlsplit

import jwt
import msal
import pytest
import requests

from tests.support.emulator import ARM_SCOPE, TENANT_ID

PORTAL = "goldsmith-portal"
PORTAL_SECRET = "emulator-portal-secret"
REDIRECT = "http://localhost:8000/auth/callback"

# msal recommends form_post on every flow that does not use it; both modes are exercised here.
pytestmark = pytest.mark.filterwarnings("ignore:response_mode='form_post' is recommended:UserWarning")


def browser(emulator) -> requests.Session:
    """requests lets REQUESTS_CA_BUNDLE win over Session.verify, so the environment is ignored."""
    http = requests.Session()
    http.verify = str(emulator.ca_path)
    http.trust_env = False
    return http


def portal_app(emulator, **kwargs) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(PORTAL, client_credential=PORTAL_SECRET,
                                              authority=f"{emulator.base_url}/{TENANT_ID}", instance_discovery=False,
                                              http_client=browser(emulator), **kwargs)


def pick_user(emulator, auth_uri: str, username: str) -> requests.Response:
    """Open the sign-in page and press the user's button; returns the emulator's answer."""
    http = browser(emulator)
    page = http.get(auth_uri)
    assert page.status_code == 200, page.text
    forms = re.findall(r'<form method="post" action="([^"]+)"><input type="hidden" name="username" value="([^"]+)"',
                       page.text)
    action = next(html.unescape(action) for action, user in forms if user == username)
    return http.post(emulator.base_url + action, data={"username": username}, allow_redirects=False)


def redirect_params(response: requests.Response) -> dict[str, str]:
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    assert location.startswith(REDIRECT)
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


def sign_in(emulator, username: str = "alice@contoso.example", scopes=(), app=None, **flow_kwargs) -> dict:
    app = app or portal_app(emulator)
    flow = app.initiate_auth_code_flow(list(scopes), redirect_uri=REDIRECT, **flow_kwargs)
    return app.acquire_token_by_auth_code_flow(flow, redirect_params(pick_user(emulator, flow["auth_uri"], username)))


def keys(emulator) -> jwt.PyJWKSet:
    return jwt.PyJWKSet.from_dict(browser(emulator).get(f"{emulator.base_url}/{TENANT_ID}/discovery/v2.0/keys").json())


def verify_id_token(emulator, token: str) -> dict:
    """What the portal must do: signature, audience, issuer and expiry."""
    key = keys(emulator)[jwt.get_unverified_header(token)["kid"]].key
    return jwt.decode(token, key, algorithms=["RS256"], audience=PORTAL, issuer=f"{emulator.base_url}/{TENANT_ID}/v2.0")


@pytest.mark.parametrize(("username", "roles"), [
    ("alice@contoso.example", ["Goldsmith.Security"]),
    ("bob@contoso.example", ["Goldsmith.Editor.web"]),
    ("carol@contoso.example", ["Goldsmith.Editor.data"]),
    ("dave@contoso.example", ["Goldsmith.Auditor"]),
    ("erin@contoso.example", ["Goldsmith.Admin"]),
])
def test_each_seeded_user_signs_in_with_their_app_roles(emulator, username, roles):
    result = sign_in(emulator, username)

    assert "error" not in result, result
    claims = verify_id_token(emulator, result["id_token"])
    assert claims["roles"] == roles
    assert claims["preferred_username"] == username
    assert claims["tid"] == TENANT_ID
    assert claims == result["id_token_claims"]
    assert {"oid", "sub", "name", "nonce", "iat", "nbf", "exp", "ver"} <= set(claims)


def test_a_user_without_roles_gets_no_roles_claim(emulator):
    claims = sign_in(emulator, "mallory@contoso.example")["id_token_claims"]

    assert "roles" not in claims
    assert claims["name"] == "Mallory Moss"


def test_the_sign_in_page_lists_users_and_their_roles(emulator):
    app = portal_app(emulator)
    flow = app.initiate_auth_code_flow([], redirect_uri=REDIRECT)

    page = browser(emulator).get(flow["auth_uri"]).text

    assert '<html lang="en">' in page
    for text in ("alice@contoso.example", "Goldsmith.Security", "bob@contoso.example", "Goldsmith.Editor.web",
                 "mallory@contoso.example", "no app roles"):
        assert text in page


def test_the_user_also_gets_an_arm_token_and_a_refresh_token(emulator):
    app = portal_app(emulator)
    result = sign_in(emulator, "bob@contoso.example", scopes=[ARM_SCOPE], app=app)

    access = jwt.decode(result["access_token"], options={"verify_signature": False})
    assert (access["aud"], access["upn"], access["scp"], access["idtyp"]) == (
        "https://management.azure.com", "bob@contoso.example", "user_impersonation", "user")
    account = app.get_accounts()[0]
    refreshed = app.acquire_token_silent([ARM_SCOPE], account=account, force_refresh=True)
    assert refreshed["token_source"] == "identity_provider"
    assert refreshed["id_token_claims"]["roles"] == ["Goldsmith.Editor.web"]


def test_a_replayed_code_is_refused(emulator):
    app = portal_app(emulator)
    flow = app.initiate_auth_code_flow([], redirect_uri=REDIRECT)
    params = redirect_params(pick_user(emulator, flow["auth_uri"], "alice@contoso.example"))
    assert "error" not in app.acquire_token_by_auth_code_flow(dict(flow), params)

    replay = app.acquire_token_by_auth_code_flow(flow, params)

    assert replay["error"] == "invalid_grant"
    assert replay["error_codes"] == [54005]


def test_a_wrong_code_verifier_is_refused(emulator):
    app = portal_app(emulator)
    flow = app.initiate_auth_code_flow([], redirect_uri=REDIRECT)
    params = redirect_params(pick_user(emulator, flow["auth_uri"], "alice@contoso.example"))

    result = app.acquire_token_by_auth_code_flow({**flow, "code_verifier": "x" * 43}, params)

    assert result["error"] == "invalid_grant"
    assert result["error_codes"] == [50148]


def test_form_post_response_mode(emulator):
    app = portal_app(emulator)
    flow = app.initiate_auth_code_flow([], redirect_uri=REDIRECT, response_mode="form_post")

    answer = pick_user(emulator, flow["auth_uri"], "dave@contoso.example")

    assert answer.status_code == 200
    assert f'action="{REDIRECT}"' in answer.text
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', answer.text))
    result = app.acquire_token_by_auth_code_flow(flow, {key: html.unescape(value) for key, value in fields.items()})
    assert result["id_token_claims"]["roles"] == ["Goldsmith.Auditor"]


def test_prompt_none_signs_in_the_hinted_user_without_a_page(emulator):
    app = portal_app(emulator)
    flow = app.initiate_auth_code_flow([], redirect_uri=REDIRECT, prompt="none", login_hint="erin@contoso.example")

    params = redirect_params(browser(emulator).get(flow["auth_uri"], allow_redirects=False))

    assert app.acquire_token_by_auth_code_flow(flow, params)["id_token_claims"]["roles"] == ["Goldsmith.Admin"]


def test_prompt_none_without_a_user_answers_login_required(emulator):
    app = portal_app(emulator)
    flow = app.initiate_auth_code_flow([], redirect_uri=REDIRECT, prompt="none")

    params = redirect_params(browser(emulator).get(flow["auth_uri"], allow_redirects=False))

    assert params["error"] == "login_required"
    assert params["error_description"].startswith("AADSTS50058")
    assert params["state"] == flow["state"]


def test_users_added_through_the_control_api_can_sign_in(emulator):
    added = emulator.control("POST", "users", {"username": "frank", "roles": ["Goldsmith.Editor.web"]},
                             expect=201).json()

    claims = sign_in(emulator, "frank@contoso.example")["id_token_claims"]

    assert added["username"] == "frank@contoso.example"
    assert claims["roles"] == ["Goldsmith.Editor.web"]
    assert claims["oid"] == added["oid"]


@pytest.mark.parametrize(("hook", "error"), [
    ({"aud": "someone-else"}, jwt.InvalidAudienceError),
    ({"exp_offset": -3600}, jwt.ExpiredSignatureError),
    ({"iss": "https://login.microsoftonline.com/33333333-3333-3333-3333-333333333333/v2.0"}, jwt.InvalidIssuerError),
    ({"bad_signature": True}, jwt.InvalidSignatureError),
])
def test_next_id_token_hook_makes_the_portal_check_fail_once(emulator, hook, error):
    emulator.control("POST", "entra/next-id-token", hook)

    bent = sign_in(emulator)
    normal = sign_in(emulator)

    with pytest.raises(error):
        verify_id_token(emulator, bent["id_token"])
    assert verify_id_token(emulator, normal["id_token"])["aud"] == PORTAL


def test_next_id_token_hook_bends_tenant_and_roles(emulator):
    emulator.control("POST", "entra/next-id-token", {"tid": "33333333-3333-3333-3333-333333333333", "roles": []})

    claims = sign_in(emulator, "alice@contoso.example")["id_token_claims"]

    assert claims["tid"] == "33333333-3333-3333-3333-333333333333"
    assert "roles" not in claims


def test_a_wrong_nonce_is_caught_by_msal(emulator):
    emulator.control("POST", "entra/next-id-token", {"nonce": "bad"})

    with pytest.raises(RuntimeError, match="nonce"):
        sign_in(emulator)


def test_sign_out_returns_to_the_portal(emulator):
    response = browser(emulator).get(f"{emulator.base_url}/{TENANT_ID}/oauth2/v2.0/logout",
                                     params={"post_logout_redirect_uri": "http://localhost:8000/"},
                                     allow_redirects=False)

    assert response.status_code == 302
    assert response.headers["Location"] == "http://localhost:8000/"
