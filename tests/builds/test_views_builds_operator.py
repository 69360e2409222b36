"""The admin role and builds (first-hour issue 17): every build read-only, from the operator
page's figures; a stuck build may be canceled (audited), nothing else; editors stay isolated."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from builds import queue
from builds.models import Build
from portal.models import AuditEvent
from tests import factories
from tests.support import build_rows


@pytest.fixture
def gold(alice):
    image = factories.make_gold_image("ubuntu", actor=alice)
    return factories.make_gold_version(image, "1.0.0", actor=alice)


@pytest.fixture
def data_version(gold, carol, data_dept):
    layer = factories.make_layer(data_dept, gold.gold_image, "tools", actor=carol)
    return factories.make_layer_version(layer, "1.0.0", actor=carol)


@pytest.fixture
def web_version(gold, bob, web):
    layer = factories.make_layer(web, gold.gold_image, "nginx", actor=bob)
    return factories.make_layer_version(layer, "1.0.0", actor=bob)


def url(build, name="build-detail"):
    return reverse(f"builds:{name}", args=[build.uuid])


def stuck_pending(build):
    Build.objects.filter(pk=build.pk).update(created_at=timezone.now() - dt.timedelta(hours=1))
    build.refresh_from_db()
    return build


def denials(build):
    return AuditEvent.objects.filter(action="access.denied", object_id=str(build.uuid), outcome="denied")


def test_the_admin_role_reads_every_build(client, erin, gold, data_version, web_version, carol, bob):
    data_build = build_rows.failed(gold, [data_version], requested_by=carol)
    web_build = build_rows.running(gold, [web_version], requested_by=bob)
    client.force_login(erin)
    page = client.get(reverse("builds:build-list")).content.decode()
    assert url(data_build) in page and url(web_build) in page
    assert 'href="/builds/"' in client.get(reverse("portal:home")).content.decode()  # the nav offers Builds
    page = client.get(url(data_build)).content.decode()
    assert client.get(url(data_build)).status_code == 200
    assert "Rebuild" not in page and "Cancel build" not in page  # read-only
    assert client.get(url(web_build, "build-status"), HTTP_HX_REQUEST="true").status_code == 200
    assert "Cancel build" not in client.get(url(web_build)).content.decode()  # running: healthy
    assert client.get(url(data_build, "build-template")).status_code == 200
    assert client.get(url(data_build, "build-log")).status_code == 200


def test_the_admin_role_cancels_a_stuck_build_audited(client, erin, gold, data_version, carol):
    build = stuck_pending(build_rows.make_build(gold, [data_version], requested_by=carol))
    client.force_login(erin)
    assert "Cancel build" in client.get(url(build)).content.decode()
    assert client.post(url(build, "build-cancel")).status_code == 302
    build.refresh_from_db()
    assert build.state == Build.State.CANCELED
    event = AuditEvent.objects.get(action="build.cancel", object_id=str(build.uuid))
    assert event.actor_name == "erin"


def test_a_stuck_canceling_build_has_its_cancel_sent_again(client, erin, gold, data_version, carol, monkeypatch):
    build = build_rows.running(gold, [data_version], requested_by=carol)
    Build.objects.filter(pk=build.pk).update(state=Build.State.CANCELING, cancel_requested=True,
                                             cancel_requested_at=timezone.now() - dt.timedelta(hours=2))
    sent = []
    monkeypatch.setattr(queue, "enqueue_cancel", lambda build, **kwargs: sent.append(build.uuid))
    client.force_login(erin)
    assert "This build is stuck" in client.get(url(build)).content.decode()
    assert client.post(url(build, "build-cancel")).status_code == 302
    assert sent == [build.uuid]
    event = AuditEvent.objects.get(action="build.cancel", object_id=str(build.uuid))
    assert event.actor_name == "erin" and event.changes["stuck"] is True


def test_the_admin_role_is_refused_a_healthy_cancel_and_any_rebuild(client, erin, gold, data_version, carol):
    healthy = build_rows.running(gold, [data_version], requested_by=carol)
    finished = build_rows.failed(gold, [data_version], requested_by=carol)
    client.force_login(erin)
    assert client.post(url(healthy, "build-cancel")).status_code == 403
    healthy.refresh_from_db()
    assert healthy.state == Build.State.RUNNING
    assert denials(healthy).get().changes["reason"] == "may cancel only a stuck build"
    assert client.post(url(finished, "build-rebuild")).status_code == 403
    assert denials(finished).count() == 1
    assert Build.objects.count() == 2
    stuck = stuck_pending(build_rows.make_build(gold, [data_version], requested_by=carol))
    assert client.post(url(stuck, "build-rebuild")).status_code == 403  # stuck or not: no rebuilds


def test_editors_stay_in_their_department(client, bob, gold, data_version, carol):
    build = stuck_pending(build_rows.make_build(gold, [data_version], requested_by=carol))
    client.force_login(bob)
    assert url(build) not in client.get(reverse("builds:build-list")).content.decode()
    assert client.get(url(build)).status_code == 404
    assert client.post(url(build, "build-cancel")).status_code == 404


def test_the_operator_page_links_its_figures_to_the_builds(client, erin, gold, data_version, carol):
    running = build_rows.running(gold, [data_version], requested_by=carol)
    stuck = stuck_pending(build_rows.make_build(gold, [data_version], requested_by=carol))
    client.force_login(erin)
    page = client.get(reverse("portal:operator")).content.decode()
    assert f'href="{reverse("builds:build-list")}?state=running">Running: <strong>1</strong></a>' in page
    assert url(stuck) in page and "no worker has taken it" in page
    assert url(running) not in page
