"""Forms: validate and convert browser input to Image Builder's own shapes.

Field names are the Image Builder JSON keys (scriptUri, inline, vmSize ...), so a Problem's
JSON path names the form field it belongs to (see wizard.field_for). Forms only convert;
the rules are builds/validation.py's and the writes are services'.
"""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from builds import compose, schema, validation
from builds.models import Generation, OsType, SecurityType
from builds.validators import SLUG_MAX, validate_name, validate_slug, validate_version

URL_MAX = 2000
TEXT_MAX = 20000


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in (text or "").splitlines() if line.strip()]


class StepForm(forms.Form):
    """One customizer or validator; subclasses add the fields of their type."""

    step_type = ""
    name = forms.CharField(max_length=256, validators=[validate_name],
                           help_text="Shown in build logs; unique within the template.")

    def to_step(self) -> dict[str, Any]:
        """The Image Builder object (empty values left out)."""
        step: dict[str, Any] = {"type": self.step_type}
        for key, value in self.cleaned_data.items():
            if value in ("", None, [], False):
                continue
            step[key] = value
        return step

    @classmethod
    def initial_from(cls, step: dict) -> dict[str, Any]:
        initial = {}
        for key in cls.base_fields:
            value = step.get(key)
            if isinstance(value, list):
                value = "\n".join(str(item) for item in value) if key != "validExitCodes" else \
                    ", ".join(str(item) for item in value)
            if value is not None:
                initial[key] = value
        return initial


class _ScriptFields(StepForm):
    scriptUri = forms.CharField(label="Script URL", max_length=URL_MAX, required=False,
                                help_text="An https URL on a host the policy allows; or give inline commands.")
    sha256Checksum = forms.CharField(label="SHA-256 of the script", max_length=64, required=False)
    inline = forms.CharField(label="Inline commands", widget=forms.Textarea, max_length=TEXT_MAX, required=False,
                             help_text="One command per line. Never put secrets here.")

    def clean_inline(self) -> list[str]:
        return _lines(self.cleaned_data.get("inline", ""))


class ShellStepForm(_ScriptFields):
    step_type = "Shell"


class PowerShellStepForm(_ScriptFields):
    step_type = "PowerShell"
    runElevated = forms.BooleanField(label="Run elevated", required=False)
    runAsSystem = forms.BooleanField(label="Run as SYSTEM (needs 'run elevated')", required=False)
    validExitCodes = forms.CharField(label="Valid exit codes", max_length=200, required=False,
                                     help_text="Comma-separated, e.g. 0, 3010. Empty means 0.")

    def clean_validExitCodes(self) -> list[int]:
        text = self.cleaned_data.get("validExitCodes", "")
        codes = [part for part in re.split(r"[\s,]+", text) if part]
        try:
            values = [int(part) for part in codes]
        except ValueError as exc:
            raise ValidationError("Give whole numbers separated by commas, e.g. 0, 3010.") from exc
        if any(abs(value) > 2**31 for value in values):
            raise ValidationError("Exit codes are 32-bit numbers.")
        return values


class FileStepForm(StepForm):
    step_type = "File"
    sourceUri = forms.CharField(label="File URL", max_length=URL_MAX)
    sha256Checksum = forms.CharField(label="SHA-256 of the file", max_length=64, required=False)
    destination = forms.CharField(label="Destination path", max_length=1000,
                                  help_text="On Linux only /tmp is writable; on Windows the folder must exist.")


class WindowsRestartStepForm(StepForm):
    step_type = "WindowsRestart"
    restartCommand = forms.CharField(label="Restart command", max_length=1000, required=False)
    restartCheckCommand = forms.CharField(label="Check command", max_length=1000, required=False)
    restartTimeout = forms.CharField(label="Timeout", max_length=20, required=False, help_text="e.g. 5m, 10m or 2h.")


class WindowsUpdateStepForm(StepForm):
    step_type = "WindowsUpdate"
    searchCriteria = forms.CharField(label="Search criteria", max_length=1000, required=False)
    filters = forms.CharField(label="Filters", widget=forms.Textarea, max_length=TEXT_MAX, required=False,
                              help_text="One filter per line, e.g. exclude:$_.Title -like '*Preview*'.")
    updateLimit = forms.IntegerField(label="Update limit", required=False, min_value=0, max_value=100000)

    def clean_filters(self) -> list[str]:
        return _lines(self.cleaned_data.get("filters", ""))


CUSTOMIZER_FORMS: dict[str, type[StepForm]] = {
    "Shell": ShellStepForm, "PowerShell": PowerShellStepForm, "File": FileStepForm,
    "WindowsRestart": WindowsRestartStepForm, "WindowsUpdate": WindowsUpdateStepForm,
}
VALIDATOR_FORMS = {key: CUSTOMIZER_FORMS[key] for key in ("Shell", "PowerShell", "File")}
LINUX_TYPES = ("Shell", "File")
WINDOWS_TYPES = ("PowerShell", "File", "WindowsRestart", "WindowsUpdate")


