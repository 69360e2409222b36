"""The real Azure CLI (pinned, its own venv: tests/support/azcli.py) against the emulator: for
each command family a user runs, the outcome they see (JSON fields, exit codes, messages).

One signed-in configuration serves the module; the emulator is reset before each test but keeps
its default Retry-After (at least 1 s): the CLI cannot poll faster, and a Retry-After of 0 would
make azure-core fall back to the CLI's 30 s polling interval.
"""

from __future__ import annotations

import json

import pytest

from tests.support import samples
from tests.support.emulator import RESOURCE_GROUP, SUBSCRIPTION_ID
from tests.support.fixtures import needs_fixtures

# Each `az` call starts the CLI afresh (1-2 s) and the first run builds its venv: CI runs this
# suite (.ci/run), `make test` leaves it out unless asked (PYTEST_ARGS=).
pytestmark = pytest.mark.slow

IDENTITY = (f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{RESOURCE_GROUP}/providers/"
            "Microsoft.ManagedIdentity/userAssignedIdentities/aib-builder")
JAMMY = "Canonical:0001-com-ubuntu-server-jammy:22_04-lts-gen2"
WIN_SIG = "qqs-1_Creating_a_Custom_Win_Shared_Image_Gallery_Image__armTemplateWinSIG.json"
GALLERIES = "goldsmith-galleries"


@pytest.fixture
def az(azcli, emulator_process):
    emulator_process.reset()
    return azcli


def test_it_signs_in_as_a_service_principal_of_the_registered_cloud(az):
    account = az("account", "show")

    assert account["id"] == SUBSCRIPTION_ID
    assert account["user"] == {"name": "goldsmith-worker", "type": "servicePrincipal"}
    assert az.run("cloud", "show", "--query", "endpoints.resourceManager", "-o", "tsv").stdout.strip() == \
        f"{az.emulator.base_url}/"


def test_group_commands(az):
    created = az("group", "create", "-n", "cli-group", "-l", "East US", "--tags", "team=images")
    shown = az("group", "show", "-n", "cli-group")
    names = az("group", "list", "--query", "[].name")
    az("group", "delete", "-n", "cli-group", "--yes")
    missing = az.run("group", "show", "-n", "cli-group", expect=3)

    assert created["location"] == "eastus"
    assert created["properties"]["provisioningState"] == "Succeeded"
    assert shown["tags"] == {"team": "images"}
    assert {"cli-group", RESOURCE_GROUP} <= set(names)
    assert "ResourceGroupNotFound" in missing.stderr


def test_vm_image_commands(az):
    versions = az("vm", "image", "list", "--publisher", "Canonical", "--offer", "0001-com-ubuntu-server-jammy",
                  "--sku", "22_04-lts-gen2", "--all", "-l", "eastus")
    latest = az("vm", "image", "show", "--urn", f"{JAMMY}:latest", "-l", "eastus")

    assert [v["version"] for v in versions] == ["22.04.202409110", "22.04.202410020", "22.04.202411190"]
    assert versions[0]["urn"] == f"{JAMMY}:22.04.202409110"
    assert latest["name"] == "22.04.202411190"
    assert latest["hyperVGeneration"] == "V2"
    assert {"name": "SecurityType", "value": "TrustedLaunchSupported"} in latest["features"]


def test_sig_read_commands(az):
    galleries = az("sig", "list", "--query", "[].name")
    definitions = az("sig", "image-definition", "list", "-g", GALLERIES, "-r", "goldsmith_gallery")
    versions = az("sig", "image-version", "list", "-g", GALLERIES, "-r", "goldsmith_gallery", "-i", "win2022-tl")

    assert {"goldsmith_gallery", "goldsmith_gallery_eu"} <= set(galleries)
    gen1 = next(d for d in definitions if d["name"] == "ubuntu-gen1")
    assert gen1["hyperVGeneration"] == "V1"
    assert gen1["osState"] == "Generalized"
    assert [v["name"] for v in versions] == ["1.0.0", "1.0.1"]
    assert versions[1]["publishingProfile"]["excludeFromLatest"] is True


