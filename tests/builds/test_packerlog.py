"""builds/packerlog.py over real shapes: logs the emulator writes for real runs (success, a
failing customizer, a failing validator) and public-shape logs in both of Image Builder's
formats (tests/fixtures/packerlogs/README.md says where each shape was seen)."""

from __future__ import annotations

import contextlib
import datetime as dt
from pathlib import Path

import pytest
from azure.core.exceptions import HttpResponseError

from builds import packerlog
from tests.support.aib import shell, template_body
from tests.support.emulator import RESOURCE_GROUP, SUBSCRIPTION_ID

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "packerlogs"
FILE_STEP = {"type": "File", "name": "site-config", "sourceUri": "https://example.com/site.conf",
             "destination": "/etc/nginx/conf.d/site.conf"}


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def summary(sections: list[packerlog.Section]) -> list[tuple]:
    """(type, name, exit code, failed, complete) per section: what the tables compare."""
    return [(s.type, s.name, s.exit_code, s.failed, s.complete) for s in sections]


# -- public shapes -------------------------------------------------------------------------

WINDOWS_TEMPLATE = {"properties": {"customize": [
    {"type": "PowerShell", "name": "install-agent"}, {"type": "PowerShell", "name": "configure-app"}]}}
NEWER_TEMPLATE = {"properties": {"customize": [
    {"type": "PowerShell", "name": "enable-features", "validExitCodes": [0, 3010]},
    {"type": "WindowsRestart", "name": "restart"}]}}
LINUX_TEMPLATE = {"properties": {"customize": [{"type": "Shell", "name": "nginx"}, FILE_STEP]}}

PUBLIC = [
    # file, template, sections, failed step name, first excerpt line
    ("older-linux-shell-success.log", LINUX_TEMPLATE,
     [("shell", "nginx", 0, False, True), ("file", "site-config", None, False, True),
      ("shell", "shell", 0, False, True)],  # Image Builder's own deprovisioning step, not in the template
     None, None),
    ("older-windows-powershell-failure.log", WINDOWS_TEMPLATE,
     [("powershell", "install-agent", 0, False, True), ("powershell", "configure-app", 1603, True, True)],
     "configure-app", "packer-builder-azure-arm plugin: [INFO] command 'powershell"),
    ("older-deployment-policy-failure.log", {},
     [], None, "==> azure-arm: ERROR: -> RequestDisallowedByPolicy : Resource 'pkrvmk3n8s1qzt' was disallowed by "
               "policy 'require-approved-vm-sizes'."),
    ("newer-windows-elevated.log", NEWER_TEMPLATE,
     [("powershell", "enable-features", 3010, False, True), ("windows-restart", "restart", 0, False, True)],
     None, "packer-plugin-azure_v2.3.0_x5.0_linux_amd64 plugin: 2025/02/11 07:41:55 [INFO] command"),
]


@pytest.mark.parametrize(("name", "template", "expected", "failing", "first_error"), PUBLIC,
                         ids=[row[0] for row in PUBLIC])
def test_it_reads_the_steps_of_public_shape_logs(name, template, expected, failing, first_error):
    text = fixture(name)

    assert summary(packerlog.sections(text, template)) == expected
    found = packerlog.failed_step(text, template)
    assert (found.name if found else None) == failing
    lines = packerlog.excerpt(text)
    assert (lines[0] if lines else None) == first_error or lines[0].startswith(first_error)


def test_it_reads_times_and_durations_from_the_debug_lines():
    [first, second] = packerlog.sections(fixture("older-windows-powershell-failure.log"), WINDOWS_TEMPLATE)

    assert first.started_at == dt.datetime(2021, 6, 2, 14, 21, 40, tzinfo=dt.UTC)
    assert first.duration == dt.timedelta(minutes=1, seconds=25)
    assert (second.start_line, second.end_line) == (11, 19)


def test_an_exit_code_listed_as_valid_is_not_a_failure_but_is_without_the_template():
    text = fixture("newer-windows-elevated.log")

    assert packerlog.failed_step(text, NEWER_TEMPLATE) is None
    assert packerlog.failed_step(text).type == "powershell"  # 3010 is only fine when the template says so


