"""Entra ID sign-in end to end: the portal's views, msal and the emulator's login host.

The test client plays the portal's browser; `requests` plays the same person on the emulator's
sign-in page (picking a seeded user), and the emulator's redirect is handed back to the portal.
Refusals use the emulator's control endpoint to bend the next ID token.
"""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.core.cache import cache
from django.urls import reverse
from django.utils.html import escape

from portal import access, entra
from portal.models import AuditEvent, ExternalIdentity, Membership, RoleMapping
from tests import factories
from tests.support.emulator import TENANT_ID

CLIENT_ID = "goldsmith-portal"
# The portal asks for response_mode=query on purpose (see portal/entra.py); tests that drive msal
# directly get msal's recommendation warning.
pytestmark = pytest.mark.filterwarnings("ignore:response_mode='form_post' is recommended:UserWarning")
OTHER_TENANT = "33333333-3333-3333-3333-333333333333"


@pytest.fixture
def entra_on(settings, emulator, web, data_dept):
    settings.ENTRA_CLIENT_ID = CLIENT_ID
    settings.ENTRA_TENANT_ID = TENANT_ID
    settings.ENTRA_CLIENT_SECRET = "emulator-portal-secret"
    settings.ENTRA_AUTHORITY_HOST = emulator.base_url
    settings.ENTRA_CA_BUNDLE = str(emulator.ca_path)
    settings.ENTRA_ENABLED = True
    cache.delete_many([f"entra:discovery:{entra.authority()}"])
    entra.default_role_mappings()
    return emulator


def emulator_browser(emulator) -> requests.Session:
    http = requests.Session()
    http.verify = str(emulator.ca_path)
    http.trust_env = False
    return http


def pick_user(emulator, auth_uri: str, username: str) -> str:
    """Press the user's button on the emulator's sign-in page; returns the redirect back to us."""
    http = emulator_browser(emulator)
    page = http.get(auth_uri)
    assert page.status_code == 200, page.text
    forms = re.findall(r'<form method="post" action="([^"]+)"><input type="hidden" name="username" value="([^"]+)"',
                       page.text)
    action = next(html.unescape(action) for action, user in forms if user == username)
    answer = http.post(emulator.base_url + action, data={"username": username}, allow_redirects=False)
    assert answer.status_code == 302, answer.text
    return answer.headers["Location"]


def start(client, next_url: str = "") -> str:
    response = client.get(reverse("portal:entra-start") + (f"?next={next_url}" if next_url else ""))
    assert response.status_code == 302, response.content
    return response["Location"]


def callback_path(location: str) -> str:
    parts = urlsplit(location)
    assert parts.path == reverse("portal:entra-callback")
    return f"{parts.path}?{parts.query}"


def sign_in(client, emulator, username: str = "alice@contoso.example"):
    return client.get(callback_path(pick_user(emulator, start(client), username)))


def last_failure() -> AuditEvent:
    return AuditEvent.objects.filter(action="auth.login_failed").latest("id")


def assert_refused(client, response, reason: str, *, earlier_logins: int = 0):
    assert response.status_code == 403, response.content.decode()[:500]
    assert "We could not sign you in" in response.content.decode()
    assert escape(entra.MESSAGES[reason]) in response.content.decode()
    assert "_auth_user_id" not in client.session
    event = last_failure()
    assert (event.outcome, event.changes["method"], event.changes["reason"]) == ("failure", "entra", reason)
    assert AuditEvent.objects.filter(action="auth.login").count() == earlier_logins


# --- Signing in --------------------------------------------------------------------------------


@pytest.mark.parametrize(("username", "expected"), [
    ("alice@contoso.example", ["security"]),
    ("bob@contoso.example", ["editor"]),
    ("carol@contoso.example", ["editor"]),
    ("dave@contoso.example", ["auditor"]),
    ("erin@contoso.example", ["admin"]),
])
def test_each_seeded_user_lands_with_their_role(client, entra_on, username, expected):
    response = sign_in(client, entra_on, username)

    assert response.status_code == 302
    assert response["Location"] == reverse("portal:home")
    user = ExternalIdentity.objects.get(user__username=username).user
    assert int(client.session["_auth_user_id"]) == user.pk
    assert access.roles_of(user).names == expected
    assert not user.has_usable_password()
    event = AuditEvent.objects.get(action="auth.login")
    assert event.actor_name == username
    assert event.changes["method"] == "entra" and event.changes["created"] is True


