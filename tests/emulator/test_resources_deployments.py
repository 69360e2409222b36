"""ARM template deployments (Microsoft.Resources/deployments) through azure-mgmt-resource's
pipeline: every public sample deployment template deploys once filled in as its instructions
say, the LRO follows the clock, and what the emulator does not serve is refused with
InvalidTemplate and the path of the offending value."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.resource.resources import ResourceManagementClient

from tests.support import samples
from tests.support.arm_deployments import DeploymentsApi
from tests.support.emulator import SUBSCRIPTION_ID
from tests.support.fixtures import needs_fixtures

IMAGE_TEMPLATES = "Microsoft.VirtualMachineImages/imageTemplates"
WIN_SIG = "qqs-1_Creating_a_Custom_Win_Shared_Image_Gallery_Image__armTemplateWinSIG.json"
# solutions/4 still pins the retired 2019-05-01-preview api-version (and has no identity): Azure
# refuses it today, and so does the emulator, at validation.
RETIRED = "solutions-4_Using_ENV_Variables__devOpsEnvTemplate.json"
GROUP = samples.GROUP


@pytest.fixture
def arm(emulator) -> ResourceManagementClient:
    samples.prepare_world(emulator)
    client = ResourceManagementClient(emulator.credential(), SUBSCRIPTION_ID, **emulator.client_kwargs())
    client.resource_groups.create_or_update(GROUP, {"location": samples.LOCATION})
    return client


@pytest.fixture
def deployments(arm, emulator) -> DeploymentsApi:
    return DeploymentsApi(arm, SUBSCRIPTION_ID, emulator.base_url)


def deployment(template: dict, parameters: dict | None = None) -> dict:
    return {"properties": {"mode": "Incremental", "template": template, "parameters": parameters or {}}}


def simple_template(resources: list, **sections) -> dict:
    return {"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
            "contentVersion": "1.0.0.0", "resources": resources, **sections}


def name_of(resource_id: str) -> str:
    return resource_id.rsplit("/", 1)[1]


@needs_fixtures
@pytest.mark.parametrize("name", [name for name in samples.deployment_templates() if name != RETIRED])
def test_every_sample_deployment_template_deploys(arm, deployments, name):
    sample = samples.sample(name)
    body = deployment(sample.template, sample.arm_parameters())

    validated = deployments.validate(GROUP, "validate", body)
    result = deployments.begin_create_or_update(GROUP, "aibdeploy", body).result()

    assert "error" not in validated
    assert [name_of(r["id"]) for r in validated["properties"]["validatedResources"]] == ["aibSampleTemplate"]
    assert result["properties"]["provisioningState"] == "Succeeded"
    template = arm.resources.get_by_id(result["properties"]["outputResources"][0]["id"], api_version="2020-02-14")
    assert template.type == IMAGE_TEMPLATES
    assert template.location == samples.LOCATION
    assert template.properties["provisioningState"] == "Succeeded"
    assert list(template.identity.user_assigned_identities) == [samples.IDENTITY]
    operations = deployments.operations(GROUP, "aibdeploy")
    assert [op["properties"]["provisioningState"] for op in operations] == ["Succeeded"]
    assert operations[0]["properties"]["targetResource"]["resourceType"] == IMAGE_TEMPLATES
    assert operations[0]["properties"]["statusCode"] == "Created"


@needs_fixtures
def test_the_retired_api_version_of_the_env_variables_sample_is_refused(deployments):
    sample = samples.sample(RETIRED)

    with pytest.raises(HttpResponseError) as caught:
        deployments.begin_create_or_update(GROUP, "env", deployment(sample.template, sample.arm_parameters()))

    assert caught.value.error.code == "NoRegisteredProviderFound"
    assert "API version '2019-05-01-preview'" in caught.value.error.message


@needs_fixtures
def test_expressions_in_the_env_variables_sample_are_evaluated(arm, deployments):
    """Its parameters, variables and concat() work once the api-version is one Azure serves."""
    sample = samples.sample(RETIRED)
    resource = sample.template["resources"][0]
    resource["apiVersion"] = "2025-10-01"
    resource["identity"] = {"type": "UserAssigned", "userAssignedIdentities": {samples.IDENTITY: {}}}
    target = resource["properties"]["distribute"][0]
    target["artifactTags"] = target.pop("aritfactTags")  # the sample's typo: 2025-10-01 refuses unknown fields

    deployments.begin_create_or_update(GROUP, "env", deployment(sample.template, sample.arm_parameters())).result()

    template = arm.resources.get_by_id(f"{samples.GROUP_ID}/providers/{IMAGE_TEMPLATES}/aibSampleTemplate",
                                       api_version="2025-10-01").properties
    assert template["customize"][0]["inline"][0] == "Target_OS=MoonlightOS"
    assert template["distribute"][0]["imageId"] == f"{samples.GROUP_ID}/providers/Microsoft.Compute/images/Ubuntu1804"
    assert template["distribute"][0]["runOutputName"] == "Ubuntu1804"


@needs_fixtures
def test_the_deployment_is_accepted_then_running_then_succeeded_with_the_clock(deployments, emulator):
    emulator.freeze()
    sample = samples.sample(WIN_SIG)

    poller = deployments.begin_create_or_update(GROUP, "clock", deployment(sample.template, sample.arm_parameters()))
    first = poller.polling_method()._initial_response.http_response

    assert first.status_code == 201
    assert first.json()["properties"]["provisioningState"] == "Accepted"
    assert deployments.get(GROUP, "clock")["properties"]["provisioningState"] == "Accepted"
    emulator.advance_simulated(3)
    assert deployments.get(GROUP, "clock")["properties"]["provisioningState"] == "Running"
    emulator.advance_simulated(60)
    final = deployments.get(GROUP, "clock")["properties"]
    assert final["provisioningState"] == "Succeeded"
    assert final["providers"][0]["namespace"] == "Microsoft.VirtualMachineImages"
    assert final["parameters"]["svclocation"] == {"type": "String", "value": samples.LOCATION}


def test_put_answers_201_with_an_async_operation_and_a_retry_after_of_at_least_one_second(deployments, emulator):
    emulator.settings(retry_after=None)

    poller = deployments.begin_create_or_update(GROUP, "empty", deployment(simple_template([])))
    first = poller.polling_method()._initial_response.http_response

    assert first.status_code == 201
    assert "/providers/Microsoft.Resources/deployments/empty/operationStatuses/" in \
        first.headers["Azure-AsyncOperation"]
    assert int(first.headers["Retry-After"]) >= 1


def test_a_failed_resource_fails_the_deployment_with_deploymentfailed(deployments):
    template = simple_template([{
        "type": IMAGE_TEMPLATES, "apiVersion": "2025-10-01", "name": "broken",
        "location": "[resourceGroup().location]", "properties": {"source": {"type": "PlatformImage"}}}])

    with pytest.raises(HttpResponseError) as caught:
        deployments.begin_create_or_update(GROUP, "broken", deployment(template)).result()

    assert "DeploymentFailed" in str(caught.value)
    failed = deployments.operations(GROUP, "broken")
    assert failed[0]["properties"]["provisioningState"] == "Failed"
    assert failed[0]["properties"]["statusCode"] == "BadRequest"
    assert failed[0]["properties"]["statusMessage"]["error"]["code"] == "ValidationFailed"
    error = deployments.get(GROUP, "broken")["properties"]["error"]
    assert error["code"] == "DeploymentFailed"
    assert error["details"][0]["code"] == "ValidationFailed"


@needs_fixtures
def test_dependents_wait_for_what_they_depend_on(deployments):
    sample = samples.sample(WIN_SIG)
    first = sample.template["resources"][0]
    second = dict(first, name="[concat(parameters('imageTemplateName'), '-second')]",
                  dependsOn=["[resourceId('Microsoft.VirtualMachineImages/imageTemplates', "
                             "parameters('imageTemplateName'))]"])
    sample.template["resources"].append(second)

    result = deployments.begin_create_or_update(GROUP, "chain", deployment(
        sample.template, sample.arm_parameters())).result()["properties"]

    assert [name_of(r["id"]) for r in result["outputResources"]] == ["aibSampleTemplate", "aibSampleTemplate-second"]
    assert result["dependencies"][0]["dependsOn"][0]["resourceName"] == "aibSampleTemplate"
    operations = {op["properties"]["targetResource"]["resourceName"]: op["properties"]
                  for op in deployments.operations(GROUP, "chain")}
    assert operations["aibSampleTemplate"]["timestamp"] <= operations["aibSampleTemplate-second"]["timestamp"]


@pytest.mark.parametrize(("resource", "path", "words"), [
    ({"type": "Microsoft.Web/sites", "apiVersion": "2024-04-01", "name": "site",
      "location": "westus2"}, "resources[0].type", "is not served by the emulator"),
    ({"type": IMAGE_TEMPLATES, "apiVersion": "2025-10-01", "name": "t", "location": "[reference('x').location]"},
     "resources[0].location", "The template function 'reference' is not valid"),
    ({"type": IMAGE_TEMPLATES, "apiVersion": "2025-10-01", "name": "[parameters('missing')]"},
     "resources[0].name", "The template parameter 'missing' is not found"),
    ({"type": IMAGE_TEMPLATES, "apiVersion": "2025-10-01", "name": "t", "copy": {"name": "c", "count": 2}},
     "resources[0].copy", "is not supported by the emulator"),
])
def test_what_the_emulator_does_not_serve_is_an_invalid_template_naming_the_path(deployments, resource, path, words):
    with pytest.raises(HttpResponseError) as caught:
        deployments.begin_create_or_update(GROUP, "bad", deployment(simple_template([resource])))

    assert caught.value.status_code == 400
    assert caught.value.error.code == "InvalidTemplate"
    assert caught.value.error.target == path
    assert words in caught.value.error.message
    assert f"'{path}'" in caught.value.error.message


def test_validate_reports_an_invalid_template_without_deploying(deployments):
    result = deployments.validate(GROUP, "check", deployment(
        simple_template([], parameters={"name": {"type": "string"}})))

    assert result["error"]["code"] == "InvalidTemplate"
    assert "The value for the template parameter 'name' is not provided" in result["error"]["message"]
    assert deployments.list(GROUP) == []


def test_deployments_are_listed_deleted_and_go_with_their_group(arm, deployments):
    deployments.begin_create_or_update(GROUP, "one", deployment(simple_template([]))).result()
    deployments.begin_create_or_update(GROUP, "two", deployment(simple_template(
        [], outputs={"where": {"type": "string", "value": "[resourceGroup().location]"}}))).result()

    listed = {d["name"]: d for d in deployments.list(GROUP)}
    deployments.begin_delete(GROUP, "one").result()

    assert set(listed) == {"one", "two"}
    assert listed["two"]["properties"]["outputs"] == {"where": {"type": "String", "value": samples.LOCATION}}
    assert [d["name"] for d in deployments.list(GROUP)] == ["two"]
    arm.resource_groups.begin_delete(GROUP).result()
    arm.resource_groups.create_or_update(GROUP, {"location": samples.LOCATION})
    assert deployments.list(GROUP) == []


def test_a_user_assigned_identity_deploys_with_the_template_that_uses_it(arm, deployments):
    """Samples create the identity beforehand; a template may also declare it, now that the
    emulator serves Microsoft.ManagedIdentity: the image template then depends on it."""
    template = simple_template([
        {"type": "Microsoft.ManagedIdentity/userAssignedIdentities", "apiVersion": "2023-01-31",
         "name": "aib-deployed", "location": "[resourceGroup().location]"},
    ])
    deployments.begin_create_or_update(GROUP, "with-identity", deployment(template)).result()

    operations = deployments.operations(GROUP, "with-identity")
    assert [op["properties"]["provisioningState"] for op in operations] == ["Succeeded"]
    assert operations[0]["properties"]["targetResource"]["id"].endswith("/userAssignedIdentities/aib-deployed")
