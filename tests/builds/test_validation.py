"""The pure rules of builds/validation.py: policy, secrets, build VM, declarations, layering."""

import copy

import pytest

from builds import compose, schema, validation
from builds.validation import Declared, DefinitionFacts, Facts, PolicyRules, SourceFacts
from tests import factories

IDENTITY = factories.IDENTITY
GALLERY = factories.GALLERY

BODY = {
    "location": "eastus",
    "tags": {"owner": "platform"},
    "identity": {"type": "UserAssigned", "userAssignedIdentities": {IDENTITY: {}}},
    "properties": {
        "source": {"type": "PlatformImage", "publisher": "Canonical", "offer": "o", "sku": "s", "version": "latest"},
        "customize": [
            {"type": "Shell", "name": "get", "scriptUri": "https://files.example.com/setup.sh"},
            {"type": "Shell", "name": "run", "inline": ["echo one", "echo two"]},
        ],
        "distribute": [{"type": "SharedImage", "runOutputName": "gallery", "galleryImageId": GALLERY + "tl",
                        "targetRegions": [{"name": "eastus"}, {"name": "westeurope"}]}],
        "vmProfile": {"vmSize": "Standard_D2ds_v5"},
    },
}
GEN2_TL = SourceFacts("PlatformImage", True, "Canonical:o:s", version="1.0.0", security_type="TrustedLaunchSupported",
                      hyper_v_generation="V2", architecture="x64", os_type="Linux", os_disk_size_gb=30)


def body_with(**changes):
    body = copy.deepcopy(BODY)
    for dotted, value in changes.items():
        target = body
        keys = dotted.split("__")
        for key in keys[:-1]:
            target = target[int(key)] if key.isdigit() else target[key]
        target[int(keys[-1]) if keys[-1].isdigit() else keys[-1]] = value
    return body


def found(body, *, policy=None, facts=None, declared=None, os_type=None):
    return {(p.rule, p.path) for p in validation.check_template(body, policy=policy, facts=facts, declared=declared,
                                                                 os_type=os_type)}


def test_a_clean_body_has_no_problems():
    assert validation.check_template(BODY) == []


def test_it_delegates_the_schema_rules():
    body = body_with(properties__customize__1__inline=["echo", "  "])
    assert ("schema.empty-line", "properties.customize[1].inline") in found(body)


# --- URLs ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("uri, rule", [
    ("http://files.example.com/setup.sh", "policy.uri-https"),
    ("ftp://files.example.com/setup.sh", "policy.uri-https"),
    ("https://user:pass@files.example.com/setup.sh", "policy.uri-userinfo"),
    ("https://token@files.example.com/setup.sh", "policy.uri-userinfo"),
    ("https://10.1.2.3/setup.sh", "policy.uri-ip"),
    ("https://[2001:db8::1]/setup.sh", "policy.uri-ip"),
    ("https://16843009/setup.sh", "policy.uri-ip"),
    ("https://169.254.169.254/metadata/instance", "policy.uri-internal"),
    ("https://168.63.129.16/machine", "policy.uri-internal"),
    ("https://127.0.0.1/setup.sh", "policy.uri-internal"),
    ("https://2130706433/setup.sh", "policy.uri-internal"),
    ("https://0x7f.1/setup.sh", "policy.uri-internal"),
    ("https://[::1]/setup.sh", "policy.uri-internal"),
    ("https://[::ffff:169.254.169.254]/", "policy.uri-internal"),
    ("https://[fe80::1]/setup.sh", "policy.uri-internal"),
    ("https://localhost/setup.sh", "policy.uri-internal"),
    ("https://metadata.google.internal/x", "policy.uri-internal"),
    ("https://intranet/setup.sh", "policy.uri-internal"),
    ("https://[::1/setup.sh", "policy.uri-invalid"),
    ("https://files.example.com:99999/x", "policy.uri-invalid"),
    ("https:///setup.sh", "policy.uri-invalid"),
    ("<scriptUrl>", "policy.uri-placeholder"),
])
def test_it_refuses_script_urls_outside_the_host_rules(uri, rule):
    body = body_with(properties__customize__0__scriptUri=uri)
    assert (rule, "properties.customize[0].scriptUri") in found(body)


