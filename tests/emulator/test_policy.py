"""Azure Policy deny effects: built-in definitions, assignments with parameters (raw REST at
2023-04-01 and the control API), and the refusals ARM and Image Builder give."""

from __future__ import annotations

from tests.support.aib import managed_target, template_body
from tests.support.emulator import RESOURCE_GROUP, SUBSCRIPTION_ID

V = "2023-04-01"
SUB = f"/subscriptions/{SUBSCRIPTION_ID}"
ALLOWED_LOCATIONS = "/providers/Microsoft.Authorization/policyDefinitions/e56962a6-4747-49cd-b67b-bf8b01975c4c"
RG_LOCATIONS = "/providers/Microsoft.Authorization/policyDefinitions/e765b5de-1225-4ba3-bd56-1ac6695af988"


def test_it_serves_built_in_definitions(arm):
    found = arm.get(ALLOWED_LOCATIONS, V).json()

    assert found["properties"]["displayName"] == "Allowed locations"
    assert found["properties"]["policyType"] == "BuiltIn"
    assert "listOfAllowedLocations" in found["properties"]["parameters"]


def test_an_assignment_denies_a_resource_group_elsewhere(arm):
    assignment = arm.put(f"{SUB}/providers/Microsoft.Authorization/policyAssignments/eu-only", V, {
        "properties": {"displayName": "Europe only", "policyDefinitionId": RG_LOCATIONS,
                       "parameters": {"listOfAllowedLocations": {"value": ["westeurope"]}}}})
    listed = arm.get(f"{SUB}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.Authorization/policyAssignments",
                     V).json()["value"]

    refused = arm.put(f"{SUB}/resourcegroups/us-group", "2025-04-01", {"location": "eastus"})
    accepted = arm.put(f"{SUB}/resourcegroups/eu-group", "2025-04-01", {"location": "westeurope"})

    assert assignment.status_code == 201
    assert [item["name"] for item in listed] == ["eu-only"]
    error = refused.json()["error"]
    assert (refused.status_code, error["code"]) == (403, "RequestDisallowedByPolicy")
    assert error["message"].startswith("Resource 'us-group' was disallowed by policy. Policy identifiers: ")
    assert f"{SUB}/providers/Microsoft.Authorization/policyAssignments/eu-only" in error["message"]
    assert error["additionalInfo"][0]["info"]["policyAssignmentName"] == "eu-only"
    assert accepted.status_code == 201


def test_image_builder_fails_provisioning_when_its_staging_group_is_denied(emulator, imagebuilder_client):
    emulator.control("POST", "policy/assignments", {"scope": SUB, "definition": "Require a tag on resource groups",
                                                    "parameters": {"tagName": "costCenter"}}, expect=201)
    templates = imagebuilder_client.virtual_machine_image_templates

    templates.begin_create_or_update(RESOURCE_GROUP, "web", template_body(), polling=False)
    template = emulator.wait_for(lambda: (t := templates.get(RESOURCE_GROUP, "web")).provisioning_state != "Creating"
                                 and t)

    assert template.provisioning_state == "Failed"
    assert template.provisioning_error.provisioning_error_code == "Other"
    assert "RequestDisallowedByPolicy" in template.provisioning_error.message
    assert "Require a tag on resource groups" in template.provisioning_error.message


def test_a_denied_output_fails_its_distributor(fast_emulator, imagebuilder_client):
    fast_emulator.control("POST", "policy/assignments", {
        "scope": f"{SUB}/resourceGroups/{RESOURCE_GROUP}", "definition": "Not allowed resource types",
        "parameters": {"listOfResourceTypesNotAllowed": ["Microsoft.Compute/images"]}}, expect=201)
    templates = imagebuilder_client.virtual_machine_image_templates
    templates.begin_create_or_update(RESOURCE_GROUP, "web", template_body(distribute=[managed_target()])).result()

    templates.begin_run(RESOURCE_GROUP, "web", polling=False)
    status = fast_emulator.wait_for(lambda: (s := templates.get(RESOURCE_GROUP, "web").last_run_status)
                                    and s.run_state not in ("Running",) and s)

    assert (status.run_state, status.run_sub_state) == ("Failed", "Distributing")
    assert "Failed in distributing 1 images out of total 1" in status.message
    assert "RequestDisallowedByPolicy" in status.message