def test_sig_write_commands(az):
    """Pending the galleries branch (gallery PUT/PATCH/DELETE in emulator/compute)."""
    gallery = az("sig", "create", "-g", GALLERIES, "-r", "cli_gallery", "-l", "eastus")
    definition = az("sig", "image-definition", "create", "-g", GALLERIES, "-r", "cli_gallery", "-i", "cli-def",
                    "--publisher", "Goldsmith", "--offer", "cli", "--sku", "gen2", "--os-type", "Linux",
                    "--hyper-v-generation", "V2", "--features", "SecurityType=TrustedLaunchSupported")
    updated = az("sig", "update", "-g", GALLERIES, "-r", "cli_gallery", "--set", "description=from the CLI")
    az("sig", "image-definition", "delete", "-g", GALLERIES, "-r", "cli_gallery", "-i", "cli-def")
    az("sig", "delete", "-g", GALLERIES, "-r", "cli_gallery")

    assert gallery["provisioningState"] == "Succeeded"
    assert definition["hyperVGeneration"] == "V2"
    assert updated["description"] == "from the CLI"
    assert "cli_gallery" not in az("sig", "list", "--query", "[].name")


def test_image_builder_commands(az):
    group = ("-g", RESOURCE_GROUP, "-n", "cli-template")
    az("image", "builder", "create", *group, "--image-source", f"{JAMMY}:latest", "--identity", IDENTITY, "--defer")
    az("image", "builder", "customizer", "add", *group, "--customizer-name", "hello", "--type", "shell",
       "--inline-script", "echo hello", "--defer")
    az("image", "builder", "output", "add", *group, "--managed-image", "cli-image", "--managed-image-location",
       "eastus", "--defer")
    created = az("image", "builder", "update", *group)
    az("image", "builder", "run", *group, "--no-wait", expect=0)
    az("image", "builder", "wait", *group, "--custom", "lastRunStatus.runState!='Running'", "--timeout", "120")
    shown = az("image", "builder", "show", *group)
    runs = az("image", "builder", "show-runs", *group)

    assert created["provisioningState"] == "Succeeded"
    assert created["customize"][0]["inline"] == ["echo hello"]
    assert created["source"]["offer"] == "0001-com-ubuntu-server-jammy"
    assert shown["lastRunStatus"]["runState"] == "Succeeded"
    assert runs[0]["name"] == "cli-image"
    assert runs[0]["artifactId"].endswith("/providers/Microsoft.Compute/images/cli-image")

    az.emulator.freeze()  # the run stays Running until the clock moves: there is time to cancel it
    az("image", "builder", "run", *group, "--no-wait")
    cancel = az.start("image", "builder", "cancel", *group)  # waits for Canceled: the clock must move
    canceling = az.emulator.wait_for(lambda: az.run("image", "builder", "show", *group, "--query",
                                                    "lastRunStatus.runState", "-o", "tsv").stdout.strip() == "Canceling",
                                     timeout=60)
    az.emulator.unfreeze()
    _, errors = cancel.communicate(timeout=120)
    canceled = az.run("image", "builder", "show", *group, "--query", "lastRunStatus.runState", "-o", "tsv").stdout
    az("image", "builder", "delete", *group)
    gone = az.run("image", "builder", "show", *group, expect=3)

    assert canceling
    assert cancel.returncode == 0, errors
    assert canceled.strip() == "Canceled"
    assert az.run("image", "builder", "list", "-g", RESOURCE_GROUP, "--query", "[].name", "-o", "tsv").stdout == ""
    assert "ResourceNotFound" in gone.stderr


def test_image_builder_create_reports_a_validation_failure(az):
    failed = az.run("image", "builder", "create", "-g", RESOURCE_GROUP, "-n", "bad name!", "--image-source",
                    f"{JAMMY}:latest", "--identity", IDENTITY, "--managed-image-destinations", "img=eastus",
                    expect=1)

    assert "ValidationFailed" in failed.stderr or "InvalidParameter" in failed.stderr


