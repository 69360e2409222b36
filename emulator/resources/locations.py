"""The Azure regions the emulator knows: one fixed list, the only place region facts live.

Served by GET /subscriptions/{sub}/locations, used for display names (gallery replication
answers "East US"), for the providers document's locations and for ARM's
NoRegisteredProviderFound message. A later "preflight regions" check reads the same list.

Each entry: name, displayName, regionalDisplayName, geography, geographyGroup,
physicalLocation, pairedRegion (a name; it may be a region not listed here). Latitude and
longitude are left out.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Region:
    name: str
    display_name: str
    group_label: str  # the "(US)" in regionalDisplayName
    geography: str
    geography_group: str
    physical_location: str
    paired_region: str

    @property
    def regional_display_name(self) -> str:
        return f"({self.group_label}) {self.display_name}"


_US, _EU, _AP = "US", "Europe", "Asia Pacific"
REGIONS: tuple[Region, ...] = (
    Region("eastus", "East US", _US, "United States", _US, "Virginia", "westus"),
    Region("eastus2", "East US 2", _US, "United States", _US, "Virginia", "centralus"),
    Region("centralus", "Central US", _US, "United States", _US, "Iowa", "eastus2"),
    Region("northcentralus", "North Central US", _US, "United States", _US, "Illinois", "southcentralus"),
    Region("southcentralus", "South Central US", _US, "United States", _US, "Texas", "northcentralus"),
    Region("westcentralus", "West Central US", _US, "United States", _US, "Wyoming", "westus2"),
    Region("westus", "West US", _US, "United States", _US, "California", "eastus"),
    Region("westus2", "West US 2", _US, "United States", _US, "Washington", "westcentralus"),
    Region("westus3", "West US 3", _US, "United States", _US, "Phoenix", "eastus"),
    Region("canadacentral", "Canada Central", "Canada", "Canada", "Canada", "Toronto", "canadaeast"),
    Region("canadaeast", "Canada East", "Canada", "Canada", "Canada", "Quebec", "canadacentral"),
    Region("northeurope", "North Europe", _EU, "Europe", _EU, "Ireland", "westeurope"),
    Region("westeurope", "West Europe", _EU, "Europe", _EU, "Netherlands", "northeurope"),
    Region("uksouth", "UK South", _EU, "United Kingdom", _EU, "London", "ukwest"),
    Region("ukwest", "UK West", _EU, "United Kingdom", _EU, "Cardiff", "uksouth"),
    Region("francecentral", "France Central", _EU, "France", _EU, "Paris", "francesouth"),
    Region("germanywestcentral", "Germany West Central", _EU, "Germany", _EU, "Frankfurt", "germanynorth"),
    Region("swedencentral", "Sweden Central", _EU, "Sweden", _EU, "Gävle", "swedensouth"),
    Region("southeastasia", "Southeast Asia", _AP, "Asia Pacific", _AP, "Singapore", "eastasia"),
    Region("eastasia", "East Asia", _AP, "Asia Pacific", _AP, "Hong Kong", "southeastasia"),
    Region("japaneast", "Japan East", _AP, "Japan", _AP, "Tokyo, Saitama", "japanwest"),
    Region("japanwest", "Japan West", _AP, "Japan", _AP, "Osaka", "japaneast"),
    Region("australiaeast", "Australia East", _AP, "Australia", _AP, "New South Wales", "australiasoutheast"),
    Region("australiasoutheast", "Australia Southeast", _AP, "Australia", _AP, "Victoria", "australiaeast"),
)
_BY_NAME = {region.name: region for region in REGIONS}


def normalize(location: str) -> str:
    """`East US` -> `eastus`, as ARM compares locations."""
    return location.replace(" ", "").lower()


def region(location: str) -> Region | None:
    return _BY_NAME.get(normalize(location))


def names() -> list[str]:
    return [region.name for region in REGIONS]


def display_name(location: str) -> str:
    """The display name of a known region; anything else comes back as given."""
    found = region(location)
    return found.display_name if found else location


def arm_location(subscription: str, entry: Region) -> dict:
    """One item of GET /subscriptions/{sub}/locations (api-version 2022-12-01 shape)."""
    return {
        "id": f"/subscriptions/{subscription}/locations/{entry.name}",
        "name": entry.name,
        "type": "Region",
        "displayName": entry.display_name,
        "regionalDisplayName": entry.regional_display_name,
        "metadata": {
            "regionType": "Physical",
            "regionCategory": "Recommended",
            "geography": entry.geography,
            "geographyGroup": entry.geography_group,
            "physicalLocation": entry.physical_location,
            "pairedRegion": [{"name": entry.paired_region,
                              "id": f"/subscriptions/{subscription}/locations/{entry.paired_region}"}],
        },
    }
