"""The permission funnel's rules: the role table of docs/security.md, object by object.

Outcomes are "ok", 404 (outsider or missing) and 403 (member without the role); every
refusal of an existing object and every 403 leaves an `access.denied` audit event.
"""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.test import RequestFactory

from builds import access
from builds.models import Build
from portal.models import AuditEvent, Membership
from tests import factories

PERSONAS = ["anonymous", "sam", "alice", "bob", "carol", "dave", "erin"]


def make_build(gold_version, *, department=None, requested_by=None) -> Build:
    return Build.objects.create(
        gold_version=gold_version, department=department, requested_by=requested_by or gold_version.created_by,
        template={}, template_sha256="0" * 64, template_name=f"goldsmith-{uuid.uuid4().hex[:12]}",
        subscription_id="22222222-2222-2222-2222-222222222222", resource_group="goldsmith-images",
        location="eastus")


@pytest.fixture
def world(alice, bob, carol, dave, erin, sam, web, data_dept):
    """A published gold version with a draft beside it, a draft-only gold image, a layer per
    department and a build per department."""
    gold = factories.make_gold_image("ubuntu")
    published = factories.make_gold_version(gold, "1.0.0")
    draft = factories.make_gold_version(gold, "1.1.0", publish=False)
    draft_only = factories.make_gold_image("secret-plan")
    factories.make_gold_version(draft_only, "0.1.0", publish=False)
    web_layer = factories.make_layer(web, gold, "nginx")
    web_version = factories.make_layer_version(web_layer, "1.0.0")
    data_layer = factories.make_layer(data_dept, gold, "tools")
    data_version = factories.make_layer_version(data_layer, "1.0.0")
    return {
        "users": {"anonymous": AnonymousUser(), "sam": sam, "alice": alice, "bob": bob, "carol": carol,
                  "dave": dave, "erin": erin},
        "published": published, "draft": draft, "draft_only": draft_only,
        "web_layer": web_layer, "web_version": web_version, "data_layer": data_layer, "data_version": data_version,
        "web_build": make_build(published, department=web),
        "data_build": make_build(published, department=data_dept),
        "security_build": make_build(published),
    }


def outcome(call) -> object:
    try:
        call()
    except Http404:
        return 404
    except PermissionDenied:
        return 403
    return "ok"


def denials() -> int:
    return AuditEvent.objects.filter(action="access.denied").count()


# --- roles_of -----------------------------------------------------------------------------------


def test_it_reads_each_persona_s_roles(world, web, data_dept):
    users = world["users"]
    assert access.roles_of(users["alice"]).names == ["security"]
    assert access.roles_of(users["bob"]).editor_departments == frozenset({web.pk})
    assert access.roles_of(users["carol"]).editor_departments == frozenset({data_dept.pk})
    assert access.roles_of(users["dave"]).names == ["auditor"]
    assert access.roles_of(users["erin"]).names == ["admin"]
    assert not access.roles_of(users["sam"]).any
    assert not access.roles_of(users["anonymous"]).any


def test_it_combines_several_memberships(bob, data_dept, web):
    Membership.objects.create(user=bob, role="editor", department=data_dept)
    Membership.objects.create(user=bob, role="auditor")
    roles = access.roles_of(bob)
    assert roles.editor_departments == frozenset({web.pk, data_dept.pk})
    assert roles.names == ["editor", "auditor"]


def test_it_caches_roles_on_the_user_until_forgotten(bob, django_assert_num_queries):
    access.roles_of(bob)
    with django_assert_num_queries(0):
        access.roles_of(bob)
    Membership.objects.create(user=bob, role="auditor")
    assert not access.roles_of(bob).auditor
    access.forget_roles(bob)
    assert access.roles_of(bob).auditor


def test_it_gives_inactive_users_no_roles(bob):
    bob.is_active = False
    assert not access.roles_of(bob).any


def test_it_makes_superusers_admins_and_nothing_else(db):
    root = factories.make_user("root", is_superuser=True, is_staff=True)
    assert access.roles_of(root).names == ["admin"]


def test_it_refuses_unknown_roles_and_needs(alice):
    with pytest.raises(ValueError):
        access.require(alice, "owner")
    with pytest.raises(ValueError):
        access.get_gold_image(alice, "x", need="delete")


# --- require and role_required ------------------------------------------------------------------


