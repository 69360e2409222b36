"""The public Image Builder deployment templates (../shared/fixtures/aib-templates), filled in
the way the samples' own instructions do, and the world they expect to exist.

The samples replace placeholders (`<subscriptionID>`, `<rgName>`, `<region1>`, `<imgBuilderId>`,
...) with sed or PowerShell's -replace, create the resource group, the identity, the gallery and
definition first, then run `az deployment group create` (or New-AzResourceGroupDeployment) with
`imageTemplateName`, `api-version=2020-02-14` and `svclocation` as parameters. `prepare_world`
makes what they create beforehand, plus the Marketplace images they name, which the emulator's
seed does not carry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from tests.support.emulator import SUBSCRIPTION_ID, EmulatorHandle
from tests.support.fixtures import TEMPLATES

FIXTURES = TEMPLATES

GROUP = "aibsamples"
LOCATION = "westus2"
SECOND_REGION = "eastus"
GALLERY = "aibsig"
DEFINITION = "winSvrImages"
IDENTITY = (f"/subscriptions/{SUBSCRIPTION_ID}/resourcegroups/{GROUP}/providers/"
            "Microsoft.ManagedIdentity/userAssignedIdentities/aibBuiUserId")
GROUP_ID = f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{GROUP}"
DEFINITION_ID = f"{GROUP_ID}/providers/Microsoft.Compute/galleries/{GALLERY}/images/{DEFINITION}"
SOURCE_DEFINITION_ID = f"{GROUP_ID}/providers/Microsoft.Compute/galleries/{GALLERY}/images/winSvrSource"
SOURCE_VERSION_ID = f"{SOURCE_DEFINITION_ID}/versions/1.0.0"
# The Marketplace images the samples build from: (publisher, offer, sku, generation, version).
SAMPLE_IMAGES = (
    ("MicrosoftWindowsServer", "WindowsServer", "2019-Datacenter", "V1", "17763.6414.241004"),
    ("MicrosoftWindowsDesktop", "windows-10", "20h1-ent", "V1", "19041.1415.220106"),
    ("Canonical", "UbuntuServer", "18.04-LTS", "V1", "18.04.202306070"),
)
PLACEHOLDERS = {
    "<subscriptionID>": SUBSCRIPTION_ID, "<rgName>": GROUP, "<region>": LOCATION, "<region1>": LOCATION,
    "<region2>": SECOND_REGION, "<runOutputName>": "aibSampleOutput", "<imageName>": "aibCustomImage",
    "<imgBuilderId>": IDENTITY, "<sharedImageGalName>": GALLERY, "<imageDefName>": DEFINITION,
    "<vnetRgName>": GROUP, "<vnetName>": "aibVnet", "<subnetName>": "aibSubnet",
    "<scriptFileUrl>": "https://raw.githubusercontent.com/Azure/azvmimagebuilder/main/testPsScript.ps1",
    "<sigDefImgVersionId>": SOURCE_VERSION_ID,
}


@dataclass(frozen=True)
class Sample:
    name: str  # the fixture's file name
    template: dict  # placeholders filled
    parameters: dict[str, str]  # what the instructions pass on the command line

    def arm_parameters(self) -> dict:
        return {key: {"value": value} for key, value in self.parameters.items()}


def deployment_templates() -> list[str]:
    """The fixture files that are ARM deployment templates (they have a $schema), sorted."""
    if not FIXTURES.is_dir():
        return []
    return sorted(path.name for path in FIXTURES.glob("*.json") if "$schema" in json.loads(path.read_text()))


def sample(name: str, template_name: str = "aibSampleTemplate") -> Sample:
    if not FIXTURES.is_dir():
        pytest.skip(f"the shared fixtures are not here ({FIXTURES})")
    text = (FIXTURES / name).read_text()
    for placeholder, value in PLACEHOLDERS.items():
        text = text.replace(placeholder, value)
    template = json.loads(text)
    declared = {key.lower() for key in template["parameters"]}
    if "managedimageresgroupid" in declared:  # solutions/4: everything comes in as parameters
        parameters = {"imageTemplateName": template_name, "svcLocation": LOCATION,
                      "managedImageResGroupId": f"{GROUP_ID}/providers/Microsoft.Compute/images/",
                      "managedImageName": "Ubuntu1804", "packagesToInstall": "nginx-light",
                      "targetOS": "MoonlightOS"}
    else:
        parameters = {"imageTemplateName": template_name, "api-version": "2020-02-14", "svclocation": LOCATION}
    return Sample(name, template, parameters)


def prepare_world(emulator: EmulatorHandle) -> None:
    """What the samples create before deploying: group, gallery, definitions, a source version,
    and the Marketplace images they name (in both regions)."""
    for publisher, offer, sku, generation, version in SAMPLE_IMAGES:
        for location in (LOCATION, SECOND_REGION):
            emulator.add_image(location=location, publisher=publisher, offer=offer, sku=sku, version=version,
                               hyperVGeneration=generation, architecture="x64", features={})
    for definition in (DEFINITION_ID, SOURCE_DEFINITION_ID):
        emulator.add_gallery_image(id=definition, location=LOCATION, osType="Windows", osState="Generalized",
                                   hyperVGeneration="V1", features={})
    emulator.control("POST", "catalog/gallery-image-versions",
                     {"id": SOURCE_VERSION_ID, "location": LOCATION,
                      "targetRegions": [{"name": LOCATION, "regionalReplicaCount": 1,
                                         "storageAccountType": "Standard_LRS"}]}, expect=201)