def test_an_editor_s_department_comes_from_the_app_role(client, entra_on, web):
    sign_in(client, entra_on, "bob@contoso.example")
    membership = Membership.objects.get(user__username="bob@contoso.example")
    assert (membership.role, membership.department) == ("editor", web)


def test_the_session_key_is_rotated_at_sign_in(client, entra_on):
    start(client)
    before = client.session.session_key
    sign_in(client, entra_on)
    assert client.session.session_key != before


def test_the_next_page_survives_the_round_trip(client, entra_on):
    location = pick_user(entra_on, start(client, "/profile/"), "alice@contoso.example")
    assert client.get(callback_path(location))["Location"] == "/profile/"


def test_a_returning_user_is_found_by_object_id_and_their_roles_follow_entra(client, entra_on, web):
    sign_in(client, entra_on, "bob@contoso.example")
    client.post(reverse("portal:logout"))
    RoleMapping.objects.create(claim_value="Goldsmith.Editor.web", role="auditor")
    Membership.objects.create(user=ExternalIdentity.objects.get().user, role="security")  # granted by hand

    sign_in(client, entra_on, "bob@contoso.example")

    user = ExternalIdentity.objects.get().user
    assert sorted(access.roles_of(user).names) == ["auditor", "editor"]
    event = AuditEvent.objects.filter(action="auth.login").latest("id")
    assert event.changes["created"] is False
    assert event.changes["added"] == ["auditor"] and event.changes["removed"] == ["security"]


def test_local_accounts_keep_working_beside_entra(client, entra_on, bob):
    page = client.get(reverse("portal:login")).content.decode()
    assert "Sign in with Microsoft" in page
    response = client.post(reverse("portal:login"), {"username": "bob", "password": "pass-for-tests-1"})
    assert response.status_code == 302


def test_signing_out_of_an_entra_session_ends_it_at_entra_too(client, entra_on):
    sign_in(client, entra_on)
    response = client.post(reverse("portal:logout"))
    assert response.status_code == 302
    assert response["Location"].startswith(f"{entra_on.base_url}/{TENANT_ID}/oauth2/v2.0/logout?")
    assert "_auth_user_id" not in client.session
    back = emulator_browser(entra_on).get(response["Location"], allow_redirects=False)
    assert back.headers["Location"] == "http://testserver/login/?signed_out=1"


# --- Refusals ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("hook", "reason"), [
    ({"aud": "someone-else"}, "audience"),
    ({"tid": OTHER_TENANT}, "tenant"),
    ({"iss": f"https://login.microsoftonline.com/{OTHER_TENANT}/v2.0"}, "issuer"),
    ({"exp_offset": -3600}, "expired"),
    ({"nonce": "bad"}, "nonce"),
    ({"bad_signature": True}, "signature"),
    ({"roles": []}, "no_roles"),
])
def test_a_bent_id_token_is_refused(client, entra_on, hook, reason):
    entra_on.control("POST", "entra/next-id-token", hook)

    response = sign_in(client, entra_on)

    assert_refused(client, response, reason)
    assert not ExternalIdentity.objects.exists()


def id_token_and_nonce(emulator) -> tuple[str, str]:
    """A genuine ID token from msal's flow, with the flow's nonce."""
    app = entra._app()
    flow = app.initiate_auth_code_flow([], redirect_uri="http://testserver/auth/entra/callback/")
    params = parse_qs(urlsplit(pick_user(emulator, flow["auth_uri"], "alice@contoso.example")).query)
    result = app.acquire_token_by_auth_code_flow(flow, {key: values[0] for key, values in params.items()})
    return result["id_token"], flow["nonce"]


