"""User-assigned identities (raw REST at azure-mgmt-msi 7.1.0's api-version 2024-11-30) and how
Image Builder treats a template identity that does not exist."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError

from tests.support.aib import IDENTITY_ID, template_body
from tests.support.emulator import RESOURCE_GROUP, SUBSCRIPTION_ID

V = "2024-11-30"


def test_it_creates_reads_lists_and_deletes_an_identity(arm):
    created = arm.put(IDENTITY_ID, V, {"location": "East US", "tags": {"team": "images"}})
    again = arm.put(IDENTITY_ID, V, {"location": "eastus"})
    listed = arm.get(f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{RESOURCE_GROUP}/providers/"
                     "Microsoft.ManagedIdentity/userAssignedIdentities", V).json()["value"]

    assert created.status_code == 201
    assert again.status_code == 200
    props = created.json()["properties"]
    assert set(props) >= {"principalId", "clientId", "tenantId"}
    assert arm.get(IDENTITY_ID, V).json()["properties"] == props
    assert [item["name"] for item in listed] == ["aib-builder"]
    assert arm.delete(IDENTITY_ID, V).status_code == 200
    assert arm.get(IDENTITY_ID, V).json()["error"]["code"] == "ResourceNotFound"


def test_the_template_shows_the_identitys_principal(emulator, arm, imagebuilder_client):
    identity = arm.put(IDENTITY_ID, V, {"location": "eastus"}).json()["properties"]

    template = imagebuilder_client.virtual_machine_image_templates.begin_create_or_update(
        RESOURCE_GROUP, "web", template_body()).result()

    shown = template.identity.user_assigned_identities[IDENTITY_ID]
    assert (shown.principal_id, shown.client_id) == (identity["principalId"], identity["clientId"])


def test_it_accepts_a_missing_identity_unless_enforcement_is_on(emulator, imagebuilder_client):
    templates = imagebuilder_client.virtual_machine_image_templates
    templates.begin_create_or_update(RESOURCE_GROUP, "lenient", template_body()).result()
    emulator.control("POST", "authorization/enforce", {"subscription": SUBSCRIPTION_ID, "enabled": True})

    with pytest.raises(HttpResponseError) as refused:
        templates.begin_create_or_update(RESOURCE_GROUP, "strict", template_body())

    assert refused.value.status_code == 400
    assert refused.value.error.code == "FailedIdentityOperation"
    assert IDENTITY_ID in refused.value.error.message
