"""Microsoft.ManagedIdentity routes: parse, call the ManagedIdentities backend, render ARM JSON."""

from __future__ import annotations

from emulator.core import RG, SUB, Request, Response
from emulator.msi.backend import ManagedIdentities
from emulator.resources.backend import require_api_version

# azure-mgmt-msi 7.1.0 sends 2024-11-30 by default; the published versions before it.
MSI_API_VERSIONS = ("2015-08-31-preview", "2018-11-30", "2021-09-30-preview", "2022-01-31-preview", "2023-01-31",
                    "2023-07-31-preview", "2024-11-30")
_TYPE = r"/providers/Microsoft\.ManagedIdentity/userAssignedIdentities"


def register(app) -> None:
    backend = ManagedIdentities(app)
    app.services["msi"] = backend
    resources = app.services["resources"]
    resources.add_delete_hook(backend.drop_resource_group)
    resources.add_resource_lister(backend.generic_resources)
    resources.add_provider("Microsoft.ManagedIdentity", [
        {"resourceType": "userAssignedIdentities", "apiVersions": MSI_API_VERSIONS},
        {"resourceType": "operations", "apiVersions": MSI_API_VERSIONS, "locations": []},
    ])
    route = app.router.add
    one = RG + _TYPE + r"/(?P<name>[^/]+)"

    def names(request: Request) -> tuple[str, str, str]:
        params = request.params
        return params["subscription"], params["resource_group"], params["name"]

    @route("GET", SUB + _TYPE, "UserAssignedIdentities_ListBySubscription")
    def list_all(request: Request) -> Response:
        require_api_version(request, MSI_API_VERSIONS)
        return Response(200, {"value": backend.list(request.params["subscription"])})

    @route("GET", RG + _TYPE, "UserAssignedIdentities_ListByResourceGroup")
    def list_by_group(request: Request) -> Response:
        require_api_version(request, MSI_API_VERSIONS)
        params = request.params
        resources.require_resource_group(params["subscription"], params["resource_group"])
        return Response(200, {"value": backend.list(params["subscription"], params["resource_group"])})

    @route("GET", one, "UserAssignedIdentities_Get")
    def get(request: Request) -> Response:
        require_api_version(request, MSI_API_VERSIONS)
        return Response(200, backend.require(*names(request)))

    @route("PUT", one, "UserAssignedIdentities_CreateOrUpdate")
    def put(request: Request) -> Response:
        require_api_version(request, MSI_API_VERSIONS)
        identity, created = backend.create_or_update(*names(request), request.json())
        return Response(201 if created else 200, identity)

    @route("PATCH", one, "UserAssignedIdentities_Update")
    def patch(request: Request) -> Response:
        require_api_version(request, MSI_API_VERSIONS)
        return Response(200, backend.update(*names(request), request.json()))

    @route("DELETE", one, "UserAssignedIdentities_Delete")
    def delete(request: Request) -> Response:
        require_api_version(request, MSI_API_VERSIONS)
        return Response(200 if backend.delete(*names(request)) else 204)
