"""Build logs against real components: the staging emulator writing Packer logs into Azurite,
read through builds.azure (ARM listing, blob listing, ranged reads) with the portal's credential.

Needs Node and Azurite (`make install`); skipped without them unless GOLDSMITH_REQUIRE_AZURITE=1.
"""

from __future__ import annotations

import datetime as dt
import gzip
import time

import pytest
from django.utils import timezone

from builds import azure, buildlogs, lifecycle, monitor, services
from builds.models import Build, BuildLog, BuildLogChunk
from tests import factories
from tests.support.workers import run_sweeps, submit

pytestmark = pytest.mark.django_db(transaction=True)
BEFORE_CUSTOMIZING = 60 + 300  # Queued and Building, simulated seconds
DONE = "Done exporting Packer logs to Azure Storage."

# One of each kind of secret, as a script would print them (the emulator echoes inline commands).
SECRETS = {
    "SAS signature": ("echo https://acct.blob.core.windows.net/c/f.sh?sv=2022-11-02&sig=SASsig0123456789abcdef%3D",
                      "SASsig0123456789abcdef"),
    "password": ("echo password=Hunter2Hunter2", "Hunter2Hunter2"),
    "bearer token": ("echo Authorization: Bearer abcdefghijklmnopqrstuvwxyz012345", "abcdefghijklmnopqrstuvwxyz012345"),
    "JSON web token": ("echo eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlc2lnbmF0dXJl",
                       "eyJzdWIiOiIxMjM0NTY3ODkwIn0"),
    "storage key": ("echo DefaultEndpointsProtocol=https;AccountKey=StorageKey0123456789==;EndpointSuffix=x",
                    "StorageKey0123456789"),
    "secret env var": ("export DB_PASS=EnvSecretValue42", "EnvSecretValue42"),
    "another env var": ("AWS_SECRET_ACCESS_KEY=AwsSecretValue42 ./deploy.sh", "AwsSecretValue42"),
}
SECRET_VALUES = [value for _command, value in SECRETS.values()]


def request_build(actor, customize):
    gold_version = factories.make_gold_version(actor=actor)
    build = services.build_request(actor=actor, gold_version=gold_version)
    template = dict(build.template)
    properties = dict(template["properties"])
    properties["customize"] = customize
    template["properties"] = properties
    # The secrets reach the log at run time (a script prints them), past the request's checks.
    Build.objects.filter(pk=build.pk).update(template=template)
    return Build.objects.get(pk=build.pk)


def running(emulator, build):
    assert submit(build.pk) == lifecycle.DONE
    run_sweeps(lambda: Build.objects.get(pk=build.pk).staging_resource_group, timeout=20)
    return Build.objects.get(pk=build.pk)


def finish(build, emulator, timeout=30):
    run_sweeps(lambda: Build.objects.get(pk=build.pk).is_terminal, timeout=timeout)
    monitor.sweep()
    build = Build.objects.get(pk=build.pk)
    # The emulator's writer copies a finished run's last lines within half a second (wall clock).
    emulator.wait_for(lambda: DONE in _live_text(build), timeout=10)
    return build


def _live_text(build):
    try:
        return b"".join(buildlogs.stream(build)).decode()
    except buildlogs.Unavailable:
        return ""


def shell(name, *commands):
    return {"type": "Shell", "name": name, "inline": list(commands)}


def planted_build(alice):
    return request_build(alice, [shell("prepare", "echo preparing"),
                                 shell("leaky", *[command for command, _value in SECRETS.values()], "exit 3")])


def test_the_live_tail_grows_with_the_clock_and_costs_one_ranged_read_per_refresh(azure_storage, alice):
    azure_storage.settings(provision_seconds=0)
    azure_storage.freeze()
    build = request_build(alice, [shell("first", "echo one"), shell("second", "echo two")])
    build = running(azure_storage, build)
    azure_storage.advance_simulated(BEFORE_CUSTOMIZING + 60)

    first = buildlogs.tail(build, 0)
    assert first.available and first.lines
    assert any("Starting provisioner shell" in text for _n, text in first.lines)
    build.refresh_from_db()
    assert build.log_blob.endswith("/customization.log")  # cached: later tails skip the look-up

    arm, blob = azure.request_counts["arm"], azure.request_counts["blob"]
    azure_storage.advance_simulated(120)
    second = buildlogs.tail(build, first.next, first_line=first.lines[-1][0] + 1)
    assert (azure.request_counts["arm"] - arm, azure.request_counts["blob"] - blob) == (0, 1)
    assert second.next > first.next and second.lines
    assert second.lines[0][0] == first.lines[-1][0] + 1
    assert any("echo two" in text for _n, text in second.lines)
    assert not any("echo two" in text for _n, text in first.lines)

    blob = azure.request_counts["blob"]
    nothing = buildlogs.tail(build, second.next, first_line=second.lines[-1][0] + 1)
    assert nothing.lines == () and nothing.next == second.next
    assert azure.request_counts["blob"] - blob == 1


