"""Every rule Goldsmith checks before Azure sees a template. Pure.

The functions here take domain objects (template bodies, gold image and layer versions), the
build policy (PolicyRules) and what the catalog look-ups found (Facts, gathered by
builds/preflight.py through builds/azure.py) and return Problems: a stable rule id, the JSON
path of the field at fault and a plain-language message that says how to fix it. Nothing
here does I/O, so the same rules run in the wizard, the layer forms, at build request time,
in the API and in `manage.py checktemplate`, and are unit-tested without Azure.

Rule ids are grouped by their first part (GROUPS): schema.* (builds/schema.py, delegated;
file.* counts as schema too, but needs the OS family, so it lives here),
source.*, security.*, distribute.*, vm.*, policy.*, secret.* and layer.*. docs/validation.md
lists every rule.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any
from urllib.parse import urlsplit

from builds import schema
from builds.compose import LAYER_NETWORK_KEYS
from builds.schema import Problem, join, listed
from builds.versions import VersionError, VersionRange
from portal.redact import find_secrets

# Check groups, in the order the Review step and the check page list them.
GROUPS: dict[str, str] = {
    "schema": "Template schema: field names, types, required values",
    "source": "Source image exists and can be used",
    "security": "Security type and Hyper-V generation",
    "distribute": "Distribution targets exist and fit the image",
    "vm": "Build VM size and OS disk",
    "policy": "Build policy",
    "secret": "No secrets in scripts or URLs",
    "layer": "Layers only extend the baseline",
    "region": "Regions exist and offer Image Builder",
    "vm-size": "Build VM size offered in the region and fits the image",
    "identity": "Template identity exists",
    "staging": "Staging resource group is usable",
    "permission": "Permissions of the template identity and the portal",
    "azure-policy": "Azure Policy allows the staging resources",
}
# Rules whose group is not their first part (Azure Policy, as opposed to the build policy).
_RULE_GROUPS = {"policy.deny": "azure-policy", "policy.not-checked": "azure-policy"}

STANDARD = "Standard"
TRUSTED_LAUNCH_SUPPORTED = "TrustedLaunchSupported"
CONFIDENTIAL_SUPPORTED = "ConfidentialVMSupported"
BOTH_SUPPORTED = "TrustedLaunchAndConfidentialVmSupported"
TRUSTED_LAUNCH_ONLY = "TrustedLaunch"
CONFIDENTIAL_ONLY = "ConfidentialVM"
SECURITY_TYPES = (STANDARD, TRUSTED_LAUNCH_SUPPORTED, CONFIDENTIAL_SUPPORTED, BOTH_SUPPORTED, TRUSTED_LAUNCH_ONLY,
                  CONFIDENTIAL_ONLY)
# Images that a Trusted Launch (or confidential) VM can be created from.
TRUSTED_LAUNCH_FAMILY = frozenset({TRUSTED_LAUNCH_SUPPORTED, BOTH_SUPPORTED})
CONFIDENTIAL_FAMILY = frozenset({CONFIDENTIAL_SUPPORTED, BOTH_SUPPORTED})
# Images that allow only one kind of VM: Image Builder cannot start from them or publish to them.
RESTRICTED = frozenset({TRUSTED_LAUNCH_ONLY, CONFIDENTIAL_ONLY})

PROVENANCE_PREFIX = "goldsmith."
# Hosts no build should ever download from: the instance metadata service, Azure's wire server
# and names that only mean something inside a network.
INTERNAL_HOSTS = frozenset({"169.254.169.254", "168.63.129.16", "metadata", "metadata.azure.internal",
                            "metadata.google.internal", "localhost", "instance-data", "fd00:ec2::254"})
INTERNAL_SUFFIXES = (".localhost", ".internal", ".local", ".localdomain")
_HOST_ENTRY = re.compile(r"^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$")
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]+|\d+)(\.(0x[0-9a-f]+|\d+)){0,3}\.?$", re.IGNORECASE)
_REGION = re.compile(r"^[a-z][a-z0-9]{2,39}$")
_VM_SIZE = re.compile(r"^Standard_[A-Za-z0-9_\-]{1,40}$")
_TAG_NAME = re.compile(r"^[^<>%&\\?/]{1,512}$")
# The choices of the policy's text rules ("" always means "left to the template").
POLICY_CHOICES: dict[str, tuple[str, ...]] = {
    "staging_resource_group": ("azure", "named"),
    "network": ("private", "public"),
    "isolated_builds": ("required", "forbidden"),
    "on_customizer_error": ("cleanup", "abort"),
    "on_validation_error": ("cleanup", "abort"),
    "vm_boot_optimization": ("Enabled", "Disabled"),
    "gallery_versioning": ("Latest", "Source"),
    "on_new_source": ("notify", "build"),
    "rollout_on_publish": ("plan", "start"),  # empty: rollouts are planned by hand
    "rollout_on_promote": ("plan", "start"),
}
_POLICY_INT_RANGES = {"max_build_timeout": (0, schema.MAX_BUILD_TIMEOUT), "max_replica_count": (0, 100),
                      "max_data_disk_size_gb": (0, 32767), "delete_revoked_after_days": (0, 3650)}


# --- Inputs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PolicyRules:
    """The security team's build policy (the JSON of a builds.models.Policy row, typed).

    Empty lists mean "no restriction" for hosts, VM sizes and regions. Whatever the policy
    says, script and file URLs must be https, name a host (not an IP literal), carry no user
    name or password and never point at link-local, loopback or metadata addresses.
    """

    allowed_hosts: tuple[str, ...] = ()  # "example.com" (exactly) or "*.example.com" (any subdomain)
    require_checksums: bool = False  # sha256Checksum required with every scriptUri and sourceUri
    allowed_vm_sizes: tuple[str, ...] = ()
    allowed_regions: tuple[str, ...] = ()  # the build region and every distribution region
    required_tags: tuple[str, ...] = ()  # tag names every template must carry, with a value
    max_build_timeout: int = 0  # minutes; 0 = Azure's own limit (960)
    departments_may_use_windows_update: bool = True
    departments_may_run_elevated: bool = True
    # A department layer may choose the build network (subnetId, proxyVmSize), within network,
    # allowed_subnets and allowed_proxy_vm_sizes (check_layer_network).
    layers_may_set_network: bool = True
    # Enterprise settings: "" / empty / 0 / True leave each one to the template.
    staging_resource_group: str = ""  # "azure": leave it to Image Builder; "named": the template must name one
    staging_resource_group_prefix: str = ""  # a named group's name must start with this ("ours")
    required_managed_resource_tags: tuple[str, ...] = ()  # "name" (any value) or "name=value" (that value)
    network: str = ""  # "private": builds only in a given subnet; "public": no vnetConfig
    allowed_subnets: tuple[str, ...] = ()  # subnet ids, or VNet ids (any subnet of it)
    isolated_builds: str = ""  # "required" / "forbidden": containerInstanceSubnetId
    allowed_proxy_vm_sizes: tuple[str, ...] = ()
    on_customizer_error: str = ""  # "cleanup" / "abort": errorHandling.onCustomizerError must be this
    on_validation_error: str = ""  # "cleanup" / "abort"
    vm_boot_optimization: str = ""  # "Enabled" / "Disabled": optimize.vmBoot.state must be this
    max_replica_count: int = 0  # per target region; 0: Azure's limit
    allowed_storage_account_types: tuple[str, ...] = ()  # per target region
    gallery_versioning: str = ""  # "Latest" / "Source": gallery targets must use this scheme
    additional_data_disks: bool = True  # False: additionalDataDisks forbidden
    max_data_disk_size_gb: int = 0  # 0: no limit
    # Days after a gold version's revocation when its gallery image versions are deleted (a
    # publish request of kind "deletion", approved by a second person; builds/release.py). 0: never.
    delete_revoked_after_days: int = 0
    # What the source watch does when a newer source version is listed (builds/sourcewatch.py):
    # "notify" (also when empty) announces it; "build" also requests a gold-only build on it.
    on_new_source: str = ""
    # What publishing a gold version, or promoting it to a channel, does to its dependent layers
    # (builds/rollouts.py, rollout_on_release): "" nothing (rollouts are planned by hand), "plan"
    # a planned rollout for the security team to check and start, "start" a started one.
    rollout_on_publish: str = ""
    rollout_on_promote: str = ""

    @classmethod
    def from_json(cls, data: Any) -> PolicyRules:
        """Typed rules from stored JSON; unknown keys and wrong types fall back to the defaults
        (the policy page refuses them before they are stored, see check_policy_rules)."""
        if not isinstance(data, dict):
            return cls()
        values: dict[str, Any] = {}
        for item in fields(cls):
            value = data.get(item.name)
            default = item.default
            if isinstance(default, tuple) and isinstance(value, list | tuple):
                values[item.name] = tuple(str(v).strip() for v in value if str(v).strip())
            elif type(default) is type(value) and type(value) in (bool, int, str):
                values[item.name] = value.strip() if isinstance(value, str) else value
        return cls(**values)

    def as_json(self) -> dict[str, Any]:
        return {item.name: list(value) if isinstance(value := getattr(self, item.name), tuple) else value
                for item in fields(self)}


@dataclass(frozen=True)
class SourceFacts:
    """What the catalog says about a template's source image."""

    kind: str  # PlatformImage, ManagedImage, SharedImageVersion
    found: bool
    label: str  # how to name it in a message
    version: str = ""  # the concrete version ("latest" resolved)
    security_type: str = STANDARD
    hyper_v_generation: str = ""  # V1, V2; "" when unknown
    architecture: str = ""  # x64, Arm64
    os_type: str = ""  # Linux, Windows
    os_state: str = "Generalized"
    os_disk_size_gb: int | None = None
    plan: tuple[str, str, str] | None = None  # (name, product, publisher) of a Marketplace plan
    deprecation_state: str = ""  # Active, ScheduledForDeprecation, Deprecated
    location: str = ""  # a managed image's region
    subscription: str = ""  # a managed image's subscription
    regions: tuple[str, ...] = ()  # where a gallery version is replicated
    known_versions: tuple[str, ...] = ()  # a Marketplace SKU's versions, when the asked one is missing


