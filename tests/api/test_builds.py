"""/api/v1/builds/: requesting (POST), listing with filters and cursors, one build, cancelling."""

from __future__ import annotations

import datetime as dt
import uuid

import django_rq
import pytest
from django.urls import reverse
from django.utils import timezone

from builds import jobs
from builds.models import Build
from builds.selectors import build_summary
from portal.models import AuditEvent, Membership
from tests import factories
from tests.support.audit import audit_mark, events_since
from tests.support.build_rows import make_build, succeeded

BUILDS = "/api/v1/builds/"


def detail(build) -> str:
    return reverse("api:build-detail", kwargs={"build_uuid": build.uuid})


def problems_of(response) -> set[tuple[str, str]]:
    return {(p["rule"], p["path"]) for p in response.json()["error"]["problems"]}


# --- Requesting ------------------------------------------------------------------------------------


def test_an_editor_requests_a_layered_build_and_gets_202_with_its_url(api, bob, world, azure_emulator,
                                                                      django_capture_on_commit_callbacks):
    mark = audit_mark()
    with django_capture_on_commit_callbacks(execute=True):
        response = api(bob).post(BUILDS, {"gold_image": "ubuntu", "version": "1.0.0", "layers": ["web/nginx@1.0.0"]},
                                 format="json")

    assert response.status_code == 202, response.json()
    body = response.json()
    build = Build.objects.get(uuid=body["id"])
    assert response["Location"] == body["url"] == f"http://testserver{detail(build)}"
    assert body["state"] == "pending" and body["layers"] == ["web/nginx@1.0.0"] and body["department"] == "web"
    assert body["template_sha256"] == build.template_sha256
    [event] = [e for e in events_since(mark) if e.action == "build.request"]
    assert event.actor_name == "bob" and event.object_id == body["id"]
    assert jobs.submit_job_id(build) in django_rq.get_queue("builds").job_ids


def test_security_requests_gold_only_builds_for_no_department(api, alice, world, azure_emulator):
    response = api(alice).post(BUILDS, {"gold_image": "ubuntu", "version": "1.0.0"}, format="json")

    assert response.status_code == 202, response.json()
    assert response.json()["layers"] == [] and response.json()["department"] is None


def test_an_editor_s_gold_only_build_is_for_their_department(api, bob, world, azure_emulator):
    response = api(bob).post(BUILDS, {"gold_image": "ubuntu", "version": "1.0.0"}, format="json")

    assert response.status_code == 202
    assert response.json()["department"] == "web"


def test_an_editor_of_two_departments_names_the_one_a_gold_only_build_is_for(api, bob, data_dept, world,
                                                                              azure_emulator):
    Membership.objects.create(user=bob, role="editor", department=data_dept)
    client = api(bob)

    unnamed = client.post(BUILDS, {"gold_image": "ubuntu", "version": "1.0.0"}, format="json")
    named = client.post(BUILDS, {"gold_image": "ubuntu", "version": "1.0.0", "department": "data"}, format="json")

    assert unnamed.status_code == 400 and problems_of(unnamed) == {("build.department", "department")}
    assert named.status_code == 202 and named.json()["department"] == "data"


def test_another_department_s_layer_is_reported_like_a_missing_one(api, bob, world):
    theirs = api(bob).post(BUILDS, {"gold_image": "ubuntu", "version": "1.0.0", "layers": ["data/tools@1.0.0"]},
                           format="json")
    missing = api(bob).post(BUILDS, {"gold_image": "ubuntu", "version": "1.0.0", "layers": ["data/nope@1.0.0"]},
                            format="json")

    assert theirs.status_code == missing.status_code == 400
    assert problems_of(theirs) == problems_of(missing) == {("build.not-found", "layers[0]")}
    assert not Build.objects.filter(requested_by=bob).exclude(pk=world.web_build.pk).exists()


