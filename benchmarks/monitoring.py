"""Monitoring cost: many concurrent builds followed by one worker's sweep, against one LRO poller per build.

    python benchmarks/monitoring.py [--builds 1000] [--naive-builds 50] [--time-scale 10]
                                    [--sweep-seconds 30] [--database-url URL]

Everything runs for real: a private Redis, the emulator (`python -m emulator`) at a time scale,
one `manage.py rqworker` and the `rqcron` scheduler on a fresh database (SQLite in a temporary
folder unless --database-url is given). Builds are requested through the services, submitted by
the worker while the emulator's clock is frozen (so they all start together), then followed by
the sweep until every build has ended and its outputs are recorded.

Printed figures (simulated time is real time x the time scale):
- ARM reads per build-hour while following the builds (emulator request log: every GET the
  portal sent after submission), split into template listing pages and output reads (gallery
  version listings, run outputs, error codes); build-hours are the builds' simulated run durations;
- status staleness: how long after Azure's run ended the database said so (p50, p95, max), in
  simulated seconds and in sweep periods;
- worker CPU seconds (worker and its work-horses; the sweep runs there);
- whether the target (at most 1 read per build-hour, staleness at most two sweep periods) is
  met, and the emulator's own time answering listing pages;
- the same reads for the naive approach: one azure-mgmt-imagebuilder `begin_run(...).result()`
  poller per build (thread per build), polling every 30 simulated seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--builds", type=int, default=1000)
    parser.add_argument("--naive-builds", type=int, default=50)
    parser.add_argument("--time-scale", type=float, default=10.0)
    parser.add_argument("--sweep-seconds", type=float, default=30.0, help="simulated seconds between sweeps")
    parser.add_argument("--distribute", choices=("gallery", "managed"), default="gallery",
                        help="gallery: auto-versioned gallery image (Azure names the version: the sweep lists them); managed: "
                             "managed images, whose outputs the template names exactly (no read)")
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="goldsmith-bench-monitoring-"))
    processes: list[subprocess.Popen] = []
    try:
        return run(args, folder, processes)
    finally:
        for proc in reversed(processes):
            _stop(proc)
        shutil.rmtree(folder, ignore_errors=True)


def run(args, folder: Path, processes: list[subprocess.Popen]) -> int:
    from portal.devservices import start_private_redis

    redis_proc, redis_url = start_private_redis(folder)
    processes.append(redis_proc)
    emulator_proc, base_url = _start_emulator(folder, args.time_scale)
    processes.append(emulator_proc)
    ca = folder / "emulator" / "ca.pem"
    sweep_real = max(1, round(args.sweep_seconds / args.time_scale))
    env = {
        **os.environ,
        "GOLDSMITH_VAR_DIR": str(folder),
        "DATABASE_URL": args.database_url or f"sqlite:///{folder / 'bench.sqlite3'}",
        "REDIS_URL": redis_url,
        "AZURE_ARM_ENDPOINT": base_url, "AZURE_AUTHORITY_HOST": base_url, "AZURE_CA_BUNDLE": str(ca),
        "AZURE_EMULATOR": "1", "AZURE_POLLING_INTERVAL": "0",
        "BUILD_SWEEP_SECONDS": str(sweep_real), "BUILD_MAX_SUBMITTING": "1000",
        "BUILD_TEMPLATE_RETENTION_HOURS": "24", "DJANGO_SETTINGS_MODULE": "portal.settings",
        "LOG_LEVEL": "WARNING",
    }
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    control = _Control(base_url, ca)
    control.post("settings", {"provision_seconds": 0, "retry_after": 0})

    print(f"{args.builds} builds ({args.distribute}), time scale {args.time_scale:g}, sweep every {sweep_real} s "
          f"({sweep_real * args.time_scale:g} simulated s), one worker", flush=True)
    builds = _request_builds(args.builds, args.distribute)
    control.post("clock", {"freeze": True})
    worker = _spawn(["rqworker", "builds", "default", "--with-scheduler"], env, folder / "worker.log")
    processes.append(worker)
    started = time.monotonic()
    _wait(lambda: _count(state="running") == len(builds), timeout=3600, what="every build running")
    print(f"submitted {len(builds)} builds in {time.monotonic() - started:.0f} s "
          f"({_submission_requests(control, len(builds)):.1f} requests per build)", flush=True)

    scheduler = _spawn(["rqcron", "builds.cron"], env, folder / "scheduler.log")
    processes.append(scheduler)
    seq_start = control.last_seq()
    cpu_start = _cpu_seconds(worker.pid)
    control.post("clock", {"freeze": False})
    offset = control.offset_seconds()  # emulator time minus wall time, fixed from now on
    _wait(lambda: _count(outputs_collected=False) == 0 and _count(state__in=("running", "canceling")) == 0,
          timeout=7200, what="every build finished")
    cpu = _cpu_seconds(worker.pid) - cpu_start
    reads = [r for r in control.requests(seq_start) if r["method"] == "GET" and r["kind"] == "arm"]
    result = _report(builds, reads, control, offset, args, sweep_real, cpu)

    naive = _naive(args, control, base_url, ca) if args.naive_builds else None
    if naive:
        print(f"naive (one LRO poller per build, {args.naive_builds} builds): {naive['per_build_hour']:.1f} "
              f"reads per build-hour; {naive['cpu']:.1f} CPU s", flush=True)
        result["naive"] = naive
    print(json.dumps(result, indent=2))
    return 0


def _request_builds(count: int, distribute: str):
    from django.contrib.auth import get_user_model

    from builds import services
    from builds.models import Build
    from portal.models import Membership

    user = get_user_model().objects.create_user("bench", password="x")
    Membership.objects.create(user=user, role="security")
    image = services.gold_image_create(actor=user, slug="bench", name="Benchmark", os_type="Linux")
    gold = services.gold_version_create(actor=user, gold_image=image, version="1.0.0", **_content(distribute))
    gold = services.gold_version_publish(actor=user, gold_version=gold, lookups=False)
    for index in range(count):
        services.build_request(actor=user, gold_version=gold)
        if index and index % 200 == 0:
            print(f"  requested {index}", flush=True)
    return list(Build.objects.values_list("pk", flat=True))


def _content(distribute: str = "gallery") -> dict:
    from django.conf import settings

    gallery = (f"/subscriptions/{settings.AZURE_SUBSCRIPTION_ID}/resourceGroups/goldsmith-galleries/providers/"
               "Microsoft.Compute/galleries/goldsmith_gallery/images/ubuntu-gen2-tl")
    targets = [{"type": "SharedImage", "runOutputName": "gallery", "galleryImageId": gallery,
                "targetRegions": [{"name": settings.AZURE_LOCATION, "replicaCount": 1}]}]
    if distribute == "managed":
        targets = [{"type": "ManagedImage", "runOutputName": "managed", "location": settings.AZURE_LOCATION,
                    "imageId": f"/subscriptions/{settings.AZURE_SUBSCRIPTION_ID}/resourceGroups/"
                               f"{settings.AZURE_RESOURCE_GROUP}/providers/Microsoft.Compute/images/bench-image"}]
    return {
        "source": {"type": "PlatformImage", "publisher": "Canonical", "offer": "0001-com-ubuntu-server-jammy",
                   "sku": "22_04-lts-gen2", "version": "latest"},
        "security_type": "TrustedLaunch", "hyper_v_generation": "V2",
        "customize_before": [{"type": "Shell", "name": "patch", "inline": ["sudo apt-get -y upgrade"]}],
        "customize_after": [{"type": "Shell", "name": "audit", "inline": ["echo audit"]}],
        "validators_after": [{"type": "Shell", "name": "check", "inline": ["true"]}],
        "distribute": targets,
        "vm_profile": {"vmSize": "Standard_D2ds_v5"},
        "identity": settings.AZURE_TEMPLATE_IDENTITY,
    }


def _report(builds, reads, control, offset, args, sweep_real, cpu) -> dict:
    from builds.models import Build

    by_operation: dict[str, int] = {}
    for read in reads:
        by_operation[read["operation"]] = by_operation.get(read["operation"], 0) + 1
    hours = 0.0
    staleness = []
    for build in Build.objects.filter(pk__in=builds).only("template_name", "finished_at", "resource_group",
                                                          "subscription_id"):
        status = control.template(build)["rendered"]["properties"]["lastRunStatus"]
        start, end = _ts(status["startTime"]), _ts(status["endTime"])
        hours += (end - start) * args.time_scale / 3600  # the emulator's clock is real time
        end_wall = end - offset  # when, on the wall clock, Azure's run ended
        staleness.append(max(0.0, build.finished_at.timestamp() - end_wall) * args.time_scale)
    listing_op = "VirtualMachineImageTemplates_ListByResourceGroup"
    listing = by_operation.get(listing_op, 0)
    total = len(reads)
    staleness.sort()
    period = sweep_real * args.time_scale
    result = {
        "builds": len(builds), "distribute": args.distribute, "time_scale": args.time_scale, "sweep_period_simulated_s": period,
        "build_hours_simulated": round(hours, 1),
        "reads_total": total, "reads_by_operation": by_operation,
        "reads_per_build_hour": round(total / hours, 3),
        "listing_reads_per_build_hour": round(listing / hours, 3),
        "output_reads_per_build_hour": round((total - listing) / hours, 3),
        "staleness_simulated_s": {"p50": round(statistics.median(staleness), 1),
                                  "p95": round(staleness[int(len(staleness) * 0.95) - 1], 1),
                                  "max": round(staleness[-1], 1)},
        "staleness_sweep_periods": {"p95": round(staleness[int(len(staleness) * 0.95) - 1] / period, 2),
                                    "max": round(staleness[-1] / period, 2)},
        "worker_cpu_s": round(cpu, 1),
        # Time the emulator itself spent answering listing pages (it applies everything that came
        # due first, such as 1,000 runs publishing at once): part of the staleness that Azure,
        # not the sweep, accounts for.
        "emulator_listing_ms": {"max": max((r.get("durationMs", 0) for r in reads if r["operation"] == listing_op),
                                           default=0),
                                "total": round(sum(r.get("durationMs", 0) for r in reads
                                                   if r["operation"] == listing_op))},
    }
    print(f"reads per build-hour: {result['reads_per_build_hour']} "
          f"(listing {result['listing_reads_per_build_hour']}, outputs {result['output_reads_per_build_hour']}); "
          f"staleness p95 {result['staleness_sweep_periods']['p95']} / max {result['staleness_sweep_periods']['max']} "
          f"sweep periods; worker CPU {result['worker_cpu_s']} s", flush=True)
    met = result["reads_per_build_hour"] <= 1 and result["staleness_sweep_periods"]["max"] <= 2
    print(f"target (at most 1 read per build-hour, staleness at most 2 sweep periods): {'met' if met else 'not met'}",
          flush=True)
    if result["listing_reads_per_build_hour"] > 1:
        print(f"  the listing alone is one page of templates per sweep per 100 builds, 36 / period = "
              f"{36 / period:.2f} reads per build-hour at {period:g} s: it needs sweeps of 36 s or more", flush=True)
    return result


def _naive(args, control, base_url, ca) -> dict:
    """One SDK poller per build, each polling its run's async operation every 30 simulated seconds."""
    from azure.identity import ClientSecretCredential
    from azure.mgmt.imagebuilder import ImageBuilderClient
    from django.conf import settings

    from builds import azure, compose

    control.post("settings", {"provision_seconds": 0, "retry_after": None})
    credential = ClientSecretCredential(settings.AZURE_TENANT_ID, "naive-poller", "x", authority=base_url,
                                        disable_instance_discovery=True, connection_verify=str(ca))
    # The SDK polls every 30 s when Azure sends no Retry-After on the operation: 30 real seconds
    # are 30 / time scale here.
    client = ImageBuilderClient(credential, settings.AZURE_SUBSCRIPTION_ID, base_url=base_url,
                                credential_scopes=[azure.ARM_SCOPE], connection_verify=str(ca),
                                polling_interval=30 / args.time_scale)
    body = _naive_body()
    names = [f"naive-{index}" for index in range(args.naive_builds)]
    for name in names:
        client.virtual_machine_image_templates.begin_create_or_update(settings.AZURE_RESOURCE_GROUP, name,
                                                                      body).result()
    control.post("clock", {"freeze": True})
    pollers = [client.virtual_machine_image_templates.begin_run(settings.AZURE_RESOURCE_GROUP, name)
               for name in names]
    seq = control.last_seq()
    cpu = time.process_time()
    control.post("clock", {"freeze": False})
    threads = [threading.Thread(target=poller.result) for poller in pollers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    cpu = time.process_time() - cpu
    reads = [r for r in control.requests(seq) if r["method"] == "GET" and r["kind"] == "arm"
             and r.get("clientId") == "naive-poller"]
    hours = 0.0
    for name in names:
        status = control.template_by_name(settings.AZURE_SUBSCRIPTION_ID, settings.AZURE_RESOURCE_GROUP, name)
        status = status["rendered"]["properties"]["lastRunStatus"]
        hours += (_ts(status["endTime"]) - _ts(status["startTime"])) * args.time_scale / 3600
    del compose
    return {"builds": len(names), "reads": len(reads), "build_hours_simulated": round(hours, 1),
            "per_build_hour": round(len(reads) / hours, 1), "cpu": round(cpu, 1)}


def _naive_body() -> dict:
    from django.conf import settings

    from builds.models import GoldImageVersion

    gold = GoldImageVersion.objects.get(gold_image__slug="bench")
    from builds import compose

    return compose.compose(gold, [], compose.BuildContext(location=settings.AZURE_LOCATION))


# --- plumbing ---------------------------------------------------------------------------------------


class _Control:
    def __init__(self, base_url: str, ca: Path):
        import requests

        self.base = base_url
        self.session = requests.Session()
        self.session.trust_env = False  # this machine's REQUESTS_CA_BUNDLE would replace our CA
        self.ca = str(ca)

    def _call(self, method: str, path: str, **kwargs):
        response = self.session.request(method, f"{self.base}/_emulator/{path}", verify=self.ca, timeout=120,
                                        **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def post(self, path: str, body: dict):
        return self._call("POST", path, json=body)

    def last_seq(self) -> int:
        return self._call("GET", "requests", params={"since": 0, "limit": 0, "control": "true"})["lastSeq"]

    def requests(self, since: int) -> list[dict]:
        found: list[dict] = []
        while True:
            page = self._call("GET", "requests", params={"since": since, "limit": 10000, "control": "false"})["value"]
            if not page:
                return found
            found += page
            since = page[-1]["seq"]

    def offset_seconds(self) -> float:
        before = time.time()
        now = _ts(self._call("GET", "clock")["now"])
        return now - (before + time.time()) / 2

    def template(self, build) -> dict:
        return self.template_by_name(build.subscription_id, build.resource_group, build.template_name)

    def template_by_name(self, subscription: str, resource_group: str, name: str) -> dict:
        return self._call("GET", f"imagebuilder/templates/{subscription}/{resource_group}/{name}")


def _ts(text: str) -> float:
    import datetime as dt

    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")[:26] + "+00:00").timestamp()


def _start_emulator(folder: Path, scale: float, extra: tuple[str, ...] | list[str] = ()) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "emulator", "--port", "0", "--data-dir", str(folder / "emulator"),
                             "--time-scale", str(scale), *extra], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if "listening on" not in line:
        raise SystemExit(f"the emulator did not start: {line}")
    threading.Thread(target=proc.stdout.read, daemon=True).start()
    return proc, line.split("listening on ")[1].split()[0]


def _spawn(command: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "manage.py", *command], cwd=ROOT, env=env,
                            stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    from portal.devservices import stop_process

    # Workers run in sessions of their own (their work-horses must go too); the rest do not.
    stop_process(proc, group=os.getpgid(proc.pid) == proc.pid if proc.poll() is None else False)


def _count(**filters) -> int:
    from django.db import close_old_connections

    from builds.models import Build

    close_old_connections()
    return Build.objects.filter(**filters).count()


def _wait(condition, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(1)


def _submission_requests(control: _Control, builds: int) -> float:
    ops = {"VirtualMachineImageTemplates_Get", "VirtualMachineImageTemplates_CreateOrUpdate",
           "ImageBuilderOperations_GetStatus", "VirtualMachineImageTemplates_Run"}
    requests_ = [r for r in control.requests(0) if r["operation"] in ops]
    return len(requests_) / builds


def _cpu_seconds(pid: int) -> float:
    """CPU of a process and its reaped children (RQ's work-horses), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(value) for value in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    sys.exit(main())