@pytest.mark.parametrize("host, allowed", [
    ("files.example.com", True),
    ("FILES.example.com", True),
    ("cdn.files.example.com", False),
    ("x.blob.core.windows.net", True),
    ("blob.core.windows.net", False),
    ("evil-example.com", False),
    ("example.com.evil.net", False),
])
def test_the_host_allow_list_matches_exact_names_and_subdomain_wildcards(host, allowed):
    policy = PolicyRules(allowed_hosts=("files.example.com", "*.blob.core.windows.net"))
    body = body_with(properties__customize__0__scriptUri=f"https://{host}/setup.sh")
    assert (("policy.uri-host", "properties.customize[0].scriptUri") in found(body, policy=policy)) is not allowed


def test_it_applies_the_url_rules_to_files_validators_and_the_workload_script():
    body = body_with(properties__customize=[{"type": "File", "name": "f", "sourceUri": "http://x.example.com/f",
                                             "destination": "/tmp/f"}])
    body["properties"]["validate"] = {"inVMValidations": [{"type": "Shell", "name": "v",
                                                           "scriptUri": "https://10.0.0.1/v.sh"}]}
    body["properties"]["optimize"] = {"workload": {"state": "Enabled", "scriptUri": "http://x.example.com/w"}}
    problems = found(body)
    assert ("policy.uri-https", "properties.customize[0].sourceUri") in problems
    assert ("policy.uri-ip", "properties.validate.inVMValidations[0].scriptUri") in problems
    assert ("policy.uri-https", "properties.optimize.workload.scriptUri") in problems


def test_it_requires_checksums_when_the_policy_says_so():
    policy = PolicyRules(require_checksums=True)
    assert ("policy.checksum-required", "properties.customize[0].sha256Checksum") in found(BODY, policy=policy)
    body = body_with(properties__customize__0__sha256Checksum="a" * 64)
    assert not any(rule == "policy.checksum-required" for rule, _ in found(body, policy=policy))
    assert not any(rule == "policy.checksum-required" for rule, _ in found(BODY))


# --- Sizes, regions, tags, timeout ---------------------------------------------------------------------

def test_it_refuses_vm_sizes_regions_and_missing_tags_the_policy_does_not_allow():
    policy = PolicyRules(allowed_vm_sizes=("Standard_D4ds_v5",), allowed_regions=("eastus",),
                         required_tags=("costCenter", "owner"))
    problems = found(BODY, policy=policy)
    assert ("policy.vm-size", "properties.vmProfile.vmSize") in problems
    assert ("policy.region", "properties.distribute[0].targetRegions[1].name") in problems
    assert ("policy.region", "location") not in problems
    assert ("policy.tag-required", "tags.costCenter") in problems
    assert ("policy.tag-required", "tags.owner") not in problems


def test_an_empty_vm_size_is_refused_when_the_policy_lists_sizes():
    body = body_with(properties__vmProfile={})
    assert ("policy.vm-size", "properties.vmProfile.vmSize") not in found(body)
    assert ("policy.vm-size", "properties.vmProfile.vmSize") in found(
        body_with(properties__vmProfile={"vmSize": ""}), policy=PolicyRules(allowed_vm_sizes=("Standard_D2ds_v5",)))


@pytest.mark.parametrize("timeout, refused", [(None, True), (0, True), (120, False), (180, False), (181, True)])
def test_it_caps_the_build_timeout(timeout, refused):
    body = copy.deepcopy(BODY)
    if timeout is not None:
        body["properties"]["buildTimeoutInMinutes"] = timeout
    problems = found(body, policy=PolicyRules(max_build_timeout=180))
    assert (("policy.build-timeout", "properties.buildTimeoutInMinutes") in problems) is refused


# --- Secrets ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("line, kind", [
    ("curl 'https://acct.blob.core.windows.net/c/f?sv=2022&sig=abcdefghijkl'", "SAS token"),
    ("export DB_PASSWORD=hunter22", "password"),
    ("curl -H 'Authorization: Bearer abcdefghijklmnopqrstuvwxyz'", "bearer token"),
    ("-----BEGIN RSA PRIVATE KEY-----", "private key"),
])
def test_it_refuses_secret_looking_inline_content_with_the_line(line, kind):
    body = body_with(properties__customize__1__inline=["echo one", "echo two", line])
    problems = [p for p in validation.check_template(body) if p.rule == "secret.inline"]
    assert problems and problems[0].path == "properties.customize[1].inline[2]"
    assert "Line 3 " in problems[0].message and kind in problems[0].message


