"""Microsoft.VirtualMachineImages (Azure VM Image Builder), api-version 2025-10-01, over HTTP.

Each route parses the request, calls one backend method (backend.ImageBuilder)
and renders the answer with the status codes and LRO headers SDK 2.0.0's pollers expect
(aib-reference §1.2-§1.4):

- PUT template / trigger: 201 + Azure-AsyncOperation + Retry-After, body echo (Creating);
- PATCH, POST run, POST cancel: 202 + Azure-AsyncOperation + Location + Retry-After;
- DELETE template / trigger: 202 + Location + Retry-After (204 when there is nothing);
- GET .../locations/{loc}/operations/{id}: the status document;
- GET .../locations/{loc}/operationResults/{id}: 202 while running, then 200 (204 for deletes).

The build logs are served under /_emulator/blobs/<account>/packerlogs/<run>/..., and the
Image Builder part of the control API under /_emulator/imagebuilder/.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from emulator.core import RG, SUB, ArmError, Request, Response, skip_token
from emulator.imagebuilder import schema
from emulator.imagebuilder.backend import API_VERSION, PROVIDER, ImageBuilder

if TYPE_CHECKING:
    from emulator.core.pipeline import App

PROVIDER_PATH = r"/providers/Microsoft\.VirtualMachineImages"
TEMPLATES = PROVIDER_PATH + "/imageTemplates"
T = RG + TEMPLATES + r"/(?P<template>[^/]+)"
OPERATIONS = SUB + PROVIDER_PATH + r"/locations/(?P<location>[^/]+)"
CONTROL = "/_emulator/imagebuilder"
DEFAULT_SUBSCRIPTION = "22222222-2222-2222-2222-222222222222"
RUN_OUTPUTS = "imageTemplates/runOutputs"
TRIGGERS = "imageTemplates/triggers"
TRIGGERS_SINCE = "2022-07-01"  # the triggers resource type came with this api-version


def require_api_version(request: Request, resources, resource_type: str = "imageTemplates") -> str:
    """ARM's front-door check: the api-version must be given and be one this provider offers for
    the resource type; else ARM's NoRegisteredProviderFound naming the versions and locations."""
    version = request.arg("api-version")
    if not version:
        raise ArmError(400, "MissingApiVersionParameter",
                       "The api-version query parameter (?api-version=) is required for all requests.")
    offered = resources.api_versions(PROVIDER, resource_type) if resources else schema.API_VERSIONS
    if version not in offered:
        if resources is None:
            raise ArmError(400, "NoRegisteredProviderFound",
                           f"No registered resource provider found for API version '{version}'.")
        raise resources.no_registered_provider(PROVIDER, resource_type, version, _location_of(request, resources))
    return version


def _location_of(request: Request, resources) -> str:
    """The location ARM would name: the route's, the body's, else the resource group's."""
    if request.params.get("location"):
        return request.params["location"]
    if request.method == "PUT" and request.body:
        try:
            body = request.json()
        except ArmError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("location"), str):
            return body["location"]
    if request.params.get("resource_group"):
        group = resources.resource_group(request.params["subscription"], request.params["resource_group"])
        if group:
            return group["location"]
    return ""


def _urls(request: Request, op: dict) -> tuple[str, str]:
    base = f"{request.base_url}/subscriptions/{op['subscription']}/providers/{PROVIDER}/locations/{op['location']}"
    query = f"?api-version={request.arg('api-version') or API_VERSION}"
    return f"{base}/operations/{op['id']}{query}", f"{base}/operationResults/{op['id']}{query}"


def lro_headers(backend: ImageBuilder, request: Request, op: dict, *, async_op: bool = True,
                location: bool = True) -> dict[str, str]:
    status_url, result_url = _urls(request, op)
    headers = {"Retry-After": backend.retry_after()}
    if async_op:
        headers["Azure-AsyncOperation"] = status_url
    if location:
        headers["Location"] = result_url
    return headers


def _page(items: list[dict], next_link: str | None) -> dict:
    body: dict = {"value": items}
    if next_link:
        body["nextLink"] = next_link
    return body


