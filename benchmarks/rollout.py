"""A rollout of many layer builds driven by one worker: ARM requests per build, the gap between
waves, and what the worker and the scheduler cost.

    python benchmarks/rollout.py [--builds 1000] [--departments 20] [--canary 10] [--wave-size 100]
                                 [--time-scale 600] [--sweep-seconds 30] [--max-submitting 20]
                                 [--keep-templates] [--no-azurite] [--database-url URL]
    python benchmarks/rollout.py --builds 50 --wave-size 10 --canary 5     # a rehearsal

Everything runs for real: a private Redis, the emulator (`python -m emulator`) at a time scale
(a 25-minute build takes 2.5 s at 600) writing build logs to Azurite (as `make run`), one `manage.py rqworker builds default --with-scheduler`
and the `rqcron builds.cron` scheduler (as `runall` starts them), on a fresh database (SQLite
in a temporary folder unless --database-url is given). The catalog is seeded through the
services: a gold image with a published 1.0.0 and 1.1.0, `--departments` departments whose
layers (`--builds` in all, spread evenly) each have a published 1.0.0 accepting ^1. The
rollout of 1.1.0 is created and started by `manage.py startrollout`, and followed until it
has ended and every template is deleted (BUILD_TEMPLATE_RETENTION_HOURS 0, the default).

The sweep period (--sweep-seconds) and the submit cap (--max-submitting) are real seconds and
builds, the production defaults unless told: the time scale shortens Azure's side only, so the
gaps measured are the portal's own.

Printed figures:
- builds, total time (start to the rollout's end, and to the last template deleted);
- ARM requests per build (the emulator's request log from the start, excluding the control
  API): in all and by operation, and how many name one build's template;
- per wave and between waves: from the end of a wave's last run in Azure (its planned end, from
  the POST /run in the request log; --keep-templates checks it against lastRunStatus), to the
  database recording it (the sweep), to the next wave's first build requested and first build
  submitted (template created), and how long a wave took to be all running; p50 and max;
- the scheduler's CPU seconds and CPU % over the run (/proc utime+stime of `rqcron`), the
  worker's (with its work-horses), their peak resident memory (VmHWM), and the load average.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.monitoring import _content, _Control, _spawn, _start_emulator, _stop, _ts  # noqa: E402 (the emulator's control API, as there)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--builds", type=int, default=1000, help="layer builds in the rollout (1000)")
    parser.add_argument("--departments", type=int, default=20, help="departments the layers are spread over (20)")
    parser.add_argument("--canary", type=int, default=10, help="builds in the canary wave (10)")
    parser.add_argument("--wave-size", type=int, default=100, help="builds per wave after the canary (100)")
    parser.add_argument("--time-scale", type=float, default=600.0, help="the emulator's (600)")
    parser.add_argument("--sweep-seconds", type=int, default=30, help="BUILD_SWEEP_SECONDS, real seconds (30)")
    parser.add_argument("--max-submitting", type=int, default=20, help="BUILD_MAX_SUBMITTING (20)")
    parser.add_argument("--keep-templates", action="store_true",
                        help="keep templates (retention 24 h): no DELETE, but each run's planned end is checked "
                             "against the emulator's lastRunStatus")
    parser.add_argument("--no-azurite", action="store_true",
                        help="no staging storage: runs write no log and clean-up keeps none (default: Azurite when "
                             "installed, as `make run`)")
    parser.add_argument("--database-url", default="")
    parser.add_argument("--timeout", type=float, default=5400, help="seconds the rollout may take (5400)")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    folder = Path(tempfile.mkdtemp(prefix="goldsmith-bench-rollout-"))
    processes: list = []
    try:
        return run(args, folder, processes)
    finally:
        for proc in reversed(processes):
            proc.stop() if hasattr(proc, "stop") else _stop(proc)
        shutil.rmtree(folder, ignore_errors=True)


def run(args, folder: Path, processes: list) -> int:
    from emulator.storage.azurite import Azurite, find_binary
    from portal.devservices import start_private_redis

    redis_proc, redis_url = start_private_redis(folder)
    processes.append(redis_proc)
    extra: list[str] = []
    if not args.no_azurite and find_binary() is not None:
        # As `make run`: the emulator writes each run's log to Azurite, and clean-up keeps it.
        # One staging account per template alive at once, as in Azure (the emulator hands out a
        # pool's; with too small a pool, templates over it get no account and no log).
        pool = max(32, args.builds)
        azurite = Azurite(folder / "azurite", folder / "emulator", pool=pool).start()
        processes.append(azurite)
        extra = azurite.emulator_args()
    emulator_proc, base_url = _start_emulator(folder, args.time_scale, extra)
    processes.append(emulator_proc)
    ca = folder / "emulator" / "ca.pem"
    env = {
        **os.environ,
        "GOLDSMITH_VAR_DIR": str(folder),
        "DATABASE_URL": args.database_url or f"sqlite:///{folder / 'bench.sqlite3'}",
        "REDIS_URL": redis_url,
        "AZURE_ARM_ENDPOINT": base_url, "AZURE_AUTHORITY_HOST": base_url, "AZURE_CA_BUNDLE": str(ca),
        "AZURE_EMULATOR": "1",
        "BUILD_SWEEP_SECONDS": str(args.sweep_seconds), "BUILD_MAX_SUBMITTING": str(args.max_submitting),
        "BUILD_TEMPLATE_RETENTION_HOURS": "24" if args.keep_templates else "0",
        "DJANGO_SETTINGS_MODULE": "portal.settings", "LOG_LEVEL": "WARNING",
    }
    os.environ.update(env)
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    if args.database_url:
        call_command("flush", interactive=False, verbosity=0)
    call_command("migrate", verbosity=0)
    control = _Control(base_url, ca)
    _create_identity(settings.AZURE_TEMPLATE_IDENTITY, control)

    engine = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[1]
    print(f"{args.builds} layer builds over {args.departments} departments; canary {args.canary}, waves of "
          f"{args.wave_size}; emulator time scale {args.time_scale:g}; sweep every {args.sweep_seconds} s; submit cap "
          f"{args.max_submitting}; one worker; {engine}", flush=True)
    started = time.monotonic()
    user, new_version = _seed(args)
    print(f"seeded in {time.monotonic() - started:.0f} s", flush=True)

    worker = _spawn(["rqworker", "builds", "default", "--with-scheduler"], env, folder / "worker.log")
    processes.append(worker)
    _wait(lambda: _queues_empty(), timeout=300, what="the worker to drain the seeding's jobs", folder=folder)
    scheduler = _spawn(["rqcron", "builds.cron"], env, folder / "scheduler.log")
    processes.append(scheduler)
    time.sleep(3)  # the scheduler's start-up (Django, imports) is not the rollout's cost

    sampler = _Sampler(worker.pid, scheduler.pid)
    sampler.start()
    seq = control.last_seq()
    offset = control.offset_seconds()
    worker_cpu, scheduler_cpu = _cpu_seconds(worker.pid), _cpu_seconds(scheduler.pid)
    wall = time.monotonic()
    out = io.StringIO()
    call_command("startrollout", "bench", new_version.version, "--user", user.username, "--canary", str(args.canary),
                 "--wave-size", str(args.wave_size), stdout=out)
    rollout_id = out.getvalue().strip()
    print(f"rollout {rollout_id} started", flush=True)

    from builds.models import Build, Rollout

    def ended() -> bool:
        _progress(rollout_id)
        return Rollout.objects.get(uuid=rollout_id).is_terminal

    _wait(ended, timeout=args.timeout, what="the rollout to end", folder=folder, every=1.0)
    rollout_wall = time.monotonic() - wall
    deleted = (lambda: not Build.objects.filter(template_deleted_at__isnull=True).exists()) \
        if not args.keep_templates else (lambda: not Build.objects.filter(outputs_collected=False).exists())
    _wait(deleted, timeout=600, what="every template deleted", folder=folder)
    total_wall = time.monotonic() - wall
    worker_cpu = _cpu_seconds(worker.pid) - worker_cpu
    scheduler_cpu = _cpu_seconds(scheduler.pid) - scheduler_cpu
    sampler.stop()

    requests = control.requests(seq)
    result = _report(args, rollout_id, requests, offset, control, {
        "rollout_s": rollout_wall, "total_s": total_wall, "worker_cpu_s": worker_cpu,
        "scheduler_cpu_s": scheduler_cpu, "sampler": sampler})
    print(json.dumps(result, indent=2))
    return 0


# --- seeding -------------------------------------------------------------------------------------


def _seed(args):
    """A gold image with 1.0.0 and 1.1.0 published, and `--builds` layers with a published 1.0.0
    accepting ^1, spread over `--departments` departments, through the services."""
    from builds import services
    from portal.models import Department
    from tests import factories

    user = factories.make_user("bench-security", role="security")
    image = services.gold_image_create(actor=user, slug="bench", name="Benchmark", os_type="Linux")
    content = _content()
    services.gold_version_publish(actor=user, lookups=False, gold_version=services.gold_version_create(
        actor=user, gold_image=image, version="1.0.0", **content))
    per_department = math.ceil(args.builds / args.departments)
    made = 0
    for number in range(args.departments):
        department = Department.objects.create(slug=f"dept{number:02}", name=f"Department {number:02}")
        for index in range(min(per_department, args.builds - made)):
            layer = services.layer_create(actor=user, department=department, gold_image=image,
                                          slug=f"app{index:03}", name=f"Application {index:03}")
            version = services.layer_version_create(
                actor=user, layer=layer, version="1.0.0", accepts="^1",
                customize=[{"type": "Shell", "name": "app", "inline": [f"echo app {number}-{index}"]}])
            services.layer_version_publish(actor=user, layer_version=version)
            made += 1
        if made and (number + 1) % 5 == 0:
            print(f"  seeded {made} layers", flush=True)
    new = services.gold_version_publish(actor=user, lookups=False, gold_version=services.gold_version_create(
        actor=user, gold_image=image, version="1.1.0", **content))
    return user, new


def _create_identity(identity_id: str, control: _Control) -> None:
    """The template identity, with Contributor on the subscription (preflight checks both)."""
    from django.conf import settings

    from builds import azure

    parts = identity_id.split("/")
    # The portal's own client (it only ever reads identities); this is the benchmark's one write.
    msi = azure._client("msi", settings.AZURE_SUBSCRIPTION_ID)
    found = msi.user_assigned_identities.create_or_update(parts[4], parts[-1], {"location": settings.AZURE_LOCATION})
    control.post("authorization/grant", {"principalId": found.principal_id, "role": "Contributor",
                                         "scope": f"/subscriptions/{settings.AZURE_SUBSCRIPTION_ID}"})


# --- the report ----------------------------------------------------------------------------------


def _report(args, rollout_id: str, requests: list[dict], offset: float, control: _Control, measured: dict) -> dict:
    from builds.models import Build, Rollout

    rollout = Rollout.objects.get(uuid=rollout_id)
    builds = list(Build.objects.filter(rollout_item__rollout=rollout).select_related("rollout_item__wave"))
    count = len(builds)
    arm = [r for r in requests if r["kind"] == "arm"]
    by_operation = Counter(f"{r['method']} {r['operation']}" for r in arm)
    per_template = sum(1 for r in arm if r.get("template"))
    runs = {r["template"].lower(): r for r in arm if r["operation"] == "VirtualMachineImageTemplates_Run"
            and r["status"] in (200, 202)}
    azure_end, checked = _azure_ends(builds, runs, offset, args, control)
    waves = _waves(builds, azure_end)
    gaps = [{"after": prev["wave"], "azure_end_to_recorded_s": prev["recorded"] - prev["azure_end"],
             "recorded_to_next_requested_s": wave["first_requested"] - prev["recorded"],
             "recorded_to_next_submitted_s": wave["first_submitted"] - prev["recorded"],
             "azure_end_to_next_submitted_s": wave["first_submitted"] - prev["azure_end"]}
            for prev, wave in itertools.pairwise(waves)]
    sampler = measured["sampler"]
    result = {
        "builds": count, "state": rollout.state, "waves": len(waves), "canary": args.canary,
        "wave_size": args.wave_size, "time_scale": args.time_scale, "sweep_seconds": args.sweep_seconds,
        "max_submitting": args.max_submitting, "advances": rollout.advances,
        "rollout_s": round(measured["rollout_s"], 1), "until_templates_deleted_s": round(measured["total_s"], 1),
        "arm_requests": len(arm), "arm_requests_per_build": round(len(arm) / count, 2),
        "arm_requests_naming_one_template_per_build": round(per_template / count, 2),
        "arm_by_operation_per_build": {k: round(v / count, 3) for k, v in sorted(by_operation.items())},
        "other_requests": dict(Counter(r["operation"] for r in requests if r["kind"] == "other")),
        "planned_end_checked_against_emulator": checked,
        "gap": {name: _spread([g[name] for g in gaps]) for name in (
            "azure_end_to_recorded_s", "recorded_to_next_requested_s", "recorded_to_next_submitted_s",
            "azure_end_to_next_submitted_s")},
        "wave_ramp_s": _spread([w["all_running"] - w["first_requested"] for w in waves]),
        "wave_run_s": _spread([w["azure_end"] - w["all_running"] for w in waves]),
        "waves_detail": [{k: (round(v - waves[0]["first_requested"], 1) if isinstance(v, float) else v)
                          for k, v in w.items()} for w in waves],
        "worker_cpu_s": round(measured["worker_cpu_s"], 1),
        "worker_cpu_percent": round(100 * measured["worker_cpu_s"] / measured["total_s"], 1),
        "scheduler_cpu_s": round(measured["scheduler_cpu_s"], 2),
        "scheduler_cpu_percent": round(100 * measured["scheduler_cpu_s"] / measured["total_s"], 2),
        "worker_peak_rss_mib": round(sampler.peak["worker"] / 1024, 1),
        "scheduler_peak_rss_mib": round(sampler.peak["scheduler"] / 1024, 1),
        "load_average_1min": _spread(sampler.loads),
        "cpus": os.cpu_count(),
    }
    gap = result["gap"]
    print(f"\n{count} builds ({rollout.state}) in {len(waves)} waves: {result['rollout_s']:.0f} s to the rollout's end, "
          f"{result['until_templates_deleted_s']:.0f} s to the last template deleted", flush=True)
    print(f"ARM requests per build: {result['arm_requests_per_build']} ({len(arm)} in all; "
          f"{result['arm_requests_naming_one_template_per_build']} name the build's template)")
    for name, per_build in result["arm_by_operation_per_build"].items():
        print(f"  {per_build:8.3f}  {name}")
    print("between waves (p50 / max, real seconds):")
    for name, label in (("azure_end_to_recorded_s", "last run's end in Azure -> recorded (sweep)"),
                        ("recorded_to_next_requested_s", "recorded -> next wave's first build requested"),
                        ("recorded_to_next_submitted_s", "recorded -> next wave's first build submitted"),
                        ("azure_end_to_next_submitted_s", "last run's end in Azure -> next wave's first submitted")):
        print(f"  {label:58} {gap[name]['p50']:7.1f} / {gap[name]['max']:7.1f}")
    print(f"a wave from its first request to all running: p50 {result['wave_ramp_s']['p50']:.1f} s, max "
          f"{result['wave_ramp_s']['max']:.1f} s; advance jobs claimed: {rollout.advances}")
    print(f"scheduler CPU {result['scheduler_cpu_s']} s ({result['scheduler_cpu_percent']} %); worker CPU "
          f"{result['worker_cpu_s']} s ({result['worker_cpu_percent']} %); peak RSS worker "
          f"{result['worker_peak_rss_mib']} MiB, scheduler {result['scheduler_peak_rss_mib']} MiB; load average "
          f"(1 min) p50 {result['load_average_1min']['p50']}, max {result['load_average_1min']['max']} on "
          f"{os.cpu_count()} CPUs", flush=True)
    return result


def _azure_ends(builds, runs: dict, offset: float, args, control: _Control) -> tuple[dict, int]:
    """When each build's run ended in Azure (wall clock): the emulator plans a run when it
    starts (emulator/imagebuilder/builds.py), so its end is the POST /run's moment plus the
    plan's length. With --keep-templates each is checked against lastRunStatus.endTime."""
    from emulator.imagebuilder.builds import plan_steps

    ends, checked = {}, 0
    for build in builds:
        run = runs.get(build.template_name.lower())
        if run is None:
            continue
        start = _ts(run["emulatorTime"])
        end = plan_steps(build.template["properties"], start, args.time_scale)[-1]["end"]
        if args.keep_templates:
            status = control.template(build)["rendered"]["properties"]["lastRunStatus"]
            actual = _ts(status["endTime"])
            if abs(actual - end) > 0.5:
                raise SystemExit(f"{build.template_name}: planned end {end}, lastRunStatus {actual}")
            checked += 1
        ends[build.pk] = end - offset
    return ends, checked