def step_types(kind: str, os_type: str) -> tuple[str, ...]:
    """The step types offered for an OS family (the schema refuses the others anyway)."""
    types = LINUX_TYPES if os_type == OsType.LINUX else WINDOWS_TYPES
    if kind == "validator":
        types = tuple(t for t in types if t in VALIDATOR_FORMS)
    return types


# --- Wizard steps -----------------------------------------------------------------------------


# Azure resource ids and URLs run to 150-250 characters: these inputs take the form's full width
# in a monospace font (app.css .resource-id) instead of squeezing them into a name-sized box.
RESOURCE_ID = {"class": "resource-id", "spellcheck": "false", "autocomplete": "off"}


class SourceForm(forms.Form):
    location = forms.CharField(label="Build region", max_length=40,
                               help_text="Where the template is created and the build runs, e.g. eastus.")
    type = forms.ChoiceField(label="Source", choices=[
        ("PlatformImage", "Marketplace image"), ("ManagedImage", "Managed image"),
        ("SharedImageVersion", "Azure Compute Gallery image version")], widget=forms.RadioSelect)
    publisher = forms.CharField(max_length=100, required=False, widget=forms.TextInput(attrs={"list": "publishers"}))
    offer = forms.CharField(max_length=100, required=False, widget=forms.TextInput(attrs={"list": "offers"}))
    sku = forms.CharField(label="SKU", max_length=100, required=False, widget=forms.TextInput(attrs={"list": "skus"}))
    version = forms.CharField(max_length=100, required=False, help_text="A version, or latest.",
                              widget=forms.TextInput(attrs={"list": "versions"}))
    imageId = forms.CharField(label="Managed image id", max_length=URL_MAX, required=False,
                              widget=forms.TextInput(attrs=RESOURCE_ID))
    imageVersionId = forms.CharField(label="Gallery image version id", max_length=URL_MAX, required=False,
                                     widget=forms.TextInput(attrs=RESOURCE_ID))

    def clean_location(self) -> str:
        return re.sub(r"\s+", "", self.cleaned_data["location"]).lower()

    def clean(self):
        data = super().clean()
        kind = data.get("type")
        required = {"PlatformImage": ("publisher", "offer", "sku", "version"), "ManagedImage": ("imageId",),
                    "SharedImageVersion": ("imageVersionId",)}.get(kind, ())
        for key in required:
            if not data.get(key):
                self.add_error(key, "Required for this kind of source.")
        return data

    def to_source(self) -> dict[str, str]:
        data = self.cleaned_data
        kind = data["type"]
        keys = {"PlatformImage": ("publisher", "offer", "sku", "version"), "ManagedImage": ("imageId",),
                "SharedImageVersion": ("imageVersionId",)}[kind]
        return {"type": kind, **{key: data[key] for key in keys}}


class SecurityForm(forms.Form):
    security_type = forms.ChoiceField(label="Security type", choices=SecurityType.choices, widget=forms.RadioSelect)
    hyper_v_generation = forms.ChoiceField(label="Hyper-V generation", choices=Generation.choices,
                                           widget=forms.RadioSelect)


class ValidateOptionsForm(forms.Form):
    continueDistributeOnFailure = forms.BooleanField(label="Distribute even when validation fails", required=False)
    sourceValidationOnly = forms.BooleanField(label="Only validate the source (no customization)", required=False)

    def to_options(self) -> dict[str, bool]:
        return {key: True for key, value in self.cleaned_data.items() if value}


def _names_list(text: str) -> list[str]:
    return [part for part in re.split(r"[\s,]+", text or "") if part]


MAX_REGION_ROWS = 60
_STORAGE_CHOICES = [("", "Default (Standard_LRS)"), *((kind, kind) for kind in schema.STORAGE_ACCOUNT_TYPES)]
_REGION_KEYS = ("name", "replicaCount", "storageAccountType")


def region_field(index: int, key: str) -> str:
    """The form field of one target region's key (`targetRegions-<index>-<key>`)."""
    return f"targetRegions-{index}-{key}"


