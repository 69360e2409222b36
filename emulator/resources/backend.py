"""Microsoft.Resources: subscriptions and resource groups, as azure-mgmt-resource uses them.

Any subscription id is accepted and comes into being on first use, so a fresh emulator needs
no set-up; resource groups are real records, because Image Builder and the compute catalog
refuse to work in a group that does not exist (ResourceGroupNotFound), as Azure does.

Backend (app.services["resources"]): ensure_subscription, resource_group, create_resource_group,
delete_resource_group, resource_groups, add_delete_hook. Other services register a delete hook
to drop their resources when a group goes, the way ARM deletes a group's contents with it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from emulator.core import ArmError, Request
from emulator.resources import locations

# What azure-mgmt-resource 26.0.0 sends (2025-04-01) and the versions before it that tools
# still pin; ARM answers InvalidApiVersionParameter for anything else.
RESOURCE_API_VERSIONS = (
    "2016-09-01", "2017-05-10", "2018-05-01", "2019-05-01", "2019-05-10", "2019-07-01", "2019-08-01",
    "2019-10-01", "2020-06-01", "2020-08-01", "2020-10-01", "2021-01-01", "2021-04-01", "2022-09-01",
    "2023-07-01", "2024-03-01", "2024-07-01", "2024-11-01", "2025-03-01", "2025-04-01",
)
SUBSCRIPTION_API_VERSIONS = (
    "2016-06-01", "2018-06-01", "2019-06-01", "2019-11-01", "2020-01-01", "2021-01-01", "2022-01-01",
    "2022-12-01", "2023-07-01", "2024-08-01", "2025-03-01",
)
DEFAULT_TENANT = "11111111-1111-1111-1111-111111111111"

_RG_NAME = re.compile(r"^[-\w._()]{1,90}$")
DeleteHook = Callable[[str, str], None]
# lister(subscription, resource_group or None) -> the generic resources a service holds there
ResourceLister = Callable[[str, "str | None"], list[dict]]


def require_api_version(request: Request, supported: Iterable[str]) -> str:
    """The request's api-version; 400 as ARM answers when it is missing or not offered."""
    version = request.arg("api-version")
    if not version:
        raise ArmError(400, "MissingApiVersionParameter",
                       "The api-version query parameter (?api-version=) is required for all requests.")
    offered = tuple(supported)
    if version not in offered:
        raise ArmError(400, "InvalidApiVersionParameter",
                       f"The api-version '{version}' is invalid. The supported versions are "
                       f"'{','.join(reversed(offered))}'. Please see https://aka.ms/api-versions for more details.")
    return version


def normalize_location(location: str) -> str:
    """ARM's canonical region name: 'East US' and 'eastus' are the same place."""
    return locations.normalize(location)


def resource_group_id(subscription: str, name: str) -> str:
    return f"/subscriptions/{subscription}/resourceGroups/{name}"


