"""manage.py checktemplate: exit codes, output, policies, and a recorded verdict for every shared fixture."""

import json
from io import StringIO

import pytest
from django.core.management import call_command

from builds import policies
from tests import factories
from tests.support.aib import template_body
from tests.support.fixtures import TEMPLATES, needs_fixtures, template_files

pytestmark = pytest.mark.django_db

# The verdict for each fixture (identity placeholders filled in; offline, default policy):
# the rule ids of its errors, or nothing when it is clean; "unreadable" when it is not a template.
VERDICTS = {
    "composed-full-2025-10-01.json": [],
    "deprecated-1b_Creating_a_Custom_Win_Image_on_Existing_VNET_Access_Storage__existingVNETWindowsAccessStor.json":
        ["policy.uri-placeholder"],
    "deprecated-9_Updating_Image_Builder_Templates__helloImageTemplateVersion.json": ["schema.missing-field"],
    "qqs-0_Creating_a_Custom_Linux_Managed_Image__helloImageTemplateLinux.json": [],
    "qqs-0_Creating_a_Custom_Windows_Managed_Image__helloImageTemplateWin.json": [],
    "qqs-1_Creating_a_Custom_Linux_Shared_Image_Gallery_Image__helloImageTemplateforSIG.json": [],
    "qqs-1_Creating_a_Custom_Win_Shared_Image_Gallery_Image__armTemplateWinSIG.json": [],
    "qqs-1a_Creating_a_Custom_Linux_Image_on_Existing_VNET__existingVNETLinux.json": [],
    "qqs-1a_Creating_a_Custom_Win_Image_on_Existing_VNET__existingVNETWindows.json": [],
    "qqs-2_Creating_a_Custom_Linux_Shared_Image_Gallery_Image_from_SIG__helloImageTemplateforSIGfromSIG.json": [],
    "qqs-2_Creating_a_Custom_Win_Shared_Image_Gallery_Image_from_SIG__helloImageTemplateforSIGfromWinSIG.json": [],
    "qqs-3_Customize_a_Managed_Image_and_Import_into_SIG__helloImageTemplateforReCustomization.json": [],
    "qqs-4_Creating_a_Custom_Linux_Image_to_VHD__helloImageTemplateVHD.json": ["schema.missing-field"],
    "qqs-7_Creating_Custom_Image_using_MSI_to_Access_Storage__helloImageTemplateMsi.json": ["policy.uri-placeholder"],
    "qqs-9_Setting_up_a_Trigger_with_a_Custom_Linux_Image__helloImageTemplate.json": [],
    "qqs-9_Setting_up_a_Trigger_with_a_Custom_Linux_Image__trigger.json": "unreadable",
    "solutions-14_Building_Images_WVD__armTemplateWVD.json": [],
    "solutions-4_Using_ENV_Variables__devOpsEnvTemplate.json": ["schema.missing-field"],
}


def run(*args, stdin: str | None = None) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    kwargs = {"stdout": out, "stderr": err}
    if stdin is not None:
        kwargs["stdin"] = StringIO(stdin)
    try:
        call_command("checktemplate", *args, **kwargs)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue(), err.getvalue()


def fill_identity(text: str) -> str:
    """Replace placeholder identity ids (<imgBuilderId>, [parameters(...)] ...) by a real-looking one."""
    data = json.loads(text)

    def walk(value):
        if isinstance(value, dict):
            if isinstance(value.get("userAssignedIdentities"), dict):
                value["userAssignedIdentities"] = {
                    (factories.IDENTITY if ("<" in key or "[" in key or "{" in key) else key): item
                    for key, item in value["userAssignedIdentities"].items()}
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(data)
    return json.dumps(data)


def test_every_fixture_has_a_recorded_verdict():
    if not TEMPLATES.is_dir():
        pytest.skip("shared fixtures not found")
    assert {path.name for path in template_files()} == set(VERDICTS)


@needs_fixtures
@pytest.mark.parametrize("path", template_files(), ids=lambda p: p.stem[:60])
def test_each_fixture_gets_its_recorded_verdict(path, tmp_path):
    filled = tmp_path / path.name
    filled.write_text(fill_identity(path.read_text()))
    code, out, err = run(str(filled), "--offline", "--json")
    expected = VERDICTS[path.name]
    if expected == "unreadable":
        assert code == 2 and "trigger" in err
        return
    report = json.loads(out)
    errors = sorted({p["rule"] for p in report["problems"] if p["severity"] == "error"})
    assert errors == sorted(set(expected)), report["problems"]
    assert code == (1 if expected else 0)
    if "schema.missing-field" in expected:
        assert any(p["path"] == "identity" for p in report["problems"])


