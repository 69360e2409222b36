"""The admin role manages people, never its own privileges (portal/admin.py).

Every test drives the real Django admin over the test client as erin (the admin persona), posts
what a browser could be made to post, and checks the refusal (403), its `access.denied` event
and that nothing changed in the database.
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.test import Client
from django.urls import reverse

from portal import audit
from portal.models import AuditEvent, ExternalIdentity, Membership, RoleMapping
from tests import factories

User = get_user_model()
NEW_PASSWORD = "Erin-owns-this-now-42"


@pytest.fixture(autouse=True)
def every_refusal_recorded(settings):
    """These tests count one access.denied per refused request; repeats of one reason within a
    minute are folded into a count otherwise (tests/portal/test_audit_refusals.py)."""
    settings.AUDIT_REFUSAL_WINDOW_SECONDS = 0


def as_erin(client, erin):
    client.force_login(erin)
    return client


def denied(actor: str = "erin") -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="access.denied", actor_name=actor, outcome="denied"))


def assert_refused(response, reason_part: str, *, actor: str = "erin", before: int = 0) -> AuditEvent:
    assert response.status_code == 403, (response.status_code, response.content.decode()[:1500])
    events = denied(actor)
    assert len(events) == before + 1, [event.changes for event in events]
    assert reason_part in events[-1].changes["reason"], events[-1].changes
    return events[-1]


def user_form(user, **overrides) -> dict:
    """What the admin role's change form posts for `user`, unchanged, plus `overrides`."""
    data = {"username": user.username, "first_name": user.first_name, "last_name": user.last_name,
            "email": user.email, "memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0",
            "memberships-MIN_NUM_FORMS": "0", "memberships-MAX_NUM_FORMS": "1000"}
    if user.is_active:
        data["is_active"] = "on"
    data.update(overrides)
    return data


def inline_rows(user, *, editable: bool = False) -> dict:
    """The memberships inline's management form and fields for `user`'s existing rows (only the
    hidden ones where the rows show read-only: on erin's own page)."""
    rows = list(Membership.objects.filter(user=user).order_by("pk"))
    data = {"memberships-TOTAL_FORMS": str(len(rows)), "memberships-INITIAL_FORMS": str(len(rows))}
    for index, membership in enumerate(rows):
        data[f"memberships-{index}-id"] = str(membership.pk)
        data[f"memberships-{index}-user"] = str(user.pk)
        if editable:
            data[f"memberships-{index}-role"] = membership.role
            data[f"memberships-{index}-department"] = str(membership.department_id or "")
    return data


def password_signs_in(username: str, password: str) -> bool:
    """Whether the portal's own sign-in page accepts this password."""
    response = Client().post(reverse("portal:login"), {"username": username, "password": password})
    return response.status_code == 302 and "_auth_user_id" in response.client.session


# --- Superuser and Django permissions ------------------------------------------------------------


def test_erin_cannot_make_herself_superuser(client, erin):
    gold = factories.make_gold_image("ubuntu")
    response = as_erin(client, erin).post(reverse("admin:auth_user_change", args=[erin.pk]),
                                          user_form(erin, is_superuser="on"))
    event = assert_refused(response, "is_superuser")
    assert event.object_id == str(erin.pk)
    erin.refresh_from_db()
    assert not erin.is_superuser
    # ...so the catalog stays out of her reach.
    assert client.get(reverse("admin:builds_goldimage_change", args=[gold.pk])).status_code == 403


@pytest.mark.parametrize("field", ["is_superuser", "is_staff", "user_permissions", "groups"])
def test_erin_cannot_grant_privileges_to_anybody(client, erin, alice, bob, field):
    group = Group.objects.create(name="catalog editors")
    change_gold = Permission.objects.get(codename="change_goldimage")
    group.permissions.add(change_gold)
    value = {"is_superuser": "on", "is_staff": "on", "user_permissions": str(change_gold.pk),
             "groups": str(group.pk)}[field]
    as_erin(client, erin)
    for target in (erin, bob):
        before = len(denied())
        response = client.post(reverse("admin:auth_user_change", args=[target.pk]), user_form(target, **{field: value}))
        assert_refused(response, field, before=before)
        target.refresh_from_db()
        assert not (target.is_superuser or target.is_staff)
        assert not target.user_permissions.exists() and not target.groups.exists()
        assert not target.has_perm("builds.change_goldimage")
    # Nor when adding a user.
    response = client.post(reverse("admin:auth_user_add"), {"username": "mallory", field: value})
    assert_refused(response, field, before=2)
    assert not User.objects.filter(username="mallory").exists()


