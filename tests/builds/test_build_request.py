"""Requesting, rebuilding and cancelling builds (services), before any worker runs."""

import django_rq
import pytest

from builds import compose, jobs, services
from builds.models import Build
from portal.models import AuditEvent
from tests import factories


def queued_job_ids():
    return set(django_rq.get_queue("builds").job_ids)


@pytest.fixture
def clean_queue():
    from tests.support.workers import flush_redis

    flush_redis()
    yield
    flush_redis()


@pytest.fixture
def layered(web, bob):
    gold_version = factories.make_gold_version()
    layer = factories.make_layer(web, gold_version.gold_image, "app", actor=bob)
    return gold_version, factories.make_layer_version(layer, actor=bob, accepts="^1.0")


@pytest.mark.django_db(transaction=True)
def test_it_stores_the_composed_template_and_enqueues_the_submit_job(layered, bob, web, clean_queue, azure_emulator):
    gold_version, layer_version = layered
    build = services.build_request(actor=bob, gold_version=gold_version, layer_versions=[layer_version])
    assert build.state == Build.State.PENDING
    assert build.department == web
    assert build.template_sha256 == compose.template_sha256(build.template)
    assert build.template_name == compose.template_name(build.uuid, gold_version.gold_image.slug)
    assert build.template["tags"]["goldsmith.build"] == str(build.uuid)
    assert build.template["tags"]["goldsmith.requester"] == "bob"
    assert [bl.layer_version for bl in build.build_layers.all()] == [layer_version]
    assert list(build.events.values_list("to_state", flat=True)) == ["pending"]
    event = AuditEvent.objects.get(action="build.request")
    assert event.object_id == str(build.uuid) and event.department_id == web.pk
    assert queued_job_ids() == {jobs.submit_job_id(build)}


@pytest.mark.django_db(transaction=True)
def test_two_builds_of_one_version_get_their_own_staging_groups(bob, web, clean_queue, azure_emulator):
    gold_version = factories.make_gold_version(staging_resource_group=compose.goldsmith_named("corp-stg-"))
    first = services.build_request(actor=bob, gold_version=gold_version, department=web)
    second = services.build_request(actor=bob, gold_version=gold_version, department=web)
    groups = [build.template["properties"]["stagingResourceGroup"] for build in (first, second)]
    assert groups[0] != groups[1]
    for build, group in zip((first, second), groups, strict=True):
        assert group == compose.staging_group(gold_version.staging_resource_group, gold_slug=gold_version.gold_image.slug,
                                              subscription=build.subscription_id, build_id=build.uuid)
        assert group.endswith(f"/resourceGroups/corp-stg-{gold_version.gold_image.slug}-{build.uuid.hex}")


@pytest.mark.django_db
@pytest.mark.parametrize("case, rule", [
    ("revoked", "build.gold-status"),
    ("draft-gold", "build.gold-status"),
    ("draft-layer", "build.layer-status"),
    ("other-gold", "build.layer-gold-image"),
    ("out-of-range", "build.layer-range"),
])
def test_it_refuses_builds_that_cannot_be_built(case, rule, layered, bob, web, alice):
    gold_version, layer_version = layered
    if case == "revoked":
        services.gold_version_revoke(actor=alice, gold_version=gold_version, reason="CVE")
        gold_version.refresh_from_db()
    elif case == "draft-gold":
        gold_version = factories.make_gold_version(gold_version.gold_image, "1.1.0", publish=False)
    elif case == "draft-layer":
        layer_version = factories.make_layer_version(layer_version.layer, "1.1.0", publish=False)
    elif case == "other-gold":
        gold_version = factories.make_gold_version()
    elif case == "out-of-range":
        gold_version = factories.make_gold_version(gold_version.gold_image, "2.0.0")
    with pytest.raises(services.ServiceError) as caught:
        services.build_request(actor=bob, gold_version=gold_version, layer_versions=[layer_version])
    assert rule in {p.rule for p in caught.value.problems}
    assert not Build.objects.exists()
    assert not AuditEvent.objects.filter(action="build.request").exists()


@pytest.mark.django_db
def test_it_refuses_a_composed_template_that_fails_the_checks(web, bob, azure_emulator):
    gold_version = factories.make_gold_version()
    layer = factories.make_layer(web, gold_version.gold_image, "bad", actor=bob)
    # Published before the rule existed, say: the request-time check catches it anyway.
    layer_version = factories.make_layer_version(layer, actor=bob, publish=False)
    layer_version.customize = [{"type": "Shell", "name": "both", "inline": ["a"], "scriptUri": "https://x/s.sh"}]
    layer_version.status = "published"
    layer_version.save()
    with pytest.raises(services.ServiceError) as caught:
        services.build_request(actor=bob, gold_version=gold_version, layer_versions=[layer_version])
    assert ("schema.script-source", "properties.customize[1].scriptUri") in {
        (p.rule, p.path) for p in caught.value.problems}
    assert not Build.objects.exists()


@pytest.mark.django_db
def test_it_refuses_layers_of_two_departments(web, data_dept, bob):
    gold_version = factories.make_gold_version()
    ours = factories.make_layer_version(factories.make_layer(web, gold_version.gold_image, "a"))
    theirs = factories.make_layer_version(factories.make_layer(data_dept, gold_version.gold_image, "b"))
    with pytest.raises(services.ServiceError, match="department it is built for"):
        services.build_request(actor=bob, gold_version=gold_version, layer_versions=[ours, theirs])


@pytest.mark.django_db(transaction=True)
def test_a_rebuild_is_a_new_build_of_the_same_versions(layered, bob, clean_queue, azure_emulator):
    gold_version, layer_version = layered
    first = services.build_request(actor=bob, gold_version=gold_version, layer_versions=[layer_version])
    again = services.build_rebuild(actor=bob, build=first)
    assert again.pk != first.pk and again.rebuild_of == first
    assert again.template_name != first.template_name
    assert compose.without_provenance(again.template) == compose.without_provenance(first.template)


@pytest.mark.django_db(transaction=True)
def test_a_pending_build_is_canceled_without_reaching_azure(layered, bob, clean_queue, azure_emulator):
    gold_version, layer_version = layered
    build = services.build_request(actor=bob, gold_version=gold_version, layer_versions=[layer_version])
    build = services.build_cancel(actor=bob, build=build)
    assert build.state == Build.State.CANCELED
    assert list(AuditEvent.objects.filter(object_id=str(build.uuid)).values_list("action", flat=True)) == [
        "build.request", "build.cancel"]  # the cancel records the change of state itself
    with pytest.raises(services.ServiceError, match="already"):
        services.build_cancel(actor=bob, build=build)
