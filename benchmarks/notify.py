"""Notification throughput: events fanned out to many webhook endpoints by one worker.

    python benchmarks/notify.py [--events 10000] [--endpoints 200] [--users 200]
                                [--worker-class rq.worker.SimpleWorker] [--database-url URL]

Everything runs for real: a private Redis, one `manage.py rqworker default` (RQ's forking
worker unless --worker-class says otherwise), a fresh database (SQLite in a temporary folder
unless --database-url names PostgreSQL), and a threaded HTTP receiver on loopback answering
200 to every webhook (HTTP/1.1, keep-alive). The endpoints (plain http to loopback: the sandbox's SSRF rule) belong to
the security team, half Goldsmith-wide and half scoped to one of two departments; `--users`
users have e-mail addresses (none is subscribed: fan-out still reads them all, as it must).
Events (build.failed of a web build) are emitted in one burst through notify.events.emit,
each in its own transaction, as the lifecycle does; every event reaches the Goldsmith-wide
endpoints and the web ones, i.e. 3/4 of --endpoints.

Printed: deliveries per second (first event emitted to last delivery), the delay from the
change to each delivery (p50, p95, max: `delivered_at - occurred_at`), the time fan-out took
per event (p50, p95) and the worker's peak resident memory (VmHWM of the worker and its
work-horses; the largest).
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
from array import array
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--endpoints", type=int, default=200)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--worker-class", default="", help="e.g. rq.worker.SimpleWorker (no fork per job)")
    parser.add_argument("--database-url", default="")
    parser.add_argument("--timeout", type=float, default=7200)
    return parser.parse_args()


class _Answer(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real receivers: the sender reuses connections
    disable_nagle_algorithm = True  # else the body waits for the ACK of the headers (40 ms)

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def main() -> int:
    args = parse_args()
    folder = Path(tempfile.mkdtemp(prefix="goldsmith-notify-bench-"))
    processes: list[subprocess.Popen] = []
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    receiver.daemon_threads = True
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        return run(args, folder, processes, f"http://127.0.0.1:{receiver.server_port}/hook")
    finally:
        receiver.shutdown()
        for proc in reversed(processes):
            _stop(proc)
        shutil.rmtree(folder, ignore_errors=True)


def run(args, folder: Path, processes: list[subprocess.Popen], url: str) -> int:
    from portal.devservices import start_private_redis

    redis_proc, redis_url = start_private_redis(folder)
    processes.append(redis_proc)
    env = {
        **os.environ,
        "GOLDSMITH_VAR_DIR": str(folder),
        "DATABASE_URL": args.database_url or f"sqlite:///{folder / 'bench.sqlite3'}",
        "REDIS_URL": redis_url, "DJANGO_SETTINGS_MODULE": "portal.settings", "LOG_LEVEL": "WARNING",
        "NOTIFY_DIGEST_THRESHOLD": "1000000",
    }
    os.environ.update(env)
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    assert settings.NOTIFY_ALLOW_LOOPBACK_HTTP, "the benchmark posts to loopback: run it with sandbox settings"
    call_command("migrate", verbosity=0)
    build = _seed(args, url)
    per_event = _receiving(args.endpoints)
    total = args.events * per_event
    print(f"{args.events} events x {per_event} receiving endpoints (of {args.endpoints}) = {total} deliveries, "
          f"{args.users} users with e-mail, one worker ({args.worker_class or 'rq forking worker'}), "
          f"{settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[1]}", flush=True)
    command = ["rqworker", "default"] + (["--worker-class", args.worker_class] if args.worker_class else [])
    worker = _spawn(command, env, folder / "worker.log")
    processes.append(worker)
    peak = _PeakMemory(worker.pid)
    peak.start()

    from django.db import transaction

    from notify import events

    started = time.monotonic()
    for _ in range(args.events):
        with transaction.atomic():
            events.build_event(build, "build.failed")
    emitted = time.monotonic() - started
    print(f"emitted {args.events} events in {emitted:.1f} s", flush=True)
    _wait(lambda: _delivered() >= total, timeout=args.timeout, folder=folder)
    peak.stop()
    result = _report(args, total, peak.peak_kib)
    print(json.dumps(result, indent=2))
    return 0


def _receiving(endpoints: int) -> int:
    """Goldsmith-wide endpoints (half) and the web department's (a quarter) hear of a web build."""
    return endpoints // 2 + len([i for i in range(endpoints - endpoints // 2) if i % 2 == 0])