def test_a_failed_build_names_the_failing_step_and_its_error_line(azure_storage, alice):
    azure_storage.set_time_scale(20000)
    build = finish(running(azure_storage, planted_build(alice)), azure_storage)
    assert build.state == Build.State.FAILED

    found = buildlogs.summary(build)
    assert found.available and found.source == "live"
    assert found.failed_step is not None and found.failed_step.name == "leaky"
    assert found.failed_step.exit_code == 3
    page = buildlogs.page(build, buildlogs.page_of_line(found.failed_step.error_line))
    error_text = dict(page.lines)[found.failed_step.error_line]
    assert "exit status: 3" in error_text or "exited with code: 3" in error_text
    assert any("3" in line for line in found.excerpt)


@pytest.mark.parametrize("container", [False, True], ids=["database", "blob container"])
def test_cleanup_keeps_the_log_redacted_and_compressed_before_deleting_the_template(
        azure_storage, alice, container, settings, azurite):
    if container:
        settings.BUILD_LOG_CONTAINER_URL = kept_container(azure_storage, azurite)
        azure.reset_clients()
    azure_storage.set_time_scale(20000)
    build = finish(running(azure_storage, planted_build(alice)), azure_storage)
    live = b"".join(buildlogs.stream(build))
    assert live and all(value.encode() not in live for value in SECRET_VALUES)

    assert lifecycle.cleanup(build) == lifecycle.DONE
    build.refresh_from_db()
    assert build.template_deleted_at and build.cleanup_error == ""
    kept = BuildLog.objects.get(build=build)
    assert kept.kept_at and kept.storage == ("container" if container else "database")
    assert kept.size == len(live) and kept.failed_step["name"] == "leaky"
    assert BuildLogChunk.objects.filter(log=kept).exists() == (not container)
    # The staging group is gone with the template; every read now uses the kept copy.
    assert b"".join(buildlogs.stream(build)) == live
    assert gzip.decompress(b"".join(buildlogs.kept_gzip(kept))) == live
    import hashlib
    assert kept.sha256 == hashlib.sha256(live).hexdigest()
    assert buildlogs.summary(build).source == "kept"

    # Cleaning up again (a worker retried) keeps the one copy.
    assert lifecycle.cleanup(build) == lifecycle.DONE
    assert BuildLog.objects.filter(build=build).count() == 1


def test_an_unfinished_copy_is_redone_and_retention_prunes_old_copies(azure_storage, alice, settings):
    azure_storage.set_time_scale(20000)
    build = finish(running(azure_storage, planted_build(alice)), azure_storage)
    # A worker died while copying: a row without kept_at and a stray member.
    partial = BuildLog.objects.create(build=build, storage="database")
    BuildLogChunk.objects.create(log=partial, seq=0, data=gzip.compress(b"half a log\n"))
    kept = buildlogs.keep(build)
    assert kept.pk == partial.pk and kept.kept_at
    assert b"half a log" not in b"".join(buildlogs.stream(build))

    settings.BUILD_LOG_RETENTION_DAYS = 30
    assert buildlogs.prune(timezone.now() + dt.timedelta(days=29)) == 0
    assert buildlogs.prune(timezone.now() + dt.timedelta(days=31)) == 1
    assert not BuildLog.objects.filter(build=build).exists()
    assert not BuildLogChunk.objects.exists()


def kept_container(emulator, azurite) -> str:
    """A container of Goldsmith's own in one of Azurite's accounts, created with the portal's credential."""
    from azure.storage.blob import BlobServiceClient

    from emulator.storage.azurite import pool_accounts

    account = pool_accounts()[-1]
    service = BlobServiceClient(f"{azurite.url}/{account}", credential=emulator.credential(),
                                connection_verify=str(emulator.ca_path))
    container = service.get_container_client("goldsmith-logs")
    if not container.exists():
        container.create_container()
    return f"{azurite.url}/{account}/goldsmith-logs"


# --- Every place the log appears ------------------------------------------------------------------


