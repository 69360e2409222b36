"""Catalog services: immutability of published versions, status changes, one audit event each."""

import pytest

from builds import services
from builds.models import GoldImageVersion, LayerVersion
from portal.models import AuditEvent
from tests import factories


def actions():
    return list(AuditEvent.objects.order_by("id").values_list("action", flat=True))


@pytest.mark.django_db
def test_a_published_gold_version_refuses_every_change(alice):
    gold_version = factories.make_gold_version(actor=alice)
    for field_name, value in [("customize_before", []), ("source", {}), ("identity", ""), ("tags", {"x": "y"}),
                              ("distribute", []), ("vm_profile", {"vmSize": "Standard_D64s_v5"})]:
        with pytest.raises(services.ImmutableVersion, match="create a new version"):
            services.gold_version_update(actor=alice, gold_version=gold_version, **{field_name: value})
    gold_version.refresh_from_db()
    assert gold_version.customize_before and gold_version.identity
    assert "gold_version.update" not in actions()


@pytest.mark.django_db
def test_a_published_layer_version_refuses_every_change(bob, web):
    gold_version = factories.make_gold_version()
    layer_version = factories.make_layer_version(factories.make_layer(web, gold_version.gold_image, actor=bob), actor=bob)
    with pytest.raises(services.ImmutableVersion):
        services.layer_version_update(actor=bob, layer_version=layer_version, customize=[])
    with pytest.raises(services.ImmutableVersion):
        services.layer_version_publish(actor=bob, layer_version=layer_version)
    layer_version.refresh_from_db()
    assert layer_version.customize


@pytest.mark.django_db
def test_a_draft_changes_and_records_what_changed(alice):
    gold_version = factories.make_gold_version(actor=alice, publish=False)
    services.gold_version_update(actor=alice, gold_version=gold_version, build_timeout_minutes=120, tags={"a": "b"})
    event = AuditEvent.objects.order_by("-id").first()
    assert event.action == "gold_version.update"
    assert event.changes == {"build_timeout_minutes": [None, 120], "tags": [{}, {"a": "b"}]}
    assert event.actor_name == "alice"
    assert event.object_id == str(gold_version.uuid)


@pytest.mark.django_db
def test_a_new_version_copies_the_one_it_is_based_on(alice):
    first = factories.make_gold_version(actor=alice)
    second = services.gold_version_create(actor=alice, gold_image=first.gold_image, version="1.1.0", based_on=first,
                                          build_timeout_minutes=60)
    assert second.is_draft
    assert second.customize_before == first.customize_before
    assert second.build_timeout_minutes == 60
    assert first.build_timeout_minutes is None


@pytest.mark.django_db
def test_publishing_refuses_a_baseline_with_schema_errors(alice):
    gold_version = factories.make_gold_version(actor=alice, publish=False, identity="",
                                               customize_before=[{"type": "Shell", "name": "x"}])
    with pytest.raises(services.ServiceError) as caught:
        services.gold_version_publish(actor=alice, gold_version=gold_version, lookups=False)
    assert {(p.rule, p.path) for p in caught.value.problems} == {
        ("schema.missing-field", "identity"), ("schema.script-source", "properties.customize[0].inline")}
    gold_version.refresh_from_db()
    assert gold_version.is_draft


@pytest.mark.django_db
def test_deprecate_then_revoke_need_reasons_and_follow_the_lifecycle(alice):
    gold_version = factories.make_gold_version(actor=alice)
    with pytest.raises(services.ServiceError, match="reason"):
        services.gold_version_deprecate(actor=alice, gold_version=gold_version, reason=" ")
    services.gold_version_deprecate(actor=alice, gold_version=gold_version, reason="newer kernel in 1.1.0")
    services.gold_version_revoke(actor=alice, gold_version=gold_version, reason="CVE-2026-0001")
    gold_version.refresh_from_db()
    assert gold_version.status == GoldImageVersion.Status.REVOKED
    assert gold_version.revoked_by == alice and gold_version.deprecated_by == alice
    with pytest.raises(services.ServiceError, match="cannot become deprecated"):
        services.gold_version_deprecate(actor=alice, gold_version=gold_version, reason="again")
    assert actions()[-2:] == ["gold_version.deprecate", "gold_version.revoke"]


@pytest.mark.django_db
def test_a_draft_cannot_be_deprecated_or_revoked(alice):
    gold_version = factories.make_gold_version(actor=alice, publish=False)
    with pytest.raises(services.ServiceError):
        services.gold_version_revoke(actor=alice, gold_version=gold_version, reason="x")


@pytest.mark.django_db
def test_version_numbers_are_semantic_and_unique(alice):
    gold_version = factories.make_gold_version(actor=alice)
    with pytest.raises(services.ServiceError, match=r"already has a version 1\.0\.0"):
        services.gold_version_create(actor=alice, gold_image=gold_version.gold_image, version="1.0.0")
    with pytest.raises(services.ServiceError, match=r"MAJOR\.MINOR\.PATCH"):
        services.gold_version_create(actor=alice, gold_image=gold_version.gold_image, version="1.1")