class SharedImageTargetForm(forms.Form):
    """A gallery target: definition, target regions (an editable list of rows, each with its
    name, replica count and storage account type), versioning and exclusion from latest."""

    target_type = "SharedImage"
    runOutputName = forms.CharField(label="Run output name", max_length=64)
    galleryImageId = forms.CharField(label="Gallery image definition", max_length=URL_MAX,
                                     help_text="Pick from the catalog or paste a definition id.",
                                     widget=forms.TextInput(attrs={**RESOURCE_ID, "list": "gallery-definitions"}))
    versioning = forms.ChoiceField(label="Version numbers", required=False, choices=[
        ("", "Image Builder's default"), ("Latest", "Latest: the next number after the newest version"),
        ("Source", "Source: the source image's version number")])
    major = forms.IntegerField(label="Major version (with Latest)", required=False, min_value=-1,
                               help_text="Count from the newest version of this major; -1 or empty: of any major.")
    excludeFromLatest = forms.BooleanField(label="Exclude from latest", required=False)

    def __init__(self, *args, rows: int | None = None, **kwargs):
        """`rows`: how many region rows to show; by default as many as the data (or initial) has."""
        super().__init__(*args, **kwargs)
        if rows is None:
            rows = self.rows_in(self.data if self.is_bound else self.initial)
        self.rows = max(0, min(rows, MAX_REGION_ROWS))
        for index in range(self.rows):
            self.fields[region_field(index, "name")] = forms.CharField(
                label="Region", max_length=40, required=False, help_text="e.g. westeurope")
            self.fields[region_field(index, "replicaCount")] = forms.IntegerField(
                label="Replicas", min_value=1, max_value=100, required=False, help_text="1-100; empty: 1.")
            self.fields[region_field(index, "storageAccountType")] = forms.ChoiceField(
                label="Storage account type", required=False, choices=_STORAGE_CHOICES)

    @staticmethod
    def rows_in(data: Any) -> int:
        """The number of region rows submitted (the highest row index + 1)."""
        found = [int(m.group(1)) for key in (data or {}) if (m := re.fullmatch(r"targetRegions-(\d+)-\w+", key))]
        return max(found) + 1 if found else 0

    def main_fields(self) -> list:
        return [self[name] for name in ("runOutputName", "galleryImageId", "versioning", "major", "excludeFromLatest")]

    def region_rows(self) -> list[list]:
        return [[self[region_field(index, key)] for key in _REGION_KEYS] for index in range(self.rows)]

    @classmethod
    def initial_from(cls, target: dict) -> dict[str, Any]:
        versioning = target.get("versioning") if isinstance(target.get("versioning"), dict) else {}
        initial = {key: target.get(key, "") for key in ("runOutputName", "galleryImageId")}
        initial.update({"versioning": versioning.get("scheme", ""), "major": versioning.get("major"),
                        "excludeFromLatest": bool(target.get("excludeFromLatest"))})
        for index, region in enumerate(target.get("targetRegions") or []):
            for key in _REGION_KEYS:
                initial[region_field(index, key)] = region.get(key, "") if isinstance(region, dict) else ""
        return initial

    @classmethod
    def edit_rows(cls, data: Any, op: str) -> dict[str, Any]:
        """The submitted values with a region row added (`add-region`) or removed
        (`remove-region-<index>`, later rows move up), to show again without saving."""
        values = {key: data.get(key) for key in data if key not in ("csrfmiddlewaretoken", "op")}
        rows = [{key: values.pop(region_field(index, key), "") for key in _REGION_KEYS}
                for index in range(cls.rows_in(data))]
        if op == "add-region":
            rows.append({key: "" for key in _REGION_KEYS})
        elif (found := re.fullmatch(r"remove-region-(\d+)", op)) and int(found.group(1)) < len(rows):
            del rows[int(found.group(1))]
        for index, row in enumerate(rows):
            values.update({region_field(index, key): value for key, value in row.items()})
        values["excludeFromLatest"] = values.get("excludeFromLatest") in ("on", "true", "True", True)
        return values

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        for index in range(self.rows):
            name = (data.get(region_field(index, "name")) or "").strip()
            if not name and (data.get(region_field(index, "replicaCount")) or
                             data.get(region_field(index, "storageAccountType"))):
                self.add_error(region_field(index, "name"), "Name the region, or remove the row.")
        if data.get("major") is not None and data.get("versioning") != "Latest":
            self.add_error("major", "A major version goes only with Latest.")
        return data

    def to_target(self) -> dict[str, Any]:
        data = self.cleaned_data
        target: dict[str, Any] = {"type": "SharedImage", "runOutputName": data["runOutputName"],
                                  "galleryImageId": data["galleryImageId"]}
        regions = []
        for index in range(self.rows):
            name = re.sub(r"\s+", "", data.get(region_field(index, "name")) or "").lower()
            if not name:
                continue
            region: dict[str, Any] = {"name": name}
            if data.get(region_field(index, "replicaCount")):
                region["replicaCount"] = data[region_field(index, "replicaCount")]
            if data.get(region_field(index, "storageAccountType")):
                region["storageAccountType"] = data[region_field(index, "storageAccountType")]
            regions.append(region)
        if regions:
            target["targetRegions"] = regions
        if data.get("versioning") == "Latest":
            target["versioning"] = {"scheme": "Latest", **({"major": data["major"]}
                                                            if data.get("major") is not None else {})}
        elif data.get("versioning") == "Source":
            target["versioning"] = {"scheme": "Source"}
        if data.get("excludeFromLatest"):
            target["excludeFromLatest"] = True
        return target