def register_routes(app: App, backend: ImageBuilder) -> None:
    route = app.router.add

    def api_version(request: Request, resource_type: str = "imageTemplates") -> str:
        return require_api_version(request, app.services.get("resources"), resource_type)

    def template_of(request: Request, resource_type: str = "imageTemplates") -> dict:
        api_version(request, resource_type)
        p = request.params
        return backend.require(p["subscription"], p["resource_group"], p["template"])

    # -- templates -------------------------------------------------------------------------
    @route("GET", SUB + TEMPLATES, "VirtualMachineImageTemplates_List")
    def list_templates(request: Request) -> Response:
        api_version(request)
        return _list(request, None)

    @route("GET", RG + TEMPLATES, "VirtualMachineImageTemplates_ListByResourceGroup")
    def list_by_resource_group(request: Request) -> Response:
        api_version(request)
        return _list(request, request.params["resource_group"])

    def _list(request: Request, resource_group: str | None) -> Response:
        items, following = backend.list_templates(request.params["subscription"], resource_group,
                                                  skip_token(request))
        version = request.arg("api-version")
        items = [schema.render_template(item, version) for item in items]
        next_link = None
        if following is not None:
            next_link = f"{request.base_url}{request.path}?api-version={request.arg('api-version')}&$skipToken={following}"
        return Response(200, _page(items, next_link))

    @route("GET", T, "VirtualMachineImageTemplates_Get")
    def get_template(request: Request) -> Response:
        doc = template_of(request)
        return Response(200, schema.render_template(backend.render(doc), request.arg("api-version")))

    @route("PUT", T, "VirtualMachineImageTemplates_CreateOrUpdate")
    def put_template(request: Request) -> Response:
        api_version(request)
        p = request.params
        schema.check_name(p["template"])
        backend._require_group(p["subscription"], p["resource_group"])
        version = request.arg("api-version")
        body = schema.template_for_create(request.json(), subscription=p["subscription"], version=version)
        doc, op = backend.create_template(p["subscription"], p["resource_group"], p["template"], body,
                                          claims=request.claims, base_url=request.base_url)
        return Response(201, schema.render_template(backend.render(doc), version),
                        headers=lro_headers(backend, request, op, location=False))

    @route("PATCH", T, "VirtualMachineImageTemplates_Update")
    def patch_template(request: Request) -> Response:
        doc = template_of(request)
        resource = schema.update_for_patch(request.json(), doc["resource"], request.arg("api-version"))
        op = backend.update_template(doc, resource, claims=request.claims)
        return Response(202, None, headers=lro_headers(backend, request, op))

    @route("DELETE", T, "VirtualMachineImageTemplates_Delete")
    def delete_template(request: Request) -> Response:
        api_version(request)
        p = request.params
        backend._require_group(p["subscription"], p["resource_group"])
        doc = backend.find(p["subscription"], p["resource_group"], p["template"])
        if doc is None:
            return Response(204)
        op = backend.delete_template(doc)
        return Response(202, None, headers=lro_headers(backend, request, op, async_op=False))

    @route("POST", T + "/run", "VirtualMachineImageTemplates_Run")
    def run_template(request: Request) -> Response:
        op = backend.run_template(template_of(request), request.base_url)
        return Response(202, None, headers=lro_headers(backend, request, op))

    @route("POST", T + "/cancel", "VirtualMachineImageTemplates_Cancel")
    def cancel_run(request: Request) -> Response:
        op = backend.cancel_run(template_of(request))
        return Response(202, None, headers=lro_headers(backend, request, op))

    # -- run outputs -----------------------------------------------------------------------
    @route("GET", T + "/runOutputs", "VirtualMachineImageTemplates_ListRunOutputs")
    def list_run_outputs(request: Request) -> Response:
        return Response(200, _page(backend.run_outputs(template_of(request, RUN_OUTPUTS)), None))

    @route("GET", T + r"/runOutputs/(?P<run_output>[^/]+)", "VirtualMachineImageTemplates_GetRunOutput")
    def get_run_output(request: Request) -> Response:
        doc = template_of(request, RUN_OUTPUTS)
        return Response(200, backend.run_output(doc, request.params["run_output"]))

    # -- triggers --------------------------------------------------------------------------
    @route("GET", T + "/triggers", "Triggers_ListByImageTemplate")
    def list_triggers(request: Request) -> Response:
        return Response(200, _page(backend.triggers(template_of(request, TRIGGERS)), None))

    @route("GET", T + r"/triggers/(?P<trigger>[^/]+)", "Triggers_Get")
    def get_trigger(request: Request) -> Response:
        doc = template_of(request, TRIGGERS)
        return Response(200, backend.trigger(doc, request.params["trigger"]))

    @route("PUT", T + r"/triggers/(?P<trigger>[^/]+)", "Triggers_CreateOrUpdate")
    def put_trigger(request: Request) -> Response:
        doc = template_of(request, TRIGGERS)
        schema.check_name(request.params["trigger"], "triggerName")
        body = schema.trigger_for_create(request.json(), request.arg("api-version"))
        trigger, op = backend.put_trigger(doc, request.params["trigger"], body, claims=request.claims)
        if op is None:
            return Response(200, trigger)
        return Response(201, trigger, headers=lro_headers(backend, request, op, location=False))

    @route("DELETE", T + r"/triggers/(?P<trigger>[^/]+)", "Triggers_Delete")
    def delete_trigger(request: Request) -> Response:
        api_version(request, TRIGGERS)
        p = request.params
        backend._require_group(p["subscription"], p["resource_group"])
        doc = backend.find(p["subscription"], p["resource_group"], p["template"])
        op = backend.delete_trigger(doc, p["trigger"]) if doc else None
        if op is None:
            return Response(204)
        return Response(202, None, headers=lro_headers(backend, request, op, async_op=False))

    # -- async operations ------------------------------------------------------------------
    @route("GET", OPERATIONS + r"/operations/(?P<operation_id>[^/]+)", "ImageBuilderOperations_GetStatus")
    def operation_status(request: Request) -> Response:
        api_version(request, "locations/operations")
        op = backend.poll_operation(request.params["subscription"], request.params["operation_id"])
        request.params["template"] = op["templateName"]  # for the request log
        return Response(200, backend.operation_status(op), headers={"Retry-After": backend.retry_after()})

    @route("GET", OPERATIONS + r"/operationResults/(?P<operation_id>[^/]+)", "ImageBuilderOperations_GetResult")
    def operation_result(request: Request) -> Response:
        api_version(request, "locations/operations")
        op = backend.poll_operation(request.params["subscription"], request.params["operation_id"])
        request.params["template"] = op["templateName"]
        if op["status"] == "InProgress":
            _, result_url = _urls(request, op)
            return Response(202, None, headers={"Location": result_url, "Retry-After": backend.retry_after()})
        if op["status"] == "Failed":
            error = op.get("error") or {"code": "InternalOperationError", "message": "The operation failed."}
            raise ArmError(500 if error["code"] == "InternalOperationError" else 400, error["code"], error["message"])
        return Response(204 if op["kind"] in ("delete", "trigger-delete") else 200, None,
                        headers={"Retry-After": backend.retry_after()})

    @route("GET", PROVIDER_PATH + "/operations", "Operations_List")
    def provider_operations(request: Request) -> Response:
        api_version(request, "operations")
        return Response(200, {"value": _provider_operations()})

    # -- build logs ------------------------------------------------------------------------
    @route("GET", r"/_emulator/blobs/(?P<account>[^/]+)/(?P<container>[^/]+)/(?P<blob>.+)", "Blob_Get", auth="none")
    def get_blob(request: Request) -> Response:
        p = request.params
        text = backend.blob(p["account"], p["container"], p["blob"])
        if text is None:
            return Response(404, "The specified blob does not exist.", headers={"x-ms-error-code": "BlobNotFound"})
        return Response(200, text, content_type="text/plain; charset=utf-8")

    @route("GET", r"/_emulator/blobs/(?P<account>[^/]+)/(?P<container>[^/]+)", "Blob_List", auth="none")
    def list_blobs(request: Request) -> Response:
        names = backend.blobs(request.params["account"], request.params["container"])
        if names is None:
            return Response(404, {"error": {"code": "ContainerNotFound",
                                            "message": "The specified container does not exist."}})
        return Response(200, {"value": names})

    # -- control: forced failures, unavailable regions, internals --------------------------
    def control_template(body: dict) -> dict:
        template_id = body.get("template_id")
        if template_id:
            parts = template_id.strip("/").split("/")
            if len(parts) != 8:
                raise ArmError(400, "InvalidParameter", f"'{template_id}' is not an image template id.")
            subscription, resource_group, name = parts[1], parts[3], parts[7]
        else:
            subscription = body.get("subscription") or DEFAULT_SUBSCRIPTION
            resource_group, name = body.get("resource_group"), body.get("template")
            if not resource_group or not name:
                raise ArmError(400, "InvalidParameter", "Send template_id, or resource_group and template.")
        doc = backend.find(subscription, resource_group, name)
        if doc is None:
            raise not_found_control(resource_group, name)
        return doc

    @route("POST", CONTROL + "/forced-failures", "Control_ForceFailure", auth="none")
    def force_failure(request: Request) -> Response:
        body = _control_body(request)
        doc = control_template(body)
        return Response(201, backend.force_failure(doc, body.get("sub_state") or "", body.get("code"),
                                                   body.get("message")))

    @route("GET", CONTROL + "/forced-failures", "Control_ListForcedFailures", auth="none")
    def list_forced(request: Request) -> Response:
        return Response(200, {"value": backend.forced_failures()})

    @route("DELETE", CONTROL + "/forced-failures", "Control_ClearForcedFailures", auth="none")
    def clear_forced(request: Request) -> Response:
        backend.clear_forced_failures()
        return Response(204)

    @route("GET", CONTROL + "/unavailable-regions", "Control_GetUnavailableRegions", auth="none")
    def get_unavailable(request: Request) -> Response:
        return Response(200, {"regions": backend.unavailable_regions()})

    @route("PUT", CONTROL + "/unavailable-regions", "Control_SetUnavailableRegions", auth="none")
    def set_unavailable(request: Request) -> Response:
        regions = _control_body(request).get("regions")
        if not isinstance(regions, list) or not all(isinstance(r, str) for r in regions):
            raise ArmError(400, "InvalidParameter", "Send {\"regions\": [\"<region>\", ...]}.")
        return Response(200, {"regions": backend.set_unavailable_regions(regions)})

    @route("DELETE", CONTROL + "/unavailable-regions", "Control_ClearUnavailableRegions", auth="none")
    def clear_unavailable(request: Request) -> Response:
        backend.set_unavailable_regions([])
        return Response(204)

    @route("GET", CONTROL + r"/templates/(?P<subscription>[^/]+)/(?P<resource_group>[^/]+)/(?P<template>[^/]+)/logs",
           "Control_ListBuildLogs", auth="none")
    def build_logs(request: Request) -> Response:
        p = request.params
        doc = backend.find(p["subscription"], p["resource_group"], p["template"])
        if doc is None:
            raise not_found_control(p["resource_group"], p["template"])
        return Response(200, {"value": backend.log_urls(doc)})

    @route("GET", CONTROL + r"/templates/(?P<subscription>[^/]+)/(?P<resource_group>[^/]+)/(?P<template>[^/]+)",
           "Control_GetTemplateInternals", auth="none")
    def template_internals(request: Request) -> Response:
        p = request.params
        doc = backend.find(p["subscription"], p["resource_group"], p["template"])
        if doc is None:
            raise not_found_control(p["resource_group"], p["template"])
        return Response(200, backend.internal(doc))