@pytest.mark.parametrize(("persona", "expected"), [
    ("anonymous", 403), ("sam", 403), ("alice", 403), ("bob", 403), ("dave", 403), ("erin", "ok"),
])
def test_require_admits_only_the_named_roles(world, persona, expected):
    assert outcome(lambda: access.require(world["users"][persona], "admin")) == expected


def test_it_audits_a_refused_require(sam):
    with pytest.raises(PermissionDenied):
        access.require(sam, "admin")
    event = AuditEvent.objects.get(action="access.denied")
    assert event.outcome == "denied"
    assert event.actor_name == "sam"
    assert event.changes["status"] == 403


@pytest.mark.parametrize(("persona", "path", "expected"), [
    ("anonymous", "/operator/", 302), ("anonymous", "/api/v1/things", 401),
    ("sam", "/operator/", 403), ("alice", "/operator/", 403), ("erin", "/operator/", 200),
])
def test_role_required_redirects_refuses_or_admits(world, persona, path, expected):
    @access.role_required("admin")
    def view(request):
        from django.http import HttpResponse

        return HttpResponse("ok")

    request = RequestFactory().get(path)
    request.user = world["users"][persona]
    try:
        status = view(request).status_code
    except PermissionDenied:
        status = 403
    assert status == expected


# --- gold images --------------------------------------------------------------------------------

GOLD_VIEW = {"anonymous": 403, "sam": 403, "alice": "ok", "bob": "ok", "carol": "ok", "dave": "ok", "erin": 403}


@pytest.mark.parametrize("persona", PERSONAS)
def test_gold_image_view_follows_the_role_table(world, persona):
    assert outcome(lambda: access.get_gold_image(world["users"][persona], "ubuntu")) == GOLD_VIEW[persona]


@pytest.mark.parametrize(("persona", "expected"), [
    ("alice", "ok"), ("bob", 403), ("dave", 403), ("erin", 403), ("sam", 403),
])
def test_only_security_changes_gold_images(world, persona, expected):
    assert outcome(lambda: access.get_gold_image(world["users"][persona], "ubuntu", need="change")) == expected


@pytest.mark.parametrize(("persona", "expected"), [("alice", "ok"), ("dave", "ok"), ("bob", 404), ("erin", 403)])
def test_a_gold_image_with_only_drafts_is_hidden_from_editors(world, persona, expected):
    assert outcome(lambda: access.get_gold_image(world["users"][persona], "secret-plan")) == expected


@pytest.mark.parametrize(("persona", "which", "need", "expected"), [
    ("alice", "published", "view", "ok"), ("alice", "draft", "view", "ok"), ("alice", "draft", "change", "ok"),
    ("alice", "published", "build", "ok"),
    ("bob", "published", "view", "ok"), ("bob", "draft", "view", 404), ("bob", "published", "change", 403),
    ("bob", "published", "build", "ok"), ("bob", "draft", "build", 404),
    ("dave", "draft", "view", "ok"), ("dave", "published", "change", 403), ("dave", "published", "build", 403),
    ("erin", "published", "view", 403), ("sam", "published", "view", 403), ("anonymous", "published", "view", 403),
])
def test_gold_version_access_follows_the_role_table(world, persona, which, need, expected):
    gold_version = world[which]
    user = world["users"][persona]
    by_version = outcome(lambda: access.get_gold_version(user, "ubuntu", gold_version.version, need=need))
    by_uuid = outcome(lambda: access.get_gold_version_by_uuid(user, gold_version.uuid, need=need))
    assert by_version == by_uuid == expected


@pytest.mark.parametrize("status", ["deprecated", "revoked"])
def test_editors_see_deprecated_and_revoked_versions(world, status):
    world["published"].status = status
    world["published"].save()
    assert access.get_gold_version(world["users"]["bob"], "ubuntu", "1.0.0") == world["published"]


def test_gold_query_sets_hide_drafts_from_editors(world):
    bob, alice, erin = world["users"]["bob"], world["users"]["alice"], world["users"]["erin"]
    assert set(access.gold_versions(bob)) == {world["published"]}
    assert world["draft"] in set(access.gold_versions(alice))
    assert [g.slug for g in access.gold_images(bob)] == ["ubuntu"]
    assert {g.slug for g in access.gold_images(alice)} == {"ubuntu", "secret-plan"}
    assert not access.gold_images(erin).exists()
    assert not access.gold_versions(erin).exists()


