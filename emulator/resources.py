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
import secrets
from collections.abc import Callable, Iterable

from emulator.core import SUB, ArmError, Request, Response

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
    return location.replace(" ", "").lower()


def resource_group_id(subscription: str, name: str) -> str:
    return f"/subscriptions/{subscription}/resourceGroups/{name}"


class Resources:
    def __init__(self, app):
        self.app = app
        self._delete_hooks: list[DeleteHook] = []

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


# -- REST -------------------------------------------------------------------------------------

RG_PATH = SUB + r"/resourcegroups/(?P<resource_group>[^/]+)"


def _page(items: list[dict], request: Request, path: str) -> dict:
    """ARM paging with $top and an opaque $skiptoken, in nextLink."""
    start, size = _int_arg(request, "$skiptoken", 0), _int_arg(request, "$top", 1000)
    body: dict = {"value": items[start:start + size]}
    if start + size < len(items):
        version = request.arg("api-version")
        body["nextLink"] = (f"{request.base_url}{path}?api-version={version}&$top={size}"
                            f"&$skiptoken={start + size}")
    return body


def _int_arg(request: Request, name: str, default: int) -> int:
    value = request.arg(name)
    if not value:
        return default
    try:
        return max(int(value), 0)
    except ValueError:
        raise ArmError(400, "InvalidParameter", f"The value of parameter '{name}' is invalid: '{value}'.",
                       target=name) from None


def register(app) -> None:
    """Register the subscriptions and resource groups routes and app.services["resources"]."""
    backend = Resources(app)
    app.services["resources"] = backend
    route = app.router.add

    @route("GET", r"/subscriptions", "Subscriptions_List")
    def list_subscriptions(request: Request) -> Response:
        require_api_version(request, SUBSCRIPTION_API_VERSIONS)
        return Response(200, {"value": app.store.list("subscription")})

    @route("GET", SUB, "Subscriptions_Get")
    def get_subscription(request: Request) -> Response:
        require_api_version(request, SUBSCRIPTION_API_VERSIONS)
        return Response(200, backend.ensure_subscription(request.params["subscription"]))

    @route("GET", SUB + r"/resourcegroups", "ResourceGroups_List")
    def list_groups(request: Request) -> Response:
        require_api_version(request, RESOURCE_API_VERSIONS)
        subscription = request.params["subscription"]
        backend.ensure_subscription(subscription)
        groups = _filter_by_tag(backend.resource_groups(subscription), request.arg("$filter"))
        return Response(200, _page(groups, request, request.path))

    @route("GET", RG_PATH, "ResourceGroups_Get")
    def get_group(request: Request) -> Response:
        require_api_version(request, RESOURCE_API_VERSIONS)
        return Response(200, backend.require_resource_group(request.params["subscription"],
                                                            request.params["resource_group"]))

    @route("HEAD", RG_PATH, "ResourceGroups_CheckExistence")
    def head_group(request: Request) -> Response:
        require_api_version(request, RESOURCE_API_VERSIONS)
        found = backend.resource_group(request.params["subscription"], request.params["resource_group"])
        return Response(204 if found else 404)

    @route("PUT", RG_PATH, "ResourceGroups_CreateOrUpdate")
    def put_group(request: Request) -> Response:
        require_api_version(request, RESOURCE_API_VERSIONS)
        body = request.json() or {}
        if not isinstance(body, dict) or not body.get("location"):
            raise ArmError(400, "LocationRequired", "The location property is required for this definition.")
        subscription, name = request.params["subscription"], request.params["resource_group"]
        existed = backend.resource_group(subscription, name) is not None
        group = backend.create_resource_group(subscription, name, body["location"], body.get("tags"),
                                              body.get("managedBy"))
        return Response(200 if existed else 201, group)

    @route("PATCH", RG_PATH, "ResourceGroups_Update")
    def patch_group(request: Request) -> Response:
        require_api_version(request, RESOURCE_API_VERSIONS)
        body = request.json() or {}
        return Response(200, backend.update_resource_group(request.params["subscription"],
                                                           request.params["resource_group"], body))

    @route("DELETE", RG_PATH, "ResourceGroups_Delete")
    def delete_group(request: Request) -> Response:
        version = require_api_version(request, RESOURCE_API_VERSIONS)
        subscription, name = request.params["subscription"], request.params["resource_group"]
        if not backend.delete_resource_group(subscription, name):
            raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{name}' could not be found.")
        # ARM answers 202 and a Location to poll; the deletion is already done, so the
        # operation result answers 200 at once.
        token = secrets.token_hex(16).upper()
        location = (f"{request.base_url}/subscriptions/{subscription}/operationresults/"
                    f"eyJqb2JJZCI6IlJFU09VUkNFR1JPVVBERUxFVElPTkpPQi{token}?api-version={version}")
        return Response(202, None, headers={"Location": location, "Retry-After": "0"})

    @route("GET", SUB + r"/operationresults/(?P<operation>[^/]+)", "ResourceGroups_OperationResult")
    def operation_result(request: Request) -> Response:
        return Response(200)


def _filter_by_tag(groups: list[dict], expression: str | None) -> list[dict]:
    """$filter=tagName eq 'n' and tagValue eq 'v', the only filter ARM offers for groups."""
    if not expression:
        return groups
    name = re.search(r"tagName\s+eq\s+'([^']*)'", expression, re.IGNORECASE)
    value = re.search(r"tagValue\s+eq\s+'([^']*)'", expression, re.IGNORECASE)
    if not name:
        return groups
    matched = []
    for group in groups:
        tags = {key.lower(): val for key, val in (group.get("tags") or {}).items()}
        if name.group(1).lower() in tags and (value is None or tags[name.group(1).lower()] == value.group(1)):
            matched.append(group)
    return matched