@dataclass(frozen=True)
class DefinitionFacts:
    """A gallery image definition a template distributes to."""

    id: str
    security_type: str = STANDARD
    hyper_v_generation: str = "V1"
    architecture: str = "x64"
    os_type: str = ""
    os_state: str = "Generalized"


@dataclass(frozen=True)
class Facts:
    """Look-up results for one template. `source` None means the look-ups did not run."""

    source: SourceFacts | None = None
    definitions: Mapping[str, DefinitionFacts | None] = field(default_factory=dict)  # by lower-case id
    existing_versions: frozenset[str] = frozenset()  # explicit gallery version ids (lower case) that exist
    problems: tuple[Problem, ...] = ()  # look-ups that failed or were skipped
    subscription: str = ""  # the subscription the build runs in


@dataclass(frozen=True)
class Declared:
    """What a gold image version says about itself (checked against the source)."""

    security_type: str  # Standard, TrustedLaunch, ConfidentialVM (builds.models.SecurityType)
    hyper_v_generation: str  # V1, V2
    os_type: str = ""


@dataclass(frozen=True)
class CheckResult:
    group: str
    title: str
    ran: bool
    problems: tuple[Problem, ...]

    @property
    def passed(self) -> bool:
        return self.ran and not any(problem.severity == "error" for problem in self.problems)

    @property
    def not_checked(self) -> bool:
        """Nothing refused, but part of it could not be checked (a size Goldsmith does not know, a
        look-up Goldsmith may not make): pages say "not checked", not "passed"."""
        return self.passed and any(unchecked(problem) for problem in self.problems)


def unchecked(problem: Problem) -> bool:
    """A warning that says a check could not be made (`*.not-checked`, `vm.size-unknown`)."""
    return problem.severity != "error" and (problem.rule.endswith(".not-checked") or problem.rule == "vm.size-unknown")


# --- VM sizes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SizeFamily:
    name: str
    pattern: re.Pattern[str]
    gen1: bool
    gen2: bool
    confidential: bool = False
    architecture: str = "x64"
    example: str = ""


def _family(name: str, pattern: str, gen1: bool, gen2: bool, *, confidential: bool = False,
            architecture: str = "x64", example: str = "") -> SizeFamily:
    return SizeFamily(name, re.compile(pattern, re.IGNORECASE), gen1, gen2, confidential, architecture, example)


# A deliberately small table of the families builds use, matched on the part after
# "Standard_". The first match wins, so specific families come before general ones. Sizes not
# listed are not refused: the rule warns that Goldsmith cannot vouch for them.
VM_SIZE_FAMILIES: tuple[SizeFamily, ...] = (
    _family("Av2", r"^A\d+m?_v2$", True, False, example="Standard_A2_v2"),
    _family("Dv2/Dv3 (no premium storage)", r"^D\d+_v[23]$", True, False, example="Standard_D2_v3"),
    _family("DSv2", r"^DS\d+(-\d+)?_v2$", True, True, example="Standard_DS2_v2"),
    _family("Dpsv5/Dpsv6 (Arm64)", r"^D\d+pl?d?s_v[56]$", False, True, architecture="Arm64",
            example="Standard_D2ps_v5"),
    _family("Epsv5/Epsv6 (Arm64)", r"^E\d+pd?s_v[56]$", False, True, architecture="Arm64",
            example="Standard_E2ps_v5"),
    _family("Bpsv2 (Arm64)", r"^B\d+pl?s_v2$", False, True, architecture="Arm64", example="Standard_B2ps_v2"),
    _family("DCasv5/DCadsv5/DCesv5 (confidential)", r"^DC\d+[ae]d?s_v[56]$", False, True, confidential=True,
            example="Standard_DC2as_v5"),
    _family("ECasv5/ECadsv5/ECesv5 (confidential)", r"^EC\d+[ae]d?s_v[56]$", False, True, confidential=True,
            example="Standard_EC2as_v5"),
    _family("DCsv2/DCsv3 (SGX enclaves)", r"^DC\d+d?s_v[23]$", False, True, example="Standard_DC2s_v3"),
    _family("Dv4/Dv5 and variants", r"^D\d+a?l?d?s?_v[45]$", True, True, example="Standard_D2ds_v5"),
    _family("Dsv3", r"^D\d+s_v3$", True, True, example="Standard_D2s_v3"),
    _family("Ev3/Ev4/Ev5 and variants", r"^E\d+(-\d+)?a?d?s?_v[345]$", True, True, example="Standard_E2ds_v5"),
    _family("Dv6/Ev6 (NVMe)", r"^[DE]\d+a?l?d?s?_v6$", False, True, example="Standard_D2ds_v6"),
    _family("B-series", r"^B\d+(ls|s|ms|ts|als|as)(_v2)?$", True, True, example="Standard_B2s"),
    _family("Fsv2", r"^F\d+s_v2$", True, True, example="Standard_F2s_v2"),
    _family("F/Fs", r"^F\d+s?$", True, False, example="Standard_F2s"),
    _family("Lsv2/Lsv3", r"^L\d+a?s_v[23]$", True, True, example="Standard_L8s_v3"),
)
# What Image Builder uses when vmSize is empty (aib-reference §2.7).
DEFAULT_VM_SIZE = {"V1": "Standard_D1_v2", "V2": "Standard_D2ds_v4"}


def size_family(vm_size: str) -> SizeFamily | None:
    name = vm_size[len("Standard_"):] if vm_size.lower().startswith("standard_") else vm_size
    return next((family for family in VM_SIZE_FAMILIES if family.pattern.match(name)), None)


# --- The whole template -------------------------------------------------------------------------


def check_template(body: Any, *, policy: PolicyRules | None = None, facts: Facts | None = None,
                   os_type: str | None = None, declared: Declared | None = None) -> list[Problem]:
    """Every rule for one template body (the exact PUT body Azure would receive).

    `facts` None skips the catalog rules (source, security, distribution targets, build VM
    generation and disk); `declared` adds the gold version's declared security type and
    generation (paths `security_type`, `hyper_v_generation`); `os_type` adds the OS-family
    step rules. Returns errors and warnings; schema.errors() keeps the refusals.
    """
    policy = policy or PolicyRules()
    problems = schema.check_template(body)
    if not isinstance(body, dict):
        return problems
    props = body.get("properties") if isinstance(body.get("properties"), dict) else {}
    if os_type:
        problems += _os_type_problems(props, os_type)
    problems += check_policy(body, policy)
    problems += check_secrets(body)
    if facts is not None:
        problems += list(facts.problems)
        problems += check_catalog(body, facts, declared=declared, os_type=os_type)
    if declared is not None:
        problems += check_declared(declared, facts.source if facts else None)
    return schema.dedupe(problems)


def _os_type_problems(props: dict, os_type: str) -> list[Problem]:
    problems: list[Problem] = []
    for index, step in enumerate(listed(props.get("customize"))):
        path = f"properties.customize[{index}]"
        problems += [p for p in schema.check_customizer(step, path, os_type=os_type)
                     if p.rule == "schema.os-mismatch"]
        problems += check_file_destination(step, path, os_type=os_type)
    validate = props.get("validate") if isinstance(props.get("validate"), dict) else {}
    for index, step in enumerate(listed(validate.get("inVMValidations"))):
        path = f"properties.validate.inVMValidations[{index}]"
        problems += [p for p in schema.check_validator(step, path, os_type=os_type)
                     if p.rule == "schema.os-mismatch"]
        problems += check_file_destination(step, path, os_type=os_type)
    return problems


# Rules that need the image's OS family, which the schema rules of a bare body cannot know:
# publishing runs them with the other non-schema rules (preflight.publish_problems).
OS_FAMILY_RULES = frozenset({"schema.os-mismatch", "file.destination-not-writable"})
LINUX_WRITABLE_DIR = "/tmp"  # noqa: S108 (the build VM's path Image Builder writes to, not ours)