def not_found_control(resource_group: str, name: str) -> ArmError:
    return ArmError(404, "ResourceNotFound", f"No image template '{name}' in resource group '{resource_group}'.")


def _control_body(request: Request) -> dict:
    body = request.json()
    if not isinstance(body, dict):
        raise ArmError(400, "InvalidRequestContent", "The request body must be a JSON object.")
    return body


def _provider_operations() -> list[dict]:
    """The provider's RBAC operations (what EX/OperationsList lists), in our own words."""
    entries = [
        ("register/action", "Microsoft.VirtualMachineImages", "Register the Image Builder resource provider"),
        ("unregister/action", "Microsoft.VirtualMachineImages", "Unregister the Image Builder resource provider"),
        ("imageTemplates/read", "Image Templates", "Read image templates"),
        ("imageTemplates/write", "Image Templates", "Create image templates"),
        ("imageTemplates/delete", "Image Templates", "Delete image templates"),
        ("imageTemplates/run/action", "Image Templates", "Start a build of an image template"),
        ("imageTemplates/cancel/action", "Image Templates", "Cancel a running build"),
        ("imageTemplates/runOutputs/read", "Run Outputs", "Read the outputs of an image template's last run"),
        ("imageTemplates/triggers/read", "Triggers", "Read triggers"),
        ("imageTemplates/triggers/write", "Triggers", "Create or update triggers"),
        ("imageTemplates/triggers/delete", "Triggers", "Delete triggers"),
        ("operations/read", "Operations", "List the operations of this provider"),
        ("locations/operations/read", "Async Operations", "Read the status of asynchronous operations"),
    ]
    return [{"name": f"{PROVIDER}/{name}", "isDataAction": False, "origin": "user,system",
             "display": {"provider": "Azure VM Image Builder", "resource": resource,
                         "operation": description, "description": description + "."}}
            for name, resource, description in entries]


