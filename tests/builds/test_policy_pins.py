"""A policy that fixes a value fills it where the template leaves the setting empty
(compose.apply_pins); a template that sets a different value is still refused.

| rule | template leaves it empty | template sets another value |
| --- | --- | --- |
| on_customizer_error / on_validation_error | filled | refused (policy.error-handling) |
| vm_boot_optimization | optimize.vmBoot.state filled | refused (policy.vm-boot) |
| required_managed_resource_tags "name=value" | the tag filled | refused (policy.managed-resource-tag) |
| required_managed_resource_tags "name" | nothing to fill | refused when missing |
| staging_resource_group "named" | the Goldsmith-named group | kept (prefix rule checks it) |
| allowed_storage_account_types, exactly one | filled per target region | refused |
| gallery_versioning | versioning.scheme filled | refused (policy.versioning) |
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from builds import approvals, compose, policies, services, validation
from builds.validation import PolicyRules
from tests import factories

GALLERY_IMAGE = "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/galleries/gal/images/img"
STAGING = "/subscriptions/s/resourceGroups/goldsmith-staging-x-<build-id>"


def template(**props) -> dict:
    target = {"type": "SharedImage", "runOutputName": "out", "galleryImageId": GALLERY_IMAGE,
              "targetRegions": [{"name": "eastus", "replicaCount": 1}]}
    return {"location": "eastus", "properties": {"source": {"type": "PlatformImage"}, "distribute": [target], **props}}


def region(**values) -> dict:
    return {"name": "eastus", "replicaCount": 1, **values}


@pytest.mark.parametrize("rules, props, expected_props, filled", [
    # Nothing pinned: the template is left as it is.
    ({}, {}, {}, []),
    ({"on_customizer_error": "abort"}, {},
     {"errorHandling": {"onCustomizerError": "abort"}}, ["properties.errorHandling.onCustomizerError"]),
    ({"on_customizer_error": "abort", "on_validation_error": "abort"}, {"errorHandling": {"onValidationError": ""}},
     {"errorHandling": {"onCustomizerError": "abort", "onValidationError": "abort"}},
     ["properties.errorHandling.onCustomizerError", "properties.errorHandling.onValidationError"]),
    # A value the template sets is never replaced: the policy check refuses a different one.
    ({"on_customizer_error": "abort"}, {"errorHandling": {"onCustomizerError": "cleanup"}},
     {"errorHandling": {"onCustomizerError": "cleanup"}}, []),
    ({"vm_boot_optimization": "Enabled"}, {},
     {"optimize": {"vmBoot": {"state": "Enabled"}}}, ["properties.optimize.vmBoot.state"]),
    ({"vm_boot_optimization": "Enabled"}, {"optimize": {"vmBoot": {"state": "Disabled"}}},
     {"optimize": {"vmBoot": {"state": "Disabled"}}}, []),
    ({"required_managed_resource_tags": ["owner=security", "costcenter"]}, {"managedResourceTags": {"env": "prod"}},
     {"managedResourceTags": {"env": "prod", "owner": "security"}}, ["properties.managedResourceTags.owner"]),
    ({"required_managed_resource_tags": ["owner=security"]}, {"managedResourceTags": {"owner": "web"}},
     {"managedResourceTags": {"owner": "web"}}, []),
    # "name" alone asks for any value: there is nothing to fill.
    ({"required_managed_resource_tags": ["costcenter"]}, {}, {}, []),
    ({"staging_resource_group": "named"}, {}, {"stagingResourceGroup": STAGING}, ["properties.stagingResourceGroup"]),
    ({"staging_resource_group": "named"}, {"stagingResourceGroup": "/subscriptions/s/resourceGroups/mine"},
     {"stagingResourceGroup": "/subscriptions/s/resourceGroups/mine"}, []),
    ({"staging_resource_group": "azure"}, {}, {}, []),
])
def test_apply_pins_fills_only_what_the_template_leaves_empty(rules, props, expected_props, filled):
    body = template(**props)
    before = compose.canonical_json(body)
    pinned, paths = compose.apply_pins(body, PolicyRules.from_json(rules), staging_group=STAGING)
    assert pinned == template(**expected_props)
    assert paths == filled
    assert compose.canonical_json(body) == before  # pure: the input is untouched


@pytest.mark.parametrize("rules, target, expected_target, filled", [
    ({"allowed_storage_account_types": ["Premium_LRS"]}, {"targetRegions": [region(), region(name="westus")]},
     {"targetRegions": [region(storageAccountType="Premium_LRS"),
                        region(name="westus", storageAccountType="Premium_LRS")]},
     ["properties.distribute[0].targetRegions[0].storageAccountType",
      "properties.distribute[0].targetRegions[1].storageAccountType"]),
    # Two allowed types pin nothing: the template chooses (an empty one is Standard_LRS).
    ({"allowed_storage_account_types": ["Premium_LRS", "Standard_ZRS"]}, {"targetRegions": [region()]},
     {"targetRegions": [region()]}, []),
    ({"allowed_storage_account_types": ["Premium_LRS"]},
     {"targetRegions": [region(storageAccountType="Standard_LRS")]},
     {"targetRegions": [region(storageAccountType="Standard_LRS")]}, []),
    ({"gallery_versioning": "Latest"}, {"targetRegions": [region()]},
     {"targetRegions": [region()], "versioning": {"scheme": "Latest"}}, ["properties.distribute[0].versioning.scheme"]),
    ({"gallery_versioning": "Latest"}, {"targetRegions": [region()], "versioning": {"major": 2}},
     {"targetRegions": [region()], "versioning": {"major": 2, "scheme": "Latest"}},
     ["properties.distribute[0].versioning.scheme"]),
    ({"gallery_versioning": "Latest"}, {"targetRegions": [region()], "versioning": {"scheme": "Source"}},
     {"targetRegions": [region()], "versioning": {"scheme": "Source"}}, []),
    # An explicit version id takes no versioning scheme.
    ({"gallery_versioning": "Latest"}, {"galleryImageId": GALLERY_IMAGE + "/versions/1.0.0"},
     {"galleryImageId": GALLERY_IMAGE + "/versions/1.0.0"}, []),
])
def test_apply_pins_fills_gallery_targets(rules, target, expected_target, filled):
    body = template()
    body["properties"]["distribute"][0].update(target)
    pinned, paths = compose.apply_pins(body, PolicyRules.from_json(rules))
    expected = template()
    expected["properties"]["distribute"][0].update(expected_target)
    assert pinned == expected
    assert paths == filled


@pytest.mark.parametrize("rules", [
    {"on_customizer_error": "abort", "on_validation_error": "abort"},
    {"vm_boot_optimization": "Enabled"},
    {"required_managed_resource_tags": ["owner=security"]},
    {"staging_resource_group": "named", "staging_resource_group_prefix": "goldsmith-staging-"},
    {"allowed_storage_account_types": ["Premium_LRS"]},
    {"gallery_versioning": "Source"},
])
def test_a_filled_template_passes_the_rule_that_pinned_it(rules):
    policy = PolicyRules.from_json(rules)
    assert validation.check_enterprise_policy(template()["properties"], policy)  # refused before filling
    pinned, _ = compose.apply_pins(template(), policy, staging_group=STAGING)
    assert validation.check_enterprise_policy(pinned["properties"], policy) == []


# --- Through the services ----------------------------------------------------------------------------


@pytest.fixture
def clean_queue():
    from tests.support.workers import flush_redis

    flush_redis()
    yield
    flush_redis()


@pytest.mark.django_db(transaction=True)
def test_a_build_carries_the_pinned_error_handling_the_gold_version_left_empty(alice, bob, web, clean_queue,
                                                                                azure_emulator):
    gold_version = factories.make_gold_version()
    assert not gold_version.error_handling
    policies.policy_update(actor=alice, rules={"on_customizer_error": "abort"})
    build = services.build_request(actor=bob, gold_version=gold_version, department=web)
    assert build.template["properties"]["errorHandling"] == {"onCustomizerError": "abort"}
    assert build.template_sha256 == compose.template_sha256(build.template)


@pytest.mark.django_db(transaction=True)
def test_a_gold_version_that_sets_another_value_is_still_refused(alice, bob, web, clean_queue, azure_emulator):
    gold_version = factories.make_gold_version(error_handling={"onCustomizerError": "cleanup"})
    policies.policy_update(actor=alice, rules={"on_customizer_error": "abort"})
    with pytest.raises(services.ServiceError) as refused:
        services.build_request(actor=bob, gold_version=gold_version, department=web)
    assert [p.rule for p in refused.value.problems] == ["policy.error-handling"]
    assert refused.value.problems[0].path == "properties.errorHandling.onCustomizerError"


@pytest.mark.django_db
def test_a_policy_change_that_fills_something_voids_a_pending_approval(alice, frank, azure_emulator):
    draft = factories.make_gold_version(actor=alice, publish=False)
    request = approvals.publish_request_create(actor=alice, target=draft)
    policies.policy_update(actor=frank, rules={"vm_boot_optimization": "Enabled"})
    with pytest.raises(approvals.StaleRequest):
        approvals.publish_request_approve(actor=frank, request=request)
    assert approvals.gold_body(draft)["properties"]["optimize"] == {"vmBoot": {"state": "Enabled"}}


@pytest.mark.django_db
def test_the_gold_version_page_shows_what_the_policy_filled(client, alice):
    gold_version = factories.make_gold_version()
    policies.policy_update(actor=alice, rules={"on_customizer_error": "abort"})
    client.force_login(alice)
    page = client.get(reverse("builds:gold-version", args=[gold_version.gold_image.slug, "1.0.0"])).content.decode()
    assert "Filled by policy" in page
    assert "<code>properties.errorHandling.onCustomizerError</code>" in page
    assert "abort" in page.split("Filled by policy")[1]  # the template shown carries the filled value