def test_our_own_checks_do_not_rely_on_msal(entra_on, settings):
    token, nonce = id_token_and_nonce(entra_on)
    assert entra.validate_id_token(token, nonce=nonce)["preferred_username"] == "alice@contoso.example"

    for change, reason in [({"nonce": "another flow's"}, "nonce"), ({"client": "another-app"}, "audience"), ({"garbage": True}, "invalid_token")]:
        settings.ENTRA_CLIENT_ID = change.get("client", CLIENT_ID)
        with pytest.raises(entra.SignInRefused) as refused:
            entra.validate_id_token("not-a-token" if "garbage" in change else token,
                                    nonce=change.get("nonce", nonce))
        assert refused.value.reason == reason, change


def test_a_token_signed_with_hs256_is_refused(entra_on):
    import jwt

    forged = jwt.encode({"aud": CLIENT_ID}, "s" * 32, algorithm="HS256", headers={"kid": "x"})
    with pytest.raises(entra.SignInRefused) as refused:
        entra.validate_id_token(forged, nonce="n")
    assert refused.value.reason == "signature"


def test_a_user_without_app_roles_is_refused(client, entra_on):
    assert_refused(client, sign_in(client, entra_on, "mallory@contoso.example"), "no_roles")
    assert not ExternalIdentity.objects.exists()


def test_app_roles_nobody_mapped_are_refused(client, entra_on):
    RoleMapping.objects.filter(claim_value="Goldsmith.Security").delete()
    assert_refused(client, sign_in(client, entra_on, "alice@contoso.example"), "no_roles")


def test_tampered_state_is_refused(client, entra_on):
    location = pick_user(entra_on, start(client), "alice@contoso.example")
    tampered = re.sub(r"state=[^&]+", "state=forged", location)

    assert_refused(client, client.get(callback_path(tampered)), "state")


def test_a_replayed_callback_is_refused(client, entra_on):
    path = callback_path(pick_user(entra_on, start(client), "alice@contoso.example"))
    assert client.get(path).status_code == 302
    client.post(reverse("portal:logout"))

    assert_refused(client, client.get(path), "no_flow", earlier_logins=1)


def test_a_stolen_code_does_not_work_in_another_browser(client, entra_on, django_user_model):
    from django.test import Client

    victim = Client()
    stolen = parse_qs(urlsplit(pick_user(entra_on, start(victim), "alice@contoso.example")).query)["code"][0]
    attacker_location = pick_user(entra_on, start(client), "mallory@contoso.example")
    state = parse_qs(urlsplit(attacker_location).query)["state"][0]

    response = client.get(f"{reverse('portal:entra-callback')}?code={stolen}&state={state}")

    assert_refused(client, response, "token_error")  # PKCE: the code was issued to the victim's verifier
    assert "50148" in last_failure().changes["detail"]


def test_an_error_from_entra_is_shown_and_audited(client, entra_on):
    start(client)
    state = client.session[entra.FLOW_SESSION_KEY]["flow"]["state"]

    response = client.get(reverse("portal:entra-callback"),
                          {"error": "access_denied", "error_description": "AADSTS65004: declined", "state": state})

    assert_refused(client, response, "idp_error")
    assert "AADSTS65004" in last_failure().changes["detail"]


def test_a_callback_without_a_started_sign_in_is_refused(client, entra_on):
    assert_refused(client, client.get(reverse("portal:entra-callback"), {"code": "x", "state": "y"}), "no_flow")


def test_a_new_account_whose_name_a_local_user_has_is_refused(client, entra_on):
    factories.make_user("alice@contoso.example", role="auditor")
    assert_refused(client, sign_in(client, entra_on), "username_taken")


def test_a_disabled_entra_user_is_refused(client, entra_on):
    sign_in(client, entra_on)
    client.post(reverse("portal:logout"))
    user = ExternalIdentity.objects.get().user
    user.is_active = False
    user.save()

    assert_refused(client, sign_in(client, entra_on), "inactive", earlier_logins=1)


def test_an_unreachable_login_host_gets_a_friendly_503(client, entra_on, settings):
    settings.ENTRA_AUTHORITY_HOST = "https://127.0.0.1:9"
    response = client.get(reverse("portal:entra-start"))
    assert response.status_code == 503
    assert escape(entra.MESSAGES["unavailable"]) in response.content.decode()


