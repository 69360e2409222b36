"""Compute resource SKUs (GET /subscriptions/{sub}/providers/Microsoft.Compute/skus): the one
place VM size facts live, for the portal's preflight (generation, Trusted Launch, confidential
computing, size, availability per region).

Shape per azure-rest-api-specs Microsoft.Compute/Skus 2021-07-01 (ResourceSku): resourceType,
name, tier, size, family, locations (one region per entry, as Azure lists them), locationInfo
with zones, capabilities as [{name, value}] with every value a string, restrictions
[{type: Location | Zone, values, restrictionInfo: {locations, zones}, reasonCode}].

Generation facts follow aib-reference-2 §5: Dv2 (non-s, e.g. Standard_D1_v2, AIB's default
Gen1 build size) is Gen1-only; DSv2, Dsv3, Dsv5, Ddsv5, Dasv5, B support both; DCasv5/ECasv5
(confidential, SNP) and Dpsv5 (Arm64) are Gen2-only. Standard_M8ms answers
TrustedLaunchDisabled "True" (a Gen2-capable size without Trusted Launch). Restrictions are the
emulator's choice, to give preflight something to find: Standard_D4ds_v5 is
NotAvailableForSubscription in westus2, Standard_D2s_v3 in zone 3 of eastus.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# What azure-mgmt-compute 39.0.0 sends for resource_skus.list (2021-07-01) and the earlier ones.
SKU_API_VERSIONS = ("2017-03-30", "2017-09-01", "2019-04-01", "2021-07-01")

# Regions with availability zones among emulator/resources/locations.py's list.
ZONAL_REGIONS = frozenset({
    "eastus", "eastus2", "centralus", "southcentralus", "westus2", "westus3", "canadacentral", "northeurope",
    "westeurope", "uksouth", "francecentral", "germanywestcentral", "swedencentral", "southeastasia",
    "eastasia", "japaneast", "australiaeast",
})
# Where the confidential (AMD SEV-SNP) sizes are offered in the emulator.
CONFIDENTIAL_REGIONS = ("eastus", "westus", "northeurope", "westeurope", "southeastasia", "japaneast")


@dataclass(frozen=True)
class VmSize:
    name: str
    family: str
    vcpus: int
    memory_gb: str
    generations: str  # "V1", "V2" or "V1,V2"
    temp_disk_mb: int  # MaxResourceVolumeMB; 0 for sizes without a temporary disk
    data_disks: int
    premium_io: bool = True
    arch: str = "x64"
    extra: tuple[tuple[str, str], ...] = ()  # further capabilities, e.g. ConfidentialComputingType
    regions: tuple[str, ...] | None = None  # None: every region the emulator knows
    restricted: dict[str, tuple[str, ...]] = field(default_factory=dict)  # region -> zones ((): whole region)

    @property
    def size(self) -> str:
        return self.name.removeprefix("Standard_")


VM_SIZES: tuple[VmSize, ...] = (
    VmSize("Standard_B2s", "standardBSFamily", 2, "4", "V1,V2", 8192, 4),
    VmSize("Standard_D1_v2", "standardDv2Family", 1, "3.5", "V1", 51200, 4, premium_io=False),
    VmSize("Standard_DS1_v2", "standardDSv2Family", 1, "3.5", "V1,V2", 7168, 4),
    VmSize("Standard_D2s_v3", "standardDSv3Family", 2, "8", "V1,V2", 16384, 4, restricted={"eastus": ("3",)}),
    VmSize("Standard_D4s_v3", "standardDSv3Family", 4, "16", "V1,V2", 32768, 8),
    VmSize("Standard_D2ds_v4", "standardDDSv4Family", 2, "8", "V1,V2", 76800, 4),
    VmSize("Standard_D2s_v5", "standardDSv5Family", 2, "8", "V1,V2", 0, 4),
    VmSize("Standard_D2ds_v5", "standardDDSv5Family", 2, "8", "V1,V2", 76800, 4),
    VmSize("Standard_D4ds_v5", "standardDDSv5Family", 4, "16", "V1,V2", 153600, 8, restricted={"westus2": ()}),
    VmSize("Standard_D2as_v5", "standardDASv5Family", 2, "8", "V1,V2", 0, 4),
    VmSize("Standard_D2ps_v5", "standardDPSv5Family", 2, "8", "V2", 0, 4, arch="Arm64"),
    VmSize("Standard_DC2as_v5", "standardDCASv5Family", 2, "8", "V2", 0, 4,
           extra=(("ConfidentialComputingType", "SNP"),), regions=CONFIDENTIAL_REGIONS),
    VmSize("Standard_EC2as_v5", "standardECASv5Family", 2, "16", "V2", 0, 4,
           extra=(("ConfidentialComputingType", "SNP"),), regions=CONFIDENTIAL_REGIONS),
    VmSize("Standard_M8ms", "standardMSFamily", 8, "218.75", "V1,V2", 256000, 8,
           extra=(("TrustedLaunchDisabled", "True"),)),
)


def capabilities(size: VmSize) -> list[dict]:
    """The capability list of a size, every value a string as in Azure."""
    pairs = [
        ("MaxResourceVolumeMB", str(size.temp_disk_mb)),
        ("OSVhdSizeMB", "1047552"),
        ("vCPUs", str(size.vcpus)),
        ("MemoryPreservingMaintenanceSupported", "True"),
        ("HyperVGenerations", size.generations),
        ("MemoryGB", size.memory_gb),
        ("MaxDataDiskCount", str(size.data_disks)),
        ("CpuArchitectureType", size.arch),
        ("LowPriorityCapable", "True"),
        ("PremiumIO", str(size.premium_io)),
        ("VMDeploymentTypes", "IaaS"),
        ("vCPUsAvailable", str(size.vcpus)),
        ("vCPUsPerCore", "1" if size.arch == "Arm64" or size.vcpus == 1 else "2"),
        ("EphemeralOSDiskSupported", str(size.temp_disk_mb > 0)),
        ("EncryptionAtHostSupported", "True"),
        ("CapacityReservationSupported", "True"),
        ("AcceleratedNetworkingEnabled", str(size.vcpus >= 2)),
        ("RdmaEnabled", "False"),
        ("MaxNetworkInterfaces", "2" if size.vcpus <= 2 else "4"),
        *size.extra,
    ]
    return [{"name": name, "value": value} for name, value in pairs]


def resource_skus(region_names: list[str], location: str | None = None) -> list[dict]:
    """ResourceSku documents, one per size and region, in size order; only `location` when given."""
    wanted = [location] if location else region_names
    found = []
    for size in VM_SIZES:
        offered = size.regions if size.regions is not None else tuple(region_names)
        for region in wanted:
            if region in offered:
                found.append(_render(size, region))
    return found


def _render(size: VmSize, region: str) -> dict:
    zones = ["1", "2", "3"] if region in ZONAL_REGIONS else []
    restrictions = []
    if region in size.restricted:
        blocked = list(size.restricted[region])
        if blocked:
            restrictions.append({"type": "Zone", "values": [region],
                                 "restrictionInfo": {"locations": [region], "zones": blocked},
                                 "reasonCode": "NotAvailableForSubscription"})
        else:
            restrictions.append({"type": "Location", "values": [region],
                                 "restrictionInfo": {"locations": [region]},
                                 "reasonCode": "NotAvailableForSubscription"})
    return {
        "resourceType": "virtualMachines",
        "name": size.name,
        "tier": "Standard",
        "size": size.size,
        "family": size.family,
        "locations": [region],
        "locationInfo": [{"location": region, "zones": zones, "zoneDetails": []}],
        "capabilities": capabilities(size),
        "restrictions": restrictions,
    }


def location_filter(expression: str | None) -> str | None:
    """The region of `$filter=location eq 'x'` (the only filter the API supports), or None."""
    if not expression:
        return None
    found = re.fullmatch(r"\s*location\s+eq\s+'([^']*)'\s*", expression, re.IGNORECASE)
    return found.group(1) if found else ""