def check_file_destination(step: Any, path: str, *, os_type: str | None) -> list[Problem]:
    """A Linux File step must write under /tmp: Image Builder uploads the file as the build
    user, before any sudo, and /tmp is the only folder it may write to (aib-reference §2.4).
    The fix is to upload to /tmp and move the file into place with a Shell step. On Windows
    the folder only has to exist, which nothing but the build can tell."""
    if os_type != "Linux" or not isinstance(step, dict) or step.get("type") != "File":
        return []
    destination = step.get("destination")
    if not isinstance(destination, str) or not destination.strip() or schema.is_placeholder(destination):
        return []  # a missing destination is schema.missing-field; a sample's placeholder is not a path
    # normpath so that /tmp/../etc/x is seen for what it is; a relative path is refused too.
    normalized = posixpath.normpath(destination.strip())
    if normalized == LINUX_WRITABLE_DIR or normalized.startswith(LINUX_WRITABLE_DIR + "/"):
        return []
    name = posixpath.basename(normalized) or "file"
    return [Problem("file.destination-not-writable", join(path, "destination"),
                    f"Image Builder's File step can only write under /tmp on Linux, so '{destination}' would fail "
                    f"the build. Upload the file to /tmp/{name}, then move it into place with a Shell step: "
                    f"sudo mv /tmp/{name} {normalized}")]


def steps_with_paths(body: dict) -> list[tuple[str, dict]]:
    """(path, step) of every customizer and in-VM validator of a body."""
    props = body.get("properties") if isinstance(body.get("properties"), dict) else {}
    found = [(f"properties.customize[{i}]", step) for i, step in enumerate(listed(props.get("customize")))]
    validate = props.get("validate") if isinstance(props.get("validate"), dict) else {}
    found += [(f"properties.validate.inVMValidations[{i}]", step)
              for i, step in enumerate(listed(validate.get("inVMValidations")))]
    return [(path, step) for path, step in found if isinstance(step, dict)]


# --- Policy ---------------------------------------------------------------------------------------


def check_policy(body: dict, policy: PolicyRules) -> list[Problem]:
    """The policy's rules on a template: URLs, checksums, VM size, regions, tags, timeout."""
    problems: list[Problem] = []
    for path, step in steps_with_paths(body):
        problems += check_step_policy(step, path, policy)
    props = body.get("properties") if isinstance(body.get("properties"), dict) else {}
    workload = (props.get("optimize") or {}).get("workload") if isinstance(props.get("optimize"), dict) else None
    if isinstance(workload, dict) and isinstance(workload.get("scriptUri"), str) and workload["scriptUri"]:
        where = "properties.optimize.workload"
        problems += check_uri(workload["scriptUri"], join(where, "scriptUri"), policy)
        if policy.require_checksums and not workload.get("sha256Checksum"):
            problems.append(_checksum_problem(join(where, "sha256Checksum")))
    vm_profile = props.get("vmProfile") if isinstance(props.get("vmProfile"), dict) else {}
    size = vm_profile.get("vmSize")
    if policy.allowed_vm_sizes and isinstance(size, str):
        allowed = {item.lower() for item in policy.allowed_vm_sizes}
        if size and size.lower() not in allowed:
            problems.append(Problem("policy.vm-size", "properties.vmProfile.vmSize",
                                    f"The build policy does not allow {size}; use one of "
                                    f"{', '.join(policy.allowed_vm_sizes)}."))
        elif not size:
            problems.append(Problem("policy.vm-size", "properties.vmProfile.vmSize",
                                    "The build policy lists the VM sizes builds may use; choose one of "
                                    f"{', '.join(policy.allowed_vm_sizes)} (an empty size lets Azure pick another)."))
    if policy.allowed_regions:
        problems += _region_problems(body, props, policy)
    tags = body.get("tags") if isinstance(body.get("tags"), dict) else {}
    for name in policy.required_tags:
        value = tags.get(name)
        if not (isinstance(value, str) and value.strip()):
            problems.append(Problem("policy.tag-required", join("tags", name),
                                    f"The build policy requires a '{name}' tag with a value; add it to the tags."))
    problems += check_enterprise_policy(props, policy)
    if policy.max_build_timeout:
        timeout = props.get("buildTimeoutInMinutes")
        effective = 240 if timeout in (None, 0) else timeout
        if isinstance(effective, int) and not isinstance(effective, bool) and effective > policy.max_build_timeout:
            shown = "0 (Azure's default of 240 minutes)" if timeout in (None, 0) else f"{timeout} minutes"
            problems.append(Problem("policy.build-timeout", "properties.buildTimeoutInMinutes",
                                    f"The build policy allows builds of at most {policy.max_build_timeout} minutes; "
                                    f"this template asks for {shown}. Set buildTimeoutInMinutes to "
                                    f"{policy.max_build_timeout} or less (and at least 6)."))
    return problems


def check_enterprise_policy(props: dict, policy: PolicyRules) -> list[Problem]:
    """The policy on staging group, managed resource tags, network, error handling, boot
    optimization, gallery replicas and versioning, and additional data disks."""
    problems: list[Problem] = []
    p = "properties"
    staging = props.get("stagingResourceGroup") if isinstance(props.get("stagingResourceGroup"), str) else ""
    if policy.staging_resource_group == "azure" and staging:
        problems.append(Problem("policy.staging-resource-group", f"{p}.stagingResourceGroup",
                                "The build policy leaves the staging resource group to Image Builder: remove "
                                "stagingResourceGroup."))
    if policy.staging_resource_group == "named" and not staging:
        problems.append(Problem("policy.staging-resource-group", f"{p}.stagingResourceGroup",
                                "The build policy requires a named staging resource group: set stagingResourceGroup."))
    prefix = policy.staging_resource_group_prefix
    if prefix and staging and not staging.rstrip("/").rsplit("/", 1)[-1].lower().startswith(prefix.lower()):
        problems.append(Problem("policy.staging-prefix", f"{p}.stagingResourceGroup",
                                f"The build policy requires the staging resource group's name to start with "
                                f"'{prefix}' (a group Goldsmith names)."))
    tags = props.get("managedResourceTags") if isinstance(props.get("managedResourceTags"), dict) else {}
    for entry in policy.required_managed_resource_tags:
        name, has_value, value = (part.strip() for part in entry.partition("="))
        found = tags.get(name)
        if not (isinstance(found, str) and found.strip()) or (has_value and found != value):
            wanted = f"'{name}' = '{value}'" if has_value else f"'{name}' with a value"
            problems.append(Problem("policy.managed-resource-tag", f"{p}.managedResourceTags.{name}",
                                    f"The build policy requires the tag {wanted} on the resources Image Builder "
                                    "creates: add it to managedResourceTags."))
    profile = props.get("vmProfile") if isinstance(props.get("vmProfile"), dict) else {}
    vnet = profile.get("vnetConfig") if isinstance(profile.get("vnetConfig"), dict) else {}
    where = f"{p}.vmProfile.vnetConfig"
    if policy.network == "private" and not vnet.get("subnetId"):
        problems.append(Problem("policy.network", f"{where}.subnetId",
                                "The build policy allows builds only in private networks: choose a subnet (subnetId)."))
    if policy.network == "public" and vnet:
        problems.append(Problem("policy.network", where,
                                "The build policy does not allow builds in your own network: remove vnetConfig."))
    if policy.allowed_subnets:
        for key in ("subnetId", "containerInstanceSubnetId"):
            value = vnet.get(key)
            if isinstance(value, str) and value and not any(
                    value.lower() == item.lower() or value.lower().startswith(item.lower().rstrip("/") + "/subnets/")
                    for item in policy.allowed_subnets):
                problems.append(Problem("policy.subnet", f"{where}.{key}",
                                        f"The build policy does not allow this subnet; use one of "
                                        f"{', '.join(policy.allowed_subnets)}."))
    if policy.isolated_builds == "required" and not vnet.get("containerInstanceSubnetId"):
        problems.append(Problem("policy.isolated-build", f"{where}.containerInstanceSubnetId",
                                "The build policy requires isolated builds: set containerInstanceSubnetId (a subnet "
                                "delegated to Azure Container Instances)."))
    if policy.isolated_builds == "forbidden" and vnet.get("containerInstanceSubnetId"):
        problems.append(Problem("policy.isolated-build", f"{where}.containerInstanceSubnetId",
                                "The build policy does not allow isolated builds: remove containerInstanceSubnetId."))
    proxy = vnet.get("proxyVmSize")
    if policy.allowed_proxy_vm_sizes and isinstance(proxy, str) and proxy and \
            proxy.lower() not in {item.lower() for item in policy.allowed_proxy_vm_sizes}:
        problems.append(Problem("policy.proxy-vm-size", f"{where}.proxyVmSize",
                                f"The build policy does not allow {proxy}; use one of "
                                f"{', '.join(policy.allowed_proxy_vm_sizes)}."))
    handling = props.get("errorHandling") if isinstance(props.get("errorHandling"), dict) else {}
    for rule, key in ((policy.on_customizer_error, "onCustomizerError"), (policy.on_validation_error,
                                                                          "onValidationError")):
        actual = handling.get(key) or "cleanup"  # Azure's default
        if rule and actual != rule:
            problems.append(Problem("policy.error-handling", f"{p}.errorHandling.{key}",
                                    f"The build policy requires {key} '{rule}'; set it to {rule}."))
    boot = ((props.get("optimize") or {}).get("vmBoot") or {}) if isinstance(props.get("optimize"), dict) else {}
    state = boot.get("state") if isinstance(boot, dict) else None
    if policy.vm_boot_optimization and (state or "Disabled") != policy.vm_boot_optimization:
        problems.append(Problem("policy.vm-boot", f"{p}.optimize.vmBoot.state",
                                f"The build policy requires boot optimization {policy.vm_boot_optimization}: set "
                                f"optimize.vmBoot.state to {policy.vm_boot_optimization}."))
    for index, target in enumerate(listed(props.get("distribute"))):
        if not isinstance(target, dict) or target.get("type") != "SharedImage":
            continue
        at = f"{p}.distribute[{index}]"
        for number, region in enumerate(listed(target.get("targetRegions"))):
            if not isinstance(region, dict):
                continue
            count = region.get("replicaCount")
            if policy.max_replica_count and isinstance(count, int) and count > policy.max_replica_count:
                problems.append(Problem("policy.replica-count", f"{at}.targetRegions[{number}].replicaCount",
                                        f"The build policy allows at most {policy.max_replica_count} replicas per "
                                        "region."))
            kind = region.get("storageAccountType") or "Standard_LRS"
            if policy.allowed_storage_account_types and kind not in policy.allowed_storage_account_types:
                problems.append(Problem("policy.storage-account-type",
                                        f"{at}.targetRegions[{number}].storageAccountType",
                                        f"The build policy does not allow {kind}; use one of "
                                        f"{', '.join(policy.allowed_storage_account_types)}."))
        versioning = target.get("versioning") if isinstance(target.get("versioning"), dict) else {}
        explicit = "/versions/" in str(target.get("galleryImageId") or "").lower()
        if policy.gallery_versioning and not explicit and versioning.get("scheme") != policy.gallery_versioning:
            problems.append(Problem("policy.versioning", f"{at}.versioning",
                                    f"The build policy requires gallery versioning scheme "
                                    f"'{policy.gallery_versioning}': set versioning.scheme."))
    disks = listed(props.get("additionalDataDisks"))
    if disks and not policy.additional_data_disks:
        problems.append(Problem("policy.data-disks", f"{p}.additionalDataDisks",
                                "The build policy does not allow additional data disks: remove additionalDataDisks."))
    for index, disk in enumerate(disks):
        size = disk.get("sizeGB") if isinstance(disk, dict) else None
        if policy.max_data_disk_size_gb and isinstance(size, int) and size > policy.max_data_disk_size_gb:
            problems.append(Problem("policy.data-disk-size", f"{p}.additionalDataDisks[{index}].sizeGB",
                                    f"The build policy allows data disks of at most {policy.max_data_disk_size_gb} GB."))
    return problems


