"""Importing real Image Builder templates, and exporting them again unchanged."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from builds import compose, importer, schema
from builds.compose import BuildContext
from builds.models import GoldImage, GoldImageVersion
from portal.models import AuditEvent
from tests.support.fixtures import needs_fixtures, rest_put_bodies, template_files

# Fixtures that are not plain templates, with the verdict the importer gives them.
NOT_IMPORTABLE = {
    "qqs-9_Setting_up_a_Trigger_with_a_Custom_Linux_Image__trigger.json": "is an Image Builder trigger",
}
WITHOUT_IDENTITY = {
    "qqs-4_Creating_a_Custom_Linux_Image_to_VHD__helloImageTemplateVHD.json",
    "solutions-4_Using_ENV_Variables__devOpsEnvTemplate.json",
    "deprecated-9_Updating_Image_Builder_Templates__helloImageTemplateVersion.json",
}
IMPORTABLE = [path for path in template_files() if path.name not in NOT_IMPORTABLE]


@needs_fixtures
@pytest.mark.django_db
@pytest.mark.parametrize("path", IMPORTABLE, ids=lambda p: p.stem[:60])
def test_every_fixture_template_imports_and_exports_the_same_properties(path):
    parsed = importer.parse(json.loads(path.read_text()))
    out = call_command_output("importtemplate", str(path), "--gold-image", "imported", "--version", "1.0.0")
    gold_version = GoldImageVersion.objects.get(gold_image__slug="imported", version="1.0.0")
    exported = compose.without_provenance(compose.compose(gold_version, [], BuildContext(location="unused")))
    assert exported["properties"] == parsed.body["properties"]
    assert exported.get("identity") == parsed.body.get("identity")
    assert exported.get("tags") == parsed.body.get("tags")
    assert exported["location"] == parsed.body["location"]
    assert gold_version.status == "draft"
    if path.name in WITHOUT_IDENTITY:
        assert any(note["path"] == "identity" for note in gold_version.import_notes)
        assert "Fix the errors above" in out


@needs_fixtures
@pytest.mark.django_db
@pytest.mark.parametrize("name, body", rest_put_bodies(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_rest_example_put_body_imports_and_round_trips(name, body):
    gold_version, problems = _import(body)
    exported = compose.without_provenance(compose.compose(gold_version, [], BuildContext(location="unused")))
    assert exported == schema.strip_readonly(body)
    assert not schema.errors(problems)


@needs_fixtures
@pytest.mark.django_db
@pytest.mark.parametrize("name, reason", NOT_IMPORTABLE.items())
def test_it_explains_fixtures_that_are_not_templates(name, reason, tmp_path):
    from tests.support.fixtures import TEMPLATES

    with pytest.raises(CommandError, match=reason):
        call_command("importtemplate", str(TEMPLATES / name), "--gold-image", "x", "--version", "1.0.0")
    assert not GoldImage.objects.exists()


def _import(body):
    from builds import services

    return services.gold_version_import(actor="system", gold_slug="imported", version="1.0.0", data=body)


BASE = {
    "location": "eastus",
    "identity": {"type": "UserAssigned", "userAssignedIdentities": {
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/aib": {}}},
    "properties": {
        "source": {"type": "PlatformImage", "publisher": "Canonical", "offer": "o", "sku": "s", "version": "latest"},
        "distribute": [{"type": "VHD", "runOutputName": "vhd"}],
    },
}


@pytest.mark.django_db
def test_it_refuses_unknown_and_mis_cased_keys_naming_the_path(tmp_path):
    body = json.loads(json.dumps(BASE))
    body["properties"]["distribute"][0]["RunOutputName"] = "x"
    body["properties"]["vmboot"] = {}
    path = tmp_path / "t.json"
    path.write_text(json.dumps(body))
    out = StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("importtemplate", str(path), "--gold-image", "x", "--version", "1.0.0", stdout=out)
    assert caught.value.returncode == 1
    assert "schema.unknown-field\tproperties.distribute[0].RunOutputName\t" in out.getvalue()
    assert "Did you mean 'runOutputName'?" in out.getvalue()
    assert "properties.vmboot" in out.getvalue()
    assert not GoldImageVersion.objects.exists()
    assert not AuditEvent.objects.exists()


@pytest.mark.django_db
def test_it_names_the_path_inside_a_deployment_template(tmp_path):
    resource = {"type": "Microsoft.VirtualMachineImages/imageTemplates", "apiVersion": "2025-10-01", "name": "t",
                **json.loads(json.dumps(BASE))}
    resource["properties"]["sourc"] = {}
    deployment = {"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
                  "contentVersion": "1.0.0.0", "resources": [{"type": "Microsoft.Storage/storageAccounts"}, resource]}
    with pytest.raises(importer.ImportError_) as caught:
        importer.parse(deployment)
    assert [p.path for p in caught.value.problems] == ["resources[1].properties.sourc"]


@pytest.mark.parametrize("resources", [[], [{"type": "Microsoft.VirtualMachineImages/imageTemplates"}] * 2])
def test_it_refuses_deployments_without_exactly_one_template(resources):
    with pytest.raises(importer.ImportError_, match="exactly one"):
        importer.parse({"contentVersion": "1.0.0.0", "resources": resources})


@pytest.mark.django_db
def test_a_template_without_identity_imports_as_a_draft_that_says_so():
    body = json.loads(json.dumps(BASE))
    del body["identity"]
    gold_version, _problems = _import(body)
    assert gold_version.status == "draft"
    assert [(p["rule"], p["path"]) for p in gold_version.import_notes] == [("schema.missing-field", "identity")]
    assert "managed identity" in gold_version.import_notes[0]["message"]


@pytest.mark.django_db
def test_legacy_api_versions_keep_their_lenient_reading_with_notes():
    body = {"type": "Microsoft.VirtualMachineImages", "apiVersion": "2020-02-14", **json.loads(json.dumps(BASE))}
    body["properties"]["distribute"][0]["RunOutputName"] = body["properties"]["distribute"][0].pop("runOutputName")
    body["properties"]["distribute"][0]["aritfactTags"] = {"a": "b"}
    gold_version, problems = _import(body)
    assert gold_version.distribute == [{"type": "VHD", "runOutputName": "vhd"}]
    assert {(p.rule, p.path) for p in problems} == {
        ("import.legacy-field-renamed", "properties.distribute[0].RunOutputName"),
        ("import.legacy-field-dropped", "properties.distribute[0].aritfactTags")}


@pytest.mark.parametrize("text", [
    "[" * (importer.MAX_JSON_DEPTH + 1) + "]" * (importer.MAX_JSON_DEPTH + 1),
    '{"a": ' * 1000 + "1" + "}" * 1000,
    "[" * 100_000,  # not even closed: refused before json.loads sees it
])
def test_load_refuses_documents_nested_too_deep_before_parsing_them(text):
    with pytest.raises(importer.ImportError_, match="levels deep"):
        importer.load(text)


def test_load_counts_only_brackets_outside_strings():
    nested = "[" * (importer.MAX_JSON_DEPTH - 1) + "]" * (importer.MAX_JSON_DEPTH - 1)  # 64 with the outer object
    text = json.dumps({"inline": ["echo '" + "[{" * 500 + "'", 'a \\" [[[['], "nested": json.loads(nested)})
    assert importer.load(text)["inline"][1] == 'a \\" [[[['


@pytest.mark.django_db
def test_it_reports_unreadable_files(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(CommandError, match="not valid JSON"):
        call_command("importtemplate", str(path), "--gold-image", "x", "--version", "1.0.0")
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("importtemplate", str(tmp_path / "missing.json"), "--gold-image", "x", "--version", "1.0.0")


@pytest.mark.django_db
def test_it_records_the_import_in_the_audit_trail():
    _import(json.loads(json.dumps(BASE)))
    assert list(AuditEvent.objects.values_list("action", flat=True)) == ["gold_image.create", "gold_version.import"]


def call_command_output(*args):
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()