@pytest.fixture
def failed_build(azure_storage, alice):
    azure_storage.set_time_scale(20000)
    return finish(running(azure_storage, planted_build(alice)), azure_storage)


def _places(client, build) -> dict[str, str]:
    """The log's text in every place a user or program can see it."""
    import io

    from django.core.management import call_command
    from django.urls import reverse

    out = io.StringIO()
    call_command("showbuild", str(build.uuid), "--log", stdout=out)
    as_json = io.StringIO()
    call_command("showbuild", str(build.uuid), "--json", stdout=as_json)
    return {
        "page": client.get(reverse("builds:build-log", args=[build.uuid])).content.decode(),
        # The build page up to the composed template (planted here behind the request's checks).
        "build page": client.get(reverse("builds:build-detail", args=[build.uuid])).content.decode()
        .split('id="template-heading"')[0],
        "search": client.get(reverse("builds:build-log", args=[build.uuid]), {"q": "echo"}).content.decode(),
        "download": b"".join(client.get(reverse("builds:build-log-download", args=[build.uuid]))
                             .streaming_content).decode(),
        "api": b"".join(client.get(f"/api/v1/builds/{build.uuid}/log").streaming_content).decode(),
        "showbuild --log": out.getvalue(),
        "showbuild --json": as_json.getvalue(),
    }


def test_every_secret_is_masked_wherever_the_log_appears_live_and_kept(failed_build, client, alice):
    client.force_login(alice)
    for when in ("live", "kept"):
        if when == "kept":
            assert lifecycle.cleanup(failed_build) == lifecycle.DONE
            failed_build.refresh_from_db()
            kept = BuildLog.objects.get(build=failed_build)
            places = {**_places(client, failed_build),
                      "kept copy": gzip.decompress(b"".join(buildlogs.kept_gzip(kept))).decode()}
        else:
            places = _places(client, failed_build)
        for place, text in places.items():
            assert "[REDACTED]" in text or place in ("build page", "showbuild --json"), (when, place)
            for kind, (_command, value) in SECRETS.items():
                assert value not in text, f"{kind} shown in the {place} ({when})"
        assert "leaky" in places["showbuild --json"]


def test_the_failing_step_link_lands_on_the_failing_line(failed_build, client, alice):
    from django.urls import reverse

    client.force_login(alice)
    page = client.get(reverse("builds:build-detail", args=[failed_build.uuid])).content.decode()
    step = buildlogs.summary(failed_build).failed_step
    link = f"{reverse('builds:build-log', args=[failed_build.uuid])}?line={step.error_line}#line-{step.error_line}"
    assert link.replace("&", "&amp;") in page
    log_page = client.get(link.split("#")[0]).content.decode()
    import re

    [line] = re.findall(rf'<span id="line-{step.error_line}" class="error-line failing-line"[^>]*>([^<]*)</span>',
                        log_page)
    assert "exit status: 3" in line or "exited with code: 3" in line


def test_the_api_serves_byte_ranges_of_the_redacted_log(failed_build, client, alice):
    client.force_login(alice)
    url = f"/api/v1/builds/{failed_build.uuid}/log"
    whole = b"".join(client.get(url).streaming_content)
    size = len(whole)

    part = client.get(url, HTTP_RANGE="bytes=10-19")
    assert part.status_code == 206 and b"".join(part.streaming_content) == whole[10:20]
    assert part["Content-Range"] == f"bytes 10-19/{size}"
    suffix = client.get(url, HTTP_RANGE="bytes=-25")
    assert b"".join(suffix.streaming_content) == whole[-25:]
    assert client.get(url, HTTP_RANGE=f"bytes={size - 5}-").status_code == 206
    beyond = client.get(url, HTTP_RANGE=f"bytes={size}-")
    assert beyond.status_code == 416 and beyond["Content-Range"] == f"bytes */{size}"

    lifecycle.cleanup(failed_build)  # the same bytes from the kept copy, its size known at once
    kept = client.get(url, HTTP_RANGE="bytes=10-19")
    assert b"".join(kept.streaming_content) == whole[10:20]
    assert client.get(url)["Content-Length"] == str(size)