def _region_problems(body: dict, props: dict, policy: PolicyRules) -> list[Problem]:
    allowed = {normalize_region(item) for item in policy.allowed_regions}
    shown = ", ".join(policy.allowed_regions)
    problems: list[Problem] = []

    def check(value: Any, path: str, what: str) -> None:
        if isinstance(value, str) and value and not schema.is_placeholder(value) and normalize_region(value) not in allowed:
            problems.append(Problem("policy.region", path,
                                    f"The build policy does not allow {what} in '{value}'; use one of {shown}."))

    check(body.get("location"), "location", "builds")
    for index, target in enumerate(listed(props.get("distribute"))):
        if not isinstance(target, dict):
            continue
        where = f"properties.distribute[{index}]"
        check(target.get("location"), join(where, "location"), "images")
        for number, region in enumerate(listed(target.get("targetRegions"))):
            if isinstance(region, dict):
                check(region.get("name"), f"{where}.targetRegions[{number}].name", "replicas")
        for number, region in enumerate(listed(target.get("replicationRegions"))):
            check(region, f"{where}.replicationRegions[{number}]", "replicas")
    return problems


def check_step_policy(step: dict, path: str, policy: PolicyRules) -> list[Problem]:
    """URL and checksum rules for one customizer or validator."""
    problems: list[Problem] = []
    for key in ("scriptUri", "sourceUri"):
        uri = step.get(key)
        if isinstance(uri, str) and uri:
            problems += check_uri(uri, join(path, key), policy)
            if policy.require_checksums and not step.get("sha256Checksum"):
                problems.append(_checksum_problem(join(path, "sha256Checksum")))
    return problems


def _checksum_problem(path: str) -> Problem:
    return Problem("policy.checksum-required", path,
                   "The build policy requires a sha256Checksum for every downloaded script or file: add the file's "
                   "SHA-256 (e.g. from `sha256sum FILE`), in lower-case hex.")


def check_uri(uri: str, path: str, policy: PolicyRules) -> list[Problem]:
    """Where a build may download scripts and files from (the policy's host rules)."""
    if schema.is_placeholder(uri):
        return [Problem("policy.uri-placeholder", path, f"'{uri}' is a placeholder: put the https URL of the file here.")]
    try:
        parts = urlsplit(uri.strip())
        host = (parts.hostname or "").rstrip(".")
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        return [Problem("policy.uri-invalid", path, "is not a valid URL: use https://host/path/to/file.")]
    if parts.scheme.lower() != "https":
        return [Problem("policy.uri-https", path,
                        f"Scripts and files must be downloaded over https, not {parts.scheme or 'a bare path'}: "
                        "use an https:// URL.")]
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return [Problem("policy.uri-userinfo", path,
                        "The URL carries a user name or password: remove it (the build VM's managed identity "
                        "or a public URL is the way to reach the file).")]
    if not host:
        return [Problem("policy.uri-invalid", path, "names no host: use https://host/path/to/file.")]
    host = host.lower()
    address = _ip_address(host)
    if _internal(host, address):
        return [Problem("policy.uri-internal", path,
                        f"'{host}' is a link-local, loopback or metadata address; builds may not download from it. "
                        "Publish the file on an allowed https host.")]
    if address is not None or _NUMERIC_HOST.match(host):
        return [Problem("policy.uri-ip", path,
                        f"'{host}' is an IP address; the build policy needs a host name it can check. Use the "
                        "server's DNS name.")]
    if policy.allowed_hosts and not host_allowed(host, policy.allowed_hosts):
        return [Problem("policy.uri-host", path,
                        f"The build policy does not allow downloads from '{host}'; allowed hosts: "
                        f"{', '.join(policy.allowed_hosts)}. Move the file or ask the security team.")]
    return []


def host_allowed(host: str, allowed: Iterable[str]) -> bool:
    host = host.lower().rstrip(".")
    for entry in allowed:
        entry = entry.lower().strip()
        if entry.startswith("*."):
            if host.endswith(entry[1:]) and host != entry[2:]:
                return True
        elif host == entry:
            return True
    return False


def _ip_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        return None


def _internal(host: str, address) -> bool:
    """Link-local, loopback, metadata or single-label (intranet) hosts."""
    if address is None and _NUMERIC_HOST.match(host):
        try:  # 2130706433 or 0x7f.1 are what a resolver makes of them: 127.0.0.1
            import socket

            address = ipaddress.ip_address(socket.inet_aton(host.rstrip(".")))
        except (OSError, ValueError):
            return False
    if address is None:
        return host in INTERNAL_HOSTS or host.endswith(INTERNAL_SUFFIXES) or "." not in host
    address = getattr(address, "ipv4_mapped", None) or address
    return bool(address.is_link_local or address.is_loopback or address.is_unspecified or address.is_multicast
                or str(address) in INTERNAL_HOSTS)


def normalize_region(name: str) -> str:
    return re.sub(r"\s+", "", name or "").lower()


def check_policy_rules(data: Any) -> list[Problem]:
    """What is wrong with policy JSON the security team submits (paths are the rule names)."""
    if not isinstance(data, dict):
        return [Problem("policy.rules", "", "The policy must be a JSON object.")]
    problems: list[Problem] = []
    known = {item.name: item.default for item in fields(PolicyRules)}
    for key, value in data.items():
        if key not in known:
            problems.append(Problem("policy.unknown-rule", key, f"'{key}' is not a policy rule; the rules are "
                                                                 f"{', '.join(known)}."))
            continue
        default = known[key]
        if isinstance(default, tuple):
            if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
                problems.append(Problem("policy.rules", key, "must be a list of names."))
                continue
            problems += _list_rule_problems(key, value)
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                problems.append(Problem("policy.rules", key, "must be true or false."))
        elif isinstance(default, str):
            if value not in ("", *POLICY_CHOICES.get(key, ())) and key in POLICY_CHOICES:
                problems.append(Problem("policy.rules", key, f"must be one of {', '.join(POLICY_CHOICES[key])} or "
                                                             "empty (left to the template)."))
            elif not isinstance(value, str):
                problems.append(Problem("policy.rules", key, "must be text."))
            elif key == "staging_resource_group_prefix" and value and not re.fullmatch(r"[-\w._()]{1,80}", value):
                problems.append(Problem("policy.rules", key, "must be the start of a resource group name."))
        elif key != "max_build_timeout":
            low, high = _POLICY_INT_RANGES[key]
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                never = "never" if key == "delete_revoked_after_days" else "no limit"
                problems.append(Problem("policy.rules", key, f"must be a number from {low} to {high} (0: {never})."))
        elif not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= schema.MAX_BUILD_TIMEOUT:
            problems.append(Problem("policy.rules", key,
                                    f"must be a number of minutes from 6 to {schema.MAX_BUILD_TIMEOUT} (0: no limit)."))
        elif 0 < value < 6:
            problems.append(Problem("policy.rules", key, "Builds shorter than 6 minutes fail; use at least 6."))
    return problems


