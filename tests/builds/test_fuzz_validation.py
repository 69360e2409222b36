"""Hypothesis fuzzes every wizard and layer form and the checktemplate input: never a 500 or a
crash, every refusal names a field, and nothing the rules refuse reaches Image Builder."""

import copy
import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from builds import preflight, schema
from tests import factories
from tests.support.aib import template_body

pytestmark = pytest.mark.django_db
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)
uris = st.one_of(text, st.sampled_from([
    "https://files.example.com/a.sh", "http://x.example.com/a", "https://10.0.0.1/a", "https://[::1/a",
    "https://169.254.169.254/", "https://u:p@h.example.com/", "<scriptUrl>", "https://h.example.com:0/", "https://",
    "https://a.blob.core.windows.net/c/s.sh?sig=abc", "https://0x7f.1/"]))
FIELDS = {
    "name": text, "scriptUri": uris, "sourceUri": uris, "sha256Checksum": st.one_of(text, st.just("a" * 64)),
    "inline": text, "destination": text, "runElevated": st.sampled_from(["", "on"]),
    "runAsSystem": st.sampled_from(["", "on"]), "validExitCodes": text, "restartTimeout": text,
    "restartCommand": text, "searchCriteria": text, "filters": text, "updateLimit": text,
}
STEP_POSTS = st.fixed_dictionaries(
    {"op": st.sampled_from(["save", "up", "down", "remove", "bogus", ""]),
     "list": st.sampled_from(["customize_before", "customize_after", "validators_before", "customize", "nope"]),
     "index": st.one_of(st.just(""), st.integers(-3, 5).map(str), text),
     "type": st.sampled_from(["Shell", "PowerShell", "File", "WindowsRestart", "WindowsUpdate", "Nope", ""])},
    optional=FIELDS)


def assert_refusal_names_a_field(response):
    """A refused form shows at least one field error or a problem with its path."""
    page = response.content.decode()
    assert 'class="errorlist"' in page or "<code>" in page or "field-error" in page, page[-2000:]


def _check_response(response):
    assert response.status_code < 500
    if response.status_code == 422:
        assert_refusal_names_a_field(response)


@pytest.fixture
def wizard_draft(alice):
    image = factories.make_gold_image("fuzz")
    return factories.make_gold_version(image, publish=False, wizard_step="buildvm")


@pytest.fixture
def layer_draft(web):
    gold = factories.make_gold_version(factories.make_gold_image())
    layer = factories.make_layer(web, gold.gold_image, "fuzz-app")
    return factories.make_layer_version(layer, publish=False, customize=[])


@FUZZ
@given(data=STEP_POSTS)
def test_the_wizard_step_editor_never_fails(client, alice, wizard_draft, data):
    client.force_login(alice)
    _check_response(client.post(reverse("builds:wizard-step", args=["fuzz", "1.0.0", "customize"]), data))


@FUZZ
@given(data=st.fixed_dictionaries({}, optional={
    "location": text, "type": st.sampled_from(["PlatformImage", "ManagedImage", "SharedImageVersion", "x"]),
    "publisher": text, "offer": text, "sku": text, "version": text, "imageId": text, "imageVersionId": text,
    "action": st.sampled_from(["save", "browse"])}))
def test_the_source_step_never_fails(client, alice, wizard_draft, azure_emulator, data):
    client.force_login(alice)
    before = azure_emulator.last_seq()
    _check_response(client.post(reverse("builds:wizard-step", args=["fuzz", "1.0.0", "source"]), data))
    assert not [e for e in azure_emulator.requests(before) if e["operation"].startswith("VirtualMachineImageTemplates")]


@FUZZ
@given(data=st.fixed_dictionaries({}, optional={
    "security_type": st.sampled_from(["Standard", "TrustedLaunch", "ConfidentialVM", "x"]),
    "hyper_v_generation": st.sampled_from(["V1", "V2", "V3"]), "action": st.sampled_from(["check", "save"])}))
def test_the_security_step_never_fails(client, alice, wizard_draft, azure_emulator, data):
    client.force_login(alice)
    _check_response(client.post(reverse("builds:wizard-step", args=["fuzz", "1.0.0", "security"]), data))


@FUZZ
@given(data=st.fixed_dictionaries({"op": st.sampled_from(["save", "remove", "next", ""]),
                                   "target_type": st.sampled_from(["SharedImage", "ManagedImage", "VHD", "x"])},
                                  optional={"runOutputName": text, "galleryImageId": uris, "targetRegions": text,
                                            "replicaCount": text, "storageAccountType": text, "imageId": text,
                                            "location": text, "uri": uris, "index": text}))
def test_the_distribute_step_never_fails(client, alice, wizard_draft, azure_emulator, data):
    client.force_login(alice)
    _check_response(client.post(reverse("builds:wizard-step", args=["fuzz", "1.0.0", "distribute"]), data))