def test_entra_pages_are_404_when_entra_is_not_configured(client, db, settings):
    settings.ENTRA_ENABLED = False
    assert client.get(reverse("portal:entra-start")).status_code == 404
    assert client.get(reverse("portal:entra-callback")).status_code == 404
    assert "Sign in with Microsoft" not in client.get(reverse("portal:login")).content.decode()


def test_default_role_mappings_are_idempotent(db, web, data_dept):
    first = entra.default_role_mappings()
    assert "role mapping Goldsmith.Editor.web -> editor in web" in first
    assert entra.default_role_mappings() == []
    assert RoleMapping.objects.count() == 5


# --- Claims of the wrong type ------------------------------------------------------------------


@pytest.mark.parametrize("hook", [
    {"preferred_username": 12345},
    {"preferred_username": ["alice@contoso.example", "mallory@contoso.example"]},
    {"preferred_username": {"name": "alice"}},
    {"oid": {"id": "1"}},
    {"oid": 42},
    {"tid": [TENANT_ID]},
    {"name": ["Alice", "Smith"]},
    {"claims": {"email": 7}},
    {"claims": {"roles": "Goldsmith.Security"}},
    {"claims": {"azp": 5}},
    {"oid": ""},
    {"oid": "x" * 65},
    {"claims": {"roles": [["Goldsmith.Security"]]}},
    {"sub": 1},
])
def test_a_claim_of_the_wrong_type_gets_the_sign_in_error_page(client, entra_on, hook):
    entra_on.control("POST", "entra/next-id-token", hook)

    response = sign_in(client, entra_on)

    assert_refused(client, response, "invalid_token")
    assert not ExternalIdentity.objects.exists()


@pytest.mark.parametrize("hook", [
    {"aud": [CLIENT_ID, "another-app"]},
    {"aud": [CLIENT_ID, "another-app"], "claims": {"azp": "another-app"}},
    {"aud": [CLIENT_ID], "claims": {"azp": "another-app"}},
    {"claims": {"azp": "another-app"}},
])
def test_a_token_for_several_audiences_must_be_issued_to_us(client, entra_on, hook):
    entra_on.control("POST", "entra/next-id-token", hook)

    assert_refused(client, sign_in(client, entra_on), "audience")


@pytest.mark.parametrize("hook", [
    {"aud": [CLIENT_ID]},
    {"aud": [CLIENT_ID, "another-app"], "claims": {"azp": CLIENT_ID}},
    {"claims": {"azp": CLIENT_ID}},
])
def test_an_audience_list_issued_to_us_is_accepted(client, entra_on, hook):
    entra_on.control("POST", "entra/next-id-token", hook)

    assert sign_in(client, entra_on).status_code == 302


# --- Callbacks that match no sign-in ---------------------------------------------------------------


@pytest.mark.parametrize("params", [{}, {"code": "x", "state": "y"}, {"error": "access_denied", "state": "y"}])
def test_a_signed_in_person_sent_to_the_callback_stays_signed_in(client, entra_on, bob, params):
    client.force_login(bob)
    key = client.session.session_key

    response = client.get(reverse("portal:entra-callback"), params)

    assert response.status_code == 403
    page = response.content.decode()
    assert "You are still signed in as <strong>bob</strong>" in page
    assert f'href="{reverse("portal:home")}"' in page
    assert client.session.session_key == key
    assert int(client.session["_auth_user_id"]) == bob.pk
    assert client.get(reverse("portal:home")).status_code == 200
    assert AuditEvent.objects.filter(action="auth.logout").count() == 0


def test_a_forged_callback_does_not_spoil_the_sign_in_in_progress(client, entra_on):
    location = pick_user(entra_on, start(client), "alice@contoso.example")

    assert_refused(client, client.get(reverse("portal:entra-callback"), {"code": "x", "state": "forged"}), "state")
    response = client.get(callback_path(location))

    assert response.status_code == 302
    assert ExternalIdentity.objects.get().user.username == "alice@contoso.example"


def test_callbacks_without_a_sign_in_cannot_flood_the_trail(client, entra_on):
    for _ in range(30):
        assert client.get(reverse("portal:entra-callback")).status_code == 403

    [event] = AuditEvent.objects.filter(action="auth.login_failed")
    assert event.changes["reason"] == "no_flow"
