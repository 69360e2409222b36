"""builds.selectors for gold images and layers (the catalog pages and the API read them):
what each list and detail holds, for whom, and in which order."""

import pytest
from django.http import Http404

from builds import selectors
from tests import factories
from tests.support import build_rows


@pytest.fixture
def world(alice, bob, carol, web, data_dept):
    ubuntu = factories.make_gold_image("ubuntu", actor=alice)
    debian = factories.make_gold_image("debian", actor=alice)
    u1 = factories.make_gold_version(ubuntu, "1.0.0", actor=alice)
    u2 = factories.make_gold_version(ubuntu, "1.10.0", actor=alice)
    draft = factories.make_gold_version(ubuntu, "2.0.0", actor=alice, publish=False)
    nginx = factories.make_layer(web, ubuntu, "nginx", actor=bob)
    n1 = factories.make_layer_version(nginx, "1.0.0", actor=bob)
    n2 = factories.make_layer_version(nginx, "1.2.0", actor=bob, publish=False)
    sql = factories.make_layer(data_dept, debian, "sql", actor=carol)
    build_rows.succeeded(u1, [n1], requested_by=bob)
    build_rows.succeeded(u1, requested_by=alice)
    return {"ubuntu": ubuntu, "debian": debian, "u1": u1, "u2": u2, "draft": draft, "nginx": nginx, "n1": n1,
            "n2": n2, "sql": sql}


def versions(obj) -> list[str]:
    return [v.version for v in obj.visible_versions]


def test_the_gold_list_is_by_slug_with_visible_versions_newest_first(alice, bob, world):
    images = list(selectors.gold_image_list(alice))
    assert [i.slug for i in images] == ["debian", "ubuntu"]
    assert versions(images[1]) == ["2.0.0", "1.10.0", "1.0.0"]
    assert images[1].layer_count == 1
    [ubuntu] = selectors.gold_image_list(bob)  # editors: nothing unpublished
    assert versions(ubuntu) == ["1.10.0", "1.0.0"]


def test_a_gold_image_counts_only_the_builds_the_user_may_see(alice, bob, carol, world):
    assert {v.version: v.build_count for v in selectors.gold_image_detail(alice, "ubuntu").visible_versions} == \
        {"2.0.0": 0, "1.10.0": 0, "1.0.0": 2}
    assert selectors.gold_image_detail(bob, "ubuntu").visible_versions[-1].build_count == 1
    assert selectors.gold_image_detail(carol, "ubuntu").visible_versions[-1].build_count == 0


def test_a_gold_image_nobody_may_see_is_404(alice, world):
    with pytest.raises(Http404):
        selectors.gold_image_detail(alice, "fedora")


def test_newest_published_ignores_drafts_and_compares_versions_as_numbers(world):
    assert selectors.newest_published([world["u1"], world["u2"], world["draft"]]) == world["u2"]
    assert selectors.newest_published([world["draft"]]) is None


def test_the_layer_list_is_by_department_then_slug_and_filters(alice, bob, dave, world):
    assert [(layer.department.slug, layer.slug) for layer in selectors.layer_list(dave)] == [("data", "sql"),
                                                                                            ("web", "nginx")]
    assert [layer.slug for layer in selectors.layer_list(bob)] == ["nginx"]
    assert [layer.slug for layer in selectors.layer_list(alice, department="data")] == ["sql"]
    assert [layer.slug for layer in selectors.layer_list(alice, gold_image="ubuntu")] == ["nginx"]
    assert versions(selectors.layer_list(alice, department="web")[0]) == ["1.2.0", "1.0.0"]


def test_a_layer_has_its_versions_newest_first_with_build_counts(bob, carol, world):
    layer = selectors.layer_detail(bob, "web", "nginx")
    assert [(v.version, v.build_count) for v in layer.visible_versions] == [("1.2.0", 0), ("1.0.0", 1)]
    with pytest.raises(Http404):
        selectors.layer_detail(carol, "web", "nginx")


def test_outdated_layers_says_which_layers_were_last_built_on_an_older_gold(bob, web, world):
    [row] = selectors.outdated_layers(bob, [web.pk])
    assert row["layer"] == world["nginx"]
    assert row["latest"] == world["n2"]
    assert row["built_on"] == world["u1"]
    assert row["newest_gold"] == world["u2"]
    assert row["out_of_date"] is True


def test_a_layer_never_built_is_not_out_of_date(carol, data_dept, world):
    [row] = selectors.outdated_layers(carol, [data_dept.pk])
    assert row["built_on"] is None
    assert row["out_of_date"] is False


def test_an_out_of_date_layer_is_told_to_rebuild_or_to_accept_the_newest_gold(alice, bob, web, world):
    [row] = selectors.outdated_layers(bob, [web.pk])
    assert row["accepts_newest"] is True and row["rebuild_with"] == world["n1"]  # ^1 accepts 1.10.0
    narrow = factories.make_layer(web, world["ubuntu"], "narrow", actor=bob)
    n = factories.make_layer_version(narrow, "1.0.0", actor=bob, accepts="~1.0")
    build_rows.succeeded(world["u1"], [n], requested_by=bob)
    row = next(r for r in selectors.outdated_layers(bob, [web.pk]) if r["layer"] == narrow)
    assert row["out_of_date"] is True and row["accepts_newest"] is False and row["rebuild_with"] is None


def test_failed_and_canceled_builds_do_not_make_a_layer_out_of_date(bob, carol, data_dept, world):
    sql = factories.make_layer_version(world["sql"], "1.0.0", actor=carol)
    debian_old = factories.make_gold_version(world["debian"], "1.0.0")
    factories.make_gold_version(world["debian"], "1.1.0")
    build_rows.failed(debian_old, [sql], requested_by=carol)
    build_rows.make_build(debian_old, [sql], requested_by=carol, state="canceled")
    [row] = selectors.outdated_layers(carol, [data_dept.pk])
    assert row["built_on"] is None and row["out_of_date"] is False