def _list_rule_problems(key: str, values: list[str]) -> list[Problem]:
    problems: list[Problem] = []
    for index, value in enumerate(values):
        where = f"{key}[{index}]"
        value = value.strip()
        if key == "allowed_hosts":
            if not _HOST_ENTRY.match(value.lower()) or _ip_address(value) or _NUMERIC_HOST.match(value):
                problems.append(Problem("policy.rules", where,
                                        f"'{value}' is not a host name: give a DNS name such as files.example.com, "
                                        "or *.example.com for its subdomains (no scheme, port, path or IP)."))
            elif _internal(value.lower().removeprefix("*."), None):
                problems.append(Problem("policy.rules", where, f"'{value}' is an internal or metadata host."))
        elif key == "allowed_vm_sizes" and not _VM_SIZE.match(value):
            problems.append(Problem("policy.rules", where, f"'{value}' is not a VM size such as Standard_D2ds_v5."))
        elif key == "allowed_regions" and not _REGION.match(normalize_region(value)):
            problems.append(Problem("policy.rules", where, f"'{value}' is not an Azure region such as eastus."))
        elif key == "required_tags" and not _TAG_NAME.match(value):
            problems.append(Problem("policy.rules", where, f"'{value}' is not a valid tag name."))
        elif key == "required_managed_resource_tags" and not _TAG_NAME.match(value.partition("=")[0].strip()):
            problems.append(Problem("policy.rules", where, f"'{value}' is not a tag name or name=value."))
        elif key == "allowed_subnets" and not re.match(
                r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Network/virtualNetworks/[^/]+"
                r"(/subnets/[^/]+)?$", value, re.IGNORECASE):
            problems.append(Problem("policy.rules", where, f"'{value}' is not a virtual network or subnet id."))
        elif key == "allowed_proxy_vm_sizes" and not _VM_SIZE.match(value):
            problems.append(Problem("policy.rules", where, f"'{value}' is not a VM size such as Standard_A1_v2."))
        elif key == "allowed_storage_account_types" and value not in schema.STORAGE_ACCOUNT_TYPES:
            problems.append(Problem("policy.rules", where, f"'{value}' is not one of "
                                                           f"{', '.join(schema.STORAGE_ACCOUNT_TYPES)}."))
    return problems


# --- Secrets ---------------------------------------------------------------------------------------

_SECRET_FIX = ("Secrets in a template are stored by Azure and readable by anyone who can read the template: fetch "
               "them at build time with the build VM's managed identity (for example from Key Vault) instead.")


def check_secrets(body: dict) -> list[Problem]:
    problems: list[Problem] = []
    for path, step in steps_with_paths(body):
        problems += check_step_secrets(step, path)
    return problems


def check_step_secrets(step: dict, path: str) -> list[Problem]:
    """Secret-looking content in a step's inline commands (with the line) and its other strings."""
    problems: list[Problem] = []
    line = 0
    for index, command in enumerate(listed(step.get("inline"))):
        if not isinstance(command, str):
            continue
        for finding in find_secrets(command):
            problems.append(Problem("secret.inline", f"{path}.inline[{index}]",
                                    f"Line {line + finding.line} of the inline commands looks like it holds a "
                                    f"{finding.kind}. {_SECRET_FIX}"))
        line += max(1, len(command.splitlines()))
    for key in ("scriptUri", "sourceUri", "restartCommand", "restartCheckCommand", "searchCriteria", "destination"):
        value = step.get(key)
        if isinstance(value, str) and value:
            for finding in find_secrets(value)[:1]:
                problems.append(Problem("secret.value", join(path, key),
                                        f"This value looks like it holds a {finding.kind}. {_SECRET_FIX}"))
    for index, value in enumerate(listed(step.get("filters"))):
        if isinstance(value, str) and find_secrets(value):
            problems.append(Problem("secret.value", f"{path}.filters[{index}]",
                                    f"This filter looks like it holds a {find_secrets(value)[0].kind}. {_SECRET_FIX}"))
    return problems


# --- Catalog facts: source, security types, distribution targets, build VM ---------------------------


def check_catalog(body: dict, facts: Facts, *, declared: Declared | None = None,
                  os_type: str | None = None) -> list[Problem]:
    props = body.get("properties") if isinstance(body.get("properties"), dict) else {}
    source = facts.source
    problems: list[Problem] = []
    source_dict = props.get("source") if isinstance(props.get("source"), dict) else {}
    if source is not None:
        problems += check_source(source_dict, source, location=str(body.get("location") or ""),
                                 os_type=os_type or (declared.os_type if declared else ""),
                                 subscription=facts.subscription)
    usable = source if source is not None and source.found else None
    distribute = [target for target in listed(props.get("distribute"))]
    problems += check_distribution(distribute, usable, facts, declared=declared, os_type=os_type)
    vm_profile = props.get("vmProfile") if isinstance(props.get("vmProfile"), dict) else {}
    if usable is not None:
        problems += check_build_vm(vm_profile, usable, declared=declared)
    return problems


def check_source(source: dict, facts: SourceFacts, *, location: str = "", os_type: str = "",
                 subscription: str = "") -> list[Problem]:
    """The source exists where the build runs, carries its plan, is generalized and supported."""
    kind = facts.kind
    where = "properties.source"
    if not facts.found:
        if kind == "PlatformImage":
            if facts.known_versions:
                newest = ", ".join(facts.known_versions[:3])
                return [Problem("source.not-found", join(where, "version"),
                                f"{facts.label} has no version '{source.get('version')}' in {location or 'the region'}; "
                                f"the newest are {newest}. Use one of them or 'latest'.")]
            return [Problem("source.not-found", join(where, "sku"),
                            f"There is no Marketplace image {facts.label} in {location or 'the build region'}. "
                            "Check the publisher, offer and SKU (browse them in the wizard, or "
                            "`az vm image list --all --publisher P --offer O --sku S`).")]
        if kind == "ManagedImage":
            return [Problem("source.not-found", join(where, "imageId"),
                            f"The managed image {facts.label} does not exist (or the portal cannot read it). "
                            "Check the id and that the image is in the same subscription and region as the build.")]
        return [Problem("source.not-found", join(where, "imageVersionId"),
                        f"The gallery image version {facts.label} does not exist (or the portal cannot read it). "
                        "Check the id, or use …/versions/latest.")]
    problems: list[Problem] = []
    if kind == "PlatformImage":
        plan_info = source.get("planInfo") if isinstance(source.get("planInfo"), dict) else None
        if facts.plan and plan_info is None:
            name, product, publisher = facts.plan
            problems.append(Problem("source.plan-missing", join(where, "planInfo"),
                                    f"{facts.label} is sold with a Marketplace plan: add planInfo with planName "
                                    f"'{name}', planProduct '{product}' and planPublisher '{publisher}' (and accept "
                                    "the terms once with `az vm image terms accept`)."))
        elif facts.plan and plan_info is not None:
            expected = dict(zip(("planName", "planProduct", "planPublisher"), facts.plan, strict=True))
            for key, value in expected.items():
                if plan_info.get(key) != value:
                    problems.append(Problem("source.plan-mismatch", join(join(where, "planInfo"), key),
                                            f"The image's plan has {key} '{value}', not '{plan_info.get(key)}'."))
        elif plan_info is not None and not facts.plan:
            problems.append(Problem("source.plan-unexpected", join(where, "planInfo"),
                                    f"{facts.label} has no Marketplace plan: remove planInfo.", "warning"))
        if facts.deprecation_state == "Deprecated":
            problems.append(Problem("source.deprecated", join(where, "version"),
                                    f"{facts.label} version {facts.version} is deprecated: Azure no longer creates VMs "
                                    "from it. Use 'latest' or a newer version."))
        elif facts.deprecation_state == "ScheduledForDeprecation":
            problems.append(Problem("source.deprecation-scheduled", join(where, "version"),
                                    f"{facts.label} version {facts.version} is scheduled for deprecation; prefer a "
                                    "newer version.", "warning"))
    if kind == "ManagedImage":
        image_subscription = facts.subscription or _subscription_of(str(source.get("imageId") or ""))
        if subscription and image_subscription and image_subscription.lower() != subscription.lower():
            problems.append(Problem("source.managed-image-subscription", join(where, "imageId"),
                                    f"The managed image is in subscription {image_subscription}, but the build runs "
                                    f"in {subscription}; Image Builder needs both in the same subscription. "
                                    "Copy the image, or publish it to a gallery and use the gallery version."))
        if location and facts.location and normalize_region(facts.location) != normalize_region(location) \
                and not schema.is_placeholder(location):
            problems.append(Problem("source.managed-image-region", join(where, "imageId"),
                                    f"The managed image is in {facts.location}, but the build runs in {location}; "
                                    "they must be in the same region. Build in its region, or use a gallery "
                                    "version replicated to this one."))
    if kind == "SharedImageVersion" and location and facts.regions and not schema.is_placeholder(location) \
            and normalize_region(location) not in facts.regions:
        problems.append(Problem("source.not-replicated", join(where, "imageVersionId"),
                                f"Gallery version {facts.version or facts.label} is replicated to "
                                f"{', '.join(facts.regions)}, not to the build region {location}. Replicate it there "
                                "first, or build in one of those regions."))
    if facts.os_state.lower() == "specialized":
        problems.append(Problem("source.specialized", join(where, _source_key(kind)),
                                f"{facts.label} is a specialized image; Image Builder only builds from generalized "
                                "images."))
    if os_type and facts.os_type and facts.os_type.lower() != os_type.lower():
        problems.append(Problem("source.os-type", join(where, _source_key(kind)),
                                f"{facts.label} is a {facts.os_type} image, but this gold image is {os_type}."))
    if facts.security_type in RESTRICTED:
        problems.append(Problem("security.source-unsupported", join(where, _source_key(kind)),
                                f"{facts.label} has security type {facts.security_type}: Azure only lets "
                                f"{'Trusted Launch' if facts.security_type == TRUSTED_LAUNCH_ONLY else 'confidential'} "
                                "VMs use it, and Image Builder cannot build from it. Pick a source whose security "
                                "type is TrustedLaunchSupported, ConfidentialVMSupported or Standard."))
    if facts.security_type in TRUSTED_LAUNCH_FAMILY | CONFIDENTIAL_FAMILY and facts.hyper_v_generation == "V1":
        problems.append(Problem("security.source-needs-gen2", join(where, _source_key(kind)),
                                f"{facts.label} claims {facts.security_type} but is Generation 1; Trusted Launch and "
                                "confidential VMs need Generation 2. Pick its Gen2 SKU."))
    return problems