@needs_fixtures
def test_resource_commands(az, tmp_path):
    """The quickstarts create templates with `az resource create --is-full-object`."""
    samples.prepare_world(az.emulator)
    az("group", "create", "-n", samples.GROUP, "-l", samples.LOCATION)
    body = (samples.FIXTURES / "qqs-0_Creating_a_Custom_Linux_Managed_Image__helloImageTemplateLinux.json").read_text()
    for placeholder, value in samples.PLACEHOLDERS.items():
        body = body.replace(placeholder, value)
    (tmp_path / "template.json").write_text(body)

    created = az("resource", "create", "-g", samples.GROUP, "-n", "helloImageTemplateLinux01", "--resource-type",
                 "Microsoft.VirtualMachineImages/imageTemplates", "--is-full-object", "--properties",
                 f"@{tmp_path / 'template.json'}")
    listed = az("resource", "list", "-g", samples.GROUP, "--query", "[].[type, name]")
    shown = az.run("resource", "show", "-g", samples.GROUP, "-n", "helloImageTemplateLinux01", "--resource-type",
               "Microsoft.VirtualMachineImages/imageTemplates", "--query", "properties.provisioningState", "-o",
               "tsv").stdout
    az("resource", "invoke-action", "-g", samples.GROUP, "-n", "helloImageTemplateLinux01", "--resource-type",
       "Microsoft.VirtualMachineImages/imageTemplates", "--action", "Run")

    assert created["name"] == "helloImageTemplateLinux01"
    assert ["Microsoft.VirtualMachineImages/imageTemplates", "helloImageTemplateLinux01"] in listed
    assert ["Microsoft.Compute/galleries/images", f"{samples.GALLERY}/{samples.DEFINITION}"] in listed
    assert shown.strip() == "Succeeded"


@needs_fixtures
def test_deployment_group_commands(az, tmp_path):
    samples.prepare_world(az.emulator)
    az("group", "create", "-n", samples.GROUP, "-l", samples.LOCATION)
    sample = samples.sample(WIN_SIG)
    (tmp_path / "template.json").write_text(json.dumps(sample.template, indent=2))
    parameters = [f"{key}={value}" for key, value in sample.parameters.items()]

    deployed = az("deployment", "group", "create", "-g", samples.GROUP, "-n", "winsig", "--template-file",
                  str(tmp_path / "template.json"), "--parameters", *parameters)
    operations = az("deployment", "operation", "group", "list", "-g", samples.GROUP, "-n", "winsig")
    listed = az("deployment", "group", "list", "-g", samples.GROUP, "--query", "[].name")
    template = az("image", "builder", "show", "-g", samples.GROUP, "-n", "aibSampleTemplate")

    assert deployed["properties"]["provisioningState"] == "Succeeded"
    assert deployed["properties"]["parameters"]["api-version"]["value"] == "2020-02-14"
    assert operations[0]["properties"]["targetResource"]["resourceName"] == "aibSampleTemplate"
    assert listed == ["winsig"]
    assert template["provisioningState"] == "Succeeded"
    assert template["tags"]["imagebuilderTemplate"] == "AzureImageBuilderSIG"


def test_deployment_group_errors(az, tmp_path):
    resource = {"type": "Microsoft.VirtualMachineImages/imageTemplates", "apiVersion": "2025-10-01",
                "name": "[parameters('name')]", "location": "[resourceGroup().location]",
                "properties": {"source": {"type": "PlatformImage"}}}
    template = {"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
                "contentVersion": "1.0.0.0", "parameters": {"name": {"type": "string"}},
                # A comment, as template files often carry: ARM (and the emulator) read JSONC.
                "resources": [resource]}
    (tmp_path / "bad.json").write_text(json.dumps(template).replace('"resources"', '// why\n"resources"'))
    unserved = dict(template, resources=[dict(resource, location="[reference('x').location]")])
    (tmp_path / "unserved.json").write_text(json.dumps(unserved))

    failed = az.run("deployment", "group", "create", "-g", RESOURCE_GROUP, "--template-file",
                    str(tmp_path / "bad.json"), "--parameters", "name=broken", expect=1)
    invalid = az.run("deployment", "group", "validate", "-g", RESOURCE_GROUP, "--template-file",
                     str(tmp_path / "unserved.json"), "--parameters", "name=x", expect=1)

    assert "DeploymentFailed" in failed.stderr
    assert "ValidationFailed" in failed.stderr
    assert "InvalidTemplate" in invalid.stderr
    assert "resources[0].location" in invalid.stderr


def test_rest_command(az):
    listed = az("rest", "--method", "get", "--url",
                f"/subscriptions/{SUBSCRIPTION_ID}/providers/Microsoft.VirtualMachineImages?api-version=2021-04-01")
    missing = az.run("rest", "--method", "get", "--url",
                     f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{RESOURCE_GROUP}/providers/"
                     "Microsoft.VirtualMachineImages/imageTemplates/none?api-version=2025-10-01", expect=1)

    assert listed["registrationState"] == "Registered"
    assert "Not Found" in missing.stderr
    assert "ResourceNotFound" in missing.stderr