def test_it_refuses_a_sas_token_in_a_script_url():
    body = body_with(properties__customize__0__scriptUri="https://a.blob.core.windows.net/c/s.sh?sv=1&sig=abcdef")
    assert ("secret.value", "properties.customize[0].scriptUri") in found(body)


def test_inline_variables_are_not_secrets():
    body = body_with(properties__customize__1__inline=['PASSWORD="$(az keyvault secret show ...)"',
                                                       "echo $PASSWORD | login"])
    assert not [p for p in validation.check_template(body) if p.rule.startswith("secret.")]


# --- OS family ------------------------------------------------------------------------------------

def test_it_refuses_steps_of_the_other_os_family():
    body = body_with(properties__customize__1={"type": "PowerShell", "name": "ps", "inline": ["Write-Host"]})
    assert ("schema.os-mismatch", "properties.customize[1].type") in found(body, os_type="Linux")


@pytest.mark.parametrize("os_type, kind, destination, refused", [
    ("Linux", "customizer", "/tmp/app.conf", False),
    ("Linux", "customizer", "/tmp/nginx/app.conf", False),
    ("Linux", "customizer", "/tmp/", False),
    ("Linux", "customizer", "/etc/nginx/conf.d/app.conf", True),
    ("Linux", "customizer", "/tmp/../etc/nginx/app.conf", True),
    ("Linux", "customizer", "/tmpfiles/app.conf", True),
    ("Linux", "customizer", "app.conf", True),
    ("Linux", "validator", "/opt/check.sh", True),
    ("Linux", "customizer", "<destination>", False),  # a sample's placeholder
    ("Windows", "customizer", "C:\\inetpub\\wwwroot\\index.html", False),
    ("Windows", "customizer", "/etc/app.conf", False),
    (None, "customizer", "/etc/app.conf", False),  # the OS family is unknown: nothing to say
])
def test_a_linux_file_step_writes_only_under_tmp(os_type, kind, destination, refused):
    step = {"type": "File", "name": "conf", "sourceUri": "https://files.example.com/app.conf",
            "destination": destination}
    problems = validation.check_step(step, "step", kind=kind, os_type=os_type)
    assert (("file.destination-not-writable", "step.destination") in {(p.rule, p.path) for p in problems}) is refused
    assert all(p.severity == "error" for p in problems if p.rule == "file.destination-not-writable")


def test_the_file_destination_rule_names_the_fix_and_runs_on_whole_templates():
    file_step = {"type": "File", "name": "conf", "sourceUri": "https://files.example.com/app.conf",
                 "destination": "/etc/nginx/conf.d/app.conf"}
    body = body_with(properties__customize__1=file_step)
    body["properties"]["validate"] = {"inVMValidations": [dict(file_step, name="check")]}
    problems = [p for p in validation.check_template(body, os_type="Linux")
                if p.rule == "file.destination-not-writable"]
    assert [p.path for p in problems] == ["properties.customize[1].destination",
                                          "properties.validate.inVMValidations[0].destination"]
    assert "/tmp/app.conf" in problems[0].message
    assert "sudo mv /tmp/app.conf /etc/nginx/conf.d/app.conf" in problems[0].message
    assert not any(p.rule == "file.destination-not-writable" for p in validation.check_template(body))


