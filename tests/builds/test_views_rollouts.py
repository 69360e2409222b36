"""The rollout pages: the plan before it starts, the live fragment, the one-click draft."""

from __future__ import annotations

import pytest

from builds import rollouts
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
    page = client.get(f"/rollouts/{rollout.uuid}/").content.decode()
    assert '<a href="/layers/data/etl/v/1.1.0/">data/etl@1.1.0</a> (draft)' in page  # her draft, one click away


def test_the_gold_version_page_links_the_rollout_plan_and_the_form_is_filled_in(client, alice, planned):
    client.force_login(alice)
    page = client.get("/gold/ubuntu/v/1.1.0/").content.decode()
    assert '<a class="button secondary" href="/rollouts/?gold_image=ubuntu&amp;version=1.1.0">Plan a rollout…</a>' in page
    form = client.get("/rollouts/?gold_image=ubuntu&version=1.1.0").content.decode()
    assert 'name="gold_image" value="ubuntu"' in form
    assert 'name="version" value="1.1.0"' in form


@pytest.mark.parametrize("persona, shown", [
    ("alice", True), ("bob", True), ("dave", True), ("erin", False), ("sam", False)])
def test_the_navigation_links_the_rollouts_for_the_roles_that_see_them(client, request, persona, shown):
    client.force_login(request.getfixturevalue(persona))
    page = client.get("/", follow=True).content.decode()
    nav = page.split('<nav aria-label="Main">')[1].split("</nav>")[0]
    assert ('<a href="/rollouts/">Rollouts</a>' in nav) is shown


@pytest.mark.parametrize("state, shown, hidden", [
    ("running", ["Pause", "Cancel"], ["Resume", "Start"]),
    ("stopped", ["Resume", "Cancel"], ["Pause", "Start"]),
    ("succeeded", [], ["Resume", "Pause", "Cancel", "Start"]),
])
def test_the_live_fragment_carries_the_actions_of_the_current_state(client, alice, planned, state, shown, hidden):
    """A rollout that stops by itself while its page is open must offer Resume in the fragment
    the page swaps in, without a reload."""
    gold_version = planned.versions.get(version="1.1.0")
    rollout = rollouts.rollout_create(actor=alice, gold_version=gold_version)
    Rollout.objects.filter(pk=rollout.pk).update(state=state)
    client.force_login(alice)
    fragment = client.get(f"/rollouts/{rollout.uuid}/", HTTP_HX_REQUEST="true").content.decode()
    assert fragment.startswith('<div id="rollout-live"')
    for name in shown:
        assert f'formaction="/rollouts/{rollout.uuid}/{name.lower()}/">{name}</button>' in fragment
    for name in hidden:
        assert f">{name}</button>" not in fragment


def test_an_editor_gets_the_fragment_without_actions(client, alice, bob, planned):
    rollout = rollouts.rollout_create(actor=alice, gold_version=planned.versions.get(version="1.1.0"))
    Rollout.objects.filter(pk=rollout.pk).update(state="stopped")
    client.force_login(bob)
    fragment = client.get(f"/rollouts/{rollout.uuid}/", HTTP_HX_REQUEST="true").content.decode()
    assert ">Resume</button>" not in fragment
    assert ">Cancel</button>" not in fragment
