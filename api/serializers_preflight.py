"""Serializers of the pre-flight endpoints (api/views_preflight.py): build VM sizes, a gold
version's review, and the build policy they apply, documented field by field in OpenAPI."""

from __future__ import annotations

import dataclasses

from rest_framework import serializers

from api.serializers import ProblemSerializer
from builds import placement, validation
from builds.models import Generation, SecurityType
from builds.schema import STORAGE_ACCOUNT_TYPES

_POLICY_HELP = {
    "allowed_hosts": "Hosts script and file URLs may use (`*.example.com` for subdomains): `policy.uri-host`.",
    "require_checksums": "sha256Checksum with every scriptUri and sourceUri: `policy.checksum-required`.",
    "allowed_vm_sizes": "Build VM sizes allowed: `policy.vm-size`.",
    "allowed_regions": "The build region and every distribution region: `policy.region`.",
    "required_tags": "Tag names every template carries: `policy.tag-required`.",
    "max_build_timeout": "Minutes; 0 means Azure's 240: `policy.build-timeout`.",
    "departments_may_use_windows_update": "Layers may use WindowsUpdate: `policy.windows-update`.",
    "departments_may_run_elevated": "Layer steps may run elevated: `policy.run-elevated`.",
    "layers_may_set_network": "A layer may choose subnetId and proxyVmSize: `policy.layer-network`.",
    "staging_resource_group": "`azure`: leave it to Image Builder; `named`: the template names one "
                              "(`policy.staging-resource-group`).",
    "staging_resource_group_prefix": "A named group's name starts with this: `policy.staging-prefix`.",
    "required_managed_resource_tags": "`name` or `name=value` on managedResourceTags: `policy.managed-resource-tag`.",
    "network": "`private` (subnetId required) or `public` (no vnetConfig): `policy.network`.",
    "allowed_subnets": "Subnet or VNet ids: `policy.subnet`.",
    "isolated_builds": "`required` or `forbidden` (containerInstanceSubnetId): `policy.isolated-build`.",
    "allowed_proxy_vm_sizes": "Proxy VM sizes allowed: `policy.proxy-vm-size`.",
    "on_customizer_error": "errorHandling.onCustomizerError must be this: `policy.error-handling`.",
    "on_validation_error": "errorHandling.onValidationError must be this: `policy.error-handling`.",
    "vm_boot_optimization": "optimize.vmBoot.state must be this: `policy.vm-boot`.",
    "max_replica_count": "Replicas per gallery target region; 0: Azure's 100 (`policy.replica-count`).",
    "allowed_storage_account_types": "Per gallery target region: `policy.storage-account-type`.",
    "gallery_versioning": "Gallery targets' versioning scheme: `policy.versioning`.",
    "additional_data_disks": "False: additionalDataDisks refused (`policy.data-disks`).",
    "max_data_disk_size_gb": "0: no limit (`policy.data-disk-size`).",
    "delete_revoked_after_days": "Days after revocation when the gallery image versions are deleted, with a "
                                 "second approval; 0: never.",
    "on_new_source": "What the source watch does with a newer source version: `notify` (also when empty) or "
                     "`build` (a gold-only build on it).",
    "rollout_on_publish": "What publishing a gold version does to its dependent layers: empty, nothing "
                          "(rollouts are planned by hand); `plan` a planned rollout; `start` a started one.",
    "rollout_on_promote": "The same when a gold version is promoted to a channel (only when it has no rollout yet).",
}
_LIST_CHOICES = {"allowed_storage_account_types": STORAGE_ACCOUNT_TYPES}


def _policy_field(item: dataclasses.Field) -> serializers.Field:
    help_text = _POLICY_HELP.get(item.name, "")
    if isinstance(item.default, bool):
        return serializers.BooleanField(help_text=help_text)
    if isinstance(item.default, int):
        return serializers.IntegerField(help_text=help_text)
    if isinstance(item.default, tuple):
        child = serializers.ChoiceField(choices=_LIST_CHOICES[item.name]) if item.name in _LIST_CHOICES \
            else serializers.CharField()
        return serializers.ListField(child=child, help_text=help_text + " Empty: no restriction.")
    if item.name in validation.POLICY_CHOICES:
        return serializers.ChoiceField(choices=["", *validation.POLICY_CHOICES[item.name]],
                                       help_text=help_text + " Empty: left to the template.")
    return serializers.CharField(allow_blank=True, help_text=help_text)


# One field per rule of validation.PolicyRules, so a new rule is documented as soon as it exists.
PolicySerializer = type("PolicySerializer", (serializers.Serializer,), {
    "__doc__": "The build policy a check applied (validation.PolicyRules).",
    **{item.name: _policy_field(item) for item in dataclasses.fields(validation.PolicyRules)}})


class VmSizeParams(serializers.Serializer):
    location = serializers.RegexField(r"^[a-z0-9]{1,40}$", help_text="The build region's name, e.g. `eastus`.")
    generation = serializers.ChoiceField(choices=Generation.values, required=False,
                                         help_text="Only sizes that run this Hyper-V generation.")
    security_type = serializers.ChoiceField(choices=SecurityType.values, required=False,
                                            help_text="TrustedLaunch: sizes without TrustedLaunchDisabled; "
                                                      "ConfidentialVM: confidential sizes.")
    architecture = serializers.ChoiceField(choices=["x64", "Arm64"], required=False)


class VmSizeSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="e.g. `Standard_D2ds_v5`.")
    label = serializers.CharField(help_text="What the wizard's picker shows.")
    vcpus = serializers.IntegerField()
    memory_gb = serializers.FloatField()
    generations = serializers.ListField(child=serializers.ChoiceField(choices=Generation.values))
    price_per_hour = serializers.FloatField(allow_null=True, help_text="Rough cost per build-hour; null without "
                                                                       "BUILD_VM_PRICES_FILE or a price for it.")
    currency = serializers.CharField(allow_blank=True)


class VmSizeListSerializer(serializers.Serializer):
    location = serializers.CharField()
    sizes = VmSizeSerializer(many=True, help_text="Offered in the region, fitting the filters and the policy's "
                                                  "allowed_vm_sizes, smallest first.")
    note = serializers.CharField(allow_blank=True, help_text="Why the list is empty when the sizes could not be "
                                                             "listed; empty otherwise.")


class CheckGroupSerializer(serializers.Serializer):
    group = serializers.ChoiceField(choices=list(validation.GROUPS), help_text="The rule group (first part of a "
                                                                              "rule id; policy.deny is azure-policy).")
    title = serializers.CharField()
    ran = serializers.BooleanField(help_text="False when the group was skipped.")
    passed = serializers.BooleanField()
    problems = ProblemSerializer(many=True)


class ReviewSerializer(serializers.Serializer):
    gold_image = serializers.SlugField()
    version = serializers.CharField()
    ok = serializers.BooleanField(help_text="No error in any group (warnings never fail).")
    publishable = serializers.BooleanField(help_text="No error outside the groups of where the build runs (region, "
                                                     "vm-size, identity, permission, staging, azure-policy), which "
                                                     "hold builds up, not publishing.")
    checks = CheckGroupSerializer(many=True, help_text="Every check group, in order, with its problems.")
    policy = PolicySerializer(help_text="The build policy applied.")


def size_data(size: placement.SizeChoice) -> dict:
    return {"name": size.name, "label": size.label, "vcpus": size.vcpus, "memory_gb": size.memory_gb,
            "generations": list(size.generations), "price_per_hour": size.price_per_hour, "currency": size.currency}
