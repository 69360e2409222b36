#!/usr/bin/env python
"""Does a big build log stay cheap to fetch, redact, keep and page, in flat memory?

    .venv/bin/python benchmarks/buildlog.py                  # 5 MB and 50 MB logs (about 2 minutes)
    .venv/bin/python benchmarks/buildlog.py --sizes 5        # a quick rehearsal

For each size it writes a customization.log in Image Builder's Packer format, with the line
shapes the emulator writes (emulator/imagebuilder/builds.py: telemetry markers, `PACKER OUT`
UI lines, `PACKER ERR` debug lines with timestamps, a secret-looking line now and then), into
Azurite (started here, with the emulator for its OAuth tokens), and points a running build at
it. Then, each step timed and measured (tracemalloc's peak, and ru_maxrss before and after):

- fetch: the whole blob through `azure.read_log` in READ_BYTES ranges;
- redact: the same through `buildlogs.stream` (ranges + LogRedactor);
- keep: `buildlogs.keep` into the database (gzip members in BuildLogChunk);
- page: the log page (`builds:build-log`) rendered for the first, a middle and the last page of
  the kept copy, through the Django test client;
- live panel: the build page of the running build, opened on the live log (tail_start plus the
  timeline's incremental read), and one refresh of the live tail fragment.

Memory that stays flat across sizes is the point: tracemalloc's peak must not grow with the
log. Prints markdown; benchmarks/README.md keeps the latest figures.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

MB = 1024 * 1024
OP_ID = "e5c6a2f0-6d2b-4c49-9b1d-0c7f3a9b2e11"
ACCOUNT_INDEX = 0
BLOB = "2026-12-06T10-00-00Z_goldsmith/customization.log"


def packer_lines(target: int, seed: int = 7):
    """Lines of a Packer log of about `target` bytes: steps of shell output between telemetry
    markers, as the emulator writes them (older format: `[opId] PACKER OUT|ERR ...`)."""
    rng = random.Random(seed)
    moment = 1_780_000_000
    written, step = 0, 0

    def stamp() -> str:
        return time.strftime("%Y/%m/%d %H:%M:%S", time.gmtime(moment))

    def out(text):
        return f"[{OP_ID}] PACKER OUT {text}\n"

    def err(text):
        return f"[{OP_ID}] PACKER ERR {stamp()} {text}\n"

    head = [err("[INFO] Packer version: 1.10.0 [go1.21.5 linux amd64]"), out("==> azure-arm: Running builder ..."),
            out("==> azure-arm: Connected to SSH!")]
    for line in head:
        written += len(line)
        yield line
    while written < target:
        lines = [err("[INFO] (telemetry) Starting provisioner shell"),
                 out(f"==> azure-arm: Provisioning with shell script: /tmp/packer-shell-{step}.sh")]
        for _ in range(rng.randint(2000, 6000)):
            moment += rng.choice((0, 0, 0, 1))
            kind = rng.random()
            if kind < 0.7:
                lines.append(out(f"    azure-arm: Get:{rng.randint(1, 999)} http://azure.archive.ubuntu.com/ubuntu "
                                 f"jammy-updates/main amd64 libpkg{rng.randint(1, 9999)} "
                                 f"{rng.randint(1, 9)}.{rng.randint(0, 99)} [{rng.randint(1, 999)} kB]"))
            elif kind < 0.95:
                lines.append(err(f"packer-plugin-azure plugin: {stamp()} [DEBUG] progress {rng.random():.6f}"))
            elif kind < 0.99:
                lines.append(out(f"    azure-arm: + export CERT_PATH=/etc/ssl/certs/ca-{rng.randint(1, 99)}.pem"))
            else:
                lines.append(out(f"    azure-arm: + export DB_PASSWORD=s3cr3t{rng.randint(1000, 9999)}"))
        lines += [err("packer-plugin-azure plugin: [INFO] command 'chmod +x /tmp/script.sh; /tmp/script.sh' "
                      "exited with code: 0"),
                  err("[INFO] RPC client: Communicator ended with: 0"),
                  err("[INFO] (telemetry) ending shell")]
        step += 1
        for line in lines:
            written += len(line)
            yield line
    for line in (out("Build 'azure-arm' finished."), err("[INFO] (telemetry) Finalizing."),
                 out("Done exporting Packer logs to Azure Storage.")):
        yield line


def write_log(path: Path, size_mb: int) -> int:
    with open(path, "w", encoding="utf-8") as handle:
        for line in packer_lines(size_mb * MB):
            handle.write(line)
    return path.stat().st_size


def measure(label: str, call, rows: list, *, again=None):
    """Time `call` without tracemalloc (it slows Python down several times), then run `again`
    (default: `call` once more; None when it cannot be repeated) under tracemalloc for the peak."""
    gc.collect()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    result = call()
    seconds = time.perf_counter() - started
    traced = again if again is not None else call
    gc.collect()
    tracemalloc.start()
    traced()
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rows.append((label, seconds, peak / MB, after / 1024, (after - before) / 1024))
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[5, 50], help="log sizes in MB")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="goldsmith-bench-log-"))
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{work / 'bench.sqlite3'}")
    from portal.devservices import start_private_redis, stop_process

    redis_proc = None
    if not os.environ.get("REDIS_URL"):
        (work / "redis").mkdir()
        redis_proc, os.environ["REDIS_URL"] = start_private_redis(work / "redis")
    try:
        run(args, work)
    finally:
        if redis_proc is not None:
            stop_process(redis_proc)


def run(args: argparse.Namespace, work: Path) -> None:
    import django

    django.setup()
    from azure.storage.blob import BlobServiceClient
    from django.core.management import call_command
    from django.test import Client, override_settings
    from django.urls import reverse

    from builds import azure, buildlogs
    from builds.models import Build
    from emulator.storage.azurite import ACCOUNT_KEY, Azurite, pool_accounts
    from tests import factories
    from tests.support import build_rows
    from tests.support.emulator import EmulatorHandle, EmulatorProcess
    from tests.support.workers import WORKER_PRINCIPAL_ID, flush_redis, provision_identities

    call_command("migrate", verbosity=0)
    azurite = Azurite(work / "azurite", work / "emulator").start()
    process = EmulatorProcess(work / "emulator", extra_args=tuple(azurite.emulator_args())).start()
    try:
        emulator = EmulatorHandle(process.base_url, process.ca_path, process)
        provision_identities(emulator)
        flush_redis()
        account = pool_accounts()[ACCOUNT_INDEX]
        account_url = f"{azurite.url}/{account}/"
        service = BlobServiceClient(account_url, credential={"account_name": account, "account_key": ACCOUNT_KEY},
                                    connection_verify=str(azurite.ca_path))
        container = service.get_container_client(azure.LOG_CONTAINER)
        if not container.exists():
            container.create_container()
        with override_settings(AZURE_ARM_ENDPOINT=emulator.base_url, AZURE_AUTHORITY_HOST=emulator.base_url,
                               AZURE_CA_BUNDLE=str(emulator.ca_path), AZURE_EMULATOR=True, AZURE_POLLING_INTERVAL=0,
                               AZURE_CLIENT_ID="goldsmith-worker", AZURE_CLIENT_SECRET="emulator-secret",
                               AZURE_PRINCIPAL_ID=WORKER_PRINCIPAL_ID, BUILD_LOG_CONTAINER_URL="",
                               ALLOWED_HOSTS=["*"]):
            azure.reset_clients()
            alice = factories.make_user("alice", role="security")
            gold = factories.make_gold_version(actor=alice)
            client = Client()
            client.force_login(alice)
            # Warm up (templates compiled, URLs loaded) on a running build that has no log yet.
            idle = build_rows.running(gold, requested_by=alice, sub_state="Customizing")
            client.get(reverse("builds:build-detail", args=[idle.uuid]))
            client.get(reverse("builds:build-log", args=[idle.uuid]))
            print("| log | step | seconds | tracemalloc peak (MB) | ru_maxrss after (MB) | ru_maxrss growth (MB) |")
            print("| --- | --- | --- | --- | --- | --- |")
            for size_mb in args.sizes:
                path = work / f"log-{size_mb}.txt"
                size = write_log(path, size_mb)
                blob = f"{size_mb}mb/{BLOB}"
                with open(path, "rb") as handle:
                    container.upload_blob(blob, handle, overwrite=True, max_concurrency=2)
                path.unlink()
                build, twin = (build_rows.running(gold, requested_by=alice, sub_state="Customizing")
                               for _ in range(2))
                Build.objects.filter(pk__in=[build.pk, twin.pk]).update(
                    log_account_url=account_url, log_blob=blob, staging_resource_group="/subscriptions/x/resourceGroups/s")
                build, twin = Build.objects.get(pk=build.pk), Build.objects.get(pk=twin.pk)
                where = azure.LogLocation(account_url, blob)
                rows: list = []

                def fetch(where=where):
                    return sum(len(piece) for piece in buildlogs._LiveSource(where).raw())

                def redact(build=build):
                    return sum(len(piece) for piece in buildlogs.stream(build))

                def panel(build=build):
                    reads = azure.request_counts["blob"]
                    response = client.get(reverse("builds:build-detail", args=[build.uuid]))
                    assert response.status_code == 200, response.status_code
                    return azure.request_counts["blob"] - reads

                def refresh(build=build, size=size):
                    return client.get(reverse("builds:build-log-tail", args=[build.uuid]),
                                      {"after": size, "line": 0}, HTTP_HX_REQUEST="true").status_code

                fetched = measure("fetch (ranges)", fetch, rows)
                assert fetched == size, (fetched, size)
                measure("redact (stream)", redact, rows)
                reads = measure("live build page (first open)", panel, rows,
                                again=lambda twin=twin: panel(twin))  # the twin: a first open too
                measure("live tail refresh", refresh, rows)
                Build.objects.filter(pk=build.pk).update(state=Build.State.SUCCEEDED)
                build = Build.objects.get(pk=build.pk)
                Build.objects.filter(pk=twin.pk).update(state=Build.State.SUCCEEDED)
                twin = Build.objects.get(pk=twin.pk)
                kept = measure("keep (database)", lambda build=build: buildlogs.keep(build), rows,
                               again=lambda twin=twin: buildlogs.keep(twin))
                last_page = buildlogs.page_of_line(kept.lines)
                for name, number in (("first", 1), ("middle", last_page // 2), ("last", last_page)):
                    def render(build=build, number=number):
                        response = client.get(reverse("builds:build-log", args=[build.uuid]), {"page": number})
                        assert response.status_code == 200, response.status_code
                    measure(f"log page, {name} ({number} of {last_page})", render, rows)
                for label, seconds, peak, rss, growth in rows:
                    print(f"| {size / MB:.0f} MB | {label} | {seconds:.2f} | {peak:.1f} | {rss:.0f} | {growth:.0f} |")
                print(f"| {size / MB:.0f} MB | (blob reads for the first open of the live page: {reads}; kept: "
                      f"{kept.lines:,} lines, {kept.compressed_size / MB:.1f} MB gzip) | | | | |")
    finally:
        process.stop()
        azurite.stop()


if __name__ == "__main__":
    main()
