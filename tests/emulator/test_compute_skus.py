"""Compute resource SKUs through azure-mgmt-compute's resource_skus.list(filter=...): the VM size
facts preflight reads (generations, Trusted Launch, confidential computing, restrictions)."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError

from tests.support.emulator import SUBSCRIPTION_ID


def skus(emulator, location: str = "eastus") -> dict:
    found = emulator.compute_client().resource_skus.list(filter=f"location eq '{location}'")
    return {sku.name: sku for sku in found}


def capability(sku, name: str) -> str | None:
    return next((item.value for item in sku.capabilities if item.name == name), None)


def test_it_lists_vm_sizes_of_one_region_with_their_capabilities(emulator):
    found = skus(emulator)

    d2s = found["Standard_D2s_v3"]
    assert d2s.resource_type == "virtualMachines"
    assert (d2s.tier, d2s.size, d2s.family) == ("Standard", "D2s_v3", "standardDSv3Family")
    assert d2s.locations == ["eastus"]
    assert d2s.location_info[0].zones == ["1", "2", "3"]
    assert capability(d2s, "vCPUs") == "2"
    assert capability(d2s, "MemoryGB") == "8"
    assert capability(d2s, "HyperVGenerations") == "V1,V2"
    assert capability(found["Standard_D1_v2"], "HyperVGenerations") == "V1"
    assert capability(found["Standard_D2ps_v5"], "CpuArchitectureType") == "Arm64"


def test_it_marks_confidential_and_trusted_launch_disabled_sizes(emulator):
    found = skus(emulator)

    assert capability(found["Standard_DC2as_v5"], "ConfidentialComputingType") == "SNP"
    assert capability(found["Standard_EC2as_v5"], "HyperVGenerations") == "V2"
    assert capability(found["Standard_M8ms"], "TrustedLaunchDisabled") == "True"
    assert capability(found["Standard_D2s_v5"], "TrustedLaunchDisabled") is None


def test_it_answers_restrictions_per_region(emulator):
    westus2, eastus = skus(emulator, "westus2"), skus(emulator, "eastus")

    restriction = westus2["Standard_D4ds_v5"].restrictions[0]
    assert (restriction.type, restriction["values"], restriction.reason_code) == (
        "Location", ["westus2"], "NotAvailableForSubscription")
    assert restriction.restriction_info.locations == ["westus2"]
    assert eastus["Standard_D4ds_v5"].restrictions == []
    zone = eastus["Standard_D2s_v3"].restrictions[0]
    assert (zone.type, zone.restriction_info.zones) == ("Zone", ["3"])
    assert "Standard_DC2as_v5" not in westus2


def test_it_pages_with_a_next_link_that_keeps_the_filter(emulator, arm):
    everything = skus(emulator)
    emulator.settings(page_size=4)

    paged = skus(emulator)
    first = arm.get(f"/subscriptions/{SUBSCRIPTION_ID}/providers/Microsoft.Compute/skus", "2021-07-01",
                    **{"$filter": "location eq 'eastus'"}).json()

    assert list(paged) == list(everything)
    assert len(first["value"]) == 4
    assert "location%20eq%20%27eastus%27" in first["nextLink"]


def test_it_refuses_filters_other_than_location(emulator):
    with pytest.raises(HttpResponseError) as refused:
        list(emulator.compute_client().resource_skus.list(filter="name eq 'Standard_B2s'"))

    assert refused.value.status_code == 400
