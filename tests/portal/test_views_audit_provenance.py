"""A build's provenance: who asked, from which approved versions, the exact template and what came out."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from builds import lifecycle, services
from builds.models import Build, BuildOutput
from tests import factories


@pytest.fixture
def build(alice, bob, web, azure_emulator):  # build requests look the source up in Azure
    image = factories.make_gold_image("ubuntu", actor=alice)
    gold = factories.make_gold_version(image, "1.2.0", actor=alice)
    layer = factories.make_layer(web, image, "nginx", actor=bob)
    layer_version = factories.make_layer_version(layer, "2.0.0", actor=bob)
    build = services.build_request(actor=bob, gold_version=gold, layer_versions=[layer_version])
    build = lifecycle.transition(build, state=Build.State.SUBMITTING, detail="attempt 1")
    build = lifecycle.transition(build, state=Build.State.RUNNING, sub_state="building",
                                 source_exact_version="22.04.202611250")
    build = lifecycle.transition(build, state=Build.State.SUCCEEDED)
    BuildOutput.objects.create(build=build, run_output_name="gallery", distributor_type="SharedImage",
                               artifact_id="/subscriptions/x/galleries/g/images/ubuntu/versions/1.2.7",
                               provisioning_state="Succeeded")
    return build


def url(build) -> str:
    return f"/audit/builds/{build.uuid}/"


@pytest.mark.parametrize("persona, status", [
    ("dave", 200), ("alice", 200), ("bob", 403), ("carol", 403), ("erin", 403), ("sam", 403),
])
def test_it_is_for_auditors_and_the_security_team(request, client, build, persona, status):
    client.force_login(request.getfixturevalue(persona))
    assert client.get(url(build)).status_code == status


def test_an_unknown_build_is_404(client, dave):
    client.force_login(dave)
    assert client.get(f"/audit/builds/{uuid.uuid4()}/").status_code == 404
    assert client.get("/audit/builds/not-a-uuid/").status_code == 404


def test_it_answers_who_built_what_from_what(client, dave, build):
    client.force_login(dave)
    page = client.get(url(build)).content.decode()
    assert "bob" in page  # the requester, and the layer's author and publisher
    assert "ubuntu@1.2.0" in page and "web/nginx@2.0.0" in page
    assert page.count("alice") >= 2  # wrote and published the gold version
    assert "22.04.202611250" in page  # the source version Azure resolved
    assert build.template_sha256 in page and page.count("matches") == 2
    assert "/versions/1.2.7" in page
    for state in ("pending", "submitting", "running", "succeeded"):
        assert f"<td>{state}" in page
    assert "build.request" in page and "build.state_change" in page


def test_the_publish_events_are_linked_as_approvals(client, dave, build):
    from portal.models import AuditEvent

    client.force_login(dave)
    page = client.get(url(build)).content.decode()
    for action in ("gold_version.publish", "layer_version.publish"):
        approval = AuditEvent.objects.get(action=action)
        assert f'/audit/events/{approval.hash}/' in page


def test_a_changed_template_body_shows_up(client, dave, build):
    Build.objects.filter(pk=build.pk).update(template={**build.template, "location": "westeurope"})
    client.force_login(dave)
    page = client.get(url(build)).content.decode()
    assert "differs: the stored body changed" in page


def test_secrets_in_the_template_are_masked(client, dave, build):
    template = build.template
    template["properties"]["customize"].append({"type": "Shell", "name": "x", "inline": ["export password=hunter22"]})
    Build.objects.filter(pk=build.pk).update(template=template)
    client.force_login(dave)
    assert "hunter22" not in client.get(url(build)).content.decode()


def test_the_query_count_does_not_grow_with_layers_and_events(client, dave, alice, bob, web, build):
    client.force_login(dave)
    client.get(url(build))
    with CaptureQueriesContext(connection) as small:
        client.get(url(build))
    image = build.gold_version.gold_image
    layers = [factories.make_layer_version(factories.make_layer(web, image, f"layer{n}", actor=bob), actor=bob)
              for n in range(4)]
    bigger = services.build_request(actor=bob, gold_version=build.gold_version, layer_versions=layers)
    for sub_state in ("queued", "building", "customizing", "validating", "distributing"):
        bigger = lifecycle.transition(bigger, state=Build.State.RUNNING, sub_state=sub_state)
    bigger = lifecycle.transition(bigger, state=Build.State.FAILED, detail="PackerBuildFailed")
    for n in range(3):
        BuildOutput.objects.create(build=bigger, run_output_name=f"out{n}")
    client.get(url(bigger))
    with CaptureQueriesContext(connection) as large:
        assert client.get(url(bigger)).status_code == 200
    assert len(large) == len(small)


def test_the_audit_events_are_listed_newest_first(client, dave, build):
    from portal.models import AuditEvent

    client.force_login(dave)
    page = client.get(url(build)).content.decode()
    events = page[page.index('id="events-heading"'):]
    ids = list(AuditEvent.objects.filter(object_type="build", object_id=str(build.uuid))
               .order_by("id").values_list("id", flat=True))
    assert len(ids) >= 2
    positions = [events.index(f'title="Event {event_id}:') for event_id in ids]
    assert positions == sorted(positions, reverse=True)  # the last recorded comes first, as the caption says
