"""Image Builder's template identity under RBAC enforcement (POST /_emulator/authorization/enforce):
a run fails where Azure would for a missing role, and succeeds after a grant through the control
API. Without enforcement nothing is checked (every other test)."""

from __future__ import annotations

import pytest

from tests.support.aib import (
    GALLERY_ID,
    IDENTITY_ID,
    MANAGED_IMAGE_SOURCE,
    gallery_target,
    template_body,
)
from tests.support.emulator import RESOURCE_GROUP, SUBSCRIPTION_ID

GALLERY_GROUP = f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/goldsmith-galleries"


@pytest.fixture
def templates(fast_emulator, arm, imagebuilder_client):
    arm.put(IDENTITY_ID, "2024-11-30", {"location": "eastus"})
    fast_emulator.control("POST", "authorization/enforce", {"subscription": SUBSCRIPTION_ID, "enabled": True})
    return imagebuilder_client.virtual_machine_image_templates


@pytest.fixture
def principal(arm) -> str:
    return arm.get(IDENTITY_ID, "2024-11-30").json()["properties"]["principalId"]


def run(emulator, templates, name: str = "web"):
    templates.begin_run(RESOURCE_GROUP, name, polling=False)
    return emulator.wait_for(lambda: (s := templates.get(RESOURCE_GROUP, name).last_run_status)
                             and s.run_state != "Running" and s)


def test_a_missing_gallery_role_fails_distribution_then_a_grant_fixes_it(fast_emulator, templates, principal):
    templates.begin_create_or_update(RESOURCE_GROUP, "web", template_body(distribute=[gallery_target()])).result()

    failed = run(fast_emulator, templates)
    fast_emulator.control("POST", "authorization/grant",
                          {"principalId": principal, "role": "Contributor", "scope": GALLERY_GROUP}, expect=201)
    succeeded = run(fast_emulator, templates)

    assert (failed.run_state, failed.run_sub_state) == ("Failed", "Distributing")
    assert failed.message.startswith("Failed in distributing 1 images out of total 1: {[Error 0] [Distribute 0] "
                                     "Error publishing MDI to Azure Compute Gallery")
    assert f"with object id '{principal}' does not have authorization to perform action " \
           f"'Microsoft.Compute/galleries/read' over scope '{GALLERY_ID}'" in failed.message
    assert succeeded.run_state == "Succeeded"


def test_an_unreadable_source_fails_in_building(fast_emulator, templates, principal):
    body = template_body(source={"type": "ManagedImage", "imageId": MANAGED_IMAGE_SOURCE})
    templates.begin_create_or_update(RESOURCE_GROUP, "web", body).result()

    failed = run(fast_emulator, templates)
    fast_emulator.control("POST", "authorization/grant", {"principalId": principal, "role": "Reader",
                                                          "scope": MANAGED_IMAGE_SOURCE}, expect=201)

    assert (failed.run_state, failed.run_sub_state) == ("Failed", "Building")
    assert "Microsoft.Compute/images/read" in failed.message
    assert run(fast_emulator, templates).run_state == "Succeeded"


def test_the_staging_group_aib_creates_gets_contributor_for_the_identity(fast_emulator, arm, templates, principal):
    template = templates.begin_create_or_update(RESOURCE_GROUP, "web", template_body()).result()

    found = arm.get(f"{template.exact_staging_resource_group}/providers/Microsoft.Authorization/roleAssignments",
                    "2022-04-01", **{"$filter": f"assignedTo('{principal}')"}).json()["value"]

    assert [item["properties"]["roleDefinitionId"].rsplit("/", 1)[-1] for item in found] == [
        "b24988ac-6180-42a0-ab88-20f7382dd24c"]
    assert run(fast_emulator, templates).run_state == "Succeeded"


def test_nothing_is_checked_without_enforcement(fast_emulator, imagebuilder_client):
    templates = imagebuilder_client.virtual_machine_image_templates
    templates.begin_create_or_update(RESOURCE_GROUP, "web", template_body(distribute=[gallery_target()])).result()

    assert run(fast_emulator, templates).run_state == "Succeeded"