def test_every_reference_problem_is_listed_at_once(api, bob, world):
    response = api(bob).post(BUILDS, {"gold_image": "ubuntu", "version": "1.1.0",
                                      "layers": ["nonsense", "web/nginx@7.0.0"]}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_failed"
    assert problems_of(response) == {("build.not-found", "version"), ("build.layer-ref", "layers[0]"),
                                     ("build.not-found", "layers[1]")}


def test_a_build_on_a_channel_resolves_it_and_records_it(api, bob, alice, frank, world, azure_emulator):
    from builds import approvals

    request = approvals.promotion_request_create(actor=alice, gold_version=world.published, channel="production")
    approvals.publish_request_approve(actor=frank, request=request)
    response = api(bob).post(BUILDS, {"gold_image": "ubuntu", "channel": "production",
                                      "layers": ["web/nginx@1.0.0"]}, format="json")
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["channel"] == "production" and body["gold_version"] == "ubuntu@1.0.0"
    build = Build.objects.get(uuid=body["id"])
    assert build.channel == "production" and build.gold_version == world.published
    assert api(bob).get(detail(build)).json()["channel"] == "production"
    listed = api(bob).get(BUILDS).json()["results"]
    assert {item["id"]: item["channel"] for item in listed}[body["id"]] == "production"
    assert AuditEvent.objects.get(action="build.request", object_id=body["id"]).changes["channel"] == [
        None, "production"]


@pytest.mark.parametrize(("body", "expected"), [
    ({"gold_image": "ubuntu", "channel": "candidate"}, {("build.channel", "channel")}),
    ({"gold_image": "ubuntu", "version": "1.0.0", "channel": "production"}, {("request.invalid", "version")}),
    ({"gold_image": "ubuntu"}, {("request.invalid", "version")}),
    ({"gold_image": "nosuch", "channel": "production"}, {("build.not-found", "gold_image")}),
])
def test_a_build_names_either_a_version_or_a_channel_that_resolves(api, alice, world, body, expected):
    response = api(alice).post(BUILDS, body, format="json")
    assert response.status_code == 400, response.json()
    assert problems_of(response) == expected
    assert not Build.objects.filter(channel__gt="").exists()


def test_a_malformed_body_names_each_field(api, bob, world):
    response = api(bob).post(BUILDS, {"version": 3, "layers": "web/nginx@1.0.0"}, format="json")

    assert response.status_code == 400
    assert problems_of(response) == {("request.required", "gold_image"), ("request.not_a_list", "layers")}


def test_the_validation_rules_refuse_before_anything_is_submitted(api, alice, world, azure_emulator):
    """Services' rules come back as the problem list (here: a draft is not buildable)."""
    response = api(alice).post(BUILDS, {"gold_image": "ubuntu", "version": "1.1.0"}, format="json")

    assert response.status_code == 400
    assert problems_of(response) == {("build.gold-status", "version")}
    assert response.json()["error"]["message"] == "This build cannot be requested."


def test_a_composed_template_failing_the_checks_is_refused_with_rule_and_path(api, bob, world, azure_emulator):
    layer_version = factories.make_layer_version(world.web_layer, "1.2.0", actor=bob, publish=False)
    layer_version.customize = [{"type": "Shell", "name": "both", "inline": ["a"], "scriptUri": "https://x/s.sh"}]
    layer_version.status = "published"
    layer_version.save()

    response = api(bob).post(BUILDS, {"gold_image": "ubuntu", "version": "1.0.0", "layers": ["web/nginx@1.2.0"]},
                             format="json")

    assert response.status_code == 400
    assert ("schema.script-source", "properties.customize[1].scriptUri") in problems_of(response)
    assert all(set(p) == {"rule", "path", "message", "severity"} for p in response.json()["error"]["problems"])


@pytest.mark.parametrize("persona, body, expected", [
    ("alice", {"layers": ["web/nginx@1.0.0"]}, 403),  # the security team builds gold-only
    ("dave", {}, 403),
    ("erin", {}, 403),
    ("sam", {}, 403),
    (None, {}, 401),
])
def test_who_may_not_request_builds(api, world, request, persona, body, expected):
    user = request.getfixturevalue(persona) if persona else None
    client = api(user)
    mark = audit_mark()

    response = client.post(BUILDS, {"gold_image": "ubuntu", "version": "1.0.0", **body}, format="json")

    assert response.status_code == expected
    assert response.json()["error"]["code"] == {401: "not_authenticated", 403: "permission_denied"}[expected]
    assert Build.objects.count() == 3
    if expected == 403:
        assert [e.action for e in events_since(mark)] == ["access.denied"]


def test_an_idempotency_key_answers_the_same_build_again(api, bob, world, azure_emulator):
    client = api(bob)
    body = {"gold_image": "ubuntu", "version": "1.0.0", "layers": ["web/nginx@1.0.0"]}

    first = client.post(BUILDS, body, format="json", HTTP_IDEMPOTENCY_KEY="run-4711")
    again = client.post(BUILDS, body, format="json", HTTP_IDEMPOTENCY_KEY="run-4711")
    other = client.post(BUILDS, {**body, "layers": []}, format="json", HTTP_IDEMPOTENCY_KEY="run-4711")
    bad = client.post(BUILDS, body, format="json", HTTP_IDEMPOTENCY_KEY="spaces are not allowed")

    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"] and again["Idempotent-Replayed"] == "true"
    assert other.status_code == 409 and other.json()["error"]["code"] == "conflict"
    assert bad.status_code == 400 and problems_of(bad) == {("request.idempotency-key", "Idempotency-Key")}
    assert AuditEvent.objects.filter(action="build.request").count() == 1


def test_a_refused_request_frees_its_idempotency_key(api, bob, world, azure_emulator):
    client = api(bob)

    refused = client.post(BUILDS, {"gold_image": "ubuntu", "version": "9.0.0"}, format="json",
                          HTTP_IDEMPOTENCY_KEY="k1")
    fixed = client.post(BUILDS, {"gold_image": "ubuntu", "version": "1.0.0"}, format="json",
                        HTTP_IDEMPOTENCY_KEY="k1")

    assert refused.status_code == 400 and fixed.status_code == 202


# --- Listing ---------------------------------------------------------------------------------------


def ids(response) -> list[str]:
    assert response.status_code == 200, response.json()
    return [build["id"] for build in response.json()["results"]]


def test_editors_list_their_department_s_builds_and_security_all(api, alice, bob, carol, dave, world):
    assert ids(api(bob).get(BUILDS)) == [str(world.web_build.uuid)]
    assert ids(api(carol).get(BUILDS)) == [str(world.data_build.uuid)]
    everything = {str(b.uuid) for b in (world.web_build, world.data_build, world.security_build)}
    assert set(ids(api(alice).get(BUILDS))) == set(ids(api(dave).get(BUILDS))) == everything


def test_the_filters(api, alice, bob, world):
    old = succeeded(world.published, requested_by=bob, started=timezone.now() - dt.timedelta(days=3))
    client = api(alice)

    assert ids(client.get(BUILDS, {"state": "running"})) == [str(world.web_build.uuid)]
    assert set(ids(client.get(BUILDS, {"state": "active"}))) == {
        str(world.web_build.uuid), str(world.data_build.uuid), str(world.security_build.uuid)}
    assert ids(client.get(BUILDS, {"department": "data"})) == [str(world.data_build.uuid)]
    assert ids(client.get(BUILDS, {"requested_by": "carol"})) == [str(world.data_build.uuid)]
    assert len(ids(client.get(BUILDS, {"gold_image": "ubuntu"}))) == 4
    assert ids(client.get(BUILDS, {"gold_image": "windows"})) == []
    until = (timezone.now() - dt.timedelta(days=1)).isoformat()
    assert ids(client.get(BUILDS, {"until": until})) == [str(old.uuid)]
    assert str(old.uuid) not in ids(client.get(BUILDS, {"since": until}))


def test_bad_filters_are_validation_errors(api, alice, world):
    response = api(alice).get(BUILDS, {"state": "exploded", "since": "yesterday", "limit": "0"})

    assert response.status_code == 400
    assert {p["path"] for p in response.json()["error"]["problems"]} == {"state", "since", "limit"}


def test_the_list_walks_every_build_newest_first_in_constant_queries(api, bob, world, django_assert_num_queries):
    now = timezone.now()
    made = [make_build(world.published, [world.web_version], requested_by=bob,
                       started=now - dt.timedelta(minutes=index % 4)) for index in range(9)]  # equal times too
    client = api(bob)
    client.get(BUILDS)  # the token's first use writes last_used_at

    seen, url = [], f"{BUILDS}?limit=4"
    while url:
        with django_assert_num_queries(4):  # token, roles, builds, their layers
            page = client.get(url).json()
        seen += [build["id"] for build in page["results"]]
        url = page["next"]

    expected = sorted([*made, world.web_build], key=lambda b: (b.created_at, b.id), reverse=True)
    assert seen == [str(b.uuid) for b in expected]


def test_a_list_item_has_the_detail_s_values(api, dave, world):
    client = api(dave)
    item = next(b for b in client.get(BUILDS).json()["results"] if b["id"] == str(world.web_build.uuid))
    one = client.get(detail(world.web_build)).json()

    assert set(one) - set(item) == {"events", "outputs"}
    assert {key: one[key] for key in item} == item


# --- One build ---------------------------------------------------------------------------------------


def test_a_build_is_build_summary_with_its_links(api, bob, world, django_assert_num_queries):
    build = succeeded(world.published, [world.web_version], requested_by=bob)
    client = api(bob)
    client.get(detail(build))

    with django_assert_num_queries(6):  # token, roles, build, layers, outputs, events
        response = client.get(detail(build))

    body = response.json()
    assert {k: v for k, v in body.items() if k not in ("url", "web_url")} == build_summary(build)
    assert body["state"] == "succeeded" and body["outputs"][0]["name"] == "gallery"
    assert [e["to_state"] for e in body["events"]][-1] == "succeeded"
    assert body["web_url"] == f"http://testserver{reverse('builds:build-detail', kwargs={'build_uuid': build.uuid})}"


def test_another_department_s_build_answers_exactly_like_a_missing_one(api, carol, world):
    client = api(carol)

    theirs = client.get(detail(world.web_build))
    missing = client.get(reverse("api:build-detail", kwargs={"build_uuid": uuid.uuid4()}))
    malformed = client.get(f"{BUILDS}not-a-uuid/")

    assert theirs.status_code == missing.status_code == malformed.status_code == 404
    assert theirs.content == missing.content == malformed.content
    assert theirs.json() == {"error": {"code": "not_found", "message": "Not found."}}


# --- Cancelling ------------------------------------------------------------------------------------


def cancel(build) -> str:
    return reverse("api:build-cancel", kwargs={"build_uuid": build.uuid})


def test_cancelling_a_running_build_asks_image_builder_to_stop(api, bob, world):
    mark = audit_mark()

    response = api(bob).post(cancel(world.web_build))

    assert response.status_code == 202
    assert response.json()["state"] == "canceling"
    assert "build.cancel" in [e.action for e in events_since(mark)]


def test_a_pending_build_is_canceled_at_once_and_a_finished_one_is_a_conflict(api, alice, world):
    client = api(alice)

    first = client.post(cancel(world.security_build))
    again = client.post(cancel(world.security_build))

    assert first.status_code == 202 and first.json()["state"] == "canceled"
    assert again.status_code == 409
    assert again.json() == {"error": {"code": "conflict", "message": "The build has already canceled."}}


@pytest.mark.parametrize("persona, expected", [("carol", 404), ("dave", 403), ("erin", 403), ("sam", 403),
                                               (None, 401)])
def test_who_may_not_cancel(api, world, request, persona, expected):
    user = request.getfixturevalue(persona) if persona else None

    response = api(user).post(cancel(world.web_build))

    assert response.status_code == expected
    world.web_build.refresh_from_db()
    assert world.web_build.state == "running" and not world.web_build.cancel_requested


def test_a_key_whose_first_request_is_still_running_is_a_conflict(api, bob, world):
    from django.test import RequestFactory

    from api import idempotency

    body = {"gold_image": "ubuntu", "version": "1.0.0", "layers": ["web/nginx@1.0.0"]}
    running = RequestFactory().post(BUILDS, headers={"Idempotency-Key": "run-1"})
    running.user = bob
    idempotency.claim(running, body)  # as the first request does, before it calls the service

    response = api(bob).post(BUILDS, body, format="json", HTTP_IDEMPOTENCY_KEY="run-1")

    assert response.status_code == 409 and "still being processed" in response.json()["error"]["message"]


def test_an_impossible_date_is_a_400_naming_the_parameter(api, alice, world):
    response = api(alice).get(BUILDS, {"since": "2026-13-45"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_failed"
    assert [p["path"] for p in response.json()["error"]["problems"]] == ["since"]