@pytest.mark.django_db
def test_a_version_below_the_newest_is_created_with_a_warning(alice, bob, web):
    gold_version = factories.make_gold_version(actor=alice)
    older = services.gold_version_create(actor=alice, gold_image=gold_version.gold_image, version="0.9.0")
    assert older.is_draft
    assert [(p.rule, p.path, p.severity) for p in older.warnings] == [("version.below-newest", "version", "warning")]
    assert "0.9.0 is below 1.0.0" in older.warnings[0].message
    newer = services.gold_version_create(actor=alice, gold_image=gold_version.gold_image, version="1.1.0")
    assert newer.warnings == []

    layer = factories.make_layer(web, gold_version.gold_image, actor=bob)
    assert services.layer_version_create(actor=bob, layer=layer, version="1.0.0").warnings == []
    older_layer = services.layer_version_create(actor=bob, layer=layer, version="0.1.0")
    assert [p.rule for p in older_layer.warnings] == ["version.below-newest"]
    assert LayerVersion.objects.filter(layer=layer).count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize("gold_versions, accepts", [
    ([("1.0.0", True), ("1.4.2", True), ("2.0.0", False)], "^1"),  # the newest published, not the draft
    ([("0.3.0", True)], "^0"),
    ([("2.0.0", False)], "^2"),  # nothing published yet: the newest there is
    ([], "*"),
])
def test_a_new_layer_accepts_the_current_major_gold_version(bob, web, gold_versions, accepts):
    image = factories.make_gold_image()
    for version, publish in gold_versions:
        factories.make_gold_version(image, version, publish=publish)
    layer = factories.make_layer(web, image, actor=bob)
    first = services.layer_version_create(actor=bob, layer=layer, version="1.0.0")
    assert first.accepts == accepts
    assert services.layer_version_create(actor=bob, layer=layer, version="1.1.0", based_on=first).accepts == accepts
    assert services.layer_version_create(actor=bob, layer=layer, version="1.2.0", accepts="*").accepts == "*"


@pytest.mark.django_db
def test_layer_versions_need_a_valid_accepted_range(bob, web):
    layer = factories.make_layer(web, factories.make_gold_version().gold_image, actor=bob)
    with pytest.raises(services.ServiceError, match="not a version or range"):
        services.layer_version_create(actor=bob, layer=layer, version="1.0.0", accepts="latest please")
    assert not LayerVersion.objects.exists()


@pytest.mark.django_db
def test_layer_publish_checks_steps_against_the_gold_images_os(bob, web):
    layer = factories.make_layer(web, factories.make_gold_version().gold_image, actor=bob)
    layer_version = factories.make_layer_version(layer, publish=False, customize=[
        {"type": "PowerShell", "name": "win", "inline": ["Get-Date"]}])
    with pytest.raises(services.ServiceError) as caught:
        services.layer_version_publish(actor=bob, layer_version=layer_version)
    assert [(p.rule, p.path) for p in caught.value.problems] == [("schema.os-mismatch", "customize[0].type")]


@pytest.mark.django_db
def test_every_catalog_change_writes_exactly_one_event(alice, bob, web):
    image = factories.make_gold_image(actor=alice)
    gold_version = services.gold_version_create(actor=alice, gold_image=image, version="1.0.0",
                                                **factories.linux_content())
    services.gold_version_update(actor=alice, gold_version=gold_version, tags={"t": "1"})
    services.gold_version_publish(actor=alice, gold_version=gold_version, lookups=False)
    layer = services.layer_create(actor=bob, department=web, gold_image=image, slug="app", name="App")
    layer_version = services.layer_version_create(actor=bob, layer=layer, version="0.1.0",
                                                  customize=[{"type": "Shell", "name": "a", "inline": ["true"]}])
    services.layer_version_update(actor=bob, layer_version=layer_version, accepts="^1.0")
    services.layer_version_publish(actor=bob, layer_version=layer_version)
    assert actions() == ["gold_image.create", "gold_version.create", "gold_version.update", "gold_version.publish",
                         "layer.create", "layer_version.create", "layer_version.update", "layer_version.publish"]
    layer_events = AuditEvent.objects.filter(action__startswith="layer")
    assert set(layer_events.values_list("department_id", flat=True)) == {web.pk}


@pytest.mark.django_db
@pytest.mark.parametrize(("status", "publish", "deprecate", "revoke"), [
    ("draft", True, False, False),
    ("published", False, True, True),
    ("deprecated", False, False, True),
    ("revoked", False, False, False),
])
def test_which_status_changes_a_version_allows(status, publish, deprecate, revoke):
    from builds.models import GoldImageVersion

    version = GoldImageVersion(status=status)
    assert (version.can_publish, version.can_deprecate, version.can_revoke) == (publish, deprecate, revoke)