def test_the_change_form_offers_no_privilege_or_password_field(client, erin, bob):
    page = as_erin(client, erin).get(reverse("admin:auth_user_change", args=[bob.pk])).content.decode()
    for name in ("is_superuser", "is_staff", "user_permissions", "groups", "password"):
        assert f'name="{name}"' not in page
    assert reverse("admin:auth_user_password_change", args=[bob.pk]) not in page
    page = client.get(reverse("admin:auth_user_add")).content.decode()
    for name in ("is_superuser", "password1", "password2", "usable_password"):
        assert f'name="{name}"' not in page


def test_groups_are_not_administered_by_the_admin_role(client, erin):
    as_erin(client, erin)
    assert client.get(reverse("admin:auth_group_changelist")).status_code == 403
    response = client.post(reverse("admin:auth_group_add"), {"name": "sneaky", "permissions": [
        str(Permission.objects.get(codename="change_goldimage").pk)]})
    assert response.status_code == 403
    assert not Group.objects.exists()


def test_ordinary_edits_still_work(client, erin, bob):
    as_erin(client, erin)
    response = client.post(reverse("admin:auth_user_change", args=[bob.pk]),
                           user_form(bob, email="bob@example.com", **inline_rows(bob, editable=True)))
    assert response.status_code == 302, response.content.decode()[:2000]
    bob.refresh_from_db()
    assert bob.email == "bob@example.com"
    assert AuditEvent.objects.filter(action="user.update", object_id=str(bob.pk)).exists()
    # Her own name and e-mail too.
    response = client.post(reverse("admin:auth_user_change", args=[erin.pk]),
                           user_form(erin, first_name="Erin", **inline_rows(erin)))
    assert response.status_code == 302, response.content.decode()[:2000]
    assert not denied()


# --- Passwords -----------------------------------------------------------------------------------


def test_erin_cannot_set_alices_password(client, erin, alice):
    url = reverse("admin:auth_user_password_change", args=[alice.pk])
    as_erin(client, erin)
    assert_refused(client.get(url), "never sets passwords")
    response = client.post(url, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true",
                                 "set-password": "Change password"})
    event = assert_refused(response, "never sets passwords", before=1)
    assert event.object_id == str(alice.pk)
    assert NEW_PASSWORD not in str(event.changes)
    alice.refresh_from_db()
    assert alice.check_password("pass-for-tests-1")
    assert not password_signs_in("alice", NEW_PASSWORD)
    assert password_signs_in("alice", "pass-for-tests-1")


def test_erin_cannot_set_a_password_through_the_change_form(client, erin, alice):
    response = as_erin(client, erin).post(reverse("admin:auth_user_change", args=[alice.pk]),
                                          user_form(alice, password=NEW_PASSWORD, **inline_rows(alice, editable=True)))
    assert_refused(response, "password")
    assert not password_signs_in("alice", NEW_PASSWORD)