def _seed(args, url: str):
    from builds.models import Build
    from notify.models import Endpoint
    from portal.models import Department, Membership
    from tests import factories
    from tests.support import build_rows

    alice = factories.make_user("alice", role="security")
    web = Department.objects.create(slug="web", name="Web")
    data = Department.objects.create(slug="data", name="Data")
    bob = factories.make_user("bob", role="editor", department=web)
    gold_version = factories.make_gold_version(factories.make_gold_image("ubuntu", actor=alice), actor=alice)
    layer_version = factories.make_layer_version(factories.make_layer(web, gold_version.gold_image, "nginx", actor=bob),
                                                 actor=bob)
    build = build_rows.failed(gold_version, [layer_version], requested_by=bob)
    assert build.state == Build.State.FAILED
    rows = []
    for i in range(args.endpoints):
        department = None if i < args.endpoints // 2 else (web if (i - args.endpoints // 2) % 2 == 0 else data)
        rows.append(Endpoint(kind="webhook", url=url, secret=f"whsec_bench{i}", owner=alice, department=department,
                             event_types=["build.failed", "build.succeeded"], name=f"bench {i}"))
    Endpoint.objects.bulk_create(rows)
    user_model = type(alice)
    users = user_model.objects.bulk_create([user_model(username=f"user{i}", email=f"user{i}@example.com")
                                            for i in range(args.users)])
    Membership.objects.bulk_create([Membership(user=user, role="auditor") for user in users[: len(users) // 2]])
    from notify.models import Preferences
    # Everyone chose "nothing by e-mail": fan-out reads them all, and sends them nothing.
    Preferences.objects.bulk_create([Preferences(user=user, customized=True) for user in [*users, alice, bob]])
    return build


def _delivered() -> int:
    from django.db import close_old_connections

    from notify.models import Delivery

    close_old_connections()
    return Delivery.objects.filter(status=Delivery.Status.DELIVERED).count()


def _wait(done, *, timeout: float, folder: Path) -> None:
    deadline = time.monotonic() + timeout
    last = time.monotonic()
    while not done():
        if time.monotonic() > deadline:
            sys.exit(f"not done after {timeout:g} s; worker log:\n{(folder / 'worker.log').read_text()[-3000:]}")
        if time.monotonic() - last > 60:
            print(f"  ... {_delivered()} delivered", flush=True)
            last = time.monotonic()
        time.sleep(5)  # counting 1.5 million rows is not free; delivered_at times the run, not this


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _report(args, total: int, peak_kib: int) -> dict:
    from django.db.models import Max, Min

    from notify.models import Delivery, OutboxEvent

    delays, fanout = array("d"), array("d")  # 1.5 million rows: floats only, not the rows
    for delivered, occurred, created in (Delivery.objects.filter(status=Delivery.Status.DELIVERED)
                                         .values_list("delivered_at", "event__occurred_at", "created_at")
                                         .iterator(chunk_size=20_000)):
        delays.append((delivered - occurred).total_seconds())
        fanout.append((created - occurred).total_seconds())
    span = OutboxEvent.objects.aggregate(first=Min("occurred_at"))["first"]
    last = Delivery.objects.aggregate(last=Max("delivered_at"))["last"]
    seconds = (last - span).total_seconds()
    result = {
        "events": args.events, "endpoints": args.endpoints, "deliveries": len(delays), "expected": total,
        "seconds": round(seconds, 1), "deliveries_per_second": round(len(delays) / seconds, 1),
        "delay_p50_s": round(_percentile(delays, 0.5), 1), "delay_p95_s": round(_percentile(delays, 0.95), 1),
        "delay_max_s": round(max(delays), 1),
        "fanout_done_after_p50_s": round(_percentile(fanout, 0.5), 1),
        "worker_peak_rss_mib": round(peak_kib / 1024, 1),
    }
    print(f"{len(delays)} deliveries in {seconds:.0f} s: {result['deliveries_per_second']:.0f}/s; delay from change "
          f"to delivery p50 {result['delay_p50_s']:.1f} s, p95 {result['delay_p95_s']:.1f} s; "
          f"worker peak RSS {result['worker_peak_rss_mib']:.0f} MiB; median event fanned out "
          f"{statistics.median(fanout):.1f} s after it happened", flush=True)
    return result


class _PeakMemory(threading.Thread):
    """The largest VmHWM among the worker and its children (the work-horses), sampled."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak_kib, self.stopping = pid, 0, threading.Event()

    def run(self):
        while not self.stopping.wait(0.2):
            for pid in [self.pid, *_children(self.pid)]:
                try:
                    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                        if line.startswith("VmHWM:"):
                            self.peak_kib = max(self.peak_kib, int(line.split()[1]))
                except OSError:
                    pass

    def stop(self):
        self.stopping.set()
        self.join(2)


def _children(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _spawn(command: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "manage.py", *command], cwd=ROOT, env=env,
                            stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    from portal.devservices import stop_process

    stop_process(proc, group=os.getpgid(proc.pid) == proc.pid if proc.poll() is None else False)


if __name__ == "__main__":
    sys.exit(main())
