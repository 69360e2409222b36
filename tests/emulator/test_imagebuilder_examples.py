"""The REST specification's examples (../shared/fixtures/aib-rest-examples/): the request bodies
are accepted, and what the emulator answers has the shape the examples' responses have.

Skipped when the fixtures folder is absent (see ../shared/fixtures/README.md)."""

from __future__ import annotations

import json

import pytest

from tests.support.aib import Recorder, template_body
from tests.support.emulator import REPO_ROOT

EXAMPLES = REPO_ROOT.parent / "shared" / "fixtures" / "aib-rest-examples"
SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"  # the examples' own ids use this one
RG = "myResourceGroup"
NAME = "myImageTemplate"

pytestmark = pytest.mark.skipif(not EXAMPLES.is_dir(), reason=f"{EXAMPLES} is not available")


def example(name: str) -> dict:
    text = (EXAMPLES / f"{name}.json").read_text().replace("{subscription-id}", SUBSCRIPTION)
    return json.loads(text)


# Maps whose keys are data (tag names, identity ids), not schema: only their type is compared.
FREE_FORM = ("tags", "artifactTags", "managedResourceTags", "userAssignedIdentities")


def assert_shape(expected, actual, where: str = "$") -> None:
    """Every key of the example is in the answer, recursively, with the same JSON type."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: expected an object, got {actual!r}"
        if where.rsplit(".", 1)[-1] in FREE_FORM:
            return
        for key, value in expected.items():
            assert key in actual, f"{where}: missing '{key}' (have {sorted(actual)})"
            assert_shape(value, actual[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), f"{where}: expected an array"
        if expected and actual:
            for index, item in enumerate(actual):
                match = expected[min(index, len(expected) - 1)]
                assert_shape(match, item, f"{where}[{index}]")
    elif isinstance(expected, bool) or expected is None:
        assert isinstance(actual, bool) or actual is None, f"{where}: expected a boolean"
    elif isinstance(expected, int | float):
        assert isinstance(actual, int | float) and not isinstance(actual, bool), f"{where}: expected a number"
    else:
        assert isinstance(actual, str), f"{where}: expected a string, got {actual!r}"


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def client(fast_emulator, recorder):
    from azure.mgmt.resource.resources import ResourceManagementClient

    groups = ResourceManagementClient(fast_emulator.credential(), SUBSCRIPTION,
                                      **fast_emulator.client_kwargs()).resource_groups
    groups.create_or_update(RG, {"location": "westus"})
    fast_emulator.add_managed_image(
        id=f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg1/providers/Microsoft.Compute/images/source_image",
        location="westus", osType="Linux", hyperVGeneration="V1")
    return fast_emulator.imagebuilder_client(subscription_id=SUBSCRIPTION, raw_response_hook=recorder)


def put_example(client, name: str) -> dict:
    body = example(name)["parameters"]["parameters"]
    return client.virtual_machine_image_templates.begin_create_or_update(RG, NAME, body).result().as_dict()


@pytest.mark.parametrize("name", ["CreateImageTemplateLinux", "CreateImageTemplateWindows"])
def test_the_put_examples_are_accepted_and_answered_in_their_shape(client, recorder, name):
    spec = example(name)

    created = put_example(client, name)

    put = recorder.first("PUT")
    assert str(put.status) in spec["responses"]
    raw = client.virtual_machine_image_templates.get(RG, NAME)
    assert raw.provisioning_state == "Succeeded"
    assert_shape(spec["responses"]["201"]["body"], _wire(raw))
    assert created["name"] == NAME


def _wire(model) -> dict:
    """The model as the JSON the service sent (the SDK keeps the REST names in as_dict())."""
    return model.as_dict()


@pytest.mark.parametrize("name", ["GetImageTemplate", "ListImageTemplatesByRg", "ListImageTemplates"])
def test_the_get_and_list_examples_match_the_shape_returned(client, name):
    put_example(client, "CreateImageTemplateLinux")
    expected = example(name)["responses"]["200"]["body"]
    templates = client.virtual_machine_image_templates

    if name == "GetImageTemplate":
        assert_shape(expected, _wire(templates.get(RG, NAME)))
    else:
        listed = templates.list_by_resource_group(RG) if name.endswith("ByRg") else templates.list()
        items = [_wire(item) for item in listed]
        assert items
        assert_shape(expected["value"][0], items[0])


def test_run_outputs_match_the_examples(client):
    put_example(client, "CreateImageTemplateLinux")
    client.virtual_machine_image_templates.begin_run(RG, NAME).result()

    listed = [_wire(o) for o in client.virtual_machine_image_templates.list_run_outputs(RG, NAME)]
    single = _wire(client.virtual_machine_image_templates.get_run_output(RG, NAME, "image_it_pir_1"))

    assert_shape(example("ListRunOutputs")["responses"]["200"]["body"]["value"][0], listed[0])
    assert_shape(example("GetRunOutput")["responses"]["200"]["body"], single)


@pytest.mark.parametrize("name", ["UpdateImageTemplateTags", "UpdateImageTemplateToRemoveIdentities",
                                  "UpdateImageTemplateVmProfile"])
def test_the_patch_examples_are_accepted(client, recorder, name):
    put_example(client, "CreateImageTemplateLinux")
    spec = example(name)
    recorder.clear()

    updated = client.virtual_machine_image_templates.begin_update(RG, NAME, spec["parameters"]["parameters"]).result()

    assert str(recorder.first("PATCH").status) in spec["responses"]
    assert_shape(spec["responses"]["200"]["body"], _wire(updated))


def test_the_run_cancel_and_delete_examples_status_codes(fast_emulator, client, recorder):
    put_example(client, "CreateImageTemplateLinux")
    fast_emulator.freeze()
    recorder.clear()
    client.virtual_machine_image_templates.begin_run(RG, NAME, polling=False)
    client.virtual_machine_image_templates.begin_cancel(RG, NAME, polling=False)
    fast_emulator.unfreeze()
    fast_emulator.advance_simulated(100)
    client.virtual_machine_image_templates.begin_delete(RG, NAME).result()

    for method, spec in (("POST", "RunImageTemplate"), ("DELETE", "DeleteImageTemplate")):
        answer = recorder.first(method)
        responses = example(spec)["responses"]
        assert str(answer.status) in responses
        for header in responses[str(answer.status)].get("headers", {}):
            assert header in answer.headers
    cancel = next(e for e in recorder.exchanges if e.url.split("?")[0].endswith("/cancel"))
    cancel_spec = example("CancelImageBuild")["responses"]
    assert str(cancel.status) in cancel_spec
    assert all(header in cancel.headers for header in cancel_spec[str(cancel.status)].get("headers", {}))


def test_the_trigger_examples(fast_emulator, recorder):
    client = fast_emulator.imagebuilder_client(raw_response_hook=recorder)
    client.virtual_machine_image_templates.begin_create_or_update("goldsmith-images", NAME, template_body()).result()
    create = example("CreateSourceImageTrigger")
    recorder.clear()

    trigger = client.triggers.begin_create_or_update("goldsmith-images", NAME, "source",
                                                     create["parameters"]["parameters"]).result()

    assert str(recorder.first("PUT").status) in create["responses"]
    assert_shape(create["responses"]["201"]["body"], _wire(trigger))
    assert_shape(example("GetTrigger")["responses"]["200"]["body"],
                 _wire(client.triggers.get("goldsmith-images", NAME, "source")))
    listed = [_wire(t) for t in client.triggers.list_by_image_template("goldsmith-images", NAME)]
    assert_shape(example("ListTriggers")["responses"]["200"]["body"]["value"][0], listed[0])
    recorder.clear()
    client.triggers.begin_delete("goldsmith-images", NAME, "source").result()
    delete = recorder.first("DELETE")
    assert str(delete.status) in example("DeleteTrigger")["responses"]
    assert "Location" in delete.headers


def test_the_operations_list_example(client):
    listed = [item.as_dict() for item in client.operations.list()]

    assert_shape(example("OperationsList")["responses"]["200"]["body"]["value"][0], listed[0])
    expected = {item["name"] for item in example("OperationsList")["responses"]["200"]["body"]["value"]}
    assert expected <= {item["name"] for item in listed}
