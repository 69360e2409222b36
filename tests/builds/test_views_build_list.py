"""The builds list: filters, sorting, pagination and a query count that does not grow."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from builds.models import Build
from tests import factories
from tests.support import build_rows

URL = "/builds/"


@pytest.fixture
def setup(alice, bob, carol, web, data_dept):
    ubuntu = factories.make_gold_image("ubuntu", actor=alice)
    windows = factories.make_gold_image("windows", actor=alice, os_type="Linux")
    u1 = factories.make_gold_version(ubuntu, "1.0.0", actor=alice)
    w1 = factories.make_gold_version(windows, "1.0.0", actor=alice)
    web_layer = factories.make_layer_version(factories.make_layer(web, ubuntu, "nginx", actor=bob), actor=bob)
    data_layer = factories.make_layer_version(factories.make_layer(data_dept, windows, "sql", actor=carol),
                                              actor=carol)
    return {"u1": u1, "w1": w1, "web_layer": web_layer, "data_layer": data_layer}


def test_url_name_matches():
    assert reverse("builds:build-list") == URL


def test_editors_see_their_departments_builds_and_security_all(client, alice, bob, carol, setup):
    mine = build_rows.succeeded(setup["u1"], [setup["web_layer"]], requested_by=bob)
    theirs = build_rows.failed(setup["w1"], [setup["data_layer"]], requested_by=carol)
    client.force_login(bob)
    page = client.get(URL).content.decode()
    assert str(mine.uuid)[:8] in page and str(theirs.uuid)[:8] not in page
    client.force_login(alice)
    page = client.get(URL).content.decode()
    assert str(mine.uuid)[:8] in page and str(theirs.uuid)[:8] in page


@pytest.mark.parametrize("query, expected", [
    ({"state": "failed"}, {"failed"}),
    ({"state": "active"}, {"running"}),
    ({"department": "data"}, {"failed"}),
    ({"gold": "ubuntu"}, {"succeeded", "running"}),
    ({"requester": "CAROL"}, {"failed"}),
])
def test_it_filters(client, alice, bob, carol, setup, query, expected):
    build_rows.succeeded(setup["u1"], [setup["web_layer"]], requested_by=bob)
    build_rows.running(setup["u1"], [setup["web_layer"]], requested_by=bob)
    build_rows.failed(setup["w1"], [setup["data_layer"]], requested_by=carol)
    client.force_login(alice)
    response = client.get(URL, query)
    states = {build.state for build in response.context["page"].object_list}
    assert states == expected


def test_it_filters_by_date_in_the_users_zone(client, alice, bob, setup):
    old = build_rows.succeeded(setup["u1"], requested_by=bob, started=timezone.now() - dt.timedelta(days=10))
    new = build_rows.succeeded(setup["u1"], requested_by=bob)
    client.force_login(alice)
    today = timezone.localdate()
    listed = client.get(URL, {"since": (today - dt.timedelta(days=1)).isoformat()}).context["page"].object_list
    assert [b.pk for b in listed] == [new.pk]
    listed = client.get(URL, {"until": (today - dt.timedelta(days=5)).isoformat()}).context["page"].object_list
    assert [b.pk for b in listed] == [old.pk]


def test_it_shows_form_errors_next_to_the_field(client, alice, setup):
    client.force_login(alice)
    page = client.get(URL, {"since": "2026-05-02", "until": "2026-05-01"}).content.decode()
    assert "The end date is before the start date." in page
    page = client.get(URL, {"since": "not a date"}).content.decode()
    assert "Enter a valid date." in page


def test_it_sorts_by_a_column_both_ways(client, alice, bob, carol, setup):
    build_rows.succeeded(setup["u1"], requested_by=bob)
    build_rows.failed(setup["w1"], [setup["data_layer"]], requested_by=carol)
    client.force_login(alice)
    ascending = [b.requested_by.username for b in client.get(URL, {"sort": "requester"}).context["page"]]
    descending = [b.requested_by.username for b in client.get(URL, {"sort": "-requester"}).context["page"]]
    assert ascending == ["bob", "carol"] and descending == ["carol", "bob"]
    page = client.get(URL, {"sort": "-requester"}).content.decode()
    assert 'aria-sort="descending"' in page
    assert client.get(URL, {"sort": "password"}).status_code == 200  # unknown keys fall back


def test_it_paginates_and_keeps_the_filters(client, alice, bob, setup):
    for _ in range(27):
        build_rows.make_build(setup["u1"], requested_by=bob)
    client.force_login(alice)
    response = client.get(URL, {"state": "pending"})
    assert len(response.context["page"].object_list) == 25
    assert "state=pending&amp;page=2" in response.content.decode()
    assert len(client.get(URL, {"state": "pending", "page": 2}).context["page"].object_list) == 2


def test_the_empty_list_says_what_to_do(client, bob, setup):
    client.force_login(bob)
    assert "Open one of your layer versions" in client.get(URL).content.decode()
    assert "Clear the filters" in client.get(URL, {"state": "failed"}).content.decode()


def test_the_query_count_does_not_grow_with_the_number_of_builds(client, alice, bob, setup,
                                                                 django_assert_max_num_queries):
    build_rows.succeeded(setup["u1"], [setup["web_layer"]], requested_by=bob)
    client.force_login(alice)
    client.get(URL)  # warm the session and the user
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as few:
        client.get(URL)
    for _ in range(20):
        build_rows.succeeded(setup["u1"], [setup["web_layer"]], requested_by=bob)
    with django_assert_max_num_queries(len(few)):
        response = client.get(URL)
    assert len(response.context["page"].object_list) == 21
    assert Build.objects.count() == 21


def test_a_bad_filter_value_is_said_and_nothing_is_filtered(client, alice, bob, setup):
    build_rows.succeeded(setup["u1"], requested_by=bob)
    client.force_login(alice)
    response = client.get(URL, {"since": "2026-13-45", "state": "failed"})
    page = response.content.decode()
    assert "These filters are not valid, so the list is not filtered" in page
    assert "Enter a valid date." in page
    assert len(response.context["page"].object_list) == 1
