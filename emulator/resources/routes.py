"""Microsoft.Resources routes: subscriptions and resource groups.
"""

from __future__ import annotations

import re
import secrets

from emulator.core import SUB, ArmError, Request, Response
from emulator.resources.backend import RESOURCE_API_VERSIONS, SUBSCRIPTION_API_VERSIONS, Resources, require_api_version

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