# --- Build VM ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("size, source, rule", [
    ("Standard_D2ds_v5", GEN2_TL, None),
    ("Standard_A2_v2", GEN2_TL, "vm.size-generation"),
    ("Standard_D2_v3", GEN2_TL, "vm.size-generation"),
    ("Standard_D2ds_v6", GEN2_TL, None),
    ("Standard_D2ds_v6", SourceFacts("PlatformImage", True, "g1", hyper_v_generation="V1"), "vm.size-generation"),
    ("", SourceFacts("PlatformImage", True, "g1", hyper_v_generation="V1"), None),
    ("", GEN2_TL, None),
    ("Standard_D2ps_v5", GEN2_TL, "vm.size-architecture"),
    ("Standard_D2ps_v5", SourceFacts("PlatformImage", True, "arm", hyper_v_generation="V2", architecture="Arm64"), None),
    ("", SourceFacts("PlatformImage", True, "arm", hyper_v_generation="V2", architecture="Arm64"), "vm.size-required"),
    ("Standard_D2ds_v5", SourceFacts("PlatformImage", True, "cvm", security_type="ConfidentialVMSupported",
                                     hyper_v_generation="V2"), "vm.size-confidential"),
    ("Standard_DC2as_v5", SourceFacts("PlatformImage", True, "cvm", security_type="ConfidentialVMSupported",
                                      hyper_v_generation="V2"), None),
    ("Standard_NV6ads_A10_v5", GEN2_TL, "vm.size-unknown"),
])
def test_the_build_vm_must_host_the_source(size, source, rule):
    problems = validation.check_build_vm({"vmSize": size} if size else {}, source)
    assert {p.rule for p in problems} == ({rule} if rule else set())


def test_the_os_disk_cannot_shrink_the_source():
    assert [p.rule for p in validation.check_build_vm({"osDiskSizeGB": 20, "vmSize": "Standard_D2ds_v5"}, GEN2_TL)] \
        == ["vm.os-disk-too-small"]
    assert validation.check_build_vm({"osDiskSizeGB": 0, "vmSize": "Standard_D2ds_v5"}, GEN2_TL) == []
    assert validation.check_build_vm({"osDiskSizeGB": 64, "vmSize": "Standard_D2ds_v5"}, GEN2_TL) == []


def test_every_size_family_example_matches_its_own_family():
    for family in validation.VM_SIZE_FAMILIES:
        assert validation.size_family(family.example) == family, family.name


# --- Source -----------------------------------------------------------------------------------------

def test_a_plan_image_needs_its_plan_info():
    facts = Facts(source=SourceFacts("PlatformImage", True, "cis", plan=("n", "p", "pub"), hyper_v_generation="V2"))
    assert ("source.plan-missing", "properties.source.planInfo") in found(BODY, facts=facts)
    body = body_with(properties__source__planInfo={"planName": "n", "planProduct": "x", "planPublisher": "pub"})
    assert ("source.plan-mismatch", "properties.source.planInfo.planProduct") in found(body, facts=facts)


def test_missing_sources_name_the_field_to_fix():
    missing_sku = Facts(source=SourceFacts("PlatformImage", False, "Canonical:o:s"))
    missing_version = Facts(source=SourceFacts("PlatformImage", False, "Canonical:o:s", known_versions=("1.0.1",)))
    assert ("source.not-found", "properties.source.sku") in found(BODY, facts=missing_sku)
    assert ("source.not-found", "properties.source.version") in found(BODY, facts=missing_version)


def test_a_managed_image_source_must_be_in_the_build_region_and_subscription():
    body = body_with(properties__source={"type": "ManagedImage", "imageId": (
        "/subscriptions/other/resourceGroups/rg/providers/Microsoft.Compute/images/i")})
    facts = Facts(source=SourceFacts("ManagedImage", True, "i", location="westeurope", hyper_v_generation="V2"),
                  subscription="22222222-2222-2222-2222-222222222222")
    problems = found(body, facts=facts)
    assert ("source.managed-image-region", "properties.source.imageId") in problems
    assert ("source.managed-image-subscription", "properties.source.imageId") in problems


def test_a_gallery_version_source_must_be_replicated_to_the_build_region():
    body = body_with(properties__source={"type": "SharedImageVersion",
                                         "imageVersionId": GALLERY + "tl/versions/1.0.0"})
    facts = Facts(source=SourceFacts("SharedImageVersion", True, "tl 1.0.0", regions=("westeurope",),
                                     hyper_v_generation="V2", security_type="TrustedLaunchSupported"))
    assert ("source.not-replicated", "properties.source.imageVersionId") in found(body, facts=facts)


# --- Security types (pure; tests/builds/test_security_types.py runs them through the emulator) ------

