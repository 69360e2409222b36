"""The build page: live fragment, timeline, error, outputs, template, log, cancel and rebuild."""

import json

import pytest
from django.urls import reverse

from builds.models import Build
from portal.models import AuditEvent
from tests import factories
from tests.support import build_rows
from web import forms


@pytest.fixture
def layer_version(alice, bob, web):
    image = factories.make_gold_image("ubuntu", actor=alice)
    factories.make_gold_version(image, "1.0.0", actor=alice)
    layer = factories.make_layer(web, image, "nginx", actor=bob)
    return factories.make_layer_version(layer, "1.0.0", actor=bob)


@pytest.fixture
def gold(layer_version):
    return layer_version.layer.gold_image.versions.get(version="1.0.0")


def detail(build, name="build-detail"):
    return reverse(f"builds:{name}", args=[build.uuid])


def test_an_active_build_polls_its_live_fragment_and_a_finished_one_does_not(client, bob, gold, layer_version):
    running = build_rows.running(gold, [layer_version], requested_by=bob)
    done = build_rows.succeeded(gold, [layer_version], requested_by=bob)
    client.force_login(bob)
    page = client.get(detail(running)).content.decode()
    assert f'hx-get="{detail(running, "build-status")}" hx-trigger="every 3s"' in page
    assert 'http-equiv="refresh"' in page  # without JavaScript the page refreshes itself
    assert "Running · Customizing" in page
    page = client.get(detail(done)).content.decode()
    assert "hx-trigger" not in page and 'http-equiv="refresh"' not in page


def test_the_status_fragment_is_rendered_alone_for_htmx(client, bob, gold, layer_version):
    build = build_rows.running(gold, [layer_version], requested_by=bob)
    client.force_login(bob)
    response = client.get(detail(build, "build-status"), HTTP_HX_REQUEST="true")
    page = response.content.decode()
    assert page.startswith('<section id="build-live"') and "<html" not in page
    assert "HX-Request" in response["Vary"]
    assert client.get(detail(build, "build-status"))["Location"] == detail(build)


def test_the_timeline_draws_each_phase_and_marks_the_failure(client, bob, gold, layer_version):
    build = build_rows.failed(gold, [layer_version], requested_by=bob)
    client.force_login(bob)
    page = client.get(detail(build)).content.decode()
    assert page.count('data-outcome="done"') == 3  # Submitting, Queued, Building
    assert 'data-phase="Customizing" data-outcome="failed"' in page and "✕ failed" in page
    assert "PackerBuildFailed" in page and 'id="log-location"' in page
    assert reverse("builds:build-log", args=[build.uuid]) in page


def test_outputs_have_copy_buttons_and_the_template_its_hash(client, bob, gold, layer_version):
    build = build_rows.succeeded(gold, [layer_version], requested_by=bob)
    client.force_login(bob)
    page = client.get(detail(build)).content.decode()
    output = build.outputs.get()
    assert output.artifact_id in page and 'data-copy-target="#output-1-id"' in page
    assert build.template_sha256 in page and 'data-copy-target="#template-hash"' in page


def test_the_template_downloads_as_the_exact_json_submitted(client, dave, bob, gold, layer_version):
    build = build_rows.succeeded(gold, [layer_version], requested_by=bob)
    client.force_login(dave)
    response = client.get(detail(build, "build-template"))
    assert json.loads(response.content) == build.template
    assert response["X-Template-SHA256"] == build.template_sha256
    assert "attachment" in response["Content-Disposition"]


def test_the_log_page_explains_where_a_log_it_cannot_read_lives(client, bob, gold, layer_version):
    build = build_rows.failed(gold, [layer_version], requested_by=bob, log_uri="", error_message="no location")
    client.force_login(bob)
    page = client.get(detail(build, "build-log")).content.decode()
    assert "no log yet" in page


def test_outsiders_get_404_and_the_admin_reads_it(client, carol, erin, sam, gold, layer_version, bob):
    build = build_rows.running(gold, [layer_version], requested_by=bob)
    client.force_login(carol)
    assert client.get(detail(build)).status_code == 404
    client.force_login(erin)  # the admin role reads every build (test_views_builds_operator.py)
    assert client.get(detail(build)).status_code == 200
    client.force_login(sam)
    assert client.get(detail(build)).status_code == 403


def test_an_editor_cancels_a_pending_build(client, bob, gold, layer_version):
    build = build_rows.make_build(gold, [layer_version], requested_by=bob)
    client.force_login(bob)
    response = client.post(detail(build, "build-cancel"))
    assert response.status_code == 302
    build.refresh_from_db()
    assert build.state == Build.State.CANCELED
    assert AuditEvent.objects.filter(action="build.cancel", object_id=str(build.uuid)).count() == 1


def test_cancel_through_htmx_answers_with_the_new_live_fragment(client, bob, gold, layer_version):
    build = build_rows.make_build(gold, [layer_version], requested_by=bob)
    client.force_login(bob)
    page = client.post(detail(build, "build-cancel"), HTTP_HX_REQUEST="true").content.decode()
    assert page.startswith('<section id="build-live"') and 'data-state="canceled"' in page


def test_auditors_cannot_cancel_and_other_departments_do_not_see_the_build(client, dave, carol, bob, gold,
                                                                           layer_version):
    build = build_rows.make_build(gold, [layer_version], requested_by=bob)
    client.force_login(dave)
    assert client.post(detail(build, "build-cancel")).status_code == 403
    client.force_login(carol)
    assert client.post(detail(build, "build-cancel")).status_code == 404
    build.refresh_from_db()
    assert build.state == Build.State.PENDING


