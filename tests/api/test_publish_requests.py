"""The four-eyes API: bob asks, grace approves; the author is refused; changed content is a 409."""

from __future__ import annotations

import pytest

from builds import services
from builds.models import LayerVersion, PublishRequest
from tests.api.conftest import client_with, token_of

pytestmark = pytest.mark.django_db


def test_bob_requests_and_grace_approves_a_layer_version(bob, grace, world, azure_emulator):
    as_bob, as_grace = client_with(token_of(bob)), client_with(token_of(grace))
    response = as_bob.post("/api/v1/publish-requests/", {"layer": "web/nginx", "version": "1.1.0"}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["state"], body["kind"], body["target"], body["author"]) == ("pending", "layer", "web/nginx@1.1.0",
                                                                             "bob")
    assert response["Location"] == body["url"]

    refused = as_bob.post(f"/api/v1/publish-requests/{body['id']}/approve/", {}, format="json")
    assert refused.status_code == 403
    assert "four eyes" in refused.json()["error"]["message"]

    approved = as_grace.post(f"/api/v1/publish-requests/{body['id']}/approve/", {"comment": "ok"}, format="json")
    assert approved.status_code == 200
    assert approved.json()["state"] == "approved"
    assert approved.json()["decisions"][0]["approver"] == "grace"
    assert LayerVersion.objects.get(pk=world.web_draft.pk).status == "published"


def test_content_changed_after_the_request_is_a_conflict(bob, grace, world, azure_emulator):
    as_bob = client_with(token_of(bob))
    made = as_bob.post("/api/v1/publish-requests/", {"layer": "web/nginx", "version": "1.1.0"}, format="json").json()
    services.layer_version_update(actor=bob, layer_version=world.web_draft, tags={"late": "change"})
    response = client_with(token_of(grace)).post(f"/api/v1/publish-requests/{made['id']}/approve/", {},
                                                 format="json")
    assert response.status_code == 409
    assert PublishRequest.objects.get(uuid=made["id"]).state == "superseded"


def test_the_queue_filter_lists_what_waits_for_me(alice, bob, grace, world, azure_emulator):
    client_with(token_of(bob)).post("/api/v1/publish-requests/", {"layer": "web/nginx", "version": "1.1.0"},
                                    format="json")
    mine = client_with(token_of(grace)).get("/api/v1/publish-requests/?waiting_for_me=true").json()["results"]
    assert [item["target"] for item in mine] == ["web/nginx@1.1.0"]
    assert client_with(token_of(bob)).get("/api/v1/publish-requests/?waiting_for_me=true").json()["results"] == []
