"""API tokens: the profile page, createtoken, hashing, revocation and Bearer authentication on /api/ only."""

from __future__ import annotations

import datetime as dt
import hashlib
import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone
from rest_framework.exceptions import AuthenticationFailed

from portal import tokens
from portal.models import ApiToken, AuditEvent


def bearer(path: str, secret: str):
    return RequestFactory().get(path, headers={"Authorization": f"Bearer {secret}"})


def test_the_profile_lists_roles_and_tokens(client, bob):
    tokens.token_create(actor=bob, user=bob, name="nightly")
    client.force_login(bob)

    page = client.get(reverse("portal:profile")).content.decode()

    assert "Department editor in Web Platform" in page
    assert "nightly" in page and "never" in page


def test_a_token_is_created_on_the_profile_shown_once_and_stored_hashed(client, bob):
    client.force_login(bob)

    response = client.post(reverse("portal:token-create"), {"name": "pipeline", "expires": "30"})

    assert response.status_code == 201
    secret = response.context["new_secret"]
    assert secret.startswith("gst_") and secret in response.content.decode()
    token = ApiToken.objects.get()
    assert token.digest == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in str(ApiToken.objects.values().get())
    assert dt.timedelta(days=29) < token.expires_at - timezone.now() <= dt.timedelta(days=30)
    event = AuditEvent.objects.get(action="token.create")
    assert event.actor_name == "bob" and secret not in str(event.changes) + event.object_label
    assert secret not in client.get(reverse("portal:profile")).content.decode()


def test_a_token_needs_a_name(client, bob):
    client.force_login(bob)
    response = client.post(reverse("portal:token-create"), {"name": " ", "expires": ""})
    assert response.status_code == 422
    assert not ApiToken.objects.exists()


def test_token_pages_need_sign_in_and_post(client, bob):
    assert client.get(reverse("portal:profile")).status_code == 302
    assert client.post(reverse("portal:token-create"), {"name": "x"}).status_code == 302
    client.force_login(bob)
    assert client.get(reverse("portal:token-create")).status_code == 405


def test_the_owner_revokes_a_token(client, bob):
    token, secret = tokens.token_create(actor=bob, user=bob, name="old")
    client.force_login(bob)

    response = client.post(reverse("portal:token-revoke", args=[token.uuid]))

    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert AuditEvent.objects.filter(action="token.revoke").count() == 1
    with pytest.raises(tokens.TokenError):
        tokens.authenticate_token(secret)
    # Revoking again changes nothing and records nothing.
    client.post(reverse("portal:token-revoke", args=[token.uuid]))
    assert AuditEvent.objects.filter(action="token.revoke").count() == 1


def test_nobody_revokes_another_user_s_token(client, bob, carol):
    token, _ = tokens.token_create(actor=bob, user=bob, name="bob's")
    client.force_login(carol)

    assert client.post(reverse("portal:token-revoke", args=[token.uuid])).status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None
    assert AuditEvent.objects.filter(action="access.denied", actor_name="carol").exists()


def test_createtoken_prints_the_token_alone_on_stdout(bob):
    out, err = io.StringIO(), io.StringIO()

    call_command("createtoken", "bob", "--expires", "7", stdout=out, stderr=err)

    secret = out.getvalue().strip()
    assert out.getvalue() == secret + "\n"
    assert secret.startswith("gst_") and len(secret) > 40
    assert tokens.authenticate_token(secret) == bob
    assert "expires" in err.getvalue()
    assert ApiToken.objects.get().expires_at is not None
    assert AuditEvent.objects.get(action="token.create").actor_name == "system:createtoken"


def test_createtoken_refuses_unknown_and_disabled_users(bob):
    with pytest.raises(CommandError):
        call_command("createtoken", "nobody")
    bob.is_active = False
    bob.save()
    with pytest.raises(CommandError):
        call_command("createtoken", "bob")
    with pytest.raises(CommandError):
        call_command("createtoken", "carol", "--expires", "0")


def test_bearer_tokens_authenticate_on_api_paths_only(bob):
    token, secret = tokens.token_create(actor=bob, user=bob, name="ci")

    assert tokens.user_from_bearer(bearer("/api/v1/builds/", secret)) == bob
    assert tokens.user_from_bearer(bearer("/builds/", secret)) is None
    assert tokens.user_from_bearer(RequestFactory().get("/api/v1/builds/")) is None
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_a_bearer_token_does_not_sign_in_a_page(client, bob):
    _, secret = tokens.token_create(actor=bob, user=bob, name="ci")
    response = client.get(reverse("portal:profile"), headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 302  # to the sign-in page


@pytest.mark.parametrize("change", ["revoked", "expired", "inactive", "unknown", "not ours"])
def test_bad_tokens_are_refused(bob, change):
    token, secret = tokens.token_create(actor=bob, user=bob, name="ci")
    if change == "revoked":
        tokens.token_revoke(actor=bob, token=token)
    elif change == "expired":
        ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    elif change == "inactive":
        bob.is_active = False
        bob.save()
    elif change == "unknown":
        secret = "gst_" + "x" * 43
    else:
        secret = "ghp_" + secret[4:]
    with pytest.raises(tokens.TokenError):
        tokens.user_from_bearer(bearer("/api/v1/builds/", secret))


def test_the_drf_authentication_class(bob):
    from rest_framework.request import Request

    _, secret = tokens.token_create(actor=bob, user=bob, name="ci")
    auth = tokens.BearerTokenAuthentication()

    user, token = auth.authenticate(Request(bearer("/api/v1/builds/", secret)))
    assert user == bob and token.name == "ci"
    assert auth.authenticate(Request(RequestFactory().get("/api/v1/builds/"))) is None
    with pytest.raises(AuthenticationFailed):
        auth.authenticate(Request(bearer("/api/v1/builds/", "gst_nope")))
    assert auth.authenticate_header(None).startswith("Bearer")


def test_last_used_is_written_at_most_once_a_minute(bob, django_assert_num_queries):
    _, secret = tokens.token_create(actor=bob, user=bob, name="ci")
    tokens.authenticate_token(secret)
    with django_assert_num_queries(1):  # the look-up only, no write
        tokens.authenticate_token(secret)


def test_token_changes_need_the_csrf_token(bob):
    from django.test import Client

    token, _ = tokens.token_create(actor=bob, user=bob, name="ci")
    client = Client(enforce_csrf_checks=True)
    client.force_login(bob)

    assert client.post(reverse("portal:token-create"), {"name": "x"}).status_code == 403
    assert client.post(reverse("portal:token-revoke", args=[token.uuid])).status_code == 403
    assert ApiToken.objects.count() == 1
    token.refresh_from_db()
    assert token.revoked_at is None


def test_a_token_acts_with_its_user_s_current_roles(bob, web):
    from portal import access
    from portal.models import Membership

    _, secret = tokens.token_create(actor=bob, user=bob, name="ci")
    assert access.roles_of(tokens.authenticate_token(secret)).editor_departments == {web.pk}
    Membership.objects.filter(user=bob).delete()
    assert not access.roles_of(tokens.authenticate_token(secret)).any