def test_a_finished_build_can_be_rebuilt(client, bob, gold, layer_version, azure_emulator):
    old = build_rows.failed(gold, [layer_version], requested_by=bob)
    client.force_login(bob)
    page = client.get(detail(old)).content.decode()
    assert "Rebuild" in page and "Cancel build" not in page
    response = client.post(detail(old, "build-rebuild"))
    new = Build.objects.exclude(pk=old.pk).get()
    assert response["Location"] == detail(new)
    assert new.rebuild_of == old and [bl.layer_version for bl in new.build_layers.all()] == [layer_version]


def test_a_build_of_a_revoked_version_says_so_and_refuses_a_rebuild(client, alice, bob, gold, layer_version):
    from builds import services

    old = build_rows.succeeded(gold, [layer_version], requested_by=bob)
    services.gold_version_revoke(actor=alice, gold_version=gold, reason="compromised")
    client.force_login(bob)
    page = client.get(detail(old)).content.decode()
    assert "Revoked source" in page and "compromised" in page
    response = client.post(detail(old, "build-rebuild"), follow=True)
    assert "cannot be requested" in response.content.decode()
    assert Build.objects.count() == 1


def test_times_show_in_the_browsers_zone(client, bob, gold, layer_version):
    build = build_rows.running(gold, [layer_version], requested_by=bob)
    client.force_login(bob)
    client.cookies["goldsmith_tz"] = "Asia/Tokyo"
    page = client.get(detail(build)).content.decode()
    assert " JST</time>" in page and "ago)" in page


def test_a_poll_after_the_session_ended_sends_the_whole_page_to_sign_in(client, bob, gold, layer_version):
    build = build_rows.running(gold, [layer_version], requested_by=bob)
    response = client.get(detail(build, "build-status"), HTTP_HX_REQUEST="true",
                          HTTP_HX_CURRENT_URL=f"http://testserver{detail(build)}")
    assert response.status_code == 200
    assert response["HX-Redirect"] == f"/login/?next={detail(build).replace('/', '%2F')}"
    assert client.get(detail(build, "build-status"))["Location"].startswith("/login/")


def test_the_timeline_also_lists_the_phases_for_narrow_screens(client, bob, gold, layer_version):
    build = build_rows.failed(gold, [layer_version], requested_by=bob, log_uri="")
    client.force_login(bob)
    page = client.get(f"/builds/{build.uuid}/").content.decode()
    listed = page[page.index('<ol class="timeline-list">'):]
    listed = listed[:listed.index("</ol>")]
    assert listed.count('class="phase-done"') == 3  # Submitting, Queued, Building
    assert '<li class="phase-failed"><span class="phase-name">Customizing</span>' in listed
    assert "✕ failed" in listed


@pytest.mark.parametrize("form_class, field", [
    (forms.SourceForm, "imageId"), (forms.SourceForm, "imageVersionId"),
    (forms.SharedImageTargetForm, "galleryImageId"), (forms.ManagedImageTargetForm, "imageId"),
    (forms.VhdTargetForm, "uri"), (forms.BuildVmForm, "identity"), (forms.BuildVmForm, "userAssignedIdentities"),
    (forms.BuildVmForm, "subnetId"),
])
def test_resource_id_fields_are_wide(form_class, field):
    assert 'class="resource-id"' in str(form_class()[field])


def test_what_the_build_changes_is_not_left_stale_once_it_has_run(client, bob, gold, layer_version):
    """The page of a finished build says nothing of 'once Image Builder starts', and the live
    fragment carries the parts outside the status block (source, staging group, messages) out of band."""
    from django.utils import timezone
    done = build_rows.succeeded(gold, [layer_version], requested_by=bob)
    Build.objects.filter(pk=done.pk).update(staging_resource_group="/subscriptions/s/resourceGroups/IT_stage",
                                            source_exact_version="22.04.202501010", template_deleted_at=timezone.now())
    client.force_login(bob)
    page = client.get(detail(done)).content.decode()
    assert "known once Image Builder starts" not in page
    assert '<dd id="source-resolved"><code>22.04.202501010</code>' in page
    assert "IT_stage</code> <span class=\"muted\">(deleted with the template" in page
    fragment = client.get(detail(done, "build-status"), HTTP_HX_REQUEST="true").content.decode()
    assert '<dd id="source-resolved" hx-swap-oob="true"><code>22.04.202501010</code>' in fragment
    assert '<dd id="staging-group" hx-swap-oob="true">' in fragment and "deleted with the template" in fragment
    assert '<div class="messages" id="messages" role="status" hx-swap-oob="true"></div>' in fragment


def test_a_canceled_build_drops_the_requested_message(client, bob, gold, layer_version):
    build = build_rows.make_build(gold, [layer_version], requested_by=bob)
    client.force_login(bob)
    page = client.get(detail(build)).content.decode()
    assert "known once Image Builder starts" in page  # pending: true for now
    fragment = client.post(detail(build, "build-cancel"), HTTP_HX_REQUEST="true").content.decode()
    assert 'data-state="canceled"' in fragment
    # The out-of-band messages replace "Build requested: this page follows it live".
    assert 'id="messages" role="status" hx-swap-oob="true"><p class="message success">Build canceled.</p></div>' in fragment
    assert '<dd id="source-resolved" hx-swap-oob="true"><span class="muted">not reported by Image Builder' in fragment
    page = client.get(detail(build)).content.decode()
    assert "known once Image Builder starts" not in page and "follows it live" not in page
