"""Microsoft.Authorization routes (role definitions, role assignments, policy definitions and
assignments at any scope), the policy middleware (deny on PUT) and the control endpoints."""

from __future__ import annotations

from collections.abc import Callable

from emulator.authorization.backend import Authorization, normalize_scope, subscription_of, who_of
from emulator.authorization.policy import Policy
from emulator.control.backend import arm_action
from emulator.core import ArmError, Request, Response, Route
from emulator.resources.backend import require_api_version

# azure-mgmt-authorization 4.0.0 sends 2022-04-01 for role assignments and definitions; the
# published versions before it are accepted too.
AUTHORIZATION_API_VERSIONS = ("2015-07-01", "2018-01-01-preview", "2018-09-01-preview", "2020-04-01-preview",
                              "2020-08-01-preview", "2020-10-01-preview", "2022-01-01-preview", "2022-04-01",
                              "2022-05-01-preview")
POLICY_API_VERSIONS = ("2016-12-01", "2018-03-01", "2018-05-01", "2019-01-01", "2019-06-01", "2019-09-01",
                       "2020-09-01", "2021-06-01", "2022-06-01", "2023-04-01", "2024-04-01", "2024-05-01",
                       "2025-01-01", "2025-03-01")
# Any ARM scope: empty (the root), a subscription, a resource group or a resource below it.
SCOPE = r"(?P<scope>(?:/subscriptions/[^/]+(?:/resourceGroups/[^/]+(?:/providers/.+?)?)?)?)"
_AUTH = r"/providers/Microsoft\.Authorization"


def _body(request: Request) -> dict:
    body = request.json()
    if not isinstance(body, dict):
        raise ArmError(400, "InvalidRequestContent", "The request body must be a JSON object.")
    return body


def register(app) -> None:
    rbac, policy = Authorization(app), Policy(app)
    app.services["authorization"] = rbac
    app.services["policy"] = policy
    resources = app.services["resources"]
    resources.add_delete_hook(rbac.drop_resource_group)
    resources.add_provider("Microsoft.Authorization", [
        {"resourceType": "roleAssignments", "apiVersions": AUTHORIZATION_API_VERSIONS, "locations": []},
        {"resourceType": "roleDefinitions", "apiVersions": AUTHORIZATION_API_VERSIONS, "locations": []},
        {"resourceType": "policyDefinitions", "apiVersions": POLICY_API_VERSIONS, "locations": []},
        {"resourceType": "policyAssignments", "apiVersions": POLICY_API_VERSIONS, "locations": []},
    ])
    _register_rbac(app, rbac)
    _register_policy(app, policy)
    _register_control(app, rbac, policy)
    app.middlewares.append(policy_middleware(policy))


def _register_rbac(app, rbac: Authorization) -> None:
    route = app.router.add
    assignments = SCOPE + _AUTH + r"/roleAssignments"
    assignment = assignments + r"/(?P<name>[^/]+)"
    definitions = SCOPE + _AUTH + r"/roleDefinitions"
    definition = definitions + r"/(?P<name>[^/]+)"

    def scope(request: Request) -> str:
        return normalize_scope(request.params["scope"])

    @route("GET", assignments, "RoleAssignments_ListForScope")
    def list_assignments(request: Request) -> Response:
        require_api_version(request, AUTHORIZATION_API_VERSIONS)
        return Response(200, {"value": rbac.list_assignments(scope(request), request.arg("$filter"))})

    @route("GET", assignment, "RoleAssignments_Get")
    def get_assignment(request: Request) -> Response:
        require_api_version(request, AUTHORIZATION_API_VERSIONS)
        return Response(200, rbac.get_assignment(scope(request), request.params["name"]))

    @route("PUT", assignment, "RoleAssignments_Create")
    def put_assignment(request: Request) -> Response:
        require_api_version(request, AUTHORIZATION_API_VERSIONS)
        found, created = rbac.put_assignment(scope(request), request.params["name"], _body(request),
                                             who_of(request.claims))
        return Response(201 if created else 200, found)

    @route("DELETE", assignment, "RoleAssignments_Delete")
    def delete_assignment(request: Request) -> Response:
        require_api_version(request, AUTHORIZATION_API_VERSIONS)
        found = rbac.delete_assignment(scope(request), request.params["name"])
        return Response(204) if found is None else Response(200, found)

    @route("GET", definitions, "RoleDefinitions_List")
    def list_definitions(request: Request) -> Response:
        require_api_version(request, AUTHORIZATION_API_VERSIONS)
        return Response(200, {"value": rbac.role_definitions(scope(request), request.arg("$filter"))})

    @route("GET", definition, "RoleDefinitions_Get")
    def get_definition(request: Request) -> Response:
        require_api_version(request, AUTHORIZATION_API_VERSIONS)
        return Response(200, rbac.role_definition(scope(request), request.params["name"]))

    @route("PUT", definition, "RoleDefinitions_CreateOrUpdate")
    def put_definition(request: Request) -> Response:
        require_api_version(request, AUTHORIZATION_API_VERSIONS)
        found, created = rbac.put_role_definition(scope(request), request.params["name"], _body(request),
                                                  who_of(request.claims))
        return Response(201 if created else 200, found)

    @route("DELETE", definition, "RoleDefinitions_Delete")
    def delete_definition(request: Request) -> Response:
        require_api_version(request, AUTHORIZATION_API_VERSIONS)
        found = rbac.delete_role_definition(scope(request), request.params["name"])
        return Response(204) if found is None else Response(200, found)


