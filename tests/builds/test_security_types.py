"""aib-reference §3.2 and issue 5's security-type rules, row by row in both directions, with
catalog entries each test adds to the emulator and looked up through azure-mgmt-compute."""

import pytest

from builds import preflight, schema
from tests.support.aib import template_body
from tests.support.emulator import SUBSCRIPTION_ID

pytestmark = pytest.mark.django_db

PUBLISHER = "Goldsmith-Tests"
GALLERY = (f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/goldsmith-galleries/providers/Microsoft.Compute/"
           "galleries/security_tests")
STANDARD, TLS, CVMS, BOTH = ("Standard", "TrustedLaunchSupported", "ConfidentialVMSupported",
                             "TrustedLaunchAndConfidentialVmSupported")
TL_ONLY, CVM_ONLY = "TrustedLaunch", "ConfidentialVM"


def add_source(emulator, security: str, generation: str = "V2") -> dict:
    """A Marketplace image with that security type (no feature at all for Standard)."""
    sku = f"{security.lower()}-{generation.lower()}"
    emulator.add_image(location="eastus", publisher=PUBLISHER, offer="security", sku=sku, version="1.0.0",
                       hyperVGeneration=generation, features={} if security == STANDARD else {"SecurityType": security})
    return {"type": "PlatformImage", "publisher": PUBLISHER, "offer": "security", "sku": sku, "version": "latest"}


def add_definition(emulator, security: str, generation: str = "V2") -> str:
    definition = f"{GALLERY}/images/{security.lower()}-{generation.lower()}"
    emulator.add_gallery_image(id=definition, location="eastus", osType="Linux", osState="Generalized",
                               hyperVGeneration=generation,
                               features={} if security == STANDARD else {"SecurityType": security})
    return definition


def security_rules(problems) -> set[tuple[str, str]]:
    return {(p.rule, p.severity) for p in problems if p.rule.startswith("security.")}


def check(source: dict, distribute: list[dict]) -> list:
    body = template_body(source=source, distribute=distribute, vmProfile={"vmSize": "Standard_DC2as_v5"
                         if "confidential" in source["sku"] else "Standard_D2ds_v5"})
    return preflight.check_body(body)


# Which sources Image Builder accepts (a VHD target, so only the source rules apply).
SOURCE_ROWS = [
    (STANDARD, "V1", set()),
    (STANDARD, "V2", set()),
    (TLS, "V2", set()),
    (CVMS, "V2", set()),
    (BOTH, "V2", set()),
    (TL_ONLY, "V2", {("security.source-unsupported", "error")}),
    (CVM_ONLY, "V2", {("security.source-unsupported", "error")}),
    (TLS, "V1", {("security.source-needs-gen2", "error")}),
]


@pytest.mark.parametrize("security, generation, expected", SOURCE_ROWS,
                         ids=[f"{s}-{g}" for s, g, _ in SOURCE_ROWS])
def test_source_security_types(azure_emulator, security, generation, expected):
    source = add_source(azure_emulator, security, generation)
    assert security_rules(check(source, [{"type": "VHD", "runOutputName": "vhd"}])) == expected


# Source -> gallery definition: (source type, source gen, definition type, definition gen, expected rules).
TARGET_ROWS = [
    (TLS, "V2", TLS, "V2", set()),
    (TLS, "V2", BOTH, "V2", set()),
    (TLS, "V2", STANDARD, "V2", {"security.target-not-trusted-launch"}),  # TL-supported source -> plain Gen2
    (TLS, "V2", CVMS, "V2", {"security.target-not-trusted-launch"}),
    (TLS, "V2", TL_ONLY, "V2", {"security.target-unsupported"}),
    (TLS, "V2", TLS, "V1", {"security.target-needs-gen2", "security.target-generation"}),
    (BOTH, "V2", TLS, "V2", set()),
    (BOTH, "V2", STANDARD, "V2", {"security.target-not-trusted-launch"}),
    (STANDARD, "V2", STANDARD, "V2", set()),
    (STANDARD, "V1", STANDARD, "V1", set()),
    (STANDARD, "V2", TLS, "V2", {"security.target-standard-source"}),  # Standard source -> TL-supported definition
    (STANDARD, "V2", BOTH, "V2", {"security.target-standard-source"}),
    (STANDARD, "V2", CVM_ONLY, "V2", {"security.target-unsupported"}),
    (STANDARD, "V1", STANDARD, "V2", {"security.target-generation"}),  # output keeps the source's generation
    (STANDARD, "V2", STANDARD, "V1", {"security.target-generation"}),
    (CVMS, "V2", CVMS, "V2", set()),
    (CVMS, "V2", BOTH, "V2", set()),
    (CVMS, "V2", TLS, "V2", {"security.target-not-confidential"}),
    (CVMS, "V2", STANDARD, "V2", {"security.target-not-confidential"}),
]


