"""validation.log against real components: a template with a failing in-VM validator run by the
staging emulator, which writes validation.log next to customization.log in Azurite. The failing
validator is named on the build page, in showbuild --json and on the log page's validation tab;
cleanup keeps both logs with their hashes; every place validation.log appears is redacted.

Needs Node and Azurite (`make install`), like tests/builds/test_buildlogs.py.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re

import pytest
from django.core.management import call_command
from django.urls import reverse

from builds import buildlogs, lifecycle
from builds.models import Build, BuildLog, BuildLogChunk
from tests.builds.test_buildlogs import DONE, SECRETS, request_build, running, shell

pytestmark = pytest.mark.django_db(transaction=True)


def with_validators(build, validators):
    template = dict(build.template)
    properties = dict(template["properties"])
    properties["validate"] = {"inVMValidations": validators}
    template["properties"] = properties
    Build.objects.filter(pk=build.pk).update(template=template)
    return Build.objects.get(pk=build.pk)


def _text(build, log):
    try:
        return b"".join(buildlogs.stream(build, log=log)).decode()
    except buildlogs.Unavailable:
        return ""


def finished(build, emulator, timeout=30):
    from builds import monitor
    from tests.support.workers import run_sweeps

    run_sweeps(lambda: Build.objects.get(pk=build.pk).is_terminal, timeout=timeout)
    monitor.sweep()
    build = Build.objects.get(pk=build.pk)
    for log in buildlogs.log_names(build):
        emulator.wait_for(lambda log=log: DONE in _text(build, log), timeout=10)
    return build


@pytest.fixture
def validator_failed(azure_storage, alice):
    """customization.log clean, validation.log with secrets printed and the validator 'check' exiting 4."""
    azure_storage.set_time_scale(20000)
    build = request_build(alice, [shell("prepare", "echo preparing")])
    build = with_validators(build, [shell("smoke", "echo smoke ok"),
                                    shell("check", *[command for command, _value in SECRETS.values()], "exit 4")])
    return finished(running(azure_storage, build), azure_storage)


def showbuild(*args):
    out = io.StringIO()
    call_command("showbuild", *args, stdout=out)
    return out.getvalue()


def test_a_failing_validator_is_named_on_the_build_page_in_showbuild_and_on_the_validation_tab(
        validator_failed, client, alice):
    build = validator_failed
    assert build.state == Build.State.FAILED and build.sub_state.lower() == "validating"
    assert buildlogs.summary(build).failed_step is None  # customization.log: every customizer passed
    found = buildlogs.failure(build)
    step = found.failed_step
    assert found.log == "validation" and (step.kind, step.name, step.exit_code) == ("validator", "check", 4)
    assert any("4" in line for line in found.excerpt)
    # The timeline gets the validators after the customizers.
    assert [(s.kind, s.name) for s in buildlogs.sections(build)] == [
        ("customizer", "prepare"), ("validator", "smoke"), ("validator", "check")]

    client.force_login(alice)
    page = client.get(reverse("builds:build-detail", args=[build.uuid])).content.decode()
    assert '<strong id="failing-step">check</strong> (validator 2, exit code 4)' in page
    log_url = reverse("builds:build-log", args=[build.uuid])
    link = f"{log_url}?log=validation&amp;line={step.error_line}#line-{step.error_line}"
    assert link in page

    summary = json.loads(showbuild(str(build.uuid), "--json"))
    assert summary["failed_step"] == {"name": "check", "kind": "validator", "index": 1, "type": "shell",
                                      "exit_code": 4, "line": step.error_line, "log": "validation"}
    assert summary["log_excerpt_from"] == "validation"
    assert "failed step   validator 2: check (exit code 4, validation.log line" in showbuild(str(build.uuid))

    tab = client.get(log_url, {"log": "validation", "line": step.error_line}).content.decode()
    [line] = re.findall(rf'<span id="line-{step.error_line}" class="error-line failing-line"[^>]*>([^<]*)</span>',
                        tab)
    assert "exit status: 4" in line or "exited with code: 4" in line
    assert f'<a href="{log_url}?log=validation" id="log-tab-validation" aria-current="page">validation.log</a>' in tab
    assert f'<a href="{log_url}" id="log-tab-customization">customization.log</a>' in tab
    assert 'id="failing-step-name">check</strong>' in tab
    first = client.get(log_url).content.decode()
    assert f'<a href="{log_url}" id="log-tab-customization" aria-current="page">customization.log</a>' in first
    assert "failing-step-name" not in first  # customization.log has no failing step
    assert "echo preparing" in first and "echo smoke ok" not in first


def test_cleanup_keeps_both_logs_redacted_compressed_and_hashed_once_each(validator_failed, client, alice):
    build = validator_failed
    live = {log: b"".join(buildlogs.stream(build, log=log)) for log in buildlogs.LOGS}
    assert live["validation"] != live["customization"] and b"echo smoke ok" in live["validation"]

    assert lifecycle.cleanup(build) == lifecycle.DONE
    build.refresh_from_db()
    assert build.template_deleted_at and build.cleanup_error == ""
    kept = {item.name: item for item in BuildLog.objects.filter(build=build)}
    assert set(kept) == {"customization", "validation"}
    for log, item in kept.items():
        assert item.kept_at and item.size == len(live[log])
        assert item.sha256 == hashlib.sha256(live[log]).hexdigest()
        assert gzip.decompress(b"".join(buildlogs.kept_gzip(item))) == live[log]
        assert b"".join(buildlogs.stream(build, log=log)) == live[log]  # the staging group is gone
    assert kept["validation"].failed_step["name"] == "check" and kept["customization"].failed_step is None
    assert kept["validation"].source_url.endswith("/validation.log")
    found = buildlogs.failure(build)
    assert found.source == "kept" and found.failed_step.name == "check"

    # Once per log: a second cleanup changes nothing; an unfinished validation copy is redone alone.
    assert lifecycle.cleanup(build) == lifecycle.DONE
    assert BuildLog.objects.filter(build=build).count() == 2

    client.force_login(alice)
    provenance = client.get(f"/audit/builds/{build.uuid}/").content.decode()
    assert f'<dd class="hash" id="log-sha256">{kept["customization"].sha256}</dd>' in provenance
    assert f'<dd class="hash" id="validation-log-sha256">{kept["validation"].sha256}</dd>' in provenance
    download = reverse("builds:build-log-download", args=[build.uuid]) + "?log=validation"
    assert f'href="{download}"' in provenance
    response = client.get(download)
    assert 'validation.log"' in response["Content-Disposition"]
    assert hashlib.sha256(b"".join(response.streaming_content)).hexdigest() == kept["validation"].sha256


def test_an_unfinished_validation_copy_is_redone_and_the_kept_customization_copy_is_not(validator_failed):
    build = validator_failed
    customization = buildlogs.keep(build)
    BuildLog.objects.filter(build=build, name="validation").delete()
    partial = BuildLog.objects.create(build=build, name="validation", storage="database")
    BuildLogChunk.objects.create(log=partial, seq=0, data=gzip.compress(b"half a log\n"))

    assert buildlogs.keep(build).pk == customization.pk
    redone = BuildLog.objects.get(build=build, name="validation")
    assert redone.pk == partial.pk and redone.kept_at and redone.failed_step["name"] == "check"
    assert BuildLog.objects.get(pk=customization.pk).kept_at == customization.kept_at
    assert b"half a log" not in b"".join(buildlogs.stream(build, log="validation"))


def _places(client, build) -> dict[str, str]:
    """validation.log's text in every place a user or program can see it."""
    log_url = reverse("builds:build-log", args=[build.uuid])
    return {
        "page": client.get(log_url, {"log": "validation"}).content.decode(),
        "search": client.get(log_url, {"log": "validation", "q": "echo"}).content.decode(),
        "download": b"".join(client.get(reverse("builds:build-log-download", args=[build.uuid]),
                                        {"log": "validation"}).streaming_content).decode(),
        "api": b"".join(client.get(f"/api/v1/builds/{build.uuid}/log", {"log": "validation"})
                        .streaming_content).decode(),
        "api range": b"".join(client.get(f"/api/v1/builds/{build.uuid}/log?log=validation",
                                         HTTP_RANGE="bytes=0-").streaming_content).decode(),
        "showbuild --log --validation": showbuild(str(build.uuid), "--log", "--validation"),
        "build page": client.get(reverse("builds:build-detail", args=[build.uuid])).content.decode()
        .split('id="template-heading"')[0],
        "showbuild --json": showbuild(str(build.uuid), "--json"),
    }