def _source_key(kind: str) -> str:
    return {"PlatformImage": "sku", "ManagedImage": "imageId", "SharedImageVersion": "imageVersionId"}.get(kind, "type")


def _subscription_of(resource_id: str) -> str:
    found = re.match(r"^/subscriptions/([^/]+)", resource_id, re.IGNORECASE)
    return found.group(1) if found else ""


def check_distribution(distribute: Sequence[Any], source: SourceFacts | None, facts: Facts, *,
                       declared: Declared | None = None, os_type: str | None = None) -> list[Problem]:
    """Gallery definitions exist and fit the source: generation, security type, OS, architecture."""
    problems: list[Problem] = []
    trusted_build = (source is not None and source.security_type in TRUSTED_LAUNCH_FAMILY) or (
        declared is not None and declared.security_type == TRUSTED_LAUNCH_ONLY)
    for index, target in enumerate(distribute):
        if not isinstance(target, dict):
            continue
        where = f"properties.distribute[{index}]"
        if target.get("type") == "ManagedImage" and trusted_build:
            problems.append(Problem("security.managed-image-trusted-launch", join(where, "type"),
                                    "This is a Trusted Launch build: Azure cannot create VMs with Trusted Launch from a "
                                    "managed image, so this output only makes Standard VMs. Prefer a gallery "
                                    "(SharedImage) or VHD target.", "warning"))
        if target.get("type") != "SharedImage" or not isinstance(target.get("galleryImageId"), str):
            continue
        gallery_id = target["galleryImageId"]
        path = join(where, "galleryImageId")
        definition_id, _, version = gallery_id.partition("/versions/")
        key = definition_id.lower()
        if key not in facts.definitions:
            continue  # not looked up (a placeholder, or look-ups skipped)
        definition = facts.definitions[key]
        if definition is None:
            problems.append(Problem("distribute.definition-not-found", path,
                                    f"The gallery image definition {definition_id} does not exist (or the portal "
                                    "cannot read it). Create it first, or pick one from the catalog."))
            continue
        if version and gallery_id.lower() in facts.existing_versions:
            problems.append(Problem("distribute.version-exists", path,
                                    f"Version {version} already exists in this definition; Image Builder only creates "
                                    "new versions. Remove the /versions/ part to number it automatically."))
        if definition.os_state.lower() == "specialized":
            problems.append(Problem("distribute.specialized", path,
                                    "This definition is for specialized images; Image Builder publishes generalized "
                                    "images. Pick a definition whose OS state is Generalized."))
        wanted_os = os_type or (source.os_type if source else "")
        if wanted_os and definition.os_type and definition.os_type.lower() != wanted_os.lower():
            problems.append(Problem("distribute.os-type", path,
                                    f"This definition is for {definition.os_type} images, but the image is {wanted_os}."))
        if source is not None and source.architecture and definition.architecture \
                and source.architecture.lower() != definition.architecture.lower():
            problems.append(Problem("distribute.architecture", path,
                                    f"This definition is for {definition.architecture} images, but the source is "
                                    f"{source.architecture}."))
        problems += check_target_security(definition, source, path)
    return problems


def check_target_security(definition: DefinitionFacts, source: SourceFacts | None, path: str) -> list[Problem]:
    """aib-reference §3.2: which source security types may go to which gallery definitions."""
    problems: list[Problem] = []
    target = definition.security_type or STANDARD
    if target in TRUSTED_LAUNCH_FAMILY | CONFIDENTIAL_FAMILY | RESTRICTED and definition.hyper_v_generation == "V1":
        problems.append(Problem("security.target-needs-gen2", path,
                                f"The definition claims {target} but is Generation 1; Trusted Launch and confidential "
                                "VMs need Generation 2. Fix or replace the definition."))
    if source is None:
        return problems
    generation = source.hyper_v_generation
    if generation and definition.hyper_v_generation and generation != definition.hyper_v_generation:
        problems.append(Problem("security.target-generation", path,
                                f"The image will be Generation {generation[-1]} (Image Builder keeps the source's "
                                f"generation), but this definition is for Generation {definition.hyper_v_generation[-1]} "
                                f"images. Pick a {generation} definition, or a source of the definition's generation."))
    kind = source.security_type or STANDARD
    if target in RESTRICTED:
        problems.append(Problem("security.target-unsupported", path,
                                f"This definition only allows {target} VMs; Image Builder cannot publish to it. Use a "
                                f"definition whose security type is {TRUSTED_LAUNCH_SUPPORTED} (or "
                                f"{CONFIDENTIAL_SUPPORTED})."))
    elif kind in TRUSTED_LAUNCH_FAMILY and target not in TRUSTED_LAUNCH_FAMILY:
        problems.append(Problem("security.target-not-trusted-launch", path,
                                f"The source is {kind}, so every gallery target must support Trusted Launch too; this "
                                f"definition is {target}. Pick a definition with SecurityType "
                                f"{TRUSTED_LAUNCH_SUPPORTED} (or {BOTH_SUPPORTED})."))
    elif kind == CONFIDENTIAL_SUPPORTED and target not in CONFIDENTIAL_FAMILY:
        problems.append(Problem("security.target-not-confidential", path,
                                f"The source is {kind}, so the gallery target must support confidential VMs; this "
                                f"definition is {target}. Pick a definition with SecurityType "
                                f"{CONFIDENTIAL_SUPPORTED} (or {BOTH_SUPPORTED})."))
    elif kind == STANDARD and target != STANDARD:
        problems.append(Problem("security.target-standard-source", path,
                                f"The source is a Standard image, and Image Builder cannot publish it to a {target} "
                                "definition. Pick a Standard definition, or a source that supports Trusted Launch "
                                "(e.g. a Gen2 SKU)."))
    return problems


def check_build_vm(vm_profile: dict, source: SourceFacts, *, declared: Declared | None = None) -> list[Problem]:
    """The build VM can host the source (generation, architecture, confidential) and its disk fits."""
    problems: list[Problem] = []
    generation = source.hyper_v_generation or "V1"
    size = vm_profile.get("vmSize") if isinstance(vm_profile.get("vmSize"), str) else ""
    path = "properties.vmProfile.vmSize"
    confidential = source.security_type in CONFIDENTIAL_FAMILY - TRUSTED_LAUNCH_FAMILY or (
        declared is not None and declared.security_type == CONFIDENTIAL_ONLY)
    arm = (source.architecture or "").lower() == "arm64"
    if not size and arm:
        problems.append(Problem("vm.size-required", path,
                                "This is an Arm64 source; Image Builder's default build VM is x64. Choose an Arm64 "
                                "size such as Standard_D2ps_v5."))
        return problems
    effective = size or DEFAULT_VM_SIZE.get(generation, DEFAULT_VM_SIZE["V1"])
    family = size_family(effective)
    if family is None:
        problems.append(Problem("vm.size-unknown", path,
                                f"Goldsmith does not know whether {effective} can host a Generation {generation[-1]} "
                                f"{source.architecture or 'x64'} image; check the size's documentation, or use a "
                                "size such as Standard_D2ds_v5.", "warning"))
        return problems
    shown = effective if size else f"{effective} (Image Builder's default when vmSize is empty)"
    if generation == "V2" and not family.gen2:
        problems.append(Problem("vm.size-generation", path,
                                f"{shown} cannot run Generation 2 images, and this source is Generation 2. Use a "
                                "Gen2-capable size such as Standard_D2ds_v5."))
    if generation == "V1" and not family.gen1:
        problems.append(Problem("vm.size-generation", path,
                                f"{shown} cannot run Generation 1 images, and this source is Generation 1. Use a "
                                "size such as Standard_D2ds_v5, or the source's Gen2 SKU."))
    if (family.architecture.lower() == "arm64") != arm:
        problems.append(Problem("vm.size-architecture", path,
                                f"{shown} is an {family.architecture} size, but the source is "
                                f"{source.architecture or 'x64'}. Use a size such as "
                                f"{'Standard_D2ps_v5' if arm else 'Standard_D2ds_v5'}."))
    if confidential and not family.confidential:
        problems.append(Problem("vm.size-confidential", path,
                                f"{shown} cannot host confidential VMs, and this is a confidential source. Use a "
                                "confidential size such as Standard_DC2as_v5."))
    disk = vm_profile.get("osDiskSizeGB")
    if isinstance(disk, int) and not isinstance(disk, bool) and disk > 0 and source.os_disk_size_gb \
            and disk < source.os_disk_size_gb:
        problems.append(Problem("vm.os-disk-too-small", "properties.vmProfile.osDiskSizeGB",
                                f"The source's OS disk is {source.os_disk_size_gb} GB and disks can only grow: use "
                                f"{source.os_disk_size_gb} or more, or 0 for the source's size."))
    return problems