def test_a_clean_template_exits_0(tmp_path, azure_emulator):
    path = tmp_path / "t.json"
    path.write_text(json.dumps(template_body()))
    code, out, _ = run(str(path))
    assert code == 0 and out.startswith("OK:")


def test_problems_exit_1_with_one_line_each(tmp_path, azure_emulator):
    body = template_body(source={"type": "PlatformImage", "publisher": "Contoso", "offer": "hardened-ubuntu",
                                 "sku": "22_04-tl-only", "version": "latest"},
                         customize=[{"type": "Shell", "name": "s", "scriptUri": "http://10.0.0.1/s.sh"}])
    path = tmp_path / "t.json"
    path.write_text(json.dumps(body))
    before = azure_emulator.last_seq()
    code, out, _ = run(str(path))
    assert code == 1
    lines = out.strip().splitlines()
    assert {tuple(line.split("\t")[:2]) for line in lines} == {
        ("security.source-unsupported", "properties.source.sku"),
        ("policy.uri-https", "properties.customize[0].scriptUri")}
    operations = {entry["operation"] for entry in azure_emulator.requests(before)}
    assert operations and all(not op.startswith("VirtualMachineImageTemplates") for op in operations)


def test_a_linux_file_step_outside_tmp_exits_1_with_the_fix():
    body = template_body(customize=[{"type": "File", "name": "conf", "sourceUri": "https://files.example.com/app.conf",
                                     "destination": "/etc/nginx/conf.d/app.conf"}])
    code, out, _ = run("-", "--offline", stdin=json.dumps(body))
    assert code == 1
    rule, path, message = out.strip().split("\t")
    assert (rule, path) == ("file.destination-not-writable", "properties.customize[0].destination")
    assert "sudo mv /tmp/app.conf /etc/nginx/conf.d/app.conf" in message


def test_it_reads_arm_deployment_templates_from_stdin():
    body = template_body()
    deployment = {"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
                  "contentVersion": "1.0.0.0",
                  "resources": [{"type": "Microsoft.VirtualMachineImages/imageTemplates", "apiVersion": "2025-10-01",
                                 "name": "t", **body}]}
    code, out, _ = run("-", "--offline", stdin=json.dumps(deployment))
    assert code == 0, out


@pytest.mark.parametrize("text, message", [
    ("not json", "not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
])
def test_unreadable_input_exits_2(text, message):
    code, _, err = run("-", "--offline", stdin=text)
    assert code == 2 and message in err


@pytest.mark.parametrize("content", [
    b"[" * 1000 + b"]" * 1000,  # 2 KB that made json.loads raise RecursionError
    b'{"properties": ' * 65 + b"{}" + b"}" * 65,
])
def test_too_deeply_nested_json_exits_2(content, tmp_path):
    path = tmp_path / "deep.json"
    path.write_bytes(content)
    code, _, err = run(str(path), "--offline")
    assert code == 2
    assert "more than 64 levels deep" in err


def test_a_utf16_file_exits_2(tmp_path):
    path = tmp_path / "t.json"
    path.write_bytes(json.dumps(template_body()).encode("utf-16"))
    code, _, err = run(str(path), "--offline")
    assert code == 2
    assert "not UTF-8 text" in err


def test_a_missing_file_exits_2(tmp_path):
    code, _, err = run(str(tmp_path / "nope.json"))
    assert code == 2 and "Cannot read" in err


def test_shape_errors_exit_1_with_their_paths():
    body = template_body()
    body["properties"]["customize"][0]["Inline"] = ["x"]
    code, out, _ = run("-", "--offline", stdin=json.dumps(body))
    assert code == 1 and "schema.unknown-field\tproperties.customize[0].Inline" in out


def test_it_applies_the_named_policy():
    policies.policy_update(actor="system", name="strict", rules={"require_checksums": True})
    body = template_body(customize=[{"type": "Shell", "name": "s", "scriptUri": "https://files.example.com/s.sh"}])
    assert run("-", "--offline", stdin=json.dumps(body))[0] == 0
    code, out, _ = run("-", "--offline", "--policy", "strict", stdin=json.dumps(body))
    assert code == 1 and "policy.checksum-required" in out
    code, _, err = run("-", "--offline", "--policy", "nope", stdin=json.dumps(body))
    assert code == 2 and "no policy called 'nope'" in err


def test_json_output_lists_warnings_too():
    body = template_body(buildTimeoutInMinutes=3)
    code, out, _ = run("-", "--offline", "--json", stdin=json.dumps(body))
    report = json.loads(out)
    assert code == 0 and report["ok"]
    assert [p["rule"] for p in report["problems"]] == ["schema.build-timeout-short"]
