"""Microsoft.Storage routes: the staging storage accounts as ARM lists and reads them.

Only what the portal's log reader needs (list by resource group, get, list by subscription);
writes, keys and the other storage services are not emulated.
"""

from __future__ import annotations

from emulator.core import RG, SUB, Request, Response
from emulator.resources.backend import require_api_version
from emulator.storage.backend import Storage

PROVIDER = "/providers/Microsoft\\.Storage/storageAccounts"
# Published Microsoft.Storage api-versions, oldest first (azure-mgmt-storage 21-24 send the newest ones).
API_VERSIONS = ("2019-06-01", "2021-04-01", "2021-09-01", "2022-09-01", "2023-01-01", "2023-04-01",
                "2023-05-01", "2024-01-01", "2025-01-01", "2025-06-01")


def register(app) -> None:
    """Register app.services["storage"], its routes, the resource-group hook and the provider.

    The endpoint comes from `Config.extra["azurite"]` (`--azurite`), the pool size from
    `Config.extra["azurite_accounts"]`, the CA Azurite's certificate chains to from
    `Config.extra["ca_path"]`; without an endpoint the service is inactive.
    """
    extra = app.config.extra
    backend = Storage(app, endpoint=extra.get("azurite"), pool=int(extra.get("azurite_accounts") or 32),
                      ca_path=extra.get("ca_path"))
    app.services["storage"] = backend
    app.reset_hooks.append(backend.on_reset)
    app.clock_hooks.append(backend.sync)
    resources = app.services["resources"]
    resources.add_delete_hook(backend.drop_resource_group)
    resources.add_resource_lister(backend.generic_resources)
    if backend.enabled:
        resources.add_provider("Microsoft.Storage", [
            {"resourceType": "storageAccounts", "apiVersions": tuple(reversed(API_VERSIONS))},
        ])
    route = app.router.add

    @route("GET", SUB + PROVIDER, "StorageAccounts_List")
    def list_all(request: Request) -> Response:
        require_api_version(request, API_VERSIONS)
        return Response(200, {"value": backend.accounts(request.params["subscription"])})

    @route("GET", RG + PROVIDER, "StorageAccounts_ListByResourceGroup")
    def list_by_group(request: Request) -> Response:
        require_api_version(request, API_VERSIONS)
        params = request.params
        resources.require_resource_group(params["subscription"], params["resource_group"])
        return Response(200, {"value": backend.accounts(params["subscription"], params["resource_group"])})

    @route("GET", RG + PROVIDER + r"/(?P<name>[^/]+)", "StorageAccounts_GetProperties")
    def get_account(request: Request) -> Response:
        require_api_version(request, API_VERSIONS)
        params = request.params
        resources.require_resource_group(params["subscription"], params["resource_group"])
        return Response(200, backend.account(params["subscription"], params["resource_group"], params["name"]))