class ManagedImageTargetForm(forms.Form):
    target_type = "ManagedImage"
    runOutputName = forms.CharField(label="Run output name", max_length=64)
    imageId = forms.CharField(label="Managed image id", max_length=URL_MAX, widget=forms.TextInput(attrs=RESOURCE_ID),
                              help_text="/subscriptions/…/resourceGroups/…/providers/Microsoft.Compute/images/<name>")
    location = forms.CharField(label="Region", max_length=40)

    @classmethod
    def initial_from(cls, target: dict) -> dict[str, Any]:
        return {key: target.get(key, "") for key in ("runOutputName", "imageId", "location")}

    def to_target(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {"type": "ManagedImage", "runOutputName": data["runOutputName"], "imageId": data["imageId"],
                "location": re.sub(r"\s+", "", data["location"]).lower()}


class VhdTargetForm(forms.Form):
    target_type = "VHD"
    runOutputName = forms.CharField(label="Run output name", max_length=64)
    uri = forms.CharField(label="Blob URL", max_length=URL_MAX, required=False, widget=forms.TextInput(attrs=RESOURCE_ID),
                          help_text="Empty: the VHD stays in the build's staging storage account.")

    @classmethod
    def initial_from(cls, target: dict) -> dict[str, Any]:
        return {key: target.get(key, "") for key in ("runOutputName", "uri")}

    def to_target(self) -> dict[str, Any]:
        target = {"type": "VHD", "runOutputName": self.cleaned_data["runOutputName"]}
        if self.cleaned_data.get("uri"):
            target["uri"] = self.cleaned_data["uri"]
        return target


TARGET_FORMS: dict[str, type[forms.Form]] = {
    "SharedImage": SharedImageTargetForm, "ManagedImage": ManagedImageTargetForm, "VHD": VhdTargetForm}


class DataDisksForm(forms.Form):
    """The build VM's additional data disks (properties.additionalDataDisks), sizes in GB."""

    additionalDataDisks = forms.CharField(
        label="Additional data disks (GB)", max_length=1000, required=False,
        help_text="Sizes in GB, separated by commas, e.g. 64, 128. Empty: none.")

    def __init__(self, *args, policy: Any = None, **kwargs):
        super().__init__(*args, **kwargs)
        if policy is not None and not policy.additional_data_disks:
            self.fields["additionalDataDisks"].help_text += " The build policy does not allow data disks."
        elif policy is not None and policy.max_data_disk_size_gb:
            self.fields["additionalDataDisks"].help_text += f" At most {policy.max_data_disk_size_gb} GB each."

    @staticmethod
    def initial_from(extra_properties: dict) -> dict[str, str]:
        disks = (extra_properties or {}).get("additionalDataDisks") or []
        return {"additionalDataDisks": ", ".join(str(disk.get("sizeGB", "")) for disk in disks
                                                   if isinstance(disk, dict))}

    def clean_additionalDataDisks(self) -> list[dict[str, int]]:
        disks = []
        for part in _names_list(self.cleaned_data.get("additionalDataDisks", "")):
            if not re.fullmatch(r"\d{1,5}", part):
                raise ValidationError(f"'{part}' is not a size in GB; write whole numbers such as 64, 128.")
            disks.append({"sizeGB": int(part)})
        return disks

    def to_extra_properties(self, extra_properties: dict) -> dict[str, Any]:
        extra = {key: value for key, value in (extra_properties or {}).items() if key != "additionalDataDisks"}
        if self.cleaned_data.get("additionalDataDisks"):
            extra["additionalDataDisks"] = self.cleaned_data["additionalDataDisks"]
        return extra


OTHER_SIZE = "other"
_ERROR_HANDLING = [("", "Azure's default (clean up)"), ("cleanup", "Clean up"),
                   ("abort", "Abort: keep the build VM to investigate")]
STAGING_MODES = [("none", "None: Image Builder creates and deletes its own group"),
                 ("goldsmith", "A new group Goldsmith names for each build (created empty by Image Builder)"),
                 ("own", "Bring your own: an existing empty group in the build region")]


class BuildVmForm(forms.Form):
    """The Build VM step: size, disk, identities, network, staging group, managed resource tags,
    error handling and boot optimization. Field names are the template's keys (field_for)."""

    vmSize = forms.CharField(label="Build VM size", max_length=64, required=False, widget=forms.Select,
                             help_text="Sizes offered in the build region that fit the image, smallest first. "
                                       "Image Builder's default is Standard_D1_v2 for Gen1, Standard_D2ds_v4 for Gen2.")
    vmSizeOther = forms.CharField(label="Another size", max_length=64, required=False,
                                  help_text="With \u201cAnother size\u201d: a size the list does not have is not "
                                            "checked here; the Review step checks it against the region.")
    osDiskSizeGB = forms.IntegerField(label="OS disk size (GB)", required=False, min_value=0, max_value=32767,
                                      help_text="0 or empty: the source's size. Disks only grow.")
    identity = forms.CharField(label="Template identity", max_length=URL_MAX, widget=forms.TextInput(attrs=RESOURCE_ID),
                               help_text="The user-assigned managed identity Image Builder runs as.")
    userAssignedIdentities = forms.CharField(label="Build VM identities", widget=forms.Textarea(attrs=RESOURCE_ID),
                                             max_length=TEXT_MAX,
                                             required=False, help_text="One identity id per line.")
    subnetId = forms.CharField(label="Build VM subnet", max_length=URL_MAX, required=False,
                               widget=forms.TextInput(attrs=RESOURCE_ID),
                               help_text="Empty: Image Builder creates its own network. Department layers may "
                                         "choose their own when the policy allows it.")
    containerInstanceSubnetId = forms.CharField(
        label="Isolated build subnet (container instance)", max_length=URL_MAX, required=False,
        widget=forms.TextInput(attrs=RESOURCE_ID),
        help_text="A subnet of the same virtual network delegated to Azure Container Instances. Empty: no isolated "
                  "build.")
    proxyVmSize = forms.CharField(label="Proxy VM size", max_length=64, required=False,
                                  help_text="With a subnet and no isolated build subnet. Empty: Azure's default.")
    staging = forms.ChoiceField(label="Staging resource group", choices=STAGING_MODES, initial="none",
                                widget=forms.RadioSelect, required=False)
    stagingResourceGroup = forms.CharField(label="Your staging group's id", max_length=URL_MAX, required=False,
                                           widget=forms.TextInput(attrs=RESOURCE_ID),
                                           help_text="With \u201cBring your own\u201d: /subscriptions/<id>/"
                                                     "resourceGroups/<name>.")
    managedResourceTags = forms.CharField(label="Managed resource tags", widget=forms.Textarea, max_length=TEXT_MAX,
                                          required=False,
                                          help_text="Tags on the resources Image Builder creates, one name=value "
                                                    "per line.")
    onCustomizerError = forms.ChoiceField(label="When a customizer fails", choices=_ERROR_HANDLING, required=False)
    onValidationError = forms.ChoiceField(label="When a validator fails", choices=_ERROR_HANDLING, required=False)
    vmBoot = forms.ChoiceField(label="VM boot optimization", required=False,
                               choices=[("", "Azure's default (off)"), ("Enabled", "Enabled"),
                                        ("Disabled", "Disabled")])
    buildTimeoutInMinutes = forms.IntegerField(label="Build timeout (minutes)", required=False, min_value=0,
                                               max_value=960, help_text="0 or empty: Azure's default of 240.")
    resource_group = forms.CharField(label="Resource group for templates", max_length=90, required=False)
    tags = forms.CharField(label="Tags", widget=forms.Textarea, max_length=TEXT_MAX, required=False,
                           help_text="One name=value per line.")

    def __init__(self, *args, sizes=(), size_note: str = "", goldsmith_staging: str = "", staging_example: str = "",
                 **kwargs):
        """`sizes`: preflight.vm_size_choices' choices (each with .name and .label); `goldsmith_staging`:
        what the "Goldsmith names it" choice stores (compose.goldsmith_named with the policy's prefix),
        `staging_example` the id a build gets from it (compose.staging_group without a build)."""
        super().__init__(*args, **kwargs)
        self.size_names = {size.name for size in sizes}
        self.goldsmith_staging = goldsmith_staging
        self.fields["vmSize"].widget.choices = [("", "Image Builder's default for the generation"),
                                                *((size.name, size.label) for size in sizes),
                                                (OTHER_SIZE, "Another size (type it below)")]
        if size_note:
            self.fields["vmSize"].help_text = f"{size_note} {self.fields['vmSize'].help_text}"
        if staging_example:
            self.fields["staging"].help_text = f"Goldsmith's name for each build: {staging_example}"

    @classmethod
    def initial_from(cls, gold_version: Any, *, sizes=(), identity: str = "") -> dict[str, Any]:
        profile = gold_version.vm_profile or {}
        vnet = profile.get("vnetConfig") or {}
        size = profile.get("vmSize", "")
        staging = gold_version.staging_resource_group or ""
        handling = gold_version.error_handling or {}
        boot = ((gold_version.optimize or {}).get("vmBoot") or {}).get("state", "")
        return {"vmSize": size if not size or size in {s.name for s in sizes} else OTHER_SIZE,
                "vmSizeOther": "" if not size or size in {s.name for s in sizes} else size,
                "osDiskSizeGB": profile.get("osDiskSizeGB"), "identity": gold_version.identity or identity,
                "userAssignedIdentities": "\n".join(profile.get("userAssignedIdentities") or []),
                "subnetId": vnet.get("subnetId", ""), "containerInstanceSubnetId": vnet.get("containerInstanceSubnetId", ""),
                "proxyVmSize": vnet.get("proxyVmSize", ""),
                "staging": compose.staging_mode(staging)[0],
                "stagingResourceGroup": staging if compose.staging_mode(staging)[0] == "own" else "",
                "managedResourceTags": format_tags(gold_version.managed_resource_tags),
                "onCustomizerError": handling.get("onCustomizerError", ""),
                "onValidationError": handling.get("onValidationError", ""), "vmBoot": boot,
                "buildTimeoutInMinutes": gold_version.build_timeout_minutes,
                "resource_group": gold_version.resource_group, "tags": format_tags(gold_version.tags)}

    def clean_userAssignedIdentities(self) -> list[str]:
        return _lines(self.cleaned_data.get("userAssignedIdentities", ""))

    def clean_tags(self) -> dict[str, str]:
        return parse_tags(self.cleaned_data.get("tags", ""))

    def clean_managedResourceTags(self) -> dict[str, str]:
        return parse_tags(self.cleaned_data.get("managedResourceTags", ""))

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("vmSize") == OTHER_SIZE:
            data["vmSize"] = (data.get("vmSizeOther") or "").strip()
            if not data["vmSize"]:
                self.add_error("vmSizeOther", "Type the size, or choose one from the list.")
        if data.get("staging") == "own" and not (data.get("stagingResourceGroup") or "").strip():
            self.add_error("stagingResourceGroup", "Give the id of your staging resource group.")
        return data

    def to_fields(self, gold_version: Any) -> dict[str, Any]:
        """The draft's fields from the form; after a failed is_valid, from the fields that were
        valid (the draft's identity stands in for a refused one), so the rules can still run."""
        data = self.cleaned_data
        vm_profile = gold_version.vm_profile or {}
        profile = {key: value for key, value in vm_profile.items()
                   if key not in ("vmSize", "osDiskSizeGB", "userAssignedIdentities", "vnetConfig")}
        if data.get("vmSize"):
            profile["vmSize"] = data["vmSize"]
        if data.get("osDiskSizeGB"):
            profile["osDiskSizeGB"] = data["osDiskSizeGB"]
        if data.get("userAssignedIdentities"):
            profile["userAssignedIdentities"] = data["userAssignedIdentities"]
        vnet = dict(vm_profile.get("vnetConfig") or {})
        for key in ("subnetId", "containerInstanceSubnetId", "proxyVmSize"):
            vnet.pop(key, None)
            if (value := (data.get(key) or "").strip()):
                vnet[key] = value
        if vnet:
            profile["vnetConfig"] = vnet
        staging = {"none": "", "goldsmith": self.goldsmith_staging or compose.goldsmith_named(),
                   "own": (data.get("stagingResourceGroup") or "").strip()}[data.get("staging") or "none"]
        handling = {key: data[key] for key in ("onCustomizerError", "onValidationError") if data.get(key)}
        optimize = {key: value for key, value in (gold_version.optimize or {}).items() if key != "vmBoot"}
        if data.get("vmBoot"):
            optimize["vmBoot"] = {"state": data["vmBoot"]}
        return {"vm_profile": profile, "identity": data.get("identity", gold_version.identity),
                "build_timeout_minutes": data.get("buildTimeoutInMinutes") or None,
                "resource_group": data.get("resource_group", ""), "tags": data.get("tags") or {},
                "staging_resource_group": staging, "managed_resource_tags": data.get("managedResourceTags") or {},
                "error_handling": handling, "optimize": optimize}


def parse_tags(text: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for number, line in enumerate(_lines(text), start=1):
        name, sep, value = line.partition("=")
        if not sep or not name.strip():
            raise ValidationError(f"Line {number}: write name=value.")
        tags[name.strip()] = value.strip()
    return tags


def format_tags(tags: dict) -> str:
    return "\n".join(f"{name}={value}" for name, value in (tags or {}).items())


# --- Starting drafts and layers ---------------------------------------------------------------


def _version(text: str) -> str:
    text = text.strip()
    validate_version(text)
    return text


class GoldImageStartForm(forms.Form):
    slug = forms.CharField(label="Short name", max_length=SLUG_MAX, validators=[validate_slug],
                           help_text="Lower-case letters, digits and hyphens; used in URLs and template names.")
    name = forms.CharField(label="Name", max_length=100, validators=[validate_name])
    os_type = forms.ChoiceField(label="Operating system", choices=OsType.choices, widget=forms.RadioSelect)
    description = forms.CharField(widget=forms.Textarea, max_length=TEXT_MAX, required=False)
    version = forms.CharField(max_length=32, initial="1.0.0")

    def clean_version(self) -> str:
        return _version(self.cleaned_data["version"])


class NewVersionForm(forms.Form):
    version = forms.CharField(max_length=32)
    based_on = forms.ChoiceField(label="Start from", required=False)
    changelog = forms.CharField(label="What changes", widget=forms.Textarea, max_length=TEXT_MAX, required=False)

    def __init__(self, *args, versions=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["based_on"].choices = [("", "An empty version")] + [(v, v) for v in versions]

    def clean_version(self) -> str:
        return _version(self.cleaned_data["version"])


def new_version_form(data, versions) -> NewVersionForm:
    """The form for a new version of a gold image or layer (`versions`: its versions, newest
    first), proposing the next minor version, started from the newest."""
    latest = versions.first()
    initial = {"version": str(latest.semver.bump("minor")) if latest else "1.0.0",
               "based_on": latest.version if latest else ""}
    return NewVersionForm(data, versions=[v.version for v in versions], initial=initial)


class LayerCreateForm(forms.Form):
    department = forms.ChoiceField()
    gold_image = forms.ChoiceField(label="Gold image it extends")
    slug = forms.CharField(label="Short name", max_length=SLUG_MAX, validators=[validate_slug],
                           help_text="Lower-case letters, digits and hyphens.")
    name = forms.CharField(max_length=100, validators=[validate_name])
    description = forms.CharField(widget=forms.Textarea, max_length=TEXT_MAX, required=False)

    def __init__(self, *args, departments=(), gold_images=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["department"].choices = [(d.slug, d.name) for d in departments]
        self.fields["gold_image"].choices = [(g.slug, g.name) for g in gold_images]


class LayerVersionForm(forms.Form):
    accepts = forms.CharField(label="Accepted gold versions", max_length=100,
                              help_text="A range such as ^1.0 or >=1.2.0 <2.0.0 (* for any).")
    tags = forms.CharField(widget=forms.Textarea, max_length=TEXT_MAX, required=False,
                           help_text="One name=value per line, added to the image's tags.")
    subnetId = forms.CharField(label="Build subnet", max_length=URL_MAX, required=False,
                               help_text="The subnet id the build VM runs in (…/virtualNetworks/<vnet>/subnets/<subnet>), "
                                         "for a build that must reach your private servers. Empty: the gold "
                                         "version's network.")
    proxyVmSize = forms.CharField(label="Proxy VM size", max_length=64, required=False,
                                  help_text="With a subnet: the size of Image Builder's proxy VM. Empty: Azure's "
                                            "default.")
    changelog = forms.CharField(label="What changes", widget=forms.Textarea, max_length=TEXT_MAX, required=False)

    NETWORK_FIELDS = ("subnetId", "proxyVmSize")

    def __init__(self, *args, policy: validation.PolicyRules | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if policy is not None and not policy.layers_may_set_network:
            for name in self.NETWORK_FIELDS:
                self.fields[name].help_text = "The build policy leaves the build network to the gold version."
        elif policy is not None and policy.allowed_subnets:
            self.fields["subnetId"].help_text += f" Allowed: {', '.join(policy.allowed_subnets)}."

    def clean_tags(self) -> dict[str, str]:
        return parse_tags(self.cleaned_data.get("tags", ""))

    def to_network(self) -> dict[str, str]:
        """LayerVersion.network (empty values left out)."""
        return {name: value for name in self.NETWORK_FIELDS if (value := self.cleaned_data.get(name, "").strip())}

    @classmethod
    def initial_from(cls, layer_version: Any) -> dict[str, Any]:
        network = layer_version.network if isinstance(layer_version.network, dict) else {}
        return {"accepts": layer_version.accepts, "changelog": layer_version.changelog,
                "tags": format_tags(layer_version.tags), **{name: network.get(name, "") for name in cls.NETWORK_FIELDS}}


class CheckTemplateForm(forms.Form):
    template = forms.CharField(label="Template JSON", widget=forms.Textarea(attrs={"rows": 18, "spellcheck": "false"}),
                               max_length=500_000,
                               help_text="A bare body, an ARM resource or an ARM deployment template.")
    policy = forms.ChoiceField(required=False)
    offline = forms.BooleanField(label="Skip the catalog look-ups", required=False)

    def __init__(self, *args, policies=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["policy"].choices = [(name, name) for name in policies]


_LEFT_TO_TEMPLATE = ("", "Left to the template")


def _policy_choice(key: str, labels: dict[str, str]) -> list[tuple[str, str]]:
    return [_LEFT_TO_TEMPLATE, *((value, labels.get(value, value)) for value in validation.POLICY_CHOICES[key])]


_ROLLOUT_CHOICES = [("", "Nothing: rollouts are planned by hand"), ("plan", "Plan a rollout to check and start"),
                    ("start", "Plan and start a rollout")]


class PolicyForm(forms.Form):
    """Every rule of validation.PolicyRules: to_rules() writes them all, so saving the page
    never resets a rule the page does not show."""

    allowed_hosts = forms.CharField(label="Allowed script and file hosts", widget=forms.Textarea, required=False,
                                    max_length=TEXT_MAX,
                                    help_text="One per line: files.example.com, or *.example.com for its subdomains. "
                                              "Empty: any public https host.")
    require_checksums = forms.BooleanField(label="Require a sha256Checksum for every downloaded script or file",
                                           required=False)
    allowed_vm_sizes = forms.CharField(label="Allowed build VM sizes", widget=forms.Textarea, required=False,
                                       max_length=TEXT_MAX, help_text="One per line. Empty: any size.")
    allowed_regions = forms.CharField(label="Allowed regions", widget=forms.Textarea, required=False,
                                      max_length=TEXT_MAX,
                                      help_text="Build and distribution regions, one per line. Empty: any region.")
    required_tags = forms.CharField(label="Required tags", widget=forms.Textarea, required=False, max_length=TEXT_MAX,
                                    help_text="Tag names every template must carry, one per line.")
    max_build_timeout = forms.IntegerField(label="Maximum build timeout (minutes)", required=False, min_value=0,
                                           max_value=960, help_text="0 or empty: no limit beyond Azure's 960.")
    departments_may_use_windows_update = forms.BooleanField(label="Department layers may use Windows Update",
                                                            required=False)
    departments_may_run_elevated = forms.BooleanField(label="Department layers may run PowerShell elevated",
                                                      required=False)
    layers_may_set_network = forms.BooleanField(
        label="Department layers may choose the build network (subnet and proxy VM size)", required=False,
        help_text="Within the build network, allowed subnets and proxy VM sizes below.")
    staging_resource_group = forms.ChoiceField(
        label="Staging resource group", required=False,
        choices=_policy_choice("staging_resource_group", {"azure": "Image Builder names it (none in the template)",
                                                          "named": "The template must name one"}))
    staging_resource_group_prefix = forms.CharField(
        label="A named staging group's name starts with", max_length=80, required=False,
        help_text="For example goldsmith-staging-. Empty: any name.")
    required_managed_resource_tags = forms.CharField(
        label="Required managed resource tags", widget=forms.Textarea, required=False, max_length=TEXT_MAX,
        help_text="Tags on the resources Image Builder creates, one per line: name (any value) or name=value.")
    network = forms.ChoiceField(label="Build network", required=False,
                                choices=_policy_choice("network", {"private": "Private: a subnet is required",
                                                                   "public": "Public: no virtual network"}))
    allowed_subnets = forms.CharField(
        label="Allowed subnets", widget=forms.Textarea, required=False, max_length=TEXT_MAX,
        help_text="Subnet ids, or virtual network ids (any subnet of it), one per line. Empty: any subnet.")
    isolated_builds = forms.ChoiceField(
        label="Isolated builds (container instance subnet)", required=False,
        choices=_policy_choice("isolated_builds", {"required": "Required", "forbidden": "Forbidden"}))
    allowed_proxy_vm_sizes = forms.CharField(label="Allowed proxy VM sizes", widget=forms.Textarea, required=False,
                                             max_length=TEXT_MAX, help_text="One per line. Empty: any size.")
    on_customizer_error = forms.ChoiceField(
        label="On a customizer error", required=False,
        choices=_policy_choice("on_customizer_error", {"cleanup": "Clean up", "abort": "Abort (keep the build VM)"}))
    on_validation_error = forms.ChoiceField(
        label="On a validation error", required=False,
        choices=_policy_choice("on_validation_error", {"cleanup": "Clean up", "abort": "Abort (keep the build VM)"}))
    vm_boot_optimization = forms.ChoiceField(label="VM boot optimization", required=False,
                                             choices=_policy_choice("vm_boot_optimization", {}))
    max_replica_count = forms.IntegerField(label="Maximum replicas per target region", required=False, min_value=0,
                                           max_value=100, help_text="0 or empty: Azure's limit.")
    allowed_storage_account_types = forms.CharField(
        label="Allowed replica storage account types", widget=forms.Textarea, required=False, max_length=TEXT_MAX,
        help_text=f"One per line, of {', '.join(schema.STORAGE_ACCOUNT_TYPES)}. Empty: any.")
    gallery_versioning = forms.ChoiceField(
        label="Gallery versioning", required=False,
        choices=_policy_choice("gallery_versioning", {"Latest": "Latest (next version number)",
                                                      "Source": "Source (the source image's version)"}))
    additional_data_disks = forms.BooleanField(label="Templates may add data disks", required=False)
    max_data_disk_size_gb = forms.IntegerField(label="Largest data disk (GB)", required=False, min_value=0,
                                               max_value=32767, help_text="0 or empty: no limit.")
    delete_revoked_after_days = forms.IntegerField(
        label="Delete revoked gallery image versions after (days)", required=False, min_value=0, max_value=3650,
        help_text="Counted from the revocation; each deletion still needs a second security-team member's "
                  "approval. 0 or empty: never delete.")
    on_new_source = forms.ChoiceField(
        label="When a newer source image is listed", required=False,
        choices=_policy_choice("on_new_source", {"notify": "Notify only",
                                                 "build": "Notify and build the gold version on it"}))
    rollout_on_publish = forms.ChoiceField(
        label="When a gold version is published", required=False,
        choices=_ROLLOUT_CHOICES,
        help_text="A rollout rebuilds every department layer that accepts the new version, in waves.")
    rollout_on_promote = forms.ChoiceField(
        label="When a gold version is promoted to a channel", required=False,
        choices=_ROLLOUT_CHOICES,
        help_text="Only when the version has no rollout yet.")
    comment = forms.CharField(label="Why this change", max_length=1000, required=False)

    LIST_FIELDS = ("allowed_hosts", "allowed_vm_sizes", "allowed_regions", "required_tags",
                   "required_managed_resource_tags", "allowed_subnets", "allowed_proxy_vm_sizes",
                   "allowed_storage_account_types")
    BOOL_FIELDS = ("require_checksums", "departments_may_use_windows_update", "departments_may_run_elevated",
                   "layers_may_set_network", "additional_data_disks")
    INT_FIELDS = ("max_build_timeout", "max_replica_count", "max_data_disk_size_gb", "delete_revoked_after_days")
    TEXT_FIELDS = ("staging_resource_group", "staging_resource_group_prefix", "network", "isolated_builds",
                   "on_customizer_error", "on_validation_error", "vm_boot_optimization", "gallery_versioning", "on_new_source",
                   "rollout_on_publish", "rollout_on_promote")

    def to_rules(self) -> dict[str, Any]:
        data = self.cleaned_data
        rules: dict[str, Any] = {key: _lines(data.get(key, "")) for key in self.LIST_FIELDS}
        rules.update({key: bool(data.get(key)) for key in self.BOOL_FIELDS})
        rules.update({key: data.get(key) or 0 for key in self.INT_FIELDS})
        rules.update({key: (data.get(key) or "").strip() for key in self.TEXT_FIELDS})
        return rules

    @classmethod
    def initial_from(cls, rules: dict[str, Any]) -> dict[str, Any]:
        initial = dict(rules)
        for key in cls.LIST_FIELDS:
            initial[key] = "\n".join(rules.get(key) or [])
        return initial