@pytest.mark.parametrize("source, target, rules", [
    ("TrustedLaunchSupported", "TrustedLaunchSupported", set()),
    ("TrustedLaunchSupported", "TrustedLaunchAndConfidentialVmSupported", set()),
    ("TrustedLaunchSupported", "Standard", {"security.target-not-trusted-launch"}),
    ("TrustedLaunchSupported", "TrustedLaunch", {"security.target-unsupported"}),
    ("Standard", "TrustedLaunchSupported", {"security.target-standard-source"}),
    ("Standard", "Standard", set()),
    ("ConfidentialVMSupported", "ConfidentialVMSupported", set()),
    ("ConfidentialVMSupported", "TrustedLaunchSupported", {"security.target-not-confidential"}),
])
def test_gallery_targets_follow_the_security_type_rules(source, target, rules):
    facts = Facts(source=SourceFacts("PlatformImage", True, "s", security_type=source, hyper_v_generation="V2",
                                     architecture="x64"),
                  definitions={(GALLERY + "tl").lower(): DefinitionFacts(GALLERY + "tl", security_type=target,
                                                                         hyper_v_generation="V2")})
    assert {rule for rule, _ in found(BODY, facts=facts) if rule.startswith("security.")} == rules


@pytest.mark.parametrize("declared, generation, source, rules", [
    ("TrustedLaunch", "V2", "TrustedLaunchSupported", set()),
    ("TrustedLaunch", "V2", "Standard", {"security.declared-mismatch"}),
    ("Standard", "V2", "TrustedLaunchSupported", {"security.declared-mismatch"}),
    ("Standard", "V2", "Standard", set()),
    ("ConfidentialVM", "V2", "ConfidentialVMSupported", set()),
    ("ConfidentialVM", "V2", "TrustedLaunchAndConfidentialVmSupported", set()),
    ("ConfidentialVM", "V2", "TrustedLaunchSupported", {"security.declared-mismatch"}),
    ("TrustedLaunch", "V1", "TrustedLaunchSupported", {"security.needs-gen2", "security.generation-mismatch"}),
    ("Standard", "V1", "Standard", {"security.generation-mismatch"}),
])
def test_the_declared_security_type_and_generation_must_match_the_source(declared, generation, source, rules):
    facts = SourceFacts("PlatformImage", True, "s", security_type=source, hyper_v_generation="V2")
    problems = validation.check_declared(Declared(declared, generation), facts)
    assert {p.rule for p in problems} == rules
    assert all(p.path in ("security_type", "hyper_v_generation") for p in problems)


# --- Policy JSON ------------------------------------------------------------------------------------

def test_policy_rules_round_trip_and_ignore_bad_stored_values():
    rules = PolicyRules(allowed_hosts=("a.example.com",), require_checksums=True, max_build_timeout=120)
    assert PolicyRules.from_json(rules.as_json()) == rules
    assert PolicyRules.from_json({"require_checksums": "yes", "max_build_timeout": True}) == PolicyRules()
    assert PolicyRules.from_json(None) == PolicyRules()


@pytest.mark.parametrize("rules, path", [
    ({"allowed_hosts": ["https://example.com"]}, "allowed_hosts[0]"),
    ({"allowed_hosts": ["10.0.0.1"]}, "allowed_hosts[0]"),
    ({"allowed_hosts": ["metadata.azure.internal"]}, "allowed_hosts[0]"),
    ({"allowed_hosts": "example.com"}, "allowed_hosts"),
    ({"allowed_vm_sizes": ["D2"]}, "allowed_vm_sizes[0]"),
    ({"allowed_regions": ["East US!"]}, "allowed_regions[0]"),
    ({"max_build_timeout": 2000}, "max_build_timeout"),
    ({"max_build_timeout": 3}, "max_build_timeout"),
    ({"require_checksums": "true"}, "require_checksums"),
    ({"colour": "red"}, "colour"),
])
def test_it_explains_bad_policy_rules(rules, path):
    assert path in {p.path for p in validation.check_policy_rules(rules)}


def test_good_policy_rules_pass():
    assert validation.check_policy_rules({
        "allowed_hosts": ["files.example.com", "*.blob.core.windows.net"], "allowed_regions": ["East US", "westeurope"],
        "allowed_vm_sizes": ["Standard_D2ds_v5"], "required_tags": ["costCenter"], "max_build_timeout": 120,
        "require_checksums": True, "departments_may_run_elevated": False}) == []