def test_the_excerpt_stops_at_max_lines_and_leaves_out_the_prefixes():
    lines = packerlog.excerpt(fixture("older-windows-powershell-failure.log"), max_lines=3)

    assert len(lines) == 3
    assert not any(line.startswith(("[", "PACKER")) for line in lines)
    assert lines[1] == "==> azure-arm: Provisioning step had errors: Running the cleanup provisioner, if present..."


@pytest.mark.parametrize("cut", [13, 14, 15])
def test_a_live_tail_ends_in_a_step_that_is_not_complete(cut):
    text = fixture("older-linux-shell-success.log")
    partial = "".join(text.splitlines(keepends=True)[:cut]) + "[3f2a9c10-7d4e-4b1a-9e55-0c6b8d2f4a11] PACKER OU"

    [only] = packerlog.sections(partial, LINUX_TEMPLATE)

    assert (only.name, only.complete, only.failed, only.ended_at, only.duration) == ("nginx", False, False, None, None)


def test_it_reads_the_plain_packer_debug_log_format_too():
    text = ("2019/07/22 22:18:40 [INFO] (telemetry) Starting provisioner powershell\n"
            "2019/07/22 22:18:40 ui: ==> azure-arm: Provisioning with powershell script: ./scripts/mount.ps1\n"
            "2019/07/22 22:18:52 ui error: ==> azure-arm: The drive letter is already in use.\n"
            "2019/07/22 22:18:53 [INFO] (telemetry) ending powershell\n")

    [step] = packerlog.sections(text)

    assert (step.failed, step.duration) == (True, dt.timedelta(seconds=13))
    assert packerlog.excerpt(text) == ["ui error: ==> azure-arm: The drive letter is already in use."]


# -- the emulator's logs -------------------------------------------------------------------

EMULATED = [
    # name, template fields, log, sections (type, name, exit, failed, complete), failed step, excerpt contains
    ("success", {"customize": [shell("packages", "apt-get update"), FILE_STEP]}, "customization",
     [("shell", "packages", 0, False, True), ("file", "site-config", None, False, True)], None, None),
    ("customizer failure", {"customize": [shell("packages", "apt-get update"), shell("broken", "exit 7")]},
     "customization",
     [("shell", "packages", 0, False, True), ("shell", "broken", 7, True, True)], "broken",
     "Script exited with non-zero exit status: 7. Allowed exit codes are: [0]"),
    ("validator failure", {"validate": {"inVMValidations": [shell("nginx-enabled", "exit 3")]}}, "validation",
     [("shell", "nginx-enabled", 3, True, True)], "nginx-enabled",
     "Script exited with non-zero exit status: 3. Allowed exit codes are: [0]"),
]


@pytest.mark.parametrize(("body", "log", "expected", "failing", "error"), [row[1:] for row in EMULATED],
                         ids=[row[0] for row in EMULATED])
def test_it_reads_the_logs_the_emulator_writes(fast_emulator, body, log, expected, failing, error):
    templates = fast_emulator.imagebuilder_client().virtual_machine_image_templates
    template = template_body(**body)
    templates.begin_create_or_update(RESOURCE_GROUP, "web", template).result()
    with contextlib.suppress(HttpResponseError):  # the failing scenarios: the log is what is under test
        templates.begin_run(RESOURCE_GROUP, "web").result()
    runs = fast_emulator.control("GET", f"imagebuilder/templates/{SUBSCRIPTION_ID}/{RESOURCE_GROUP}/web/logs").json()
    text = fast_emulator.blob(runs["value"][-1][f"{log}Log"]).text
    kind = "validator" if log == "validation" else "customizer"

    sections = packerlog.sections(text, template, kind=kind)

    assert summary(sections) == expected
    assert all(section.duration is not None and section.duration >= dt.timedelta(0) for section in sections)
    found = packerlog.failed_step(text, template, kind=kind)
    assert (found.name if found else None) == failing
    lines = packerlog.excerpt(text)
    assert any(error in line for line in lines) if error else lines == []


def test_it_reads_the_log_location_from_azures_message():
    message = ("... Image Build log location: https://example.blob/logs/x/customization.log. OperationId: 1. Use")
    assert packerlog.log_location(message) == "https://example.blob/logs/x/customization.log"
    assert packerlog.log_location("nothing here") == ""
