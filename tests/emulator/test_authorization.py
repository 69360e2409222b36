"""Role definitions and role assignments (raw REST at azure-mgmt-authorization 4.0.0's
api-version 2022-04-01; the package is not installed) and the permission check behind
Image Builder's enforcement (POST /_emulator/authorization/check)."""

from __future__ import annotations

import uuid

from tests.support.emulator import RESOURCE_GROUP, SUBSCRIPTION_ID

V = "2022-04-01"
SUB = f"/subscriptions/{SUBSCRIPTION_ID}"
RG = f"{SUB}/resourceGroups/{RESOURCE_GROUP}"
IMAGE = f"{RG}/providers/Microsoft.Compute/images/web"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
PRINCIPAL = "7f0c7c5e-0000-4000-8000-000000000001"


def assign(arm, scope: str, role: str, principal: str = PRINCIPAL, name: str | None = None):
    return arm.put(f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name or uuid.uuid4()}", V,
                   {"properties": {"roleDefinitionId": f"{SUB}/providers/Microsoft.Authorization/roleDefinitions/{role}",
                                   "principalId": principal, "principalType": "ServicePrincipal"}})


def allowed(emulator, scope: str, action: str, principal: str = PRINCIPAL, **extra) -> bool:
    body = {"principalId": principal, "scope": scope, "action": action, **extra}
    return emulator.control("POST", "authorization/check", body).json()["allowed"]


def test_it_serves_built_in_roles_with_their_real_names(arm):
    contributor = arm.get(f"{SUB}/providers/Microsoft.Authorization/roleDefinitions/{CONTRIBUTOR}", V).json()
    by_name = arm.get(f"{SUB}/providers/Microsoft.Authorization/roleDefinitions", V,
                      **{"$filter": "roleName eq 'Managed Identity Operator'"}).json()["value"]

    assert contributor["id"] == f"{SUB}/providers/Microsoft.Authorization/roleDefinitions/{CONTRIBUTOR}"
    assert contributor["properties"]["roleName"] == "Contributor"
    assert "Microsoft.Authorization/*/Write" in contributor["properties"]["permissions"][0]["notActions"]
    assert [role["name"] for role in by_name] == ["f1a07417-d97a-45cb-824c-7a7467783830"]


def test_it_creates_lists_and_deletes_a_custom_role(arm):
    role = str(uuid.uuid4())
    path = f"{RG}/providers/Microsoft.Authorization/roleDefinitions/{role}"
    body = {"properties": {"roleName": "Azure Image Builder Service Image Creation Role", "type": "CustomRole",
                           "permissions": [{"actions": ["Microsoft.Compute/images/write"]}],
                           "assignableScopes": [RG]}}

    created = arm.put(path, V, body)
    listed = arm.get(f"{RG}/providers/Microsoft.Authorization/roleDefinitions", V,
                     **{"$filter": "type eq 'CustomRole'"}).json()["value"]
    deleted = arm.delete(path, V)

    assert created.status_code == 201
    assert created.json()["id"] == f"{SUB}/providers/Microsoft.Authorization/roleDefinitions/{role}"
    assert [item["name"] for item in listed] == [role]
    assert deleted.status_code == 200
    assert arm.get(path, V).status_code == 404


def test_it_lists_assignments_with_inherited_ones_at_scope(arm):
    at_sub = assign(arm, SUB, READER).json()
    at_rg = assign(arm, RG, CONTRIBUTOR).json()
    other = assign(arm, RG, READER, principal="7f0c7c5e-0000-4000-8000-000000000002").json()

    at_image = arm.get(f"{IMAGE}/providers/Microsoft.Authorization/roleAssignments", V,
                       **{"$filter": f"atScope() and assignedTo('{PRINCIPAL}')"}).json()["value"]
    at_subscription = arm.get(f"{SUB}/providers/Microsoft.Authorization/roleAssignments", V,
                              **{"$filter": "atScope()"}).json()["value"]
    everything = arm.get(f"{SUB}/providers/Microsoft.Authorization/roleAssignments", V).json()["value"]

    assert {item["name"] for item in at_image} == {at_sub["name"], at_rg["name"]}
    assert [item["name"] for item in at_subscription] == [at_sub["name"]]
    assert {item["name"] for item in everything} == {at_sub["name"], at_rg["name"], other["name"]}
    assert at_rg["properties"]["scope"] == RG
    assert at_rg["properties"]["roleDefinitionId"].endswith(CONTRIBUTOR)


def test_it_refuses_a_duplicate_and_deletes_an_assignment(arm):
    first = assign(arm, RG, READER)
    again = assign(arm, RG, READER)
    path = f"{RG}/providers/Microsoft.Authorization/roleAssignments/{first.json()['name']}"

    assert first.status_code == 201
    assert (again.status_code, again.json()["error"]["code"]) == (409, "RoleAssignmentExists")
    assert arm.delete(path, V).status_code == 200
    assert arm.get(path, V).status_code == 404


def test_it_checks_actions_with_wildcards_not_actions_and_inheritance(emulator, arm):
    assign(arm, RG, CONTRIBUTOR)
    assign(arm, SUB, READER)

    assert allowed(emulator, IMAGE, "Microsoft.Compute/images/write")
    assert not allowed(emulator, IMAGE, "Microsoft.Authorization/roleAssignments/write")
    assert allowed(emulator, f"{SUB}/resourceGroups/other", "Microsoft.Compute/images/read")
    assert not allowed(emulator, f"{SUB}/resourceGroups/other", "Microsoft.Compute/images/write")


def test_the_control_api_grants_and_revokes_by_role_name(emulator):
    granted = emulator.control("POST", "authorization/grant",
                               {"principalId": PRINCIPAL, "role": "Storage Blob Data Reader", "scope": RG}, expect=201)
    blob = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"

    assert granted.json()["properties"]["roleDefinitionId"].endswith("2a2b9908-6ea1-4ae2-8e65-a410df84e7d1")
    assert allowed(emulator, RG, blob, dataAction=True)
    emulator.control("POST", "authorization/revoke", {"principalId": PRINCIPAL, "scope": RG})
    assert not allowed(emulator, RG, blob, dataAction=True)
