"""Microsoft.Resources routes, the ARM core: cloud metadata, subscriptions, locations, resource
providers, resource groups and the generic resource listing.
"""

from __future__ import annotations

import re
import secrets

from emulator.core import SUB, ArmError, Request, Response, lro
from emulator.resources import locations, templates
from emulator.resources.backend import RESOURCE_API_VERSIONS, SUBSCRIPTION_API_VERSIONS, Resources, require_api_version
from emulator.resources.deployments import Deployments

# -- REST -------------------------------------------------------------------------------------

RG_PATH = SUB + r"/resourcegroups/(?P<resource_group>[^/]+)"
DEPLOYMENT = RG_PATH + r"/providers/Microsoft\.Resources/deployments/(?P<deployment>[^/]+)"
# Deployment operations live outside the provider path: /resourcegroups/{rg}/deployments/{name}/operations.
DEPLOYMENT_OPERATIONS = RG_PATH + r"/deployments/(?P<deployment>[^/]+)/operations"


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
    backend.add_provider("Microsoft.Resources", [
        {"resourceType": name, "apiVersions": RESOURCE_API_VERSIONS, "locations": []}
        for name in ("resourceGroups", "resources", "providers", "deployments", "operationresults")
    ] + [{"resourceType": name, "apiVersions": SUBSCRIPTION_API_VERSIONS, "locations": []}
         for name in ("subscriptions", "locations")])
    route = app.router.add

    # -- cloud discovery, locations, providers, generic resources ------------------------------
    @route("GET", r"/metadata/endpoints", "Metadata_Endpoints", auth="none")
    def metadata_endpoints(request: Request) -> Response:
        document = cloud_metadata(request.base_url)
        # Before 2022-09-01 the endpoint answered a list of clouds; since then one object.
        version = request.arg("api-version") or ""
        if "2019-05-01" <= version < "2022-09-01":
            return Response(200, [document])
        return Response(200, document)

    @route("GET", SUB + r"/locations", "Subscriptions_ListLocations")
    def list_locations(request: Request) -> Response:
        require_api_version(request, SUBSCRIPTION_API_VERSIONS)
        subscription = request.params["subscription"]
        backend.ensure_subscription(subscription)
        return Response(200, {"value": [locations.arm_location(subscription, entry) for entry in locations.REGIONS]})

    @route("GET", SUB + r"/providers", "Providers_List")
    def list_providers(request: Request) -> Response:
        require_api_version(request, RESOURCE_API_VERSIONS)
        return Response(200, {"value": backend.providers(request.params["subscription"])})

    @route("GET", SUB + r"/providers/(?P<namespace>[^/]+)", "Providers_Get")
    def get_provider(request: Request) -> Response:
        require_api_version(request, RESOURCE_API_VERSIONS)
        return Response(200, backend.provider(request.params["subscription"], request.params["namespace"]))

    @route("POST", SUB + r"/providers/(?P<namespace>[^/]+)/register", "Providers_Register")
    def register_provider(request: Request) -> Response:
        require_api_version(request, RESOURCE_API_VERSIONS)
        return Response(200, backend.provider(request.params["subscription"], request.params["namespace"]))

    @route("GET", SUB + r"/resources", "Resources_List")
    def list_resources(request: Request) -> Response:
        require_api_version(request, RESOURCE_API_VERSIONS)
        subscription = request.params["subscription"]
        backend.ensure_subscription(subscription)
        items = _filter_resources(backend.resources(subscription), request.arg("$filter"))
        return Response(200, _page(items, request, request.path))

    @route("GET", RG_PATH + r"/resources", "Resources_ListByResourceGroup")
    def list_group_resources(request: Request) -> Response:
        require_api_version(request, RESOURCE_API_VERSIONS)
        subscription, group = request.params["subscription"], request.params["resource_group"]
        backend.require_resource_group(subscription, group)
        items = _filter_resources(backend.resources(subscription, group), request.arg("$filter"))
        return Response(200, _page(items, request, request.path))

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
        return Response(202, None, headers={"Location": location, "Retry-After": "1"})

    @route("GET", SUB + r"/operationresults/(?P<operation>[^/]+)", "ResourceGroups_OperationResult")
    def operation_result(request: Request) -> Response:
        return Response(200)

    register_deployments(app, Deployments(app, backend))


