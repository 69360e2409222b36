"""Local sign-in and sign-out: throttling, session key rotation, timeouts, audit events."""

from __future__ import annotations

import time

import pytest
from django.contrib.sessions.models import Session
from django.urls import reverse

from portal import throttle
from portal.models import AuditEvent
from portal.security import SESSION_SEEN, SESSION_STARTED

PASSWORD = "pass-for-tests-1"
ADDRESS = "127.0.0.1"


@pytest.fixture(autouse=True)
def fresh_throttle():
    names = ["bob", "alice", "nobody", "Bob", *[f"user{n}" for n in range(30)]]
    for name in names:
        throttle.clear(name, ADDRESS)
    yield
    for name in names:
        throttle.clear(name, ADDRESS)


def sign_in(client, username="bob", password=PASSWORD, **extra):
    return client.post(reverse("portal:login"), {"username": username, "password": password, **extra})


def events(action):
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def test_the_sign_in_page_is_an_accessible_form(client, db):
    response = client.get(reverse("portal:login"))

    assert response.status_code == 200
    page = response.content.decode()
    assert '<label for="id_username">Username</label>' in page
    assert 'autocomplete="username"' in page and 'autocomplete="current-password"' in page
    assert "Sign in with Microsoft" not in page  # Entra ID is not configured in tests by default
    assert "<script>" not in page


def test_it_signs_in_rotates_the_session_key_and_audits(client, bob):
    client.get(reverse("portal:login"))
    client.session.save()
    before = client.session.session_key

    response = sign_in(client)

    assert response.status_code == 302
    assert response["Location"] == reverse("portal:home")
    assert client.session.session_key != before
    assert int(client.session["_auth_user_id"]) == bob.pk
    assert client.session[SESSION_STARTED] == client.session[SESSION_SEEN]
    [event] = events("auth.login")
    assert (event.actor_name, event.outcome, event.changes["method"]) == ("bob", "success", "password")


def test_it_follows_a_safe_next_and_ignores_another_site(client, bob):
    assert sign_in(client, next="/profile/")["Location"] == "/profile/"
    client.logout()
    assert sign_in(client, next="https://evil.example/")["Location"] == reverse("portal:home")


def test_a_wrong_password_is_refused_and_audited_with_the_known_user(client, bob):
    response = sign_in(client, password="wrong")

    assert response.status_code == 200
    assert "do not match an active account" in response.content.decode()
    assert "_auth_user_id" not in client.session
    [event] = events("auth.login_failed")
    assert (event.actor_name, event.outcome) == ("bob", "failure")
    assert event.changes == {"method": "password", "reason": "invalid credentials", "username_known": True}


def test_an_unknown_username_is_not_stored(client, db):
    sign_in(client, username="hunter2-typed-in-the-wrong-box", password="x")

    [event] = events("auth.login_failed")
    assert event.actor_name == "anonymous"
    assert "hunter2" not in str(event.changes) + event.object_label
    assert event.changes["username_known"] is False


def test_an_inactive_user_cannot_sign_in(client, bob):
    bob.is_active = False
    bob.save()

    assert sign_in(client).status_code == 200
    assert "_auth_user_id" not in client.session