def test_a_new_user_gets_no_password_from_erin(client, erin):
    as_erin(client, erin)
    response = client.post(reverse("admin:auth_user_add"), {"username": "newcomer", "usable_password": "true",
                                                            "password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert_refused(response, "password1")
    assert not User.objects.filter(username="newcomer").exists()

    response = client.post(reverse("admin:auth_user_add"), user_form(User(username="newcomer", email="n@example.com")))
    assert response.status_code == 302, response.content.decode()[:2000]
    newcomer = User.objects.get(username="newcomer")
    assert not newcomer.has_usable_password()
    assert AuditEvent.objects.filter(action="user.create", object_id=str(newcomer.pk)).exists()


def test_a_superuser_keeps_the_password_form_for_break_glass(client, db, alice):
    root = factories.make_user("root", is_superuser=True)
    client.force_login(root)
    url = reverse("admin:auth_user_password_change", args=[alice.pk])
    response = client.post(url, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert password_signs_in("alice", NEW_PASSWORD)


def set_password_link(client, user) -> str:
    response = client.post(reverse("admin:auth_user_set_password_link", args=[user.pk]))
    assert response.status_code == 200, response.content.decode()[:2000]
    return re.search(r'value="(http[^"]+)"', response.content.decode()).group(1)


def test_a_new_account_gets_a_set_password_link_that_works_once(client, erin):
    newcomer = factories.make_user("newcomer")
    newcomer.set_unusable_password()
    newcomer.save()
    link = set_password_link(as_erin(client, erin), newcomer)
    event = AuditEvent.objects.get(action="user.password_link")
    assert (event.actor_name, event.object_id) == ("erin", str(newcomer.pk))
    assert link.split("/")[-2] not in str(event.changes)  # the token is never stored

    visitor = Client()
    page = visitor.get(link, follow=True)
    assert page.status_code == 200 and 'name="new_password1"' in page.content.decode()
    response = visitor.post(page.redirect_chain[-1][0], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert response.status_code == 302 and response["Location"] == reverse("portal:login")
    assert AuditEvent.objects.filter(action="auth.password_set", actor_name="newcomer").count() == 1
    assert password_signs_in("newcomer", NEW_PASSWORD)
    # Used once: the same link no longer opens the form.
    assert 'name="new_password1"' not in Client().get(link, follow=True).content.decode()


@pytest.mark.parametrize("who", ["alice", "entra", "root", "deactivated", "signed_in"])
def test_no_set_password_link_for_an_account_in_use(client, erin, alice, who):
    if who == "alice":
        target = alice  # has a password: a link would hand her account to erin
    else:
        target = factories.make_user(who, is_superuser=who == "root", is_active=who != "deactivated")
        target.set_unusable_password()
        if who == "signed_in":
            from django.utils import timezone

            target.last_login = timezone.now()
        target.save()
        if who == "entra":
            ExternalIdentity.objects.create(user=target, tenant_id="t", object_id="o")
    password = target.password
    response = as_erin(client, erin).post(reverse("admin:auth_user_set_password_link", args=[target.pk]))
    assert response.status_code == 403
    assert denied()
    assert not AuditEvent.objects.filter(action="user.password_link").exists()
    target.refresh_from_db()
    assert target.password == password


def test_a_forged_set_password_link_does_not_work(client, alice):
    from django.contrib.auth.tokens import default_token_generator
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    # Even a valid token: alice's account is in use, so the page refuses it.
    token = default_token_generator.make_token(alice)
    url = reverse("admin:password_set", args=[urlsafe_base64_encode(force_bytes(alice.pk)), token])
    page = client.get(url, follow=True)
    assert 'name="new_password1"' not in page.content.decode()
    response = client.post(url.replace(token, "set-password"), {"new_password1": NEW_PASSWORD,
                                                                 "new_password2": NEW_PASSWORD})
    assert response.status_code == 200
    assert not password_signs_in("alice", NEW_PASSWORD)


def test_erin_deactivates_instead(client, erin, alice):
    as_erin(client, erin)
    response = client.post(reverse("admin:auth_user_changelist"),
                           {"action": "deactivate", "_selected_action": [str(alice.pk)]})
    assert response.status_code == 302
    alice.refresh_from_db()
    assert not alice.is_active
    assert AuditEvent.objects.filter(action="user.update", object_id=str(alice.pk)).count() == 1
    assert not password_signs_in("alice", "pass-for-tests-1")


# --- Superuser accounts ----------------------------------------------------------------------------


def test_superuser_accounts_are_read_only_for_the_admin_role(client, erin, bob):
    root = factories.make_user("root", is_superuser=True)
    as_erin(client, erin)
    assert client.get(reverse("admin:auth_user_change", args=[root.pk])).status_code == 200  # viewable
    response = client.post(reverse("admin:auth_user_change", args=[root.pk]), user_form(root, email="x@example.com"))
    assert_refused(response, "superuser")
    assert_refused(client.get(reverse("admin:auth_user_delete", args=[root.pk])), "superuser", before=1)
    response = client.post(reverse("admin:auth_user_changelist"),
                           {"action": "delete_selected", "_selected_action": [str(bob.pk), str(root.pk)],
                            "post": "yes"})
    assert_refused(response, "superuser", before=2)
    response = client.post(reverse("admin:auth_user_changelist"),
                           {"action": "deactivate", "_selected_action": [str(bob.pk), str(root.pk)]})
    assert_refused(response, "superuser", before=3)
    root.refresh_from_db()
    bob.refresh_from_db()
    assert root.is_active and root.is_superuser and root.email == "" and bob.is_active


# --- Own memberships -------------------------------------------------------------------------------


def test_erin_cannot_grant_herself_a_role(client, erin):
    response = as_erin(client, erin).post(reverse("admin:portal_membership_add"),
                                          {"user": erin.pk, "role": "security"})
    assert_refused(response, "own memberships")
    assert list(Membership.objects.filter(user=erin).values_list("role", flat=True)) == ["admin"]


def test_erin_cannot_change_or_delete_her_own_membership(client, erin, bob):
    own = Membership.objects.get(user=erin)
    as_erin(client, erin)
    response = client.post(reverse("admin:portal_membership_change", args=[own.pk]),
                           {"user": erin.pk, "role": "security"})
    assert_refused(response, "own memberships")
    # Nor hand it to somebody else, nor move somebody's to herself.
    bobs = Membership.objects.get(user=bob)
    response = client.post(reverse("admin:portal_membership_change", args=[bobs.pk]),
                           {"user": erin.pk, "role": "editor", "department": bobs.department_id})
    assert_refused(response, "own memberships", before=1)
    response = client.post(reverse("admin:portal_membership_delete", args=[own.pk]), {"post": "yes"})
    assert_refused(response, "own memberships", before=2)
    response = client.post(reverse("admin:portal_membership_changelist"),
                           {"action": "delete_selected", "_selected_action": [str(own.pk)], "post": "yes"})
    assert_refused(response, "own memberships", before=3)
    assert Membership.objects.filter(user=erin, role="admin").exists()
    assert Membership.objects.get(pk=bobs.pk).user == bob


def test_erin_cannot_edit_her_memberships_on_her_own_page(client, erin):
    own = Membership.objects.get(user=erin)
    url = reverse("admin:auth_user_change", args=[erin.pk])
    as_erin(client, erin)
    assert 'name="memberships-0-role"' not in client.get(url).content.decode()  # shown read-only
    attempts = [
        {**inline_rows(erin), "memberships-TOTAL_FORMS": "2", "memberships-1-user": str(erin.pk),
         "memberships-1-role": "security"},
        {**inline_rows(erin), "memberships-0-role": "security"},
        {**inline_rows(erin), "memberships-0-DELETE": "on"},
    ]
    for before, data in enumerate(attempts):
        assert_refused(client.post(url, user_form(erin, **data)), "own memberships", before=before)
    assert list(Membership.objects.filter(user=erin).values_list("pk", "role")) == [(own.pk, "admin")]


def test_erin_cannot_edit_her_memberships_from_a_department(client, erin, web, bob):
    url = reverse("admin:portal_department_change", args=[web.pk])
    bobs = Membership.objects.get(user=bob)
    base = {"name": web.name, "slug": web.slug, "memberships-TOTAL_FORMS": "1", "memberships-INITIAL_FORMS": "1",
            "memberships-MIN_NUM_FORMS": "0", "memberships-MAX_NUM_FORMS": "1000",
            "memberships-0-id": str(bobs.pk), "memberships-0-department": str(web.pk),
            "memberships-0-user": str(bob.pk), "memberships-0-role": "editor"}
    as_erin(client, erin)
    response = client.post(url, {**base, "memberships-TOTAL_FORMS": "2", "memberships-1-department": str(web.pk),
                                 "memberships-1-user": str(erin.pk), "memberships-1-role": "editor"})
    assert_refused(response, "own memberships")
    assert not Membership.objects.filter(user=erin, role="editor").exists()
    # Others' rows stay editable from there.
    response = client.post(url, {**base, "memberships-0-DELETE": "on"})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert not Membership.objects.filter(pk=bobs.pk).exists()


# --- Own role mappings -----------------------------------------------------------------------------


@pytest.fixture
def entra_erin(db):
    """An admin who signs in with Entra ID: app role Goldsmith.Admin (mapped) and Contoso.Ops (not yet)."""
    user = factories.make_user("erin.entra", role="admin")
    user.set_unusable_password()
    user.save()
    ExternalIdentity.objects.create(user=user, tenant_id="tenant", object_id="erin-oid")
    RoleMapping.objects.create(claim_value="Goldsmith.Admin", role="admin")
    audit.record("auth.login", actor=user, obj=user,
                 changes={"method": "entra", "app_roles": ["Goldsmith.Admin", "Contoso.Ops"], "grants": ["admin"]})
    return user


@pytest.mark.parametrize("claim_value", ["Goldsmith.Admin", "Contoso.Ops", "contoso.ops "])
def test_an_entra_admin_cannot_map_her_own_app_roles(client, entra_erin, claim_value):
    client.force_login(entra_erin)
    response = client.post(reverse("admin:portal_rolemapping_add"), {"claim_value": claim_value, "role": "security"})
    assert_refused(response, "role mappings", actor="erin.entra")
    assert not RoleMapping.objects.filter(role="security").exists()


def test_an_entra_admin_cannot_change_or_delete_her_own_mapping(client, entra_erin):
    own = RoleMapping.objects.get(claim_value="Goldsmith.Admin")
    other = RoleMapping.objects.create(claim_value="Goldsmith.Security", role="security")
    client.force_login(entra_erin)
    response = client.post(reverse("admin:portal_rolemapping_change", args=[own.pk]),
                           {"claim_value": "Goldsmith.Admin", "role": "security"})
    assert_refused(response, "role mappings", actor="erin.entra")
    # Nor point somebody else's mapping at her own app role.
    response = client.post(reverse("admin:portal_rolemapping_change", args=[other.pk]),
                           {"claim_value": "Goldsmith.Admin", "role": "security"})
    assert_refused(response, "role mappings", actor="erin.entra", before=1)
    response = client.post(reverse("admin:portal_rolemapping_changelist"),
                           {"action": "delete_selected", "_selected_action": [str(own.pk)], "post": "yes"})
    assert_refused(response, "role mappings", actor="erin.entra", before=2)
    assert list(RoleMapping.objects.order_by("pk").values_list("claim_value", "role")) == [
        ("Goldsmith.Admin", "admin"), ("Goldsmith.Security", "security")]


def test_an_entra_admin_still_maps_other_app_roles(client, entra_erin, web):
    client.force_login(entra_erin)
    response = client.post(reverse("admin:portal_rolemapping_add"),
                           {"claim_value": "Goldsmith.Editor.web", "role": "editor", "department": web.pk})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert RoleMapping.objects.filter(claim_value="Goldsmith.Editor.web").exists()


def test_an_entra_admin_cannot_unlink_herself_to_escape_the_rule(client, entra_erin):
    link = ExternalIdentity.objects.get(user=entra_erin)
    client.force_login(entra_erin)
    response = client.post(reverse("admin:portal_externalidentity_delete", args=[link.pk]), {"post": "yes"})
    assert_refused(response, "Entra ID identity", actor="erin.entra")
    assert ExternalIdentity.objects.filter(pk=link.pk).exists()
    # Even unlinked (by somebody else), her Entra sign-ins still make the mapping hers.
    link.delete()
    response = client.post(reverse("admin:portal_rolemapping_add"), {"claim_value": "Contoso.Ops", "role": "security"})
    assert_refused(response, "role mappings", actor="erin.entra", before=1)


def test_erin_cannot_delete_her_own_account(client, erin):
    response = as_erin(client, erin).post(reverse("admin:auth_user_delete", args=[erin.pk]), {"post": "yes"})
    assert_refused(response, "own account")
    response = client.post(reverse("admin:auth_user_changelist"),
                           {"action": "delete_selected", "_selected_action": [str(erin.pk)], "post": "yes"})
    assert_refused(response, "own account", before=1)
    assert User.objects.filter(pk=erin.pk).exists() and Membership.objects.filter(user=erin).exists()
