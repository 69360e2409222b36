"""SourceImage triggers through ImageBuilderClient.triggers (aib-reference §2.12)."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.mgmt.imagebuilder import models as m

from tests.support.aib import GEN1_DEFINITION, GEN2_DEFINITION, Recorder, gallery_target, template_body
from tests.support.emulator import RESOURCE_GROUP

RG = RESOURCE_GROUP
SOURCE_IMAGE = m.Trigger(properties=m.SourceImageTriggerProperties())


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def client(emulator, recorder):
    return emulator.imagebuilder_client(raw_response_hook=recorder)


def create_template(client, name: str = "web", **body) -> None:
    client.virtual_machine_image_templates.begin_create_or_update(RG, name, template_body(**body)).result()


def test_it_creates_reads_lists_and_deletes_a_trigger(client, recorder):
    create_template(client)
    recorder.clear()

    trigger = client.triggers.begin_create_or_update(RG, "web", "source", SOURCE_IMAGE).result()

    put = recorder.first("PUT")
    assert put.status == 201 and "/operations/" in put.headers["Azure-AsyncOperation"]
    assert trigger.name == "source"
    assert trigger.type == "Microsoft.VirtualMachineImages/imageTemplates/triggers"
    assert trigger.properties.kind == "SourceImage"
    assert trigger.properties.provisioning_state == "Succeeded"
    assert trigger.properties.status.code == "Healthy"
    assert client.triggers.get(RG, "web", "source").id == trigger.id
    assert [t.name for t in client.triggers.list_by_image_template(RG, "web")] == ["source"]

    recorder.clear()
    client.triggers.begin_delete(RG, "web", "source").result()
    assert recorder.first("DELETE").status == 202
    with pytest.raises(ResourceNotFoundError):
        client.triggers.get(RG, "web", "source")
    assert list(client.triggers.list_by_image_template(RG, "web")) == []


def test_put_of_the_same_trigger_again_answers_200(client, recorder):
    create_template(client)
    client.triggers.begin_create_or_update(RG, "web", "source", SOURCE_IMAGE).result()
    recorder.clear()

    client.triggers.begin_create_or_update(RG, "web", "source", SOURCE_IMAGE).result()

    assert recorder.first("PUT").status == 200


def test_only_one_trigger_per_template(client):
    create_template(client)
    client.triggers.begin_create_or_update(RG, "web", "source", SOURCE_IMAGE).result()

    with pytest.raises(ResourceExistsError) as caught:
        client.triggers.begin_create_or_update(RG, "web", "another", SOURCE_IMAGE)
    assert "Only one trigger" in caught.value.error.message


def test_a_trigger_needs_a_provisioned_template(client):
    with pytest.raises(HttpResponseError):
        client.virtual_machine_image_templates.begin_create_or_update(RG, "bad", template_body(source={
            "type": "PlatformImage", "publisher": "Nobody", "offer": "o", "sku": "s", "version": "latest"})).result()

    with pytest.raises(ResourceExistsError) as caught:
        client.triggers.begin_create_or_update(RG, "bad", "source", SOURCE_IMAGE)
    assert caught.value.error.code == "OperationNotAllowed"


def test_a_trigger_on_a_missing_template_is_not_found(client):
    with pytest.raises(ResourceNotFoundError):
        client.triggers.begin_create_or_update(RG, "missing", "source", SOURCE_IMAGE)


@pytest.mark.parametrize("body", [
    {"source": {"type": "PlatformImage", "publisher": "Canonical", "offer": "0001-com-ubuntu-server-jammy",
                "sku": "22_04-lts-gen2", "version": "22.04.202411190"}},
    {"distribute": [gallery_target(definition=f"{GEN1_DEFINITION}/versions/9.0.0")]},
    {"source": {"type": "SharedImageVersion", "imageVersionId": f"{GEN2_DEFINITION}/versions/latest"},
     "distribute": [gallery_target()]},
])
def test_the_source_must_be_latest_and_targets_unversioned_and_distinct(client, body):
    create_template(client, **body)

    with pytest.raises(HttpResponseError) as caught:
        client.triggers.begin_create_or_update(RG, "web", "source", SOURCE_IMAGE)
    assert caught.value.status_code == 400
    assert caught.value.error.code == "ValidationFailed"


def test_unknown_trigger_kinds_are_refused(client):
    create_template(client)

    with pytest.raises(HttpResponseError) as caught:
        client.triggers.begin_create_or_update(RG, "web", "source", {"properties": {"kind": "Schedule"}})
    assert caught.value.status_code == 400


def test_deleting_a_missing_trigger_is_204(client, recorder):
    create_template(client)

    client.triggers.begin_delete(RG, "web", "nothing").result()

    assert recorder.first("DELETE").status == 204


def test_deleting_the_template_removes_its_triggers(client):
    create_template(client)
    client.triggers.begin_create_or_update(RG, "web", "source", SOURCE_IMAGE).result()
    client.virtual_machine_image_templates.begin_delete(RG, "web").result()
    create_template(client)

    assert list(client.triggers.list_by_image_template(RG, "web")) == []