def test_every_secret_in_validation_log_is_masked_wherever_it_appears_live_and_kept(validator_failed, client, alice):
    build = validator_failed
    client.force_login(alice)
    for when in ("live", "kept"):
        if when == "kept":
            assert lifecycle.cleanup(build) == lifecycle.DONE
            build.refresh_from_db()
            kept = BuildLog.objects.get(build=build, name="validation")
            places = {**_places(client, build),
                      "kept copy": gzip.decompress(b"".join(buildlogs.kept_gzip(kept))).decode()}
        else:
            places = _places(client, build)
        for place, text in places.items():
            assert "[REDACTED]" in text or place in ("build page", "showbuild --json"), (when, place)
            for kind, (_command, value) in SECRETS.items():
                assert value not in text, f"{kind} shown in the {place} ({when})"
        assert "echo smoke ok" in places["download"] and "echo preparing" not in places["download"]


def test_the_api_serves_ranges_of_validation_log_and_refuses_an_unknown_log(validator_failed, client, alice):
    client.force_login(alice)
    url = f"/api/v1/builds/{validator_failed.uuid}/log"
    whole = b"".join(client.get(url, {"log": "validation"}).streaming_content)
    assert whole == b"".join(buildlogs.stream(validator_failed, log="validation"))
    part = client.get(url + "?log=validation", HTTP_RANGE="bytes=10-19")
    assert part.status_code == 206 and b"".join(part.streaming_content) == whole[10:20]
    assert part["Content-Range"] == f"bytes 10-19/{len(whole)}"
    refused = client.get(url, {"log": "packer"})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "validation_failed"