def check_declared(declared: Declared, source: SourceFacts | None) -> list[Problem]:
    """The gold version's declared security type and generation match the source."""
    problems: list[Problem] = []
    wanted = declared.security_type
    if wanted in (TRUSTED_LAUNCH_ONLY, CONFIDENTIAL_ONLY) and declared.hyper_v_generation == "V1":
        problems.append(Problem("security.needs-gen2", "hyper_v_generation",
                                "Trusted Launch and confidential VMs need Generation 2: pick Generation 2 (and a Gen2 "
                                "source)."))
    if source is None or not source.found:
        return problems
    found = source.security_type or STANDARD
    if wanted == TRUSTED_LAUNCH_ONLY and found not in TRUSTED_LAUNCH_FAMILY:
        problems.append(Problem("security.declared-mismatch", "security_type",
                                f"Trusted Launch is declared, but the source is {found}. Pick a source whose security "
                                f"type is {TRUSTED_LAUNCH_SUPPORTED}, or declare {_declared_for(found)}."))
    elif wanted == CONFIDENTIAL_ONLY and found not in CONFIDENTIAL_FAMILY:
        problems.append(Problem("security.declared-mismatch", "security_type",
                                f"Confidential VM is declared, but the source is {found}. Pick a source whose "
                                f"security type is {CONFIDENTIAL_SUPPORTED}, or declare {_declared_for(found)}."))
    elif wanted == STANDARD and found != STANDARD and found not in RESTRICTED:
        problems.append(Problem("security.declared-mismatch", "security_type",
                                f"Standard is declared, but the source is {found}: its gallery targets must support "
                                f"{'Trusted Launch' if found in TRUSTED_LAUNCH_FAMILY else 'confidential VMs'}. "
                                f"Declare {_declared_for(found)}, or pick a Standard source."))
    if source.hyper_v_generation and declared.hyper_v_generation != source.hyper_v_generation:
        problems.append(Problem("security.generation-mismatch", "hyper_v_generation",
                                f"Generation {declared.hyper_v_generation[-1]} is declared, but the source is "
                                f"Generation {source.hyper_v_generation[-1]} (and the image keeps it). Declare "
                                f"{source.hyper_v_generation}."))
    return problems


def declaration_for(source: SourceFacts) -> dict[str, str]:
    """The gold version declaration (security_type, hyper_v_generation) that matches a source the
    catalog found; a Trusted-Launch-only or confidential-only source keeps Standard, since no
    declaration makes it usable (check_template refuses it as `security.source-unsupported`)."""
    found = source.security_type or STANDARD
    declared = {"security_type": TRUSTED_LAUNCH_ONLY if found in TRUSTED_LAUNCH_FAMILY
                else CONFIDENTIAL_ONLY if found in CONFIDENTIAL_FAMILY else STANDARD}
    if source.hyper_v_generation:
        declared["hyper_v_generation"] = source.hyper_v_generation
    return declared


def _declared_for(found: str) -> str:
    if found in TRUSTED_LAUNCH_FAMILY:
        return "Trusted Launch"
    if found in CONFIDENTIAL_FAMILY:
        return "Confidential VM"
    return "Standard"


# --- Layers ---------------------------------------------------------------------------------------


def check_layer(layer_version: Any, gold_version: Any, *, policy: PolicyRules | None = None,
                prefix: str = "", offsets: Mapping[str, int] | None = None) -> list[Problem]:
    """A department layer version on top of a gold version: it extends only gold versions in
    its range, adds steps without overriding the baseline's, leaves provenance tags alone and
    follows the department rules of the policy. Paths are the layer version's own fields
    (customize[2].runElevated, accepts, tags.owner), after `prefix`; with `offsets`
    ({"customize": n, "validators": m}, the layer's first positions in a composed body) step
    paths are the composed body's (properties.customize[n+2].runElevated).
    """
    policy = policy or PolicyRules()
    problems: list[Problem] = []
    layer = layer_version.layer
    label = f"{layer.department.slug}/{layer.slug}@{layer_version.version}"
    if layer.gold_image_id != gold_version.gold_image_id:
        problems.append(Problem("layer.gold-image", _at(prefix, "accepts"),
                                f"{label} extends the gold image {layer.gold_image.slug}, not "
                                f"{gold_version.gold_image.slug}."))
    else:
        try:
            allowed = VersionRange.parse(layer_version.accepts).allows(gold_version.version)
        except VersionError as exc:
            problems.append(Problem("layer.accepts", _at(prefix, "accepts"), str(exc)))
        else:
            if not allowed:
                problems.append(Problem("layer.gold-range", _at(prefix, "accepts"),
                                        f"{label} accepts gold versions {layer_version.accepts}, and "
                                        f"{gold_version.version} is outside that range. Widen the range in a new "
                                        "layer version once the layer is tested on it."))
    baseline_steps = {step.get("name") for step in [*gold_version.customize_before, *gold_version.customize_after]
                      if isinstance(step, dict) and step.get("name")}
    baseline_validators = {step.get("name") for step in [*gold_version.validators_before,
                                                         *gold_version.validators_after]
                           if isinstance(step, dict) and step.get("name")}
    for key, names in (("customize", baseline_steps), ("validators", baseline_validators)):
        for index, step in enumerate(listed(getattr(layer_version, key))):
            if isinstance(step, dict) and step.get("name") in names:
                problems.append(Problem("layer.step-name-taken", join(_step_at(prefix, key, index, offsets), "name"),
                                        f"'{step['name']}' is the name of a baseline step; a layer adds steps and "
                                        "cannot replace the baseline's. Give this step its own name."))
    problems += check_layer_tags(layer_version.tags, gold_version.tags, prefix=prefix)
    problems += check_layer_network(getattr(layer_version, "network", None), policy, prefix=prefix)
    problems += check_layer_steps_policy(layer_version, policy, prefix=prefix, offsets=offsets)
    return problems


def check_layer_tags(tags: Any, gold_tags: Any, *, prefix: str = "") -> list[Problem]:
    problems: list[Problem] = []
    if not isinstance(tags, dict):
        return problems
    gold_tags = gold_tags if isinstance(gold_tags, dict) else {}
    for name, value in tags.items():
        if str(name).lower().startswith(PROVENANCE_PREFIX):
            problems.append(Problem("layer.tag-reserved", _at(prefix, f"tags.{name}"),
                                    f"Tags starting with '{PROVENANCE_PREFIX}' record where an image comes from and "
                                    "are set by Goldsmith; rename this tag."))
        elif name in gold_tags and gold_tags[name] != value:
            problems.append(Problem("layer.tag-overridden", _at(prefix, f"tags.{name}"),
                                    f"The gold image sets '{name}' to '{gold_tags[name]}', and the baseline's value "
                                    "wins; this layer's value is ignored.", "warning"))
    return problems


def check_layer_steps_policy(layer_version: Any, policy: PolicyRules, *, prefix: str = "",
                             offsets: Mapping[str, int] | None = None) -> list[Problem]:
    """The policy's department rules on a layer's steps: Windows Update and elevated PowerShell."""
    problems: list[Problem] = []
    for key in ("customize", "validators"):
        for index, step in enumerate(listed(getattr(layer_version, key))):
            if isinstance(step, dict):
                problems += check_department_step(step, _step_at(prefix, key, index, offsets), policy)
    return problems


def check_layer_list(layer_versions: Sequence[Any]) -> list[Problem]:
    """A build names each layer once, and its layers agree on the build network."""
    problems: list[Problem] = []
    seen: dict[Any, int] = {}
    chosen: dict[str, tuple[Any, str]] = {}
    for index, layer_version in enumerate(layer_versions):
        if layer_version.layer_id in seen:
            problems.append(Problem("layer.duplicate", f"layers[{index}]",
                                    f"{layer_version.layer} is already layer {seen[layer_version.layer_id] + 1} of "
                                    "this build; name each layer once."))
        seen.setdefault(layer_version.layer_id, index)
        network = getattr(layer_version, "network", None)
        for key in LAYER_NETWORK_KEYS if isinstance(network, dict) else ():
            value = network.get(key)
            if not isinstance(value, str) or not value:
                continue
            if key in chosen and chosen[key][1].lower() != value.lower():
                problems.append(Problem("layer.network-conflict", f"layers[{index}].network.{key}",
                                        f"{layer_version.layer} chooses {key} {value}, but {chosen[key][0]} chose "
                                        f"{chosen[key][1]}: a build runs in one network. Build these layers "
                                        "separately, or agree on one."))
            chosen.setdefault(key, (layer_version.layer, value))
    return problems


