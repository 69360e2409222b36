"""One event's page, addressed by its hash."""

from __future__ import annotations

import pytest

from portal import audit


@pytest.fixture
def events(db):
    return [audit.record("test.event", actor="system", label=f"event {number}",
                         changes={"n": [number - 1, number]}) for number in range(3)]


def test_it_shows_the_event_and_its_neighbours(client, dave, events):
    client.force_login(dave)
    page = client.get(f"/audit/events/{events[1].hash}/").content.decode()
    assert events[1].prev_hash in page and events[1].hash in page
    assert f"/audit/events/{events[0].hash}/" in page and f"/audit/events/{events[2].hash}/" in page
    assert "event 1" in page


@pytest.mark.parametrize("persona, status", [("dave", 200), ("alice", 200), ("bob", 403), ("erin", 403)])
def test_it_is_for_auditors_and_the_security_team(request, client, events, persona, status):
    client.force_login(request.getfixturevalue(persona))
    assert client.get(f"/audit/events/{events[0].hash}/").status_code == status


def test_an_unknown_hash_is_404(client, dave, events):
    client.force_login(dave)
    assert client.get("/audit/events/" + "f" * 64 + "/").status_code == 404
    assert client.get("/audit/events/nonsense/").status_code == 404
