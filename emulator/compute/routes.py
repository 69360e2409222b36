"""Microsoft.Compute catalog routes: parse the request, call the Compute backend, render ARM JSON.

Also the catalog part of the control API (POST /_emulator/catalog/...).
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from emulator.compute import skus
from emulator.compute.backend import (
    _PROVIDER,
    COMPUTE_API_VERSIONS,
    GALLERY_API_VERSIONS,
    Compute,
    _marketplace_id,
    _vm_image_not_found,
    not_found,
    parse_image_id,
    render_vm_image,
    version_key,
)
from emulator.core import RG, SUB, ArmError, Request, Response, page_size, skip_token
from emulator.core.lro import retry_after
from emulator.resources import locations
from emulator.resources.backend import normalize_location, require_api_version


def register(app) -> None:
    """Register the compute catalog routes, its control endpoints and app.services["compute"]."""
    backend = Compute(app)
    app.services["compute"] = backend
    resources = app.services["resources"]
    resources.add_delete_hook(backend.drop_resource_group)
    resources.add_resource_lister(backend.generic_resources)
    resources.add_provider("Microsoft.Compute", [
        {"resourceType": "images", "apiVersions": COMPUTE_API_VERSIONS},
        {"resourceType": "locations", "apiVersions": COMPUTE_API_VERSIONS, "locations": []},
        {"resourceType": "locations/publishers", "apiVersions": COMPUTE_API_VERSIONS},
        {"resourceType": "operations", "apiVersions": COMPUTE_API_VERSIONS, "locations": []},
        {"resourceType": "galleries", "apiVersions": GALLERY_API_VERSIONS},
        {"resourceType": "galleries/images", "apiVersions": GALLERY_API_VERSIONS},
        {"resourceType": "galleries/images/versions", "apiVersions": GALLERY_API_VERSIONS},
        {"resourceType": "locations/capsOperations", "apiVersions": GALLERY_API_VERSIONS, "locations": []},
        {"resourceType": "skus", "apiVersions": skus.SKU_API_VERSIONS, "locations": []},
    ])
    _register_marketplace(app, backend)
    _register_skus(app)
    _register_galleries(app, backend)
    _register_managed_images(app, backend)
    _register_control(app, backend)


def _register_marketplace(app, backend: Compute) -> None:
    route = app.router.add
    base = SUB + _PROVIDER + r"/locations/(?P<location>[^/]+)/publishers"
    offers = base + r"/(?P<publisher>[^/]+)/artifacttypes/vmimage/offers"
    skus = offers + r"/(?P<offer>[^/]+)/skus"
    versions = skus + r"/(?P<sku>[^/]+)/versions"

    def listing(request: Request, names: list[str], *path: str) -> Response:
        location = normalize_location(request.params["location"])
        sub = request.params["subscription"]
        return Response(200, [{"location": location, "name": name,
                               "id": _marketplace_id(sub, location, *path, name)} for name in names])

    @route("GET", base, "VirtualMachineImages_ListPublishers")
    def list_publishers(request: Request) -> Response:
        require_api_version(request, COMPUTE_API_VERSIONS)
        return listing(request, backend.publishers(request.params["location"]))

    @route("GET", offers, "VirtualMachineImages_ListOffers")
    def list_offers(request: Request) -> Response:
        require_api_version(request, COMPUTE_API_VERSIONS)
        params = request.params
        names = backend.offers(params["location"], params["publisher"])
        if not names:
            raise ArmError(404, "NotFound", f"Publisher: {params['publisher']} was not found.")
        return listing(request, names, params["publisher"])

    @route("GET", skus, "VirtualMachineImages_ListSkus")
    def list_skus(request: Request) -> Response:
        require_api_version(request, COMPUTE_API_VERSIONS)
        params = request.params
        names = backend.skus(params["location"], params["publisher"], params["offer"])
        if not names:
            raise _vm_image_not_found()
        return listing(request, names, params["publisher"], params["offer"])

    @route("GET", versions, "VirtualMachineImages_List")
    def list_versions(request: Request) -> Response:
        require_api_version(request, COMPUTE_API_VERSIONS)
        params = request.params
        records = backend.platform_versions(params["location"], params["publisher"], params["offer"], params["sku"])
        if not records and not backend.skus(params["location"], params["publisher"], params["offer"]):
            raise _vm_image_not_found()
        records = _order_and_top(records, request.arg("$orderby"), request.arg("$top"))
        # `properties` (list_with_properties) and `properties/imageDeprecationStatus` (the CLI's
        # `az vm image list`, PowerShell's Get-AzVMImage -Expand) both answer the properties:
        # architecture, hyperVGeneration, imageDeprecationStatus...
        expand = (request.arg("$expand") or "").lower() in ("properties", "properties/imagedeprecationstatus")
        return Response(200, [render_vm_image(record, params["subscription"], properties=expand)
                              for record in records])

    @route("GET", versions + r"/(?P<version>[^/]+)", "VirtualMachineImages_Get")
    def get_version(request: Request) -> Response:
        require_api_version(request, COMPUTE_API_VERSIONS)
        params = request.params
        # The REST API has no "latest": clients list versions first (aib-reference §3.3).
        record = None if params["version"].lower() == "latest" else backend.platform_image(
            params["location"], params["publisher"], params["offer"], params["sku"], params["version"])
        if record is None:
            raise _vm_image_not_found()
        return Response(200, render_vm_image(record, params["subscription"], properties=True))


def _order_and_top(records: list[dict], orderby: str | None, top: str | None) -> list[dict]:
    """$orderby=name [asc|desc] (versions compared as numbers) and $top=N."""
    if orderby:
        field, _, direction = orderby.strip().partition(" ")
        if field.lower() != "name" or direction.strip().lower() not in ("", "asc", "desc"):
            raise ArmError(400, "InvalidParameter", f"The value of parameter '$orderby' is invalid: '{orderby}'.",
                           target="$orderby")
        records = sorted(records, key=lambda record: version_key(record["version"]),
                         reverse=direction.strip().lower() == "desc")
    if top:
        try:
            count = int(top)
        except ValueError:
            raise ArmError(400, "InvalidParameter", f"The value of parameter '$top' is invalid: '{top}'.",
                           target="$top") from None
        records = records[:max(count, 0)]
    return records


def _register_skus(app) -> None:
    """GET .../Microsoft.Compute/skus[?$filter=location eq 'x']: VM sizes with their capabilities and
    restrictions (compute/skus.py), paged by the page_size setting with a nextLink that keeps the
    filter, as azure-mgmt-compute follows nextLink verbatim."""

    @app.router.add("GET", SUB + _PROVIDER + r"/skus", "ResourceSkus_List")
    def list_skus(request: Request) -> Response:
        api_version = require_api_version(request, skus.SKU_API_VERSIONS)
        expression = request.arg("$filter")
        location = skus.location_filter(expression)
        if location == "":
            raise ArmError(400, "InvalidParameter", f"The filter '{expression}' is not supported. Only the location "
                                                    "filter is supported, e.g. location eq 'eastus'.", target="$filter")
        found = skus.resource_skus(locations.names(), normalize_location(location) if location else None)
        start, size = skip_token(request), page_size(app)
        body: dict = {"value": found[start:start + size]}
        if start + size < len(found):
            query = {"api-version": api_version, "$skipToken": str(start + size)}
            if expression:
                query["$filter"] = expression
            body["nextLink"] = f"{request.base_url}{request.path}?{urlencode(query, quote_via=quote)}"
        return Response(200, body)


def _register_galleries(app, backend: Compute) -> None:
    """Galleries, image definitions and image versions: reads, PUT/PATCH/DELETE with LROs, and the
    capsOperations status endpoint their Azure-AsyncOperation and Location headers point at."""
    route = app.router.add
    galleries = RG + _PROVIDER + r"/galleries"
    gallery = galleries + r"/(?P<gallery>[^/]+)"
    images = gallery + r"/images"
    image = images + r"/(?P<image>[^/]+)"
    versions = image + r"/versions"
    version = versions + r"/(?P<version>[^/]+)"

    def names(request: Request, *extra: str) -> tuple[str, ...]:
        params = request.params
        return (params["subscription"], params["resource_group"], *(params[name] for name in extra))

    def lro(request: Request, status: int, body: dict | None, op: dict, *, location: bool = False) -> Response:
        url = (f"{request.base_url}/subscriptions/{op['subscription']}/providers/Microsoft.Compute/locations/"
               f"{op['location']}/capsOperations/{op['id']}?api-version={request.arg('api-version')}")
        headers = {"Azure-AsyncOperation": url, "Retry-After": retry_after(app)}
        if location:
            headers["Location"] = url + "&monitor=true"
        return Response(status, body, headers=headers)

    def deleted(request: Request, op: dict | None) -> Response:
        return Response(204) if op is None else lro(request, 202, None, op, location=True)

    @route("GET", SUB + _PROVIDER + r"/galleries", "Galleries_List")
    def list_all(request: Request) -> Response:
        require_api_version(request, GALLERY_API_VERSIONS)
        return Response(200, {"value": backend.list_galleries(request.params["subscription"])})

    @route("GET", galleries, "Galleries_ListByResourceGroup")
    def list_by_group(request: Request) -> Response:
        require_api_version(request, GALLERY_API_VERSIONS)
        app.services["resources"].require_resource_group(*names(request))
        return Response(200, {"value": backend.list_galleries(*names(request))})

    @route("GET", gallery, "Galleries_Get")
    def get_gallery(request: Request) -> Response:
        require_api_version(request, GALLERY_API_VERSIONS)
        return Response(200, backend.get_gallery(*names(request, "gallery")))

    @route("PUT", gallery, "Galleries_CreateOrUpdate")
    def put_gallery(request: Request) -> Response:
        require_api_version(request, GALLERY_API_VERSIONS)
        body, status, op = backend.create_or_update_gallery(*names(request, "gallery"), request.json())
        return lro(request, status, body, op)

    @route("PATCH", gallery, "Galleries_Update")
    def patch_gallery(request: Request) -> Response:
        require_api_version(request, GALLERY_API_VERSIONS)
        body, op = backend.update_gallery(*names(request, "gallery"), request.json())
        return lro(request, 200, body, op)

    @route("DELETE", gallery, "Galleries_Delete")
    def delete_gallery(request: Request) -> Response:
        require_api_version(request, GALLERY_API_VERSIONS)
        return deleted(request, backend.delete_gallery(*names(request, "gallery")))

    @route("GET", images, "GalleryImages_ListByGallery")
    def list_images(request: Request) -> Response:
        require_api_version(request, GALLERY_API_VERSIONS)
        return Response(200, {"value": backend.list_gallery_images(*names(request, "gallery"))})

    @route("GET", image, "GalleryImages_Get")
    def get_image(request: Request) -> Response:
        require_api_version(request, GALLERY_API_VERSIONS)
        return Response(200, backend.get_gallery_image(*names(request, "gallery", "image")))

    @route("PUT", image, "GalleryImages_CreateOrUpdate")
    def put_image(request: Request) -> Response:
        api_version = require_api_version(request, GALLERY_API_VERSIONS)
        body, status, op = backend.create_or_update_gallery_image(*names(request, "gallery", "image"), request.json(),
                                                                  api_version)
        return lro(request, status, body, op)

    @route("PATCH", image, "GalleryImages_Update")
    def patch_image(request: Request) -> Response:
        require_api_version(request, GALLERY_API_VERSIONS)
        body, op = backend.update_gallery_image(*names(request, "gallery", "image"), request.json())
        return lro(request, 200, body, op)

    @route("DELETE", image, "GalleryImages_Delete")
    def delete_image(request: Request) -> Response:
        require_api_version(request, GALLERY_API_VERSIONS)
        return deleted(request, backend.delete_gallery_image(*names(request, "gallery", "image")))

    @route("GET", versions, "GalleryImageVersions_ListByGalleryImage")
    def list_versions(request: Request) -> Response:
        require_api_version(request, GALLERY_API_VERSIONS)
        found = backend.list_gallery_image_versions(*names(request, "gallery", "image"))
        start, size = skip_token(request), page_size(app)
        body: dict = {"value": found[start:start + size]}
        if start + size < len(found):  # paged like Azure: the SDK follows nextLink
            body["nextLink"] = (f"{request.base_url}{request.path}?api-version={request.arg('api-version')}"
                                f"&$skipToken={start + size}")
        return Response(200, body)

    @route("GET", version, "GalleryImageVersions_Get")
    def get_version(request: Request) -> Response:
        require_api_version(request, GALLERY_API_VERSIONS)
        expand = (request.arg("$expand") or "").lower() == "replicationstatus"
        return Response(200, backend.get_gallery_image_version(*names(request, "gallery", "image", "version"),
                                                               replication=expand))

    @route("PUT", version, "GalleryImageVersions_CreateOrUpdate")
    def put_version(request: Request) -> Response:
        require_api_version(request, GALLERY_API_VERSIONS)
        body, status, op = backend.create_or_update_gallery_image_version(
            *names(request, "gallery", "image", "version"), request.json())
        return lro(request, status, body, op)

    @route("PATCH", version, "GalleryImageVersions_Update")
    def patch_version(request: Request) -> Response:
        require_api_version(request, GALLERY_API_VERSIONS)
        body, op = backend.update_gallery_image_version(*names(request, "gallery", "image", "version"), request.json())
        return lro(request, 200, body, op)

    @route("DELETE", version, "GalleryImageVersions_Delete")
    def delete_version(request: Request) -> Response:
        require_api_version(request, GALLERY_API_VERSIONS)
        return deleted(request, backend.delete_gallery_image_version(*names(request, "gallery", "image", "version")))

    @route("GET", SUB + _PROVIDER + r"/locations/(?P<location>[^/]+)/capsOperations/(?P<operation>[^/]+)",
           "GalleryOperations_GetStatus")
    def operation_status(request: Request) -> Response:
        require_api_version(request, GALLERY_API_VERSIONS)
        op = backend.operation(request.params["subscription"], request.params["operation"])
        headers = {"Retry-After": retry_after(app)}
        if (request.arg("monitor") or "").lower() == "true":  # the Location of a delete
            if backend.operations.status(op) == "InProgress":
                return Response(202, None, headers={**headers, "Location": f"{request.base_url}{request.path}?"
                                                    f"monitor=true&api-version={request.arg('api-version')}"})
            return Response(200, None, headers=headers)
        return Response(200, backend.operations.document(op), headers=headers)


def _register_managed_images(app, backend: Compute) -> None:
    route = app.router.add
    images = RG + _PROVIDER + r"/images"

    @route("GET", SUB + _PROVIDER + r"/images", "Images_List")
    def list_all(request: Request) -> Response:
        require_api_version(request, COMPUTE_API_VERSIONS)
        return Response(200, {"value": app.store.list("image", f"{request.params['subscription']}/")})

    @route("GET", images, "Images_ListByResourceGroup")
    def list_by_group(request: Request) -> Response:
        require_api_version(request, COMPUTE_API_VERSIONS)
        params = request.params
        app.services["resources"].require_resource_group(params["subscription"], params["resource_group"])
        return Response(200, {"value": app.store.list("image", f"{params['subscription']}/{params['resource_group']}/")})

    @route("GET", images + r"/(?P<name>[^/]+)", "Images_Get")
    def get_image(request: Request) -> Response:
        require_api_version(request, COMPUTE_API_VERSIONS)
        params = request.params
        app.services["resources"].require_resource_group(params["subscription"], params["resource_group"])
        image = app.store.get("image", f"{params['subscription']}/{params['resource_group']}/{params['name']}")
        if image is None:
            raise not_found("Microsoft.Compute/images", params["name"], params["resource_group"])
        return Response(200, image)


def _register_control(app, backend: Compute) -> None:
    """POST /_emulator/catalog/{images,gallery-images,gallery-image-versions,managed-images}."""
    route = app.router.add

    def body_of(request: Request) -> dict:
        body = request.json()
        if not isinstance(body, dict):
            raise ArmError(400, "InvalidRequestContent", "The request body must be a JSON object.")
        return body

    @route("POST", r"/_emulator/catalog/images", "Control_AddPlatformImage", auth="none")
    def add_image(request: Request) -> Response:
        return Response(201, backend.add_platform_image(body_of(request)))

    @route("GET", r"/_emulator/catalog/images", "Control_ListPlatformImages", auth="none")
    def list_images(request: Request) -> Response:
        return Response(200, {"value": app.store.list("vmimage")})

    @route("POST", r"/_emulator/catalog/gallery-images", "Control_AddGalleryImage", auth="none")
    def add_gallery_image(request: Request) -> Response:
        return Response(201, backend.add_gallery_image(body_of(request)))

    @route("POST", r"/_emulator/catalog/gallery-image-versions", "Control_AddGalleryImageVersion", auth="none")
    def add_gallery_image_version(request: Request) -> Response:
        body = body_of(request)
        return Response(201, backend.create_gallery_image_version(
            body.get("id", ""), body.get("location"), body.get("targetRegions") or [],
            bool(body.get("excludeFromLatest")), body.get("tags"), body.get("source")))

    @route("POST", r"/_emulator/catalog/managed-images", "Control_AddManagedImage", auth="none")
    def add_managed_image(request: Request) -> Response:
        body = body_of(request)
        parts = parse_image_id(body.get("id", ""))
        resources = app.services["resources"]
        location = body.get("location") or "eastus"
        # Like gallery definitions, a test's managed image brings its resource group along.
        if resources.resource_group(parts["sub"], parts["rg"]) is None:
            resources.create_resource_group(parts["sub"], parts["rg"], location)
        return Response(201, backend.create_managed_image(body["id"], location, body.get("osType") or "Linux",
                                                          body.get("hyperVGeneration") or "V1", body.get("tags")))