@FUZZ
@given(data=st.fixed_dictionaries({}, optional={
    "vmSize": text, "osDiskSizeGB": text, "identity": text, "userAssignedIdentities": text, "subnetId": text,
    "buildTimeoutInMinutes": text, "resource_group": text, "tags": text}))
def test_the_build_vm_step_never_fails(client, alice, wizard_draft, azure_emulator, data):
    client.force_login(alice)
    _check_response(client.post(reverse("builds:wizard-step", args=["fuzz", "1.0.0", "buildvm"]), data))


@FUZZ
@given(data=st.one_of(STEP_POSTS, st.fixed_dictionaries({"op": st.just("details")},
                                                        optional={"accepts": text, "tags": text, "changelog": text})))
def test_the_layer_form_never_fails(client, bob, layer_draft, data):
    client.force_login(bob)
    _check_response(client.post(reverse("builds:layer-version-edit", args=["web", "fuzz-app", "1.0.0"]), data))


@FUZZ
@given(data=st.fixed_dictionaries({}, optional={
    "allowed_hosts": text, "allowed_vm_sizes": text, "allowed_regions": text, "required_tags": text,
    "max_build_timeout": text, "require_checksums": st.sampled_from(["", "on"]), "comment": text}))
def test_the_policy_form_never_fails(client, alice, data):
    client.force_login(alice)
    _check_response(client.post(reverse("builds:policy"), data))


# --- checktemplate input ------------------------------------------------------------------------------

def _mutations():
    json_values = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-5, 2000), text),
                               lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
                               max_leaves=6)
    paths = st.sampled_from([
        ("location",), ("identity",), ("tags",), ("properties", "source"), ("properties", "source", "sku"),
        ("properties", "source", "type"), ("properties", "customize"), ("properties", "customize", 0, "inline"),
        ("properties", "customize", 0, "scriptUri"), ("properties", "customize", 0, "type"),
        ("properties", "distribute"), ("properties", "distribute", 0, "runOutputName"),
        ("properties", "distribute", 0, "type"), ("properties", "vmProfile"), ("properties", "vmProfile", "vmSize"),
        ("properties", "buildTimeoutInMinutes"), ("properties", "validate"), ("properties", "extra")])
    return st.lists(st.tuples(paths, st.one_of(json_values, uris)), max_size=3)


def _has(target, key) -> bool:
    if isinstance(target, dict):
        return key in target
    return isinstance(target, list) and isinstance(key, int) and key < len(target)


def _apply(body, mutations):
    body = copy.deepcopy(body)
    for path, value in mutations:
        target = body
        for key in path[:-1]:
            target = target[key] if _has(target, key) else None
        if isinstance(target, dict) or _has(target, path[-1]):
            target[path[-1]] = value
    return body


@FUZZ
@given(mutations=_mutations())
def test_checktemplate_never_crashes_and_names_every_problem(mutations, azure_emulator):
    body = _apply(template_body(), mutations)
    before = azure_emulator.last_seq()
    out, err = StringIO(), StringIO()
    try:
        call_command("checktemplate", "-", "--json", stdin=StringIO(json.dumps(body)), stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = exc.code
    assert code in (0, 1, 2)
    if code == 2:
        assert err.getvalue().strip()
        return
    report = json.loads(out.getvalue())
    errors = [p for p in report["problems"] if p["severity"] == "error"]
    assert (code == 1) == bool(errors)
    assert all(p["path"] for p in errors), errors  # every refusal names a field
    assert not [e for e in azure_emulator.requests(before) if e["operation"].startswith("VirtualMachineImageTemplates")]


@FUZZ
@given(text_input=st.one_of(text, st.binary(max_size=40).map(lambda b: b.decode("latin-1"))))
def test_checktemplate_survives_any_text(text_input):
    try:
        call_command("checktemplate", "-", "--offline", stdin=StringIO(text_input), stdout=StringIO(),
                     stderr=StringIO())
    except SystemExit as exc:
        assert exc.code in (1, 2)


@FUZZ
@given(mutations=_mutations())
def test_what_the_rules_refuse_never_reaches_image_builder(mutations, azure_emulator):
    """The build-request contract: refuse on errors, submit otherwise; a refused body leaves no trace in
    the emulator, and what passes the rules is accepted by Image Builder's own validation."""
    from builds import azure

    body = _apply(template_body(), mutations)
    before = azure_emulator.last_seq()
    problems = preflight.check_body(body, os_type="Linux", building=True)
    if schema.errors(problems):
        stats = azure_emulator.stats(before)
        assert not [op for op in stats["byOperation"] if op.startswith("VirtualMachineImageTemplates")]
        return
    status = azure.template_put(azure_emulator_subscription(), "goldsmith-images",
                                f"fuzz-{azure_emulator.last_seq()}", body, wait_seconds=30)
    assert status.provisioning_state == "Succeeded", status


def azure_emulator_subscription():
    from tests.support.emulator import SUBSCRIPTION_ID

    return SUBSCRIPTION_ID