def register_deployments(app, deployments: Deployments) -> None:
    """Template deployments at resource-group scope (deployments.py); app.services["deployments"]."""
    app.services["deployments"] = deployments
    app.services["resources"].add_delete_hook(deployments.drop_resource_group)
    route = app.router.add

    def body_of(request: Request):
        try:
            return templates.loads_jsonc(request.body.decode("utf-8-sig")) if request.body else None
        except (ValueError, UnicodeDecodeError) as exc:
            raise ArmError(400, "InvalidRequestContent",
                           f"The request content was invalid and could not be deserialized: '{exc}'.") from exc

    def where(request: Request) -> tuple[str, str, str]:
        require_api_version(request, RESOURCE_API_VERSIONS)
        p = request.params
        return p["subscription"], p["resource_group"], p["deployment"]

    @route("POST", DEPLOYMENT + r"/validate", "Deployments_Validate")
    def validate(request: Request) -> Response:
        return Response(200, deployments.validate(*where(request), body_of(request)))

    @route("PUT", DEPLOYMENT, "Deployments_CreateOrUpdate")
    def create(request: Request) -> Response:
        subscription, group, name = where(request)
        body, existed = deployments.create(subscription, group, name, body_of(request), on_behalf_of=request)
        doc = deployments.require(subscription, group, name)
        status_url = (f"{request.base_url}{body['id']}/operationStatuses/{doc['statusId']}"
                      f"?api-version={request.arg('api-version')}")
        return Response(200 if existed else 201, body,
                        headers={"Azure-AsyncOperation": status_url, "Retry-After": lro.retry_after(app)})

    @route("GET", DEPLOYMENT, "Deployments_Get")
    def get(request: Request) -> Response:
        return Response(200, deployments.get(*where(request), on_behalf_of=request))

    @route("GET", RG_PATH + r"/providers/Microsoft\.Resources/deployments/?", "Deployments_ListByResourceGroup")
    def list_deployments(request: Request) -> Response:
        require_api_version(request, RESOURCE_API_VERSIONS)
        p = request.params
        items = deployments.list(p["subscription"], p["resource_group"], on_behalf_of=request)
        return Response(200, _page(items, request, request.path))

    @route("GET", DEPLOYMENT + r"/operationStatuses/(?P<status>[^/]+)", "Deployments_OperationStatus")
    def status(request: Request) -> Response:
        answer = deployments.status(*where(request), request.params["status"], on_behalf_of=request)
        return Response(200, answer, headers={"Retry-After": lro.retry_after(app)})

    @route("GET", DEPLOYMENT_OPERATIONS, "DeploymentOperations_ListByResourceGroup")
    def operations(request: Request) -> Response:
        return Response(200, _page(deployments.operations(*where(request), on_behalf_of=request), request,
                                   request.path))

    @route("GET", DEPLOYMENT_OPERATIONS + r"/(?P<operation>[^/]+)", "DeploymentOperations_Get")
    def operation(request: Request) -> Response:
        return Response(200, deployments.operation(*where(request), request.params["operation"],
                                                   on_behalf_of=request))

    @route("DELETE", DEPLOYMENT, "Deployments_Delete")
    def delete(request: Request) -> Response:
        subscription, group, name = where(request)
        if not deployments.delete(subscription, group, name):
            return Response(204)
        location = (f"{request.base_url}/subscriptions/{subscription}/operationresults/"
                    f"{secrets.token_hex(16).upper()}?api-version={request.arg('api-version')}")
        return Response(202, None, headers={"Location": location, "Retry-After": "1"})


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


def _filter_resources(items: list[dict], expression: str | None) -> list[dict]:
    """$filter for az resource list: resourceType, name, location and resourceGroup eq; tagName/tagValue."""
    if not expression:
        return items
    for field, key in (("resourceType", "type"), ("name", "name"), ("location", "location")):
        found = re.search(rf"\b{field}\s+eq\s+'([^']*)'", expression, re.IGNORECASE)
        if found:
            wanted = found.group(1).lower()
            if key == "location":
                wanted = locations.normalize(wanted)
            items = [item for item in items if str(item.get(key, "")).lower() == wanted]
    group = re.search(r"\bresourceGroup\s+eq\s+'([^']*)'", expression, re.IGNORECASE)
    if group:
        # az resource list -g NAME filters the subscription's listing this way.
        marker = f"/resourcegroups/{group.group(1).lower()}/"
        items = [item for item in items if marker in item["id"].lower()]
    return _filter_by_tag(items, expression)


def cloud_metadata(base_url: str) -> dict:
    """GET /metadata/endpoints: the emulator as a cloud (az cloud register reads this).
    ARM and the login host are both the emulator; audiences are Azure's, so tokens carry them."""
    base = base_url.rstrip("/")
    return {
        "name": "GoldsmithEmulator",
        "portal": base,
        "resourceManager": f"{base}/",
        "authentication": {"loginEndpoint": base, "audiences": ["https://management.core.windows.net/",
                                                                "https://management.azure.com/"],
                           "tenant": "common", "identityProvider": "AAD"},
        "media": base, "graphAudience": "https://graph.windows.net/", "graph": base, "batch": base,
        "gallery": base, "galleryEndpoint": base, "graphEndpoint": base, "portalEndpoint": base,
        "sqlManagement": base, "vmImageAliasDoc": "https://raw.githubusercontent.com/Azure/azure-rest-api-specs/master/arm-compute/quickstart-templates/aliases.json",
        "activeDirectoryDataLake": base, "microsoftGraphResourceId": "https://graph.microsoft.com/",
        "appInsightsResourceId": base, "appInsightsTelemetryChannelResourceId": base,
        "attestationResourceId": base, "synapseAnalyticsResourceId": base, "logAnalyticsResourceId": base,
        "ossrdbmsResourceId": base, "ossrDbmsResourceId": base,
        "suffixes": {"storage": "core.windows.net", "keyVaultDns": ".vault.azure.net",
                     "mhsmDns": ".managedhsm.azure.net", "sqlServerHostname": ".database.windows.net",
                     "mysqlServerEndpoint": ".mysql.database.azure.com",
                     "postgresqlServerEndpoint": ".postgres.database.azure.com",
                     "mariadbServerEndpoint": ".mariadb.database.azure.com",
                     "azureDataLakeStoreFileSystem": "azuredatalakestore.net",
                     "azureDataLakeAnalyticsCatalogAndJob": "azuredatalakeanalytics.net",
                     "synapseAnalytics": ".dev.azuresynapse.net", "acrLoginServer": ".azurecr.io",
                     "attestationEndpoint": ".attest.azure.net", "storageSyncEndpointSuffix": "afs.azure.net",
                     "azureFrontDoorEndpointSuffix": "azurefd.net"},
    }