def _waves(builds, azure_end: dict) -> list[dict]:
    by_wave: dict[int, list] = {}
    for build in builds:
        by_wave.setdefault(build.rollout_item.wave.number, []).append(build)
    waves = []
    for number in sorted(by_wave):
        members = by_wave[number]
        waves.append({
            "wave": number, "builds": len(members),
            "first_requested": min(b.created_at.timestamp() for b in members),
            "last_requested": max(b.created_at.timestamp() for b in members),
            "first_submitted": min(b.submitted_at.timestamp() for b in members if b.submitted_at),
            "all_running": max(b.started_at.timestamp() for b in members if b.started_at),
            "azure_end": max(azure_end.get(b.pk, 0.0) for b in members),
            "recorded": max(b.finished_at.timestamp() for b in members),
        })
    return waves


def _spread(values: list[float]) -> dict:
    if not values:
        return {"p50": 0.0, "max": 0.0, "n": 0}
    return {"p50": round(statistics.median(values), 1), "max": round(max(values), 1), "n": len(values)}


def _progress(rollout_id: str, _last=[0.0]) -> None:  # noqa: B006 - a timer shared between calls
    from builds.models import Build, Rollout, RolloutWave

    if time.monotonic() - _last[0] < 30:
        return
    _last[0] = time.monotonic()
    rollout = Rollout.objects.get(uuid=rollout_id)
    states = Counter(Build.objects.filter(rollout_item__rollout=rollout).values_list("state", flat=True))
    running = rollout.waves.filter(state=RolloutWave.State.RUNNING).values_list("number", flat=True).first()
    print(f"  {rollout.state}, wave {running}: {dict(states)}; load {os.getloadavg()[0]:.2f}", flush=True)