def test_a_build_without_validators_keeps_one_log_and_says_there_is_no_validation_log(azure_storage, alice, client):
    azure_storage.set_time_scale(20000)
    build = finished(running(azure_storage, request_build(alice, [shell("only", "echo only")])), azure_storage)
    client.force_login(alice)
    missing = client.get(f"/api/v1/builds/{build.uuid}/log", {"log": "validation"})
    assert missing.status_code == 404 and "no validators" in missing.json()["error"]["message"]
    page = client.get(reverse("builds:build-log", args=[build.uuid])).content.decode()
    assert "log-tabs" not in page  # one log, no tabs
    assert lifecycle.cleanup(build) == lifecycle.DONE
    assert list(BuildLog.objects.filter(build=build).values_list("name", flat=True)) == ["customization"]


def test_while_validating_the_live_panel_tails_validation_log(azure_storage, alice, client):
    from builds import monitor
    from tests.builds.test_buildlogs import BEFORE_CUSTOMIZING

    azure_storage.settings(provision_seconds=0)
    azure_storage.freeze()
    build = request_build(alice, [shell("prepare", "echo preparing")])
    build = running(azure_storage, with_validators(build, [shell("first-check", "echo checking"),
                                                           shell("second-check", "echo second")]))
    azure_storage.advance_simulated(BEFORE_CUSTOMIZING + 120 + 120 + 60)  # into Validating
    monitor.sweep()
    build = Build.objects.get(pk=build.pk)
    assert build.sub_state == "Validating" and buildlogs.current_log(build) == "validation"
    azure_storage.wait_for(lambda: "echo checking" in _text(build, "validation"), timeout=10)
    client.force_login(alice)

    page = client.get(reverse("builds:build-detail", args=[build.uuid])).content.decode()
    panel = page.split('id="live-log"')[1].split("</pre>")[0]
    assert "echo checking" in panel and "echo preparing" not in panel
    assert 'id="live-validation-line-1"' in panel and "&amp;log=validation" in panel
    assert 'href="#live-validation-line-' in page  # "Jump to the current step" lands in validation.log
    steps = [(s.kind, s.name, s.complete) for s in buildlogs.sections(build)]
    assert steps[0] == ("customizer", "prepare", True) and steps[1][:2] == ("validator", "first-check")
    assert steps[-1][0] == "validator" and not steps[-1][2]  # the timeline follows the validator running now

    # A panel opened before Validating polls customization.log: read to its end, it moves on.
    end = buildlogs.tail(build, 0)
    while end.next < end.size:
        end = buildlogs.tail(build, end.next)
    moved = client.get(reverse("builds:build-log-tail", args=[build.uuid]), {"after": end.next, "line": 50},
                       HTTP_HX_REQUEST="true").content.decode()
    assert 'id="log-switch-validation"' in moved and "echo checking" in moved
    assert 'id="live-validation-line-1"' in moved and "&amp;log=validation" in moved