def check_layer_network(network: Any, policy: PolicyRules | None = None, *, prefix: str = "",
                        alone: bool = False) -> list[Problem]:
    """The build network a layer version chooses (LayerVersion.network: subnetId, proxyVmSize).

    Always: its shape and whether the policy lets layers choose the network
    (`policy.layer-network`). With alone=True (the layer form, where no composed body is
    checked) also the subnet id's form and the policy's network, allowed_subnets and
    allowed_proxy_vm_sizes, which a composed body's rules report otherwise. Paths are
    `network.subnetId` after `prefix`.
    """
    policy = policy or PolicyRules()
    if network in (None, {}):
        return []
    if not isinstance(network, dict):
        return [Problem("layer.network", _at(prefix, "network"), "must be an object with subnetId and proxyVmSize.")]
    problems: list[Problem] = []
    for key, value in network.items():
        if key not in LAYER_NETWORK_KEYS:
            problems.append(Problem("layer.network", _at(prefix, f"network.{key}"),
                                    f"A layer may choose only {' and '.join(LAYER_NETWORK_KEYS)} of the build network."))
        elif not isinstance(value, str):
            problems.append(Problem("layer.network", _at(prefix, f"network.{key}"), "must be text."))
    chosen = [key for key in LAYER_NETWORK_KEYS if isinstance(network.get(key), str) and network.get(key)]
    if chosen and not policy.layers_may_set_network:
        problems.append(Problem("policy.layer-network", _at(prefix, f"network.{chosen[0]}"),
                                "The build policy leaves the build network to the gold version: remove the "
                                "subnet and proxy VM size from this layer."))
    if not alone or not chosen:
        return problems
    subnet = network.get("subnetId")
    if isinstance(subnet, str) and subnet and not schema.SUBNET_ID.match(subnet):
        problems.append(Problem("schema.subnet-id", _at(prefix, "network.subnetId"),
                                "must be a subnet id: …/providers/Microsoft.Network/virtualNetworks/<vnet>/"
                                "subnets/<subnet>."))
    proxy = network.get("proxyVmSize")
    if isinstance(proxy, str) and proxy and not _VM_SIZE.match(proxy):
        problems.append(Problem("layer.network", _at(prefix, "network.proxyVmSize"),
                                f"'{proxy}' is not a VM size such as Standard_A1_v2."))
    vnet = {key: network[key] for key in chosen}
    for problem in check_enterprise_policy({"vmProfile": {"vnetConfig": vnet}}, replace(
            PolicyRules(), network=policy.network if policy.network == "public" else "",
            allowed_subnets=policy.allowed_subnets, allowed_proxy_vm_sizes=policy.allowed_proxy_vm_sizes)):
        key = problem.path.rsplit(".", 1)[-1]
        path = _at(prefix, f"network.{key}" if key in LAYER_NETWORK_KEYS else f"network.{chosen[0]}")
        message = ("The build policy does not allow builds in your own network: leave the subnet empty."
                   if problem.rule == "policy.network" else problem.message)
        problems.append(Problem(problem.rule, path, message, problem.severity))
    return problems


def _step_at(prefix: str, key: str, index: int, offsets: Mapping[str, int] | None) -> str:
    if offsets is None:
        return _at(prefix, f"{key}[{index}]")
    base = "properties.customize" if key == "customize" else "properties.validate.inVMValidations"
    return f"{base}[{offsets.get(key, 0) + index}]"


def check_department_step(step: dict, path: str, policy: PolicyRules) -> list[Problem]:
    problems: list[Problem] = []
    if step.get("type") == "WindowsUpdate" and not policy.departments_may_use_windows_update:
        problems.append(Problem("policy.windows-update", join(path, "type"),
                                "The build policy reserves Windows Update for the gold image (the baseline installs "
                                "updates); remove this step from the layer."))
    if step.get("type") == "PowerShell" and not policy.departments_may_run_elevated:
        for key in ("runElevated", "runAsSystem"):
            if step.get(key):
                problems.append(Problem("policy.run-elevated", join(path, key),
                                        "The build policy does not let department layers run PowerShell elevated or "
                                        "as SYSTEM; turn this off, or ask the security team to add the step to the "
                                        "gold image."))
    return problems


def _at(prefix: str, path: str) -> str:
    return f"{prefix}.{path}" if prefix else path


def check_composition(body: Any, gold_version: Any, layer_versions: Sequence[Any], *,
                      expected: dict | None = None) -> list[Problem]:
    """A composed body keeps the baseline: the gold version's steps first and last, unchanged
    and in order, and its source, identity, vmProfile and distribution untouched (vmProfile
    with the network the layers chose, compose.vm_profile: `expected` carries it).

    `expected` is compose.compose(gold_version, layer_versions, ...) for the same build; the
    body is compared with it, provenance tags aside.
    """
    if not isinstance(body, dict) or expected is None:
        return []
    problems: list[Problem] = []
    props = body.get("properties") if isinstance(body.get("properties"), dict) else {}
    wanted = expected.get("properties", {})
    steps = listed(props.get("customize"))
    before, after = list(gold_version.customize_before), list(gold_version.customize_after)
    if steps[:len(before)] != before or (after and steps[len(steps) - len(after):] != after) \
            or len(steps) < len(before) + len(after):
        problems.append(Problem("layer.baseline-changed", "properties.customize",
                                "The baseline's steps must run first and last, unchanged and in order; a layer can "
                                "only add steps between them. Compose the template from the gold version again."))
    elif steps != wanted.get("customize", []):
        problems.append(Problem("layer.steps-changed", "properties.customize",
                                "The layer steps differ from the layer versions named for this build."))
    validate = props.get("validate") if isinstance(props.get("validate"), dict) else {}
    if validate.get("inVMValidations", []) != wanted.get("validate", {}).get("inVMValidations", []):
        problems.append(Problem("layer.baseline-changed", "properties.validate.inVMValidations",
                                "The validators differ from the gold version's and the layers' validators."))
    for key, rule, what in (("source", "layer.source-changed", "source image"),
                            ("vmProfile", "layer.vm-profile-changed", "build VM profile"),
                            ("distribute", "layer.distribution-changed", "distribution")):
        if _without_provenance(props.get(key)) != _without_provenance(wanted.get(key)):
            problems.append(Problem(rule, f"properties.{key}",
                                    f"The {what} comes from the gold version and cannot be changed by a layer"
                                    + (" (a layer chooses only the network, with its own subnet and proxy VM size)."
                                       if key == "vmProfile" else ".")))
    if body.get("identity") != expected.get("identity"):
        problems.append(Problem("layer.identity-changed", "identity",
                                "The template identity comes from the gold version and cannot be changed by a layer."))
    return problems


def _without_provenance(value: Any) -> Any:
    if isinstance(value, list):
        return [_without_provenance(item) for item in value]
    if isinstance(value, dict):
        out = {key: _without_provenance(item) for key, item in value.items() if key != "artifactTags"}
        tags = {k: v for k, v in (value.get("artifactTags") or {}).items()
                if not str(k).startswith(PROVENANCE_PREFIX)} if isinstance(value.get("artifactTags"), dict) else {}
        if tags:
            out["artifactTags"] = tags
        return out
    return value


# --- Single steps (forms) -------------------------------------------------------------------------


def check_step(step: Any, path: str, *, kind: str = "customizer", os_type: str | None = None,
               policy: PolicyRules | None = None, department: bool = False) -> list[Problem]:
    """Every rule that applies to one step on its own, for the step forms: schema (with the OS
    family), policy URLs and checksums, secrets and, for department layers, the department rules."""
    policy = policy or PolicyRules()
    check = schema.check_customizer if kind == "customizer" else schema.check_validator
    problems = check(step, path, os_type=os_type)
    if isinstance(step, dict):
        problems += check_file_destination(step, path, os_type=os_type)
        problems += check_step_policy(step, path, policy)
        problems += check_step_secrets(step, path)
        if department:
            problems += check_department_step(step, path, policy)
    return schema.dedupe(problems)


# --- Reporting ------------------------------------------------------------------------------------


def group_of(problem: Problem) -> str:
    group = _RULE_GROUPS.get(problem.rule) or problem.rule.split(".", 1)[0]
    return group if group in GROUPS else "schema"


def summarize(problems: Iterable[Problem], ran: Iterable[str]) -> list[CheckResult]:
    """One result per check group, in GROUPS order: whether it ran and what it found."""
    ran = set(ran)
    problems = list(problems)
    return [CheckResult(group, title, group in ran, tuple(p for p in problems if group_of(p) == group))
            for group, title in GROUPS.items()]