# --- plumbing ------------------------------------------------------------------------------------


class _Sampler(threading.Thread):
    """Peak resident memory (VmHWM) of the worker (and its work-horses) and of the scheduler,
    and the 1-minute load average every 10 s."""

    def __init__(self, worker: int, scheduler: int):
        super().__init__(daemon=True)
        self.pids = {"worker": worker, "scheduler": scheduler}
        self.peak = {"worker": 0, "scheduler": 0}
        self.loads: list[float] = [os.getloadavg()[0]]
        self.stopping = threading.Event()

    def run(self):
        ticks = 0
        while not self.stopping.wait(0.2):
            for name, pid in self.pids.items():
                for each in [pid, *_children(pid)]:
                    self.peak[name] = max(self.peak[name], _hwm_kib(each))
            ticks += 1
            if ticks % 50 == 0:
                self.loads.append(os.getloadavg()[0])

    def stop(self):
        self.loads.append(os.getloadavg()[0])
        self.stopping.set()
        self.join(2)


def _hwm_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _cpu_seconds(pid: int) -> float:
    """CPU of a process and its reaped children (RQ's work-horses), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(value) for value in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def _queues_empty() -> bool:
    import django_rq

    return all(django_rq.get_queue(name).count == 0 and not django_rq.get_queue(name).started_job_registry.count
               for name in ("builds", "default"))


def _wait(condition, *, timeout: float, what: str, folder: Path, every: float = 0.5) -> None:
    from django.db import close_old_connections

    deadline = time.monotonic() + timeout
    while True:
        close_old_connections()
        if condition():
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}; worker log:\n"
                             f"{(folder / 'worker.log').read_text()[-3000:]}")
        time.sleep(every)


if __name__ == "__main__":
    sys.exit(main())
