"""The source watch: a newer or deprecation-scheduled source version, found once per finding.

The pure comparison is tested on plain data; the watch runs against the emulator's catalog
after a real build resolved "latest" (the seed's newest 22_04-lts-gen2 version, 22.04.202411190).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest

from builds import azure, monitor, policies, sources, sourcewatch
from builds.models import Build, SourceWatch
from builds.services import build_request
from notify import catalog
from notify.models import OutboxEvent
from portal.models import AuditEvent
from tests import factories
from tests.support.workers import submit

JAMMY = {"location": "eastus", "publisher": "Canonical", "offer": "0001-com-ubuntu-server-jammy",
         "sku": "22_04-lts-gen2", "hyperVGeneration": "V2", "architecture": "x64",
         "features": {"SecurityType": "TrustedLaunchSupported"}, "osType": "Linux"}


@dataclass(frozen=True)
class V:
    name: str
    deprecation_state: str = "Active"
    deprecation_time: str = ""


@pytest.mark.parametrize(("in_use", "listed", "expected"), [
    ("1.0.2", [V("1.0.10"), V("1.0.2")], sources.Finding(newer="1.0.10")),
    ("1.0.10", [V("1.0.10"), V("1.0.2")], sources.Finding()),
    ("1.0.1", [V("1.0.1", "ScheduledForDeprecation", "2027-01-01T00:00:00Z")],
     sources.Finding(deprecation_state="ScheduledForDeprecation", deprecation_time="2027-01-01T00:00:00Z")),
    ("1.0.0", [V("1.0.1")], sources.Finding(newer="1.0.1", deprecation_state="Deprecated")),
    ("", [V("1.0.1")], sources.Finding()),
    ("1.0.0", [], sources.Finding()),
])
def test_compare_reports_a_newer_version_and_the_deprecation_of_the_one_in_use(in_use, listed, expected):
    assert sources.compare(in_use, listed) == expected


@pytest.mark.parametrize(("source", "kind"), [
    ({"type": "PlatformImage", "publisher": "Canonical", "offer": "o", "sku": "s", "version": "latest"}, "marketplace"),
    ({"type": "PlatformImage", "publisher": "Canonical", "offer": "o", "sku": "s", "version": "1.2.3"}, None),
    ({"type": "SharedImageVersion", "imageVersionId": factories.GALLERY + "base/versions/latest"}, "gallery"),
    ({"type": "SharedImageVersion", "imageVersionId": factories.GALLERY + "base/versions/1.0.0"}, None),
    ({"type": "ManagedImage", "imageId": "/subscriptions/x"}, None),
])
def test_only_sources_that_follow_latest_are_watched(source, kind):
    watched = sources.watched_source(source, "eastus")
    assert (watched.kind if watched else None) == kind


def build_once(gold_version, actor, timeout=60) -> Build:
    build = build_request(actor=actor, gold_version=gold_version)
    deadline = time.monotonic() + timeout
    while not build.is_terminal:
        submit(build.pk)
        monitor.sweep()
        build.refresh_from_db()
        assert time.monotonic() < deadline, f"build still {build.state}"
        time.sleep(0.1)
    return build


@pytest.fixture
def built(alice, azure_emulator):
    azure_emulator.set_time_scale(20000)
    gold_version = factories.make_gold_version(factories.make_gold_image("ubuntu", actor=alice), actor=alice)
    build = build_once(gold_version, alice)
    assert build.state == Build.State.SUCCEEDED
    assert build.source_exact_version == "22.04.202411190"
    return gold_version


@pytest.mark.django_db(transaction=True)
def test_a_newer_catalog_version_is_announced_once(built, azure_emulator):
    assert sourcewatch.run()["available"] == 0
    azure_emulator.add_image(**JAMMY, version="22.04.202612010")
    azure.lookup_cache_clear()  # the cached listing (minutes) is long gone by the next run (hours)
    seq = azure_emulator.last_seq()

    counts = sourcewatch.run()

    assert counts["available"] == 1
    assert counts["builds"] == 0  # the default policy only notifies
    row = SourceWatch.objects.get(gold_image=built.gold_image)
    assert row.in_use == "22.04.202411190"
    assert row.newer == "22.04.202612010"
    event = OutboxEvent.objects.get(type="source.available")
    assert catalog.schema_problems(event.body) == []
    assert event.body["source"]["version"] == "22.04.202612010"
    assert event.body["source"]["gold_images"] == ["ubuntu"]
    assert len(azure_emulator.requests(since=seq, operation="VirtualMachineImages_List*")) <= 1

    assert sourcewatch.run()["available"] == 0
    assert OutboxEvent.objects.filter(type="source.available").count() == 1
    assert Build.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_gold_images_on_one_source_share_one_listing_and_one_event(built, alice, azure_emulator):
    other = factories.make_gold_version(factories.make_gold_image("ubuntu-web", actor=alice), actor=alice)
    build_once(other, alice)
    azure_emulator.add_image(**JAMMY, version="22.04.202612010")
    seq = azure_emulator.last_seq()

    counts = sourcewatch.run()

    assert counts["sources"] == 1
    assert len(azure_emulator.requests(since=seq, operation="VirtualMachineImages_List*")) == 1
    event = OutboxEvent.objects.get(type="source.available")
    assert event.body["source"]["gold_images"] == ["ubuntu", "ubuntu-web"]


@pytest.mark.django_db(transaction=True)
def test_the_build_policy_requests_one_gold_only_build_on_the_new_version(built, alice, azure_emulator):
    policies.policy_update(actor=alice, rules={"on_new_source": "build"})
    azure_emulator.add_image(**JAMMY, version="22.04.202612010")

    assert sourcewatch.run()["builds"] == 1
    assert sourcewatch.run()["builds"] == 0

    row = SourceWatch.objects.get(gold_image=built.gold_image)
    assert row.build.gold_version == built
    assert list(row.build.layer_versions.all()) == []
    assert AuditEvent.objects.filter(action="build.request", object_id=str(row.build.uuid),
                                     actor_name="source-watch").exists()
    assert Build.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_version_in_use_scheduled_for_deprecation_is_announced_once(alice, azure_emulator):
    azure_emulator.set_time_scale(20000)
    azure_emulator.add_image(**{**JAMMY, "sku": "watch-gen2"}, version="1.0.0", imageDeprecationStatus={
        "imageState": "ScheduledForDeprecation", "scheduledDeprecationTime": "2027-03-01T00:00:00Z"})
    source = {"type": "PlatformImage", "publisher": "Canonical", "offer": JAMMY["offer"], "sku": "watch-gen2",
              "version": "latest"}
    gold_version = factories.make_gold_version(factories.make_gold_image("watched", actor=alice), actor=alice,
                                               source=source)
    build = build_once(gold_version, alice)
    assert build.source_exact_version == "1.0.0"

    assert sourcewatch.run()["deprecations"] == 1
    assert sourcewatch.run()["deprecations"] == 0

    event = OutboxEvent.objects.get(type="source.deprecation_scheduled")
    assert catalog.schema_problems(event.body) == []
    assert event.body["source"]["version"] == "1.0.0"
    assert event.body["source"]["deprecation_date"] == "2027-03-01T00:00:00Z"
    row = SourceWatch.objects.get(gold_image=gold_version.gold_image)
    assert row.deprecation_state == "ScheduledForDeprecation"


@pytest.mark.django_db(transaction=True)
def test_the_finding_shows_on_the_gold_image_and_the_security_home_page(built, alice, bob, client, azure_emulator):
    azure_emulator.add_image(**JAMMY, version="22.04.202612010")
    sourcewatch.run()

    client.force_login(alice)
    page = client.get("/gold/ubuntu/")
    assert page.status_code == 200
    assert "22.04.202612010</strong>, is available" in page.content.decode()
    home = client.get("/")
    assert home.status_code == 200
    assert "22.04.202612010</strong>, is available" in home.content.decode()
    client.force_login(bob)  # an editor's home page has no source findings
    assert "is available" not in client.get("/").content.decode()


@pytest.mark.django_db(transaction=True)
def test_the_periodic_job_runs_in_a_real_worker(built, azure_emulator, rq_worker):
    import django_rq

    from builds import jobs

    azure_emulator.add_image(**JAMMY, version="22.04.202612010")
    azure.lookup_cache_clear()
    django_rq.get_queue("default").enqueue(jobs.source_watch)
    deadline = time.monotonic() + 30
    while not OutboxEvent.objects.filter(type="source.available").exists():
        assert time.monotonic() < deadline, rq_worker.log()[-2000:]
        time.sleep(0.2)
    assert SourceWatch.objects.get().newer == "22.04.202612010"