# --- Layers -----------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_a_layer_extends_only_gold_versions_in_its_range(web):
    gold = factories.make_gold_version(version="2.0.0")
    layer = factories.make_layer(web, gold.gold_image, "app")
    layer_version = factories.make_layer_version(layer, accepts="^1.0")
    problems = validation.check_layer(layer_version, gold)
    assert [(p.rule, p.path) for p in problems] == [("layer.gold-range", "accepts")]
    other = factories.make_gold_version()
    assert [p.rule for p in validation.check_layer(layer_version, other)] == ["layer.gold-image"]


@pytest.mark.django_db
def test_a_layer_cannot_reuse_baseline_step_names_or_provenance_tags(web):
    gold = factories.make_gold_version(tags={"owner": "security"})
    layer = factories.make_layer(web, gold.gold_image, "app")
    layer_version = factories.make_layer_version(
        layer, customize=[{"type": "Shell", "name": "update", "inline": ["echo override"]}],
        tags={"goldsmith.gold": "fake", "owner": "web"})
    problems = {(p.rule, p.path, p.severity) for p in validation.check_layer(layer_version, gold)}
    assert ("layer.step-name-taken", "customize[0].name", "error") in problems
    assert ("layer.tag-reserved", "tags.goldsmith.gold", "error") in problems
    assert ("layer.tag-overridden", "tags.owner", "warning") in problems


@pytest.mark.django_db
def test_the_department_rules_apply_to_layer_steps(web):
    gold = factories.make_gold_version(factories.make_gold_image(os_type="Windows"), customize_before=[],
                                       customize_after=[], source={"type": "PlatformImage", "publisher": "p",
                                                                   "offer": "o", "sku": "s", "version": "latest"})
    layer = factories.make_layer(web, gold.gold_image, "app")
    layer_version = factories.make_layer_version(layer, customize=[
        {"type": "WindowsUpdate", "name": "wu"},
        {"type": "PowerShell", "name": "ps", "inline": ["x"], "runElevated": True, "runAsSystem": True}])
    strict = PolicyRules(departments_may_use_windows_update=False, departments_may_run_elevated=False)
    problems = {(p.rule, p.path) for p in validation.check_layer(layer_version, gold, policy=strict)}
    assert problems == {("policy.windows-update", "customize[0].type"), ("policy.run-elevated", "customize[1].runElevated"),
                        ("policy.run-elevated", "customize[1].runAsSystem")}
    assert validation.check_layer(layer_version, gold) == []


@pytest.mark.django_db
def test_a_composed_body_must_keep_the_baseline(web):
    gold = factories.make_gold_version()
    layer = factories.make_layer(web, gold.gold_image, "app")
    layer_version = factories.make_layer_version(layer)
    expected = compose.compose(gold, [layer_version], compose.BuildContext(location="eastus"))
    assert validation.check_composition(copy.deepcopy(expected), gold, [layer_version], expected=expected) == []
    tampered = copy.deepcopy(expected)
    tampered["properties"]["customize"].pop(0)
    tampered["properties"]["source"]["sku"] = "22_04-lts"
    tampered["properties"]["vmProfile"] = {"vmSize": "Standard_D64ds_v5"}
    tampered["properties"]["distribute"][0]["galleryImageId"] += "-other"
    tampered["identity"] = {"type": "UserAssigned", "userAssignedIdentities": {IDENTITY + "2": {}}}
    rules = {p.rule for p in validation.check_composition(tampered, gold, [layer_version], expected=expected)}
    assert rules == {"layer.baseline-changed", "layer.source-changed", "layer.vm-profile-changed",
                     "layer.distribution-changed", "layer.identity-changed"}


def test_summaries_list_every_group_in_order():
    problems = [schema.Problem("policy.vm-size", "x", "m"), schema.Problem("secret.inline", "y", "m", "warning")]
    results = validation.summarize(problems, {"schema", "policy", "secret"})
    assert [r.group for r in results] == list(validation.GROUPS)
    by_group = {r.group: r for r in results}
    assert by_group["schema"].passed and not by_group["policy"].passed and by_group["secret"].passed
    assert not by_group["source"].ran