@pytest.mark.parametrize("source_type, source_gen, target_type, target_gen, expected", TARGET_ROWS,
                         ids=[f"{a}-{b}-to-{c}-{d}" for a, b, c, d, _ in TARGET_ROWS])
def test_gallery_target_security_types(azure_emulator, source_type, source_gen, target_type, target_gen, expected):
    source = add_source(azure_emulator, source_type, source_gen)
    definition = add_definition(azure_emulator, target_type, target_gen)
    problems = check(source, [{"type": "SharedImage", "runOutputName": "acg", "galleryImageId": definition}])
    assert security_rules(problems) == {(rule, "error") for rule in expected}
    assert all(p.path == "properties.distribute[0].galleryImageId" for p in problems if p.rule.startswith("security."))


@pytest.mark.parametrize("source_type, flagged", [(TLS, True), (BOTH, True), (STANDARD, False), (CVMS, False)])
def test_a_managed_image_from_a_trusted_launch_build_is_flagged(azure_emulator, source_type, flagged):
    source = add_source(azure_emulator, source_type)
    target = {"type": "ManagedImage", "runOutputName": "mi", "location": "eastus", "imageId": (
        f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/goldsmith-images/providers/Microsoft.Compute/images/out")}
    problems = check(source, [target])
    assert security_rules(problems) == ({("security.managed-image-trusted-launch", "warning")} if flagged else set())
    assert not schema.errors([p for p in problems if p.rule.startswith("security.")])


DECLARED_ROWS = [
    ("TrustedLaunch", "V2", TLS, "V2", set()),
    ("TrustedLaunch", "V2", BOTH, "V2", set()),
    ("TrustedLaunch", "V2", STANDARD, "V2", {"security.declared-mismatch"}),
    ("TrustedLaunch", "V2", CVMS, "V2", {"security.declared-mismatch"}),
    ("ConfidentialVM", "V2", CVMS, "V2", set()),
    ("ConfidentialVM", "V2", BOTH, "V2", set()),
    ("ConfidentialVM", "V2", TLS, "V2", {"security.declared-mismatch"}),
    ("Standard", "V2", STANDARD, "V2", set()),
    ("Standard", "V1", STANDARD, "V1", set()),
    ("Standard", "V2", TLS, "V2", {"security.declared-mismatch"}),
    ("Standard", "V2", STANDARD, "V1", {"security.generation-mismatch"}),
    ("TrustedLaunch", "V1", TLS, "V2", {"security.needs-gen2", "security.generation-mismatch"}),
]


@pytest.mark.django_db
@pytest.mark.parametrize("declared, declared_gen, source_type, source_gen, expected", DECLARED_ROWS,
                         ids=[f"{a}-{b}-from-{c}-{d}" for a, b, c, d, _ in DECLARED_ROWS])
def test_the_declared_security_type_must_match_the_catalog(azure_emulator, declared, declared_gen, source_type,
                                                           source_gen, expected):
    from tests import factories

    source = add_source(azure_emulator, source_type, source_gen)
    gold = factories.make_gold_version(publish=False, source=source, security_type=declared,
                                       hyper_v_generation=declared_gen,
                                       distribute=[{"type": "VHD", "runOutputName": "vhd"}],
                                       vm_profile={"vmSize": "Standard_DC2as_v5" if source_type == CVMS
                                                   else "Standard_D2ds_v5"})
    problems = preflight.check_build(gold, [])
    assert {p.rule for p in problems if p.rule.startswith("security.")} == expected
