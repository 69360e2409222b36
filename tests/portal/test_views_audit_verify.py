"""The verify page and checkpoint downloads: auditors only."""

from __future__ import annotations

import json

import pytest

from portal import audit
from portal.models import AuditCheckpoint, AuditEvent
from tests.support.audit import expect_one_event, tampered


@pytest.fixture
def trail(db):
    for number in range(5):
        audit.record("test.event", actor="system", label=f"event {number}")


@pytest.mark.parametrize("persona, status", [("dave", 200), ("alice", 403), ("bob", 403), ("erin", 403)])
def test_only_auditors_verify(request, client, trail, persona, status):
    client.force_login(request.getfixturevalue(persona))
    assert client.get("/audit/verify/").status_code == status
    assert client.post("/audit/verify/", {"scope": "all"}).status_code == status
    assert client.post("/audit/checkpoint/").status_code == status


def test_an_intact_trail_says_so(client, dave, trail):
    client.force_login(dave)
    page = client.post("/audit/verify/", {"scope": "all"}).content.decode()
    assert "Intact." in page and "5 events verified" in page


def test_a_tampered_trail_names_the_first_bad_event(client, dave, trail):
    client.force_login(dave)
    with tampered():
        AuditEvent.objects.filter(id=3).update(actor_name="mallory")
        page = client.post("/audit/verify/", {"scope": "all"}).content.decode()
    assert "Tampered." in page and "#3" in page


def test_a_checkpoint_is_recorded_audited_and_downloaded(client, dave, trail, tmp_path):
    client.force_login(dave)
    with expect_one_event("audit.checkpoint", actor=dave):
        response = client.post("/audit/checkpoint/")
    assert response["Content-Disposition"].startswith('attachment; filename="goldsmith-audit-checkpoint-5.json"')
    document = json.loads(response.content)
    assert document["last_event_id"] == 5 and document["head_hash"] == AuditEvent.objects.get(id=5).hash
    assert AuditCheckpoint.objects.get().last_event_id == 5
    path = tmp_path / "cp.json"
    path.write_bytes(response.content)
    from django.core.management import call_command

    call_command("verifyaudit", "--checkpoint", str(path))


def test_verifying_from_the_last_checkpoint_walks_only_what_came_after(client, dave, trail):
    audit.checkpoint_create()
    audit.record("test.event", actor="system")
    client.force_login(dave)
    page = client.post("/audit/verify/", {"scope": "since-checkpoint"}).content.decode()
    assert "Intact." in page and "2 events verified (#6 to #7)" in page
