"""The rollout pages: the plan before it starts, the live fragment, the one-click draft."""

from __future__ import annotations

import pytest

from builds.models import Rollout
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def planned(alice, web, data_dept, bob, carol):
    gold = factories.make_gold_image("ubuntu", actor=alice)
    factories.make_gold_version(gold, "1.0.0", actor=alice)
    factories.make_gold_version(gold, "1.1.0", actor=alice)
    factories.make_layer_version(factories.make_layer(web, gold, "api"), "1.0.0", accepts="^1")
    factories.make_layer_version(factories.make_layer(data_dept, gold, "etl"), "1.0.0", accepts="~1.0")
    return gold


def test_it_plans_a_rollout_and_shows_the_plan_before_it_starts(client, alice, planned):
    client.force_login(alice)
    response = client.post("/rollouts/new/", {"gold_image": "ubuntu", "version": "1.1.0", "canary": 1,
                                              "wave_size": 10, "max_failure_rate": 0.2})
    rollout = Rollout.objects.get()
    assert response.status_code == 302
    assert rollout.state == "planned"
    page = client.get(f"/rollouts/{rollout.uuid}/").content.decode()
    assert "web/api@1.0.0" in page
    assert "data/etl@1.0.0" in page
    assert "Prepare a draft on 1.1.0" in page
    assert "build-hours" in page


def test_an_editor_sees_only_their_entries_and_prepares_their_draft(client, alice, carol, planned):
    client.force_login(alice)
    client.post("/rollouts/new/", {"gold_image": "ubuntu", "version": "1.1.0", "canary": 1, "wave_size": 10,
                                   "max_failure_rate": 0.2})
    rollout = Rollout.objects.get()
    client.force_login(carol)
    page = client.get(f"/rollouts/{rollout.uuid}/", HTTP_HX_REQUEST="true").content.decode()
    assert "web/api" not in page
    assert "data/etl@1.0.0" in page
    item = rollout.items.get(kind="needs_action")
    response = client.post(f"/rollouts/{rollout.uuid}/items/{item.pk}/draft/")
    assert response.status_code == 302
    item.refresh_from_db()
    assert item.draft.version == "1.1.0"
    assert item.draft.accepts == "~1.0 || ^1"