def test_missing_objects_are_404_without_an_audit_event(world):
    before = denials()
    assert outcome(lambda: access.get_gold_image(world["users"]["alice"], "nope")) == 404
    assert outcome(lambda: access.get_gold_version(world["users"]["alice"], "ubuntu", "9.9.9")) == 404
    assert outcome(lambda: access.get_build(world["users"]["alice"], uuid.uuid4())) == 404
    assert outcome(lambda: access.get_build(world["users"]["alice"], "not-a-uuid")) == 404
    assert outcome(lambda: access.get_layer(world["users"]["bob"], "web", "nope")) == 404
    assert denials() == before


def test_a_draft_refused_to_an_editor_is_audited_as_a_404(world):
    with pytest.raises(Http404):
        access.get_gold_version(world["users"]["bob"], "ubuntu", "1.1.0")
    event = AuditEvent.objects.filter(action="access.denied").latest("id")
    assert event.object_id == str(world["draft"].uuid)
    assert event.changes["status"] == 404
    assert event.changes["roles"] == ["editor"]


# --- layers -------------------------------------------------------------------------------------

LAYER_CASES = [
    # persona, layer, need, expected
    ("bob", "web", "view", "ok"), ("bob", "web", "change", "ok"), ("bob", "web", "build", "ok"),
    ("bob", "data", "view", 404), ("bob", "data", "change", 404), ("bob", "data", "build", 404),
    ("carol", "web", "view", 404), ("carol", "data", "change", "ok"),
    ("alice", "web", "view", "ok"), ("alice", "web", "change", 403), ("alice", "web", "build", 403),
    ("dave", "data", "view", "ok"), ("dave", "data", "change", 403), ("dave", "web", "build", 403),
    ("erin", "web", "view", 403), ("sam", "web", "view", 403), ("anonymous", "web", "view", 403),
]


@pytest.mark.parametrize(("persona", "department", "need", "expected"), LAYER_CASES)
def test_layer_access_follows_the_role_table(world, persona, department, need, expected):
    user = world["users"][persona]
    slug = {"web": "nginx", "data": "tools"}[department]
    layer_version = world[f"{department}_version"]
    assert outcome(lambda: access.get_layer(user, department, slug, need=need)) == expected
    assert outcome(lambda: access.get_layer_version(user, department, slug, "1.0.0", need=need)) == expected
    assert outcome(lambda: access.get_layer_version_by_uuid(user, layer_version.uuid, need=need)) == expected


def test_an_editor_of_two_departments_works_in_both(world, data_dept):
    bob = world["users"]["bob"]
    Membership.objects.create(user=bob, role="editor", department=data_dept)
    access.forget_roles(bob)
    assert access.get_layer(bob, "data", "tools", need="change") == world["data_layer"]
    assert set(access.layers(bob)) == {world["web_layer"], world["data_layer"]}


def test_an_auditor_who_edits_one_department_changes_only_that_one(world):
    bob = world["users"]["bob"]
    Membership.objects.create(user=bob, role="auditor")
    access.forget_roles(bob)
    assert access.get_layer(bob, "data", "tools") == world["data_layer"]
    assert outcome(lambda: access.get_layer(bob, "data", "tools", need="change")) == 403


def test_layer_query_sets_are_scoped_to_the_department(world):
    users = world["users"]
    assert set(access.layers(users["bob"])) == {world["web_layer"]}
    assert set(access.layer_versions(users["carol"])) == {world["data_version"]}
    assert set(access.layers(users["dave"])) == {world["web_layer"], world["data_layer"]}
    assert not access.layers(users["erin"]).exists()
    assert not access.layers(users["sam"]).exists()


def test_a_layer_of_another_department_is_audited_with_its_department(world, data_dept):
    with pytest.raises(Http404):
        access.get_layer(world["users"]["bob"], "data", "tools")
    event = AuditEvent.objects.filter(action="access.denied").latest("id")
    assert event.department_id == data_dept.pk
    assert event.actor_name == "bob"
    assert event.outcome == "denied"


# --- builds -------------------------------------------------------------------------------------

BUILD_CASES = [
    ("alice", "web_build", "view", "ok"), ("alice", "security_build", "change", "ok"),
    ("alice", "data_build", "build", "ok"),
    ("bob", "web_build", "view", "ok"), ("bob", "web_build", "change", "ok"), ("bob", "web_build", "build", "ok"),
    ("bob", "data_build", "view", 404), ("bob", "data_build", "change", 404), ("bob", "security_build", "view", 404),
    ("carol", "web_build", "view", 404), ("carol", "data_build", "change", "ok"),
    ("dave", "web_build", "view", "ok"), ("dave", "web_build", "change", 403), ("dave", "data_build", "build", 403),
    # The admin role reads every build; it may cancel only a stuck one (the cases below) and never rebuilds.
    ("erin", "web_build", "view", "ok"), ("erin", "data_build", "view", "ok"), ("erin", "security_build", "view", "ok"),
    ("erin", "web_build", "change", 403), ("erin", "web_build", "build", 403),
    ("sam", "web_build", "view", 403), ("anonymous", "web_build", "view", 403),
]