def test_the_live_fragment_returns_only_new_lines_and_a_paged_search(failed_build, client, alice):
    from django.urls import reverse

    client.force_login(alice)
    url = reverse("builds:build-log-tail", args=[failed_build.uuid])
    first = client.get(url, {"after": 0}, HTTP_HX_REQUEST="true").content.decode()
    assert 'id="live-line-1"' in first and "[REDACTED]" in first
    found = buildlogs.tail(failed_build, 0)
    rest = client.get(url, {"after": found.next, "line": 99}, HTTP_HX_REQUEST="true").content.decode()
    assert "live-line" not in rest and "log-poll" not in rest  # finished and read to the end: no more polling
    hits = client.get(reverse("builds:build-log", args=[failed_build.uuid]), {"q": "PASS"}).content.decode()
    assert "DB_PASS=[REDACTED]" in hits


def test_the_timeline_shows_the_steps_read_on_from_the_last_refresh(azure_storage, alice, client):
    from django.urls import reverse

    azure_storage.settings(provision_seconds=0)
    azure_storage.freeze()
    build = running(azure_storage, request_build(alice, [shell("first", "echo one"), shell("second", "echo two")]))
    azure_storage.advance_simulated(BEFORE_CUSTOMIZING + 60)
    monitor.sweep()
    build = Build.objects.get(pk=build.pk)
    assert build.sub_state == "Customizing"
    client.force_login(alice)
    status = reverse("builds:build-status", args=[build.uuid])

    page = client.get(status, HTTP_HX_REQUEST="true").content.decode()
    assert '<g class="step" data-step="first" data-kind="customizer" data-outcome="active">' in page
    assert 'data-step="second"' not in page
    assert '<li class="step step-active" data-step="first">' in page  # the phone's list too

    azure_storage.advance_simulated(180)
    time.sleep(1.05)  # a refresh within a second of the last read uses it (buildlogs.sections)
    blob = azure.request_counts["blob"]
    page = client.get(status, HTTP_HX_REQUEST="true").content.decode()
    assert azure.request_counts["blob"] - blob == 1  # the new bytes only, not the log again
    assert '<g class="step" data-step="first" data-kind="customizer" data-outcome="done">' in page
    assert "· exit 0" in page
    assert 'data-step="second"' in page


def test_the_provenance_page_links_the_kept_log_and_shows_its_sha256(failed_build, client, alice):
    import hashlib

    from django.urls import reverse

    client.force_login(alice)
    provenance = f"/audit/builds/{failed_build.uuid}/"
    assert "it is kept at cleanup" in client.get(provenance).content.decode()

    kept = buildlogs.keep(failed_build)
    page = client.get(provenance).content.decode()
    download = reverse("builds:build-log-download", args=[failed_build.uuid])
    assert f'<dd class="hash" id="log-sha256">{kept.sha256}</dd>' in page
    assert f'href="{download}"' in page
    assert f'href="{reverse("builds:build-log", args=[failed_build.uuid])}"' in page
    text = b"".join(client.get(download).streaming_content)
    assert hashlib.sha256(text).hexdigest() == kept.sha256  # the link gives what the hash says


def test_the_live_panel_opens_a_big_running_log_near_its_end(azure_storage, azurite, alice, client):
    from azure.storage.blob import BlobServiceClient
    from django.urls import reverse

    from emulator.storage.azurite import ACCOUNT_KEY, pool_accounts
    from tests.support import build_rows

    account = pool_accounts()[-1]
    account_url = f"{azurite.url}/{account}/"
    container = BlobServiceClient(account_url, credential={"account_name": account, "account_key": ACCOUNT_KEY},
                                  connection_verify=str(azurite.ca_path)).get_container_client(azure.LOG_CONTAINER)
    if not container.exists():
        container.create_container()
    lines = [f"[op] PACKER OUT     azure-arm: line {number:07d} of a long apt-get" for number in range(1, 40_001)]
    container.upload_blob("big/customization.log", "\n".join(lines) + "\n", overwrite=True)  # about 2 MB
    build = build_rows.running(factories.make_gold_version(actor=alice), requested_by=alice)
    Build.objects.filter(pk=build.pk).update(log_account_url=account_url, log_blob="big/customization.log")
    client.force_login(alice)

    blob = azure.request_counts["blob"]
    page = client.get(reverse("builds:build-detail", args=[build.uuid])).content.decode()
    panel = page.split('id="live-log"')[1].split("</pre>")[0]
    assert "line 0040000 of" in panel  # the end of the log, at once
    assert "line 0000001 of" not in panel and len(panel) < 2 * buildlogs.START_BYTES
    assert 'id="log-earlier"' in page and "Show earlier lines" in page
    assert "&amp;line=0" in panel  # the numbers before are unknown: the poller carries on unnumbered
    assert azure.request_counts["blob"] - blob <= 3  # the timeline's read, and two for the end