def settle_middleware(backend: ImageBuilder):
    """Before any request (Image Builder, Compute, control), apply the build events now due."""

    def middleware(request: Request, route, call_next):
        backend.settle()
        return call_next(request)

    return middleware


def register(app: App) -> None:
    """Register the Image Builder routes, the settle step and the backend (app.services["imagebuilder"])."""
    backend = ImageBuilder(app)
    app.services["imagebuilder"] = backend
    app.reset_hooks.append(backend.on_reset)
    resources = app.services.get("resources")
    if resources is not None:
        resources.add_delete_hook(backend.drop_resource_group)
        resources.add_resource_lister(backend.generic_resources)
        every = schema.API_VERSIONS
        resources.add_provider(PROVIDER, [
            {"resourceType": "imageTemplates", "apiVersions": every},
            {"resourceType": RUN_OUTPUTS, "apiVersions": every},
            {"resourceType": TRIGGERS, "apiVersions": tuple(v for v in every if v >= TRIGGERS_SINCE)},
            {"resourceType": "locations", "apiVersions": every, "locations": []},
            {"resourceType": "locations/operations", "apiVersions": every, "locations": []},
            {"resourceType": "operations", "apiVersions": every, "locations": []},
        ])
    register_routes(app, backend)
    app.middlewares.append(settle_middleware(backend))


