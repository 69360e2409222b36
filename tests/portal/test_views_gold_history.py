"""A gold image's full history: its versions with their people, and every recorded change."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from builds import services
from portal import audit
from tests import factories


@pytest.fixture
def image(alice):
    image = factories.make_gold_image("ubuntu", actor=alice)
    first = factories.make_gold_version(image, "1.0.0", actor=alice)
    factories.make_gold_version(image, "1.1.0", actor=alice)
    services.gold_version_deprecate(actor=alice, gold_version=first, reason="CVE-2026-1234 in the kernel")
    factories.make_gold_version(image, "2.0.0", actor=alice, publish=False)
    return image


URL = "/audit/gold/ubuntu/"


@pytest.mark.parametrize("persona, status", [
    ("dave", 200), ("alice", 200), ("bob", 403), ("erin", 403), ("sam", 403),
])
def test_it_is_for_auditors_and_the_security_team(request, client, image, persona, status):
    client.force_login(request.getfixturevalue(persona))
    assert client.get(URL).status_code == status


def test_an_unknown_image_is_404(client, dave):
    client.force_login(dave)
    assert client.get("/audit/gold/nope/").status_code == 404


def test_it_shows_every_version_and_change(client, dave, image, alice):
    other = factories.make_gold_image("windows", actor=alice)
    factories.make_gold_version(other, "9.9.9", actor=alice)
    client.force_login(dave)
    response = client.get(URL)
    page = response.content.decode()
    for version in ("1.0.0", "1.1.0", "2.0.0"):
        assert f">{version}</a>" in page
    assert "deprecated by alice" in page and "CVE-2026-1234" in page
    actions = [row.event.action for row in response.context["rows"]]
    assert actions[0] == "gold_version.create" and actions[-1] == "gold_image.create"
    assert actions.count("gold_version.publish") == 2 and "gold_version.deprecate" in actions
    assert "windows@9.9.9" not in page


def test_it_pages_long_histories(client, dave, image, alice):
    version = image.versions.get(version="2.0.0")
    for number in range(60):
        services.gold_version_update(actor=alice, gold_version=version, changelog=f"draft {number}")
    client.force_login(dave)
    first = client.get(URL).context["page"]
    assert len(first.events) == 50 and first.older
    rest = client.get(URL + f"?before={first.older}").context["page"]
    assert rest.events[-1].action == "gold_image.create"


def test_the_query_count_does_not_grow_with_versions_and_events(client, dave, image, alice):
    client.force_login(dave)
    client.get(URL)
    with CaptureQueriesContext(connection) as small:
        client.get(URL)
    for minor in range(2, 12):
        factories.make_gold_version(image, f"1.{minor}.0", actor=alice)
    audit.record("gold_image.update", actor=alice, obj=image, changes={"name": ["a", "b"]})
    with CaptureQueriesContext(connection) as large:
        client.get(URL)
    assert len(large) == len(small)
