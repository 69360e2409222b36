"""The lineage and gold image pages show each gallery image version as Azure last showed it (read
back, with the time), and "refresh from Azure" reads them all again (a job; audited)."""

import django_rq
import pytest
from django.urls import reverse

from builds import jobs, queue, release, services
from builds.models import ArtifactState, Build
from portal.models import AuditEvent
from tests import factories
from tests.support.build_rows import make_build
from tests.support.gallery import make_gallery_versions

pytestmark = pytest.mark.django_db


def built_from(gold_version, ids, user):
    for version_id in ids:
        make_build(gold_version, requested_by=user, state=Build.State.SUCCEEDED, phases=("Queued",),
                   outputs=[{"name": "gallery", "artifact_id": version_id}])


def row(page: str, version_id: str) -> str:
    start = page.index(f'data-artifact="{version_id}"')
    return page[start:page.index("</tr>", start)]


def test_refresh_from_azure_reads_every_version_back_and_both_pages_show_it(
        client, alice, azure_emulator, django_capture_on_commit_callbacks):
    gold_version = factories.make_gold_version(actor=alice)
    slug = gold_version.gold_image.slug
    first, second = make_gallery_versions(azure_emulator, 2)
    built_from(gold_version, [first, second], alice)
    client.force_login(alice)
    lineage_url = reverse("builds:gold-lineage", args=[slug])
    assert "never read back" in row(client.get(lineage_url).content.decode(), first)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("builds:gold-artifacts-refresh", args=[slug]), {"back": "lineage"})
    assert response.status_code == 302 and response["Location"] == lineage_url
    assert queue.artifacts_refresh_job_id(gold_version.gold_image) in django_rq.get_queue("builds").job_ids
    event = AuditEvent.objects.get(action="artifact.refresh")
    assert event.actor_name == "alice" and event.changes["gallery_versions"] == [None, 2]
    mark = azure_emulator.last_seq()
    assert jobs.artifacts_refresh(gold_version.gold_image.pk) == 2  # what the worker runs
    assert not [r for r in azure_emulator.requests(mark) if r["method"] in ("PUT", "PATCH", "DELETE")]  # reading sends no write
    assert [s.exclude_from_latest for s in ArtifactState.objects.order_by("pk")] == [False, False]

    page = client.get(lineage_url).content.decode()
    assert "in latest" in row(page, first) and "never read back" not in page

    # Revocation changes Azure; the page shows what was read back after the PATCH, with its time.
    with django_capture_on_commit_callbacks(execute=False):
        services.gold_version_revoke(actor=alice, gold_version=gold_version, reason="CVE-2026-0002")
    release.apply(gold_version.pk, "revoke", 1)
    for url in (lineage_url, reverse("builds:gold-detail", args=[slug])):
        page = client.get(url).content.decode()
        for version_id in (first, second):
            shown = row(page, version_id)
            assert "excluded" in shown and ArtifactState.objects.get(resource_id=version_id).end_of_life_date in shown
        assert 'id="artifacts-refresh"' in page

    # A version deleted behind Goldsmith's back: the next read says so instead of keeping the old state.
    azure_emulator.compute_client().gallery_image_versions.begin_delete(
        "goldsmith-galleries", "release_gallery", "web", "1.0.1").result()
    release.read_back(gold_version.gold_image.pk)
    assert "no longer exists" in row(client.get(lineage_url).content.decode(), second)


def test_only_the_security_team_refreshes(client, alice, bob, web):
    gold_version = factories.make_gold_version(actor=alice)
    client.force_login(bob)
    slug = gold_version.gold_image.slug
    assert client.post(reverse("builds:gold-artifacts-refresh", args=[slug])).status_code == 403
    assert not AuditEvent.objects.filter(action="artifact.refresh").exists()
    assert 'id="artifacts-refresh"' not in client.get(reverse("builds:gold-lineage", args=[slug])).content.decode()