def test_it_locks_a_username_and_address_after_repeated_failures(client, bob, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    for _ in range(3):
        assert sign_in(client, password="wrong").status_code == 200

    locked = sign_in(client)  # the right password, but locked: not even checked

    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.content.decode()
    assert "_auth_user_id" not in client.session
    assert events("auth.login_failed")[-1].changes["reason"] == "throttled"


def test_a_success_clears_the_failures_of_that_pair(client, bob, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    sign_in(client, password="wrong")
    sign_in(client, password="wrong")
    assert sign_in(client).status_code == 302
    client.logout()
    sign_in(client, password="wrong")
    sign_in(client, password="wrong")
    assert sign_in(client).status_code == 302


def test_one_address_trying_many_usernames_is_locked(client, bob, settings):
    settings.LOGIN_FAILURE_LIMIT = 1  # the address limit is ten times this
    for n in range(10):
        sign_in(client, username=f"user{n}", password="wrong")

    assert sign_in(client).status_code == 429


# Spellings that Django's sign-in form treats as "bob" (NFKC, stripped) or that name bob's
# account to a person (case): all are guesses at one account.
SPELLINGS = ["\uff42\uff4f\uff42", "\uff42ob", "BOB", "bob ", " Bob"]


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_it_keeps_the_account_locked_under_every_spelling_of_its_name(client, bob, settings, spelling):
    settings.LOGIN_FAILURE_LIMIT = 3
    for _ in range(3):
        sign_in(client, password="wrong")

    locked = sign_in(client, username=spelling)  # the right password

    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session


def test_guesses_spread_over_spellings_count_against_one_account(client, bob, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    for spelling in ("\uff42ob", "BOB", "bob "):
        assert sign_in(client, username=spelling, password="wrong").status_code == 200

    assert sign_in(client).status_code == 429


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_a_failure_under_another_spelling_is_recorded_against_the_account(client, bob, spelling):
    sign_in(client, username=spelling, password="wrong")

    [event] = events("auth.login_failed")
    assert (event.actor_id, event.actor_name) == (bob.pk, "bob")
    assert event.changes["username_known"] is True


def test_a_name_two_accounts_share_ignoring_case_names_neither(client, bob, db):
    from tests import factories

    factories.make_user("Bob")
    sign_in(client, username="BOB", password="wrong")

    [event] = events("auth.login_failed")
    assert event.actor_name == "anonymous"


def test_the_lock_lifts_after_the_lockout(client, bob, settings):
    settings.LOGIN_FAILURE_LIMIT = 1
    settings.LOGIN_LOCKOUT_SECONDS = 1
    sign_in(client, password="wrong")
    assert sign_in(client).status_code == 429
    time.sleep(1.2)
    assert sign_in(client).status_code == 302


def test_sign_out_is_post_only_and_ends_the_session_on_the_server(client, bob):
    sign_in(client)
    key = client.session.session_key
    assert Session.objects.filter(session_key=key).exists()

    assert client.get(reverse("portal:logout")).status_code == 405
    response = client.post(reverse("portal:logout"))

    assert response.status_code == 302
    assert response["Location"] == reverse("portal:login") + "?signed_out=1"
    assert not Session.objects.filter(session_key=key).exists()
    [event] = events("auth.logout")
    assert event.actor_name == "bob"


def test_an_old_session_cookie_is_worthless_after_sign_out(client, bob):
    sign_in(client)
    stolen = client.cookies["sessionid"].value
    client.post(reverse("portal:logout"))

    client.cookies["sessionid"] = stolen
    assert client.get(reverse("portal:profile")).status_code == 302


def test_sign_out_needs_the_csrf_token(bob):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(bob)
    assert client.post(reverse("portal:logout")).status_code == 403


def test_a_signed_in_visitor_of_the_sign_in_page_goes_home(client, bob):
    client.force_login(bob)
    assert client.get(reverse("portal:login"))["Location"] == reverse("portal:home")


# --- Timeouts -------------------------------------------------------------------------------------


def age_session(client, *, started: int = 0, seen: int = 0):
    session = client.session
    now = int(time.time())
    session[SESSION_STARTED] = now - started
    session[SESSION_SEEN] = now - seen
    session.save()


def test_an_idle_session_ends_and_the_page_says_why(client, bob, settings):
    sign_in(client)
    key = client.session.session_key
    age_session(client, started=settings.SESSION_IDLE_TIMEOUT + 5, seen=settings.SESSION_IDLE_TIMEOUT + 5)

    response = client.get(reverse("portal:profile"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("portal:login") + "?expired=idle")
    assert not Session.objects.filter(session_key=key).exists()
    assert events("auth.logout")[-1].changes == {"reason": "idle timeout"}
    assert "after a period without activity" in client.get(response["Location"]).content.decode()


def test_a_session_ends_at_the_absolute_limit_however_active(client, bob, settings):
    sign_in(client)
    age_session(client, started=settings.SESSION_ABSOLUTE_TIMEOUT + 1, seen=1)

    response = client.get(reverse("portal:profile"))

    assert response["Location"].startswith(reverse("portal:login") + "?expired=absolute")
    assert events("auth.logout")[-1].changes == {"reason": "absolute timeout"}


def test_an_expired_htmx_request_asks_for_a_full_page_sign_in(client, bob, settings):
    sign_in(client)
    age_session(client, started=settings.SESSION_IDLE_TIMEOUT + 5, seen=settings.SESSION_IDLE_TIMEOUT + 5)

    response = client.get(reverse("portal:profile"), headers={"HX-Request": "true"})

    assert response.status_code == 204
    assert response["HX-Redirect"] == reverse("portal:login")


def test_page_loads_count_as_activity_but_htmx_polls_do_not(client, bob):
    sign_in(client)
    age_session(client, seen=300)
    client.get(reverse("portal:profile"), headers={"HX-Request": "true"})
    assert int(time.time()) - client.session[SESSION_SEEN] >= 300

    client.get(reverse("portal:profile"))
    assert int(time.time()) - client.session[SESSION_SEEN] < 5


def test_the_timeouts_are_the_documented_defaults():
    from django.conf import settings

    assert settings.SESSION_IDLE_TIMEOUT == 30 * 60
    assert settings.SESSION_ABSOLUTE_TIMEOUT == 12 * 60 * 60
    assert settings.SESSION_COOKIE_AGE == settings.SESSION_ABSOLUTE_TIMEOUT
    assert settings.SESSION_COOKIE_HTTPONLY
