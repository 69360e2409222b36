"""builds.selectors.build_list: who sees which builds, every filter, the sort and its ties,
and the layers prefetched once (the builds page and GET /api/v1/builds/ both read it)."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from builds import selectors
from builds.models import Build
from builds.selectors import BuildFilters
from tests import factories
from tests.support import build_rows


@pytest.fixture
def world(alice, bob, carol, web, data_dept):
    ubuntu = factories.make_gold_image("ubuntu", actor=alice)
    windows = factories.make_gold_image("windows", actor=alice)
    u1 = factories.make_gold_version(ubuntu, "1.0.0", actor=alice)
    w1 = factories.make_gold_version(windows, "1.0.0", actor=alice)
    nginx = factories.make_layer_version(factories.make_layer(web, ubuntu, "nginx", actor=bob), actor=bob)
    sql = factories.make_layer_version(factories.make_layer(data_dept, windows, "sql", actor=carol), actor=carol)
    old = build_rows.succeeded(u1, [nginx], requested_by=bob, started=timezone.now() - dt.timedelta(days=10))
    running = build_rows.running(u1, [nginx], requested_by=bob)
    failed = build_rows.failed(w1, [sql], requested_by=carol)
    return {"old": old, "running": running, "failed": failed}


def listed(user, **filters) -> list[Build]:
    return list(selectors.build_list(user, BuildFilters(**filters)))


def test_it_lists_only_what_the_user_may_see_newest_first(alice, bob, dave, world):
    assert listed(alice) == [world["failed"], world["running"], world["old"]]
    assert listed(dave) == [world["failed"], world["running"], world["old"]]
    assert listed(bob) == [world["running"], world["old"]]


@pytest.mark.parametrize(("filters", "expected"), [
    ({"state": "active"}, {"running"}),
    ({"state": "failed"}, {"failed"}),
    ({"department": "data"}, {"failed"}),
    ({"gold_image": "ubuntu"}, {"old", "running"}),
    ({"requested_by": " CAROL "}, {"failed"}),
    ({"state": "succeeded", "department": "data"}, set()),
])
def test_it_applies_each_filter(alice, world, filters, expected):
    assert set(listed(alice, **filters)) == {world[name] for name in expected}


def test_since_includes_and_until_excludes_its_instant(alice, world):
    at = world["old"].created_at
    assert world["old"] in listed(alice, since=at)
    assert world["old"] not in listed(alice, until=at)
    assert listed(alice, until=at + dt.timedelta(microseconds=1)) == [world["old"]]


def test_a_day_range_covers_whole_days_in_the_current_zone(alice, world):
    day = timezone.localdate(world["old"].created_at)
    assert listed(alice, **BuildFilters.day_range(day, day)) == [world["old"]]
    assert listed(alice, **BuildFilters.day_range(day + dt.timedelta(days=1), None)) == [world["failed"],
                                                                                          world["running"]]


def test_it_sorts_both_ways_with_ties_broken_by_id_in_the_same_direction(alice, world):
    ascending = listed(alice, sort="requester")
    assert [b.requested_by.username for b in ascending] == ["bob", "bob", "carol"]
    assert ascending[0].pk < ascending[1].pk
    assert listed(alice, sort="-requester") == ascending[::-1]


def test_an_unknown_sort_is_newest_first(alice, world):
    filters = BuildFilters(sort="-password")
    assert filters.sort_key == "created"
    assert filters.descending
    assert listed(alice, sort="password") == listed(alice)


def test_layers_come_in_one_query_whatever_the_number_of_builds(alice, world):
    with CaptureQueriesContext(connection) as queries:
        layers = [[str(bl.layer_version) for bl in build.build_layers.all()] for build in listed(alice)]
    assert layers[0] == [str(world["failed"].build_layers.get().layer_version)]
    assert len(queries) <= 3  # the roles, the builds, their layers