@pytest.mark.parametrize(("persona", "which", "need", "expected"), BUILD_CASES)
def test_build_access_follows_the_role_table(world, persona, which, need, expected):
    user = world["users"][persona]
    build = world[which]
    assert outcome(lambda: access.get_build(user, build.uuid, need=need)) == expected
    assert outcome(lambda: access.get_build(user, str(build.uuid), need=need)) == expected


def test_build_query_sets_are_scoped_to_the_department(world):
    users = world["users"]
    assert set(access.builds(users["bob"])) == {world["web_build"]}
    assert set(access.builds(users["carol"])) == {world["data_build"]}
    assert access.builds(users["alice"]).count() == 3
    assert access.builds(users["dave"]).count() == 3
    assert access.builds(users["erin"]).count() == 3
    assert not access.builds(users["sam"]).exists()


def _make_stuck(build, how):
    from datetime import timedelta

    from django.utils import timezone

    long_ago = timezone.now() - timedelta(hours=2)
    fields = {
        "canceling": {"state": Build.State.CANCELING, "run_started": True, "cancel_requested": True,
                      "cancel_requested_at": long_ago},
        "reported": {"state": Build.State.CANCELING, "run_started": True, "stuck_reported": True,
                     "cancel_requested_at": timezone.now()},
        "lease": {"state": Build.State.SUBMITTING, "lease_until": timezone.now() - timedelta(seconds=1)},
        "no worker": {"state": Build.State.PENDING, "created_at": long_ago},
    }[how]
    Build.objects.filter(pk=build.pk).update(**fields)
    build.refresh_from_db()
    return build


@pytest.mark.parametrize("how", ["canceling", "reported", "lease", "no worker"])
def test_the_admin_role_may_cancel_a_stuck_build_and_nothing_else(world, how):
    erin = world["users"]["erin"]
    build = _make_stuck(world["data_build"], how)
    assert outcome(lambda: access.get_build(erin, build.uuid, need="change")) == "ok"
    assert outcome(lambda: access.get_build(erin, build.uuid, need="build")) == 403


@pytest.mark.parametrize("fields", [
    {"state": "pending"},  # just requested
    {"state": "submitting", "lease_until": "future"},  # a live lease
    {"state": "pending", "created_at": "past", "next_attempt_at": "future"},  # a retry is due later
    {"state": "canceling", "cancel_requested_at": "now"},  # canceling, not for long
    {"state": "running"},
])
def test_a_healthy_build_is_not_stuck_and_the_admin_role_may_not_cancel_it(world, fields):
    from datetime import timedelta

    from django.utils import timezone

    now = timezone.now()
    times = {"future": now + timedelta(minutes=5), "past": now - timedelta(hours=1), "now": now}
    Build.objects.filter(pk=world["web_build"].pk).update(
        **{name: times.get(value, value) for name, value in fields.items()})
    erin = world["users"]["erin"]
    assert outcome(lambda: access.get_build(erin, world["web_build"].uuid, need="change")) == 403
    event = AuditEvent.objects.filter(action="access.denied", object_id=str(world["web_build"].uuid)).latest("id")
    assert event.changes["reason"] == "may cancel only a stuck build"


# --- audit and scope ----------------------------------------------------------------------------


@pytest.mark.parametrize(("persona", "sees"), [
    ("alice", True), ("dave", True), ("bob", False), ("erin", False), ("sam", False), ("anonymous", False),
])
def test_audit_events_are_for_security_and_auditors(world, persona, sees):
    assert access.audit_events(world["users"][persona]).exists() is sees


def test_scope_q_filters_department_columns(world):
    bob, dave, erin = world["users"]["bob"], world["users"]["dave"], world["users"]["erin"]
    assert set(Build.objects.filter(access.scope_q(bob))) == {world["web_build"]}
    assert Build.objects.filter(access.scope_q(dave)).count() == 3
    assert not Build.objects.filter(access.scope_q(erin)).exists()