def _register_policy(app, policy: Policy) -> None:
    route = app.router.add
    builtins = _AUTH + r"/policyDefinitions"
    custom = r"/subscriptions/(?P<subscription>[^/]+)" + _AUTH + r"/policyDefinitions"
    assignments = SCOPE + _AUTH + r"/policyAssignments"
    assignment = assignments + r"/(?P<name>[^/]+)"

    @route("GET", builtins, "PolicyDefinitions_ListBuiltIn")
    def list_builtins(request: Request) -> Response:
        require_api_version(request, POLICY_API_VERSIONS)
        return Response(200, {"value": policy.definitions(None)})

    @route("GET", builtins + r"/(?P<name>[^/]+)", "PolicyDefinitions_GetBuiltIn")
    def get_builtin(request: Request) -> Response:
        require_api_version(request, POLICY_API_VERSIONS)
        return Response(200, policy.built_in(request.params["name"]))

    @route("GET", custom, "PolicyDefinitions_List")
    def list_definitions(request: Request) -> Response:
        require_api_version(request, POLICY_API_VERSIONS)
        return Response(200, {"value": policy.definitions(request.params["subscription"])})

    @route("GET", custom + r"/(?P<name>[^/]+)", "PolicyDefinitions_Get")
    def get_definition(request: Request) -> Response:
        require_api_version(request, POLICY_API_VERSIONS)
        return Response(200, policy.definition(request.params["subscription"], request.params["name"]))

    @route("PUT", custom + r"/(?P<name>[^/]+)", "PolicyDefinitions_CreateOrUpdate")
    def put_definition(request: Request) -> Response:
        require_api_version(request, POLICY_API_VERSIONS)
        found, created = policy.put_definition(request.params["subscription"], request.params["name"], _body(request))
        return Response(201 if created else 200, found)

    @route("DELETE", custom + r"/(?P<name>[^/]+)", "PolicyDefinitions_Delete")
    def delete_definition(request: Request) -> Response:
        require_api_version(request, POLICY_API_VERSIONS)
        deleted = policy.delete_definition(request.params["subscription"], request.params["name"])
        return Response(200 if deleted else 204)

    @route("GET", assignments, "PolicyAssignments_List")
    def list_assignments(request: Request) -> Response:
        require_api_version(request, POLICY_API_VERSIONS)
        return Response(200, {"value": policy.assignments(request.params["scope"], request.arg("$filter"))})

    @route("GET", assignment, "PolicyAssignments_Get")
    def get_assignment(request: Request) -> Response:
        require_api_version(request, POLICY_API_VERSIONS)
        return Response(200, policy.assignment(request.params["scope"], request.params["name"]))

    @route("PUT", assignment, "PolicyAssignments_Create")
    def put_assignment(request: Request) -> Response:
        require_api_version(request, POLICY_API_VERSIONS)
        found, created = policy.put_assignment(request.params["scope"], request.params["name"], _body(request))
        return Response(201 if created else 200, found)

    @route("DELETE", assignment, "PolicyAssignments_Delete")
    def delete_assignment(request: Request) -> Response:
        require_api_version(request, POLICY_API_VERSIONS)
        found = policy.delete_assignment(request.params["scope"], request.params["name"])
        return Response(204) if found is None else Response(200, found)