class Resources:
    def __init__(self, app):
        self.app = app
        self._delete_hooks: list[DeleteHook] = []
        self._listers: list[ResourceLister] = []
        # namespace (lower case) -> {"namespace", "resourceTypes": [{"resourceType", "apiVersions", "locations"}]}
        self._providers: dict[str, dict] = {}

    # -- subscriptions ------------------------------------------------------------------------

    def ensure_subscription(self, subscription: str) -> dict:
        """The subscription's record, created on first use (any id is accepted)."""
        found = self.app.store.get("subscription", subscription)
        if found:
            return found
        record = {
            "id": f"/subscriptions/{subscription}",
            "subscriptionId": subscription,
            "tenantId": DEFAULT_TENANT,
            "displayName": f"Emulated subscription {subscription[:8]}",
            "state": "Enabled",
            "subscriptionPolicies": {"locationPlacementId": "Public_2014-09-01", "quotaId": "PayAsYouGo_2014-09-01",
                                     "spendingLimit": "Off"},
            "authorizationSource": "RoleBased",
        }
        self.app.store.put("subscription", subscription, record)
        return record

    # -- resource groups ----------------------------------------------------------------------

    def resource_group(self, subscription: str, name: str) -> dict | None:
        """ARM ResourceGroup JSON, or None; names are case-insensitive as in Azure."""
        return self.app.store.get("resourcegroup", f"{subscription}/{name}")

    def require_resource_group(self, subscription: str, name: str) -> dict:
        """The group, or ARM's 404 ResourceGroupNotFound."""
        group = self.resource_group(subscription, name)
        if group is None:
            raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{name}' could not be found.")
        return group

    def resource_groups(self, subscription: str) -> list[dict]:
        return self.app.store.list("resourcegroup", f"{subscription}/")

    def create_resource_group(self, subscription: str, name: str, location: str, tags: dict | None = None,
                              managed_by: str | None = None) -> dict:
        """Create or update a group (idempotent); 409 when it exists in another location."""
        if not _RG_NAME.match(name) or name.endswith("."):
            raise ArmError(400, "InvalidResourceGroupName",
                           f"The provided resource group name '{name}' has these invalid characters. The name can "
                           "only be a letter, digit, '-', '.', '(', ')' or '_'.")
        self.ensure_subscription(subscription)
        location = normalize_location(location)
        existing = self.resource_group(subscription, name)
        if existing and existing["location"] != location:
            raise ArmError(409, "InvalidResourceGroupLocation",
                           f"Invalid resource group location '{location}'. The Resource group already exists in "
                           f"location '{existing['location']}'.")
        group = {
            "id": existing["id"] if existing else resource_group_id(subscription, name),
            "name": existing["name"] if existing else name,
            "type": "Microsoft.Resources/resourceGroups",
            "location": location,
            "properties": {"provisioningState": "Succeeded"},
        }
        if tags:
            group["tags"] = dict(tags)
        if managed_by:
            group["managedBy"] = managed_by
        self.app.store.put("resourcegroup", f"{subscription}/{name}", group)
        return group

    def update_resource_group(self, subscription: str, name: str, patch: dict) -> dict:
        """PATCH semantics: tags replace the old tags; managedBy is set when given."""
        group = self.require_resource_group(subscription, name)
        if "tags" in patch:
            if patch["tags"]:
                group["tags"] = dict(patch["tags"])
            else:
                group.pop("tags", None)
        if patch.get("managedBy"):
            group["managedBy"] = patch["managedBy"]
        self.app.store.put("resourcegroup", f"{subscription}/{name}", group)
        return group

    def delete_resource_group(self, subscription: str, name: str) -> bool:
        """Delete the group and, through the hooks, everything in it; False when absent."""
        if self.resource_group(subscription, name) is None:
            return False
        for hook in self._delete_hooks:
            hook(subscription, name)
        return self.app.store.delete("resourcegroup", f"{subscription}/{name}")

    def add_delete_hook(self, hook: DeleteHook) -> None:
        """hook(subscription, group_name) runs before a group is deleted, to drop its resources."""
        self._delete_hooks.append(hook)



    # -- generic resources (az resource list) -------------------------------------------------

    def add_resource_lister(self, lister: ResourceLister) -> None:
        """lister(subscription, resource_group or None) -> [{id, name, type, location, tags?, ...}]."""
        self._listers.append(lister)

    def resources(self, subscription: str, resource_group: str | None = None) -> list[dict]:
        """Every resource the services hold in the subscription (or group), ordered by id."""
        found = [item for lister in self._listers for item in lister(subscription, resource_group)]
        return sorted(found, key=lambda item: item["id"].lower())

    # -- resource providers -------------------------------------------------------------------

    def add_provider(self, namespace: str, resource_types: list[dict]) -> None:
        """Declare a provider's resource types: [{"resourceType", "apiVersions" (oldest first),
        "locations": None for every known region, or [] for a global type}]."""
        self._providers[namespace.lower()] = {"namespace": namespace, "resourceTypes": resource_types}

    def providers(self, subscription: str) -> list[dict]:
        return [self.provider(subscription, entry["namespace"]) for entry in self._providers.values()]

    def provider(self, subscription: str, namespace: str) -> dict:
        """The Provider document of GET /subscriptions/{sub}/providers/{namespace}."""
        entry = self._providers.get(namespace.lower())
        if entry is None:
            raise ArmError(404, "InvalidResourceNamespace",
                           f"The resource namespace '{namespace}' is invalid.")
        types = []
        for item in entry["resourceTypes"]:
            versions = list(reversed(item["apiVersions"]))
            shown = {"resourceType": item["resourceType"],
                     "locations": [locations.display_name(name) for name in self._type_locations(item)],
                     "apiVersions": versions, "defaultApiVersion": versions[0], "capabilities": "None"}
            types.append(shown)
        return {"id": f"/subscriptions/{subscription}/providers/{entry['namespace']}",
                "namespace": entry["namespace"], "registrationState": "Registered",
                "registrationPolicy": "RegistrationRequired", "resourceTypes": types}

    def api_versions(self, namespace: str, resource_type: str) -> tuple[str, ...]:
        """The api-versions declared for a resource type (oldest first); () when unknown."""
        item = self._resource_type(namespace, resource_type)
        return tuple(item["apiVersions"]) if item else ()

    def no_registered_provider(self, namespace: str, resource_type: str, version: str,
                               location: str | None) -> ArmError:
        """ARM's answer to an api-version (or location) a provider's resource type does not offer.
        `resource_type` may be nested ("imageTemplates/triggers"); the message names its last part."""
        item = self._resource_type(namespace, resource_type) or {"apiVersions": (), "locations": None}
        supported = ", ".join(reversed(item["apiVersions"]))
        where = ", ".join(locations.display_name(name) for name in self._type_locations(item))
        return ArmError(400, "NoRegisteredProviderFound",
                        f"No registered resource provider found for location '{normalize_location(location or '')}' "
                        f"and API version '{version}' for type '{resource_type.rsplit('/', 1)[-1]}'. The supported "
                        f"api-versions are '{supported}'. The supported locations are '{where}'.")

    def _resource_type(self, namespace: str, resource_type: str) -> dict | None:
        entry = self._providers.get(namespace.lower())
        for item in (entry or {}).get("resourceTypes", []):
            if item["resourceType"].lower() == resource_type.lower():
                return item
        return None

    @staticmethod
    def _type_locations(item: dict) -> list[str]:
        return locations.names() if item.get("locations") is None else list(item["locations"])
