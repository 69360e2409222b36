"""notify/visibility.py re-states the access funnel's rules on an event's columns, so fan-out can
decide thousands of pairs without a query each. This holds the two together: for every persona
and every kind of object an event can be about, "may receive" equals "the funnel's query set for
that kind contains the object" (builds/access.py, portal/access.py). A rule changed in one place
and not the other fails here."""

from __future__ import annotations

import pytest

from builds import access as builds_access
from builds.models import GoldImageVersion
from notify import delivery, events, visibility
from notify.models import Endpoint
from portal import access
from portal.access import Roles
from portal.models import AuditEvent
from tests import factories
from tests.support import build_rows

PERSONAS = ("alice", "bob", "carol", "dave", "erin", "sam")


@pytest.fixture
def people(world, erin, sam):
    found = {"alice": world.alice, "bob": world.bob, "carol": world.carol, "dave": world.dave, "erin": erin, "sam": sam}
    assert tuple(found) == PERSONAS
    return found


def assert_agrees(people, event, visible_to) -> None:
    """may_see (one user, as send() checks) and the fan-out's bulk roles agree with the funnel."""
    bulk = delivery.all_roles()
    for name, user in people.items():
        expected = visible_to(user)
        assert visibility.may_see(user, event) is expected, f"{name}, {event.type} ({event.object_type})"
        assert visibility.roles_may_see(bulk.get(user.pk, Roles()), event) is expected, f"{name} (fan-out)"


@pytest.mark.parametrize("whose", ["web", "data", "gold-only"])
def test_build_events_reach_exactly_who_may_open_the_build(world, people, whose):
    layers = {"web": [world.web_layer_version], "data": [world.data_layer_version], "gold-only": []}[whose]
    build = build_rows.failed(world.gold_version, layers, requested_by=world.alice if whose == "gold-only" else world.bob)
    assert (build.department_id is None) == (whose == "gold-only")
    event = events.build_event(build, "build.failed")
    assert_agrees(people, event, lambda user: builds_access.builds(user).filter(pk=build.pk).exists())


@pytest.mark.parametrize("status", GoldImageVersion.Status.values)
def test_version_events_reach_exactly_who_may_open_the_version(world, people, status):
    gold_version = factories.make_gold_version(world.gold_version.gold_image, "9.9.9", publish=False, actor=world.alice)
    GoldImageVersion.objects.filter(pk=gold_version.pk).update(status=status)
    gold_version.refresh_from_db()
    event = events.version_event(gold_version, "version.published", actor=world.alice)
    assert_agrees(people, event, lambda user: builds_access.gold_versions(user).filter(pk=gold_version.pk).exists())


def test_audit_events_reach_exactly_who_may_read_the_audit_history(world, people):
    newest = AuditEvent.objects.order_by("-id").first()
    assert newest is not None  # the fixtures' writes were audited
    event = events.emit("audit.verify_failed", object_type="audit_event", object_id=newest.pk, link="/audit/verify/",
                        data={"id": newest.pk, "reason": "test", "bad_event_id": newest.pk, "checked": 1})
    assert_agrees(people, event, lambda user: access.audit_events(user).filter(pk=newest.pk).exists())


@pytest.mark.parametrize("type_", ["approval.requested", "rollout.started", "source.available"])
@pytest.mark.parametrize("department", ["web", "data"])
def test_department_objects_reach_exactly_who_the_funnel_scopes_them_to(world, people, type_, department):
    """Approvals, rollouts and source images have no query set of their own yet: they follow the
    funnel's department rule (portal.access.scope_q), checked here on the department's layers."""
    dept = getattr(world, department)
    layer = world.web_layer_version.layer if department == "web" else world.data_layer_version.layer
    event = events.emit(type_, object_type=type_.partition(".")[0], object_id=layer.pk, link="/", data={"id": "x"},
                        department_id=dept.pk)
    assert_agrees(people, event,
                  lambda user: layer.__class__.objects.filter(access.scope_q(user)).filter(pk=layer.pk).exists())


@pytest.mark.parametrize("whose", ["web", "data"])
def test_an_endpoint_never_receives_more_than_its_owner_may_see(world, people, receiver, whose):
    build = build_rows.failed(world.gold_version, [getattr(world, f"{whose}_layer_version")], requested_by=world.bob)
    event = events.build_event(build, "build.failed")
    for name, owner in people.items():
        for department in (None, world.web, world.data):
            endpoint = Endpoint(owner=owner, department=department, kind="webhook", url=receiver.url,
                                event_types=["build.failed"])
            receives = visibility.endpoint_receives(endpoint, event)
            may_open = builds_access.builds(owner).filter(pk=build.pk).exists()
            in_scope = department is None or department.pk == build.department_id
            assert receives is (may_open and in_scope), f"{name}'s endpoint for {department}"


def test_notify_states_the_same_visible_gold_statuses_as_the_funnel():
    """notify sits below builds and keeps its own copy of the rule; this holds the two equal."""
    from builds.access import VISIBLE_GOLD_STATUSES as funnel
    from notify.visibility import VISIBLE_GOLD_STATUSES as notify_copy

    assert set(notify_copy) == {str(status) for status in funnel}