def _register_control(app, rbac: Authorization, policy: Policy) -> None:
    route = app.router.add

    def required(body: dict, *names: str) -> None:
        missing = [name for name in names if not body.get(name)]
        if missing:
            raise ArmError(400, "InvalidParameter", f"Missing field(s): {', '.join(missing)}.")

    @route("POST", r"/_emulator/authorization/grant", "Control_GrantRole", auth="none")
    def grant(request: Request) -> Response:
        body = _body(request)
        required(body, "principalId", "role", "scope")
        found, created = rbac.grant(body["principalId"], body["role"], body["scope"], body.get("principalType"))
        return Response(201 if created else 200, found)

    @route("POST", r"/_emulator/authorization/revoke", "Control_RevokeRole", auth="none")
    def revoke(request: Request) -> Response:
        body = _body(request)
        required(body, "principalId")
        removed = rbac.revoke(body["principalId"], body.get("role"), body.get("scope"))
        return Response(200, {"removed": removed})

    @route("GET", r"/_emulator/authorization/enforce", "Control_GetEnforcement", auth="none")
    def get_enforcement(request: Request) -> Response:
        return Response(200, {"value": rbac.enforcement()})

    @route("POST", r"/_emulator/authorization/enforce", "Control_SetEnforcement", auth="none")
    def set_enforcement(request: Request) -> Response:
        body = _body(request)
        required(body, "subscription")
        return Response(200, rbac.set_enforced(body["subscription"], body.get("enabled", True)))

    @route("POST", r"/_emulator/authorization/check", "Control_CheckPermission", auth="none")
    def check(request: Request) -> Response:
        body = _body(request)
        required(body, "principalId", "scope", "action")
        allowed = rbac.has_permission(body["principalId"], body["scope"], body["action"],
                                      data_action=bool(body.get("dataAction")))
        return Response(200, {"allowed": allowed})

    @route("POST", r"/_emulator/policy/assignments", "Control_AddPolicyAssignment", auth="none")
    def add_policy_assignment(request: Request) -> Response:
        body = _body(request)
        required(body, "scope", "definition")
        definition = policy.resolve_definition(body["definition"], subscription_of(body["scope"]))
        if definition is None:
            raise ArmError(404, "PolicyDefinitionNotFound", f"The policy definition '{body['definition']}' could not "
                                                            "be found.")
        name = body.get("name") or definition["name"]
        params = {key: value if isinstance(value, dict) and "value" in value else {"value": value}
                  for key, value in (body.get("parameters") or {}).items()}
        found, _ = policy.put_assignment(body["scope"], name, {"properties": {
            "policyDefinitionId": definition["id"], "parameters": params,
            "displayName": body.get("displayName") or definition["properties"].get("displayName"),
            "enforcementMode": body.get("enforcementMode"), "notScopes": body.get("notScopes")}})
        return Response(201, found)

    @route("DELETE", r"/_emulator/policy/assignments", "Control_ClearPolicyAssignments", auth="none")
    def clear_policy_assignments(request: Request) -> Response:
        policy.clear_assignments()
        return Response(204)


def policy_middleware(policy: Policy) -> Callable:
    """ARM evaluates deny policies on every PUT of a resource or resource group, before the
    provider sees it: 403 RequestDisallowedByPolicy (only when an assignment exists)."""

    def middleware(request: Request, route: Route, call_next: Callable[[Request], Response]) -> Response:
        if route.auth != "arm" or request.method != "PUT" or "/microsoft.authorization/" in request.path.lower():
            return call_next(request)
        if not policy.store.keys("policy_assignment"):
            return call_next(request)
        action, scope = arm_action("PUT", request.path)
        body = request.json() or {}
        if isinstance(body, dict):
            resource_type = action.rsplit("/", 1)[0]
            policy.check({"id": normalize_scope(scope), "name": scope.rstrip("/").rsplit("/", 1)[-1],
                          "type": resource_type, "location": (body.get("location") or "").replace(" ", "").lower(),
                          "tags": body.get("tags") or {}})
        return call_next(request)

    return middleware
