#!/usr/bin/env python
"""Do the builds list, the audit history and the provenance pages stay flat as data grows,
and does the audit export stream a million rows in flat memory, near PostgreSQL's COPY speed?

    .venv/bin/python benchmarks/history.py                     # the full run (about 10 minutes)
    .venv/bin/python benchmarks/history.py --scale 0.01        # a quick rehearsal

It (re)creates two PostgreSQL databases (default goldsmith_bench_small and goldsmith_bench on
127.0.0.1:5432, user postgres; --database-url names the large one), migrates them and seeds
the same catalog through the real services, then loads with COPY:

- small: 100 builds, 1,000 build events, about 1,250 audit events;
- full: 100,000 builds, 1,000,000 build events, about 1,000,000 audit events,

computing the audit hash chain exactly as portal.audit.record() does (verify_chain passes).

Each database is then served by a child process of its own; the parent asks them in turn
to time every page through the Django test client (server time: request to response, no
network), so both sizes are measured under the same background load, and counts each page's
queries. On the full database it verifies the whole chain, and exports every audit event as
CSV through the export view in a fresh process, measuring throughput against `COPY (same
rows) TO STDOUT WITH CSV` and the memory growth while streaming (resident set size sampled
per chunk; tracemalloc's peak in another run), plus the worst case where every row is
screened for secrets again. Prints markdown; benchmarks/README.md keeps the latest figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import hashlib
import json
import os
import random
import statistics
import sys
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

RUNS, WARMUPS = 30, 3
SMALL_BUILDS = 100
EVENTS_PER_BUILD = 10  # BuildEvent rows per build
AUDIT_PER_BUILD = 10  # build.request, state changes, and others' logins, denials and edits
BUILD_PLACEHOLDER = uuid.UUID("deadbeef-dead-4bee-8eef-deadbeefdead")
REQUESTER_PLACEHOLDER = "requester-placeholder"
T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/goldsmith_bench")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full size (1.0: 100k builds)")
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    # The child processes' work (see main()).
    parser.add_argument("--mode", choices=["load", "serve", "verify", "copy", "plain", "traced", "worst"],
                        help=argparse.SUPPRESS)
    parser.add_argument("--builds", type=int, default=0, help=argparse.SUPPRESS)
    return parser.parse_args()


def recreate_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1].split("?")[0]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


# --- A clock the seeding services read -----------------------------------------------------------


class Clock:
    def __init__(self, start: dt.datetime):
        self.now = start

    def __call__(self) -> dt.datetime:
        self.now += dt.timedelta(milliseconds=5)
        return self.now


def seed_catalog(clock: Clock) -> dict[str, Any]:
    """Users, departments, gold images and layers through the real services (audited)."""
    from django.contrib.auth import get_user_model

    from builds import services
    from portal.models import Department, Membership
    from tests import factories

    user_model = get_user_model()
    departments = [Department.objects.create(slug=f"dept{n}", name=f"Department {n}") for n in range(10)]
    alice = user_model.objects.create(username="alice")
    dave = user_model.objects.create(username="dave")
    Membership.objects.create(user=alice, role="security")
    Membership.objects.create(user=dave, role="auditor")
    editors: dict[int, list] = {}
    for index, department in enumerate(departments):
        for n in range(4):
            user = user_model.objects.create(username=f"editor{index}-{n}")
            Membership.objects.create(user=user, role="editor", department=department)
            editors.setdefault(department.pk, []).append(user)
    gold_versions = []
    for number, os_name in enumerate(("ubuntu", "rhel", "debian", "sles", "alma")):
        image = services.gold_image_create(actor=alice, slug=os_name, name=f"{os_name.title()} baseline",
                                           os_type="Linux")
        for minor in range(4):
            version = services.gold_version_create(actor=alice, gold_image=image, version=f"{number + 1}.{minor}.0",
                                                   **factories.linux_content(changelog=f"release {minor}"))
            gold_versions.append(services.gold_version_publish(actor=alice, gold_version=version, lookups=False))
    layer_versions: dict[tuple[int, int], list] = {}  # (department id, gold image id) -> layer versions
    images = sorted({gv.gold_image_id: gv.gold_image for gv in gold_versions}.values(), key=lambda image: image.pk)
    for index, department in enumerate(departments):
        author = editors[department.pk][0]
        for k, name in enumerate(("nginx", "postgres", "monitoring")):
            image = images[(index + k) % len(images)]
            layer = services.layer_create(actor=author, department=department, gold_image=image, slug=name,
                                          name=name.title())
            for minor in range(3):
                draft = services.layer_version_create(
                    actor=author, layer=layer, version=f"1.{minor}.0", accepts="*",
                    customize=[{"type": "Shell", "name": f"{name}-{minor}", "inline": [f"echo {name} {minor}"]}])
                published = services.layer_version_publish(actor=author, layer_version=draft)
                layer_versions.setdefault((department.pk, image.pk), []).append(published)
    return {"alice": alice, "dave": dave, "departments": departments, "editors": editors,
            "gold_versions": gold_versions, "layer_versions": layer_versions}


# --- Generating and COPYing rows --------------------------------------------------------------------


def copy_rows(table: str, columns: list[str], rows: Iterator[tuple]) -> int:
    from django.db import connection

    count = 0
    with connection.cursor() as cursor, cursor.cursor.copy(
            f'COPY "{table}" ({", ".join(columns)}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


class Generator:
    """Deterministic builds, their events, outputs and audit events, appended to the chain."""

    def __init__(self, catalog: dict[str, Any], seed: int = 7):
        from django.conf import settings

        from builds import compose
        from portal import audit

        self.catalog = catalog
        self.rng = random.Random(seed)
        self.settings = settings
        self.compose = compose
        self.audit = audit
        self.templates: dict[tuple, tuple[str, str]] = {}
        self.users = [user for group in catalog["editors"].values() for user in group] + [catalog["alice"]]

    def template(self, gold_version, layer_versions) -> tuple[str, str]:
        """(JSON text, canonical text) of the composed body with placeholders for build and requester."""
        key = (gold_version.pk, *(lv.pk for lv in layer_versions))
        if key not in self.templates:
            body = self.compose.compose(gold_version, layer_versions, self.compose.BuildContext(
                location=self.settings.AZURE_LOCATION, build_id=BUILD_PLACEHOLDER, requester=REQUESTER_PLACEHOLDER))
            self.templates[key] = (json.dumps(body), self.compose.canonical_json(body))
        return self.templates[key]

    def builds(self, first: int, count: int) -> tuple[list, list, list, list, list]:
        """Rows for builds first..first+count-1: (builds, layers, events, outputs, audit dicts)."""
        builds, build_layers, events, outputs, audits = [], [], [], [], []
        departments = self.catalog["departments"]
        for number in range(first, first + count):
            start = T0 + dt.timedelta(days=1, seconds=300 * number)
            build_id = uuid.UUID(int=self.rng.getrandbits(128), version=4)
            department = self.rng.choice(departments)
            choices = [key for key in self.catalog["layer_versions"] if key[0] == department.pk]
            layer_versions: list = []
            if self.rng.random() < 0.7 and choices:
                key = self.rng.choice(choices)
                layer_versions = [self.rng.choice(self.catalog["layer_versions"][key])]
                golds = [gv for gv in self.catalog["gold_versions"] if gv.gold_image_id == key[1]]
                requester = self.rng.choice(self.catalog["editors"][department.pk])
            else:
                golds = self.catalog["gold_versions"]
                department = None
                requester = self.catalog["alice"]
            gold = self.rng.choice(golds)
            text, canonical = self.template(gold, layer_versions)
            text = text.replace(str(BUILD_PLACEHOLDER), str(build_id)).replace(REQUESTER_PLACEHOLDER,
                                                                                requester.username)
            canonical = canonical.replace(str(BUILD_PLACEHOLDER), str(build_id)).replace(REQUESTER_PLACEHOLDER,
                                                                                          requester.username)
            sha = hashlib.sha256(canonical.encode()).hexdigest()
            roll = self.rng.random()
            final = "succeeded" if roll < 0.8 else "failed" if roll < 0.9 else "canceled" if roll < 0.95 else "running"
            pk = number + 1
            phases = [("", "pending", "", ""), ("pending", "submitting", "", ""), ("submitting", "running", "", "queued"),
                      ("running", "running", "queued", "building"), ("running", "running", "building", "customizing"),
                      ("running", "running", "customizing", "optimizing"),
                      ("running", "running", "optimizing", "validating"),
                      ("running", "running", "validating", "distributing")]
            if final == "running":
                phases.append(("running", "running", "distributing", "distributing"))
            else:
                phases.append(("running", final, "distributing", ""))
            phases.append((final, final, "", "") if final != "running" else ("running", "running", "distributing", ""))
            for step, (from_state, to_state, from_sub, to_sub) in enumerate(phases[:EVENTS_PER_BUILD]):
                events.append({"build_id": pk, "at": start + dt.timedelta(seconds=25 * step), "from_state": from_state,
                               "to_state": to_state, "from_sub_state": from_sub, "to_sub_state": to_sub,
                               "detail": "PackerBuildFailed: step 3 exited 1" if to_state == "failed" else ""})
            finished = start + dt.timedelta(seconds=240) if final != "running" else None
            builds.append({
                "id": pk, "uuid": build_id, "gold_version_id": gold.pk, "requested_by_id": requester.pk,
                "department_id": department.pk if department else None, "template": text, "template_sha256": sha,
                "template_name": self.compose.template_name(build_id, gold.gold_image.slug),
                "subscription_id": self.settings.AZURE_SUBSCRIPTION_ID,
                "resource_group": self.settings.AZURE_RESOURCE_GROUP, "location": self.settings.AZURE_LOCATION,
                "state": final, "sub_state": "distributing" if final == "running" else "", "run_started": True,
                "attempts": 1, "source_exact_version": f"22.04.{20250101 + number % 365}",
                "error_code": "PackerBuildFailed" if final == "failed" else "",
                "created_at": start, "updated_at": finished or start, "submitted_at": start + dt.timedelta(seconds=25),
                "started_at": start + dt.timedelta(seconds=50), "finished_at": finished,
            })
            for position, layer_version in enumerate(layer_versions):
                build_layers.append({"build_id": pk, "layer_version_id": layer_version.pk, "position": position})
            if final == "succeeded":
                outputs.append({"build_id": pk, "run_output_name": "gallery", "distributor_type": "SharedImage",
                                "artifact_id": f"/subscriptions/x/resourceGroups/g/providers/Microsoft.Compute/galleries/"
                                               f"gal/images/{gold.gold_image.slug}/versions/1.{number % 1000}.{pk}",
                                "provisioning_state": "Succeeded"})
            label = f"build {str(build_id)[:8]} of {gold.gold_image.slug}@{gold.version}"
            common = {"object_type": "build", "object_id": str(build_id), "object_label": label,
                      "department_id": department.pk if department else None}
            audits.append({**common, "at": start, "actor_id": requester.pk, "actor_name": requester.username,
                           "actor_ip": f"10.0.{number % 250}.{number % 200 + 1}", "user_agent": "Mozilla/5.0 Firefox/140",
                           "action": "build.request", "request_id": uuid.UUID(int=pk).hex,
                           "changes": {"gold_version": [None, f"{gold.gold_image.slug}@{gold.version}"],
                                       "layers": [None, [f"{lv.layer.department.slug}/{lv.layer.slug}@{lv.version}"
                                                         for lv in layer_versions]],
                                       "template_sha256": [None, sha]}})
            written = 1
            for step, (before, after) in enumerate((("pending", "submitting"), ("submitting", "running"),
                                                    ("running", final))):
                if before == after:
                    continue
                audits.append({**common, "at": start + dt.timedelta(seconds=25 + 100 * step), "actor_id": None,
                               "actor_name": "worker:bench-1", "actor_ip": None, "user_agent": "",
                               "action": "build.state_change", "request_id": "",
                               "changes": {"state": [before, after]}})
                written += 1
            # Logins, denials and edits by others fill each build's slot to AUDIT_PER_BUILD events.
            for step in range(AUDIT_PER_BUILD - written):
                audits.append(self.other_event(start + dt.timedelta(seconds=260 + step * 5), number, step))
        return builds, build_layers, events, outputs, audits

    def other_event(self, at: dt.datetime, number: int, step: int) -> dict[str, Any]:
        user = self.rng.choice(self.users)
        kind = self.rng.random()
        base = {"at": at, "actor_id": user.pk, "actor_name": user.username,
                "actor_ip": f"192.0.2.{(number + step) % 250 + 1}", "user_agent": "Mozilla/5.0 Chrome/141",
                "request_id": uuid.UUID(int=(number << 8) + step + 1).hex, "department_id": None,
                "object_type": "", "object_id": "", "object_label": ""}
        if kind < 0.35:
            return {**base, "action": "auth.login", "object_type": "user", "object_id": str(user.pk),
                    "object_label": user.username, "changes": {"method": "local"}}
        if kind < 0.55:
            return {**base, "action": "auth.logout", "object_type": "user", "object_id": str(user.pk),
                    "object_label": user.username, "changes": {"method": "local"}}
        if kind < 0.7:
            return {**base, "action": "auth.login_failed", "outcome": "failure", "object_label": user.username,
                    "changes": {"method": "password", "reason": "invalid credentials", "username_known": True}}
        if kind < 0.85:
            target = self.rng.choice(self.catalog["gold_versions"])
            return {**base, "action": "access.denied", "outcome": "denied", "object_type": "goldimageversion",
                    "object_id": str(target.uuid), "object_label": f"{target.gold_image.slug}@{target.version}",
                    "changes": {"reason": "may not change gold image versions", "status": 403, "roles": ["editor"]}}
        department = self.rng.choice(self.catalog["departments"])
        return {**base, "action": "layer_version.update", "department_id": department.pk, "object_type": "layerversion",
                "object_id": str(uuid.UUID(int=number * 7 + step)), "object_label": f"{department.slug}/nginx@1.{step}.0",
                "changes": {"customize": [[{"type": "Shell", "inline": ["apt-get install -y nginx"]}],
                                          [{"type": "Shell", "inline": ["apt-get install -y nginx", "nginx -t"]}]]}}


def chain(audits: list[dict[str, Any]], head: tuple[int, str, dt.datetime | None]) -> tuple[list[tuple], tuple]:
    """AuditEvent rows (COPY order) with ids and hashes exactly as record() makes them."""
    from portal import audit
    from portal.redact import RULES_VERSION

    last_id, last_hash, last_at = head
    rows = []
    for values in audits:
        values.setdefault("outcome", "success")
        at = values["at"] if last_at is None or values["at"] >= last_at else last_at
        document = {"id": last_id + 1, "at": at, "actor_id": values["actor_id"], "actor_name": values["actor_name"],
                    "actor_ip": values["actor_ip"], "user_agent": values["user_agent"], "action": values["action"],
                    "object_type": values["object_type"], "object_id": values["object_id"],
                    "object_label": values["object_label"], "department_id": values["department_id"],
                    "changes": audit.normalise(values["changes"]), "request_id": values["request_id"],
                    "outcome": values["outcome"]}
        digest = audit.chain_hash(last_hash, audit.canonical_values(document))
        rows.append((document["id"], at, document["actor_id"], document["actor_name"], document["actor_ip"],
                     document["user_agent"], document["action"], document["object_type"], document["object_id"],
                     document["object_label"], document["department_id"], json.dumps(document["changes"]),
                     document["request_id"], document["outcome"], last_hash, digest, RULES_VERSION))
        last_id, last_hash, last_at = document["id"], digest, at
    return rows, (last_id, last_hash, last_at)


AUDIT_COLUMNS = ["id", "at", "actor_id", "actor_name", "actor_ip", "user_agent", "action", "object_type", "object_id",
                 "object_label", "department_id", "changes", "request_id", "outcome", "prev_hash", "hash", "redaction"]


def model_rows(model, dicts: list[dict[str, Any]]) -> tuple[list[str], Iterator[tuple]]:
    """Columns and rows for COPY, every other column at its model default."""
    fields = [f for f in model._meta.concrete_fields if not (f.primary_key and "id" not in dicts[0])]
    columns = [f.column for f in fields]
    defaults = {}
    for f in fields:
        default = f.get_default() if f.has_default() else (None if f.null else "")
        defaults[f.attname] = json.dumps(default) if isinstance(default, dict | list) else default

    def rows():
        for values in dicts:
            yield tuple(values.get(f.attname, values.get(f.name, defaults[f.attname])) for f in fields)

    return columns, rows()


def load(generator: Generator, first: int, count: int, head: tuple, batch: int = 2000) -> tuple:
    from builds.models import Build, BuildEvent, BuildLayer, BuildOutput

    done = 0
    while done < count:
        size = min(batch, count - done)
        builds, layers, events, outputs, audits = generator.builds(first + done, size)
        for model, dicts in ((Build, builds), (BuildLayer, layers), (BuildEvent, events), (BuildOutput, outputs)):
            if dicts:
                columns, rows = model_rows(model, dicts)
                copy_rows(model._meta.db_table, columns, rows)
        audit_rows, head = chain(audits, head)
        copy_rows("portal_auditevent", AUDIT_COLUMNS, iter(audit_rows))
        done += size
        if count > 10_000 and done % 20_000 == 0:
            print(f"  loaded {first + done:,} builds, audit head #{head[0]:,}", flush=True)
    return head


def finish_load() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for table in ("builds_build", "builds_buildlayer", "builds_buildevent", "builds_buildoutput"):
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                           f"(SELECT COALESCE(MAX(id), 1) FROM {table}))")
        cursor.execute("VACUUM ANALYZE") if connection.get_autocommit() else cursor.execute("ANALYZE")


def table_sizes() -> dict[str, int]:
    from django.db import connection

    sizes = {}
    with connection.cursor() as cursor:
        for table in ("builds_build", "builds_buildevent", "portal_auditevent"):
            cursor.execute(f"SELECT COUNT(*) FROM {table}")
            sizes[table] = cursor.fetchone()[0]
    return sizes


# --- Measuring pages ---------------------------------------------------------------------------------
# Each database is served by a child process of its own, and the parent asks them in turn
# (small, full, full, small, ...), so both sizes are timed under the same background load:
# on a shared machine that matters more than the number of runs.


def pages() -> list[tuple[str, str]]:
    """(name, URL) of every page measured, resolved against the database this process uses."""
    from builds.models import Build
    from portal.models import AuditEvent

    newest_layered = Build.objects.filter(build_layers__isnull=False).order_by("-id").values_list("uuid", flat=True)[0]
    oldest = Build.objects.order_by("id").values_list("uuid", flat=True)[0]
    middle = AuditEvent.objects.order_by("-id").values_list("id", flat=True)[0] // 2
    return [
        ("builds list", "/builds/"),
        ("builds list, one department", "/builds/?department=dept3"),
        ("history", "/audit/"),
        ("history, actor filter", "/audit/?actor=worker:bench-1"),
        ("history, action family", "/audit/?action=build."),
        ("history, denied only", "/audit/?outcome=denied"),
        ("history, label search", "/audit/?q=nginx"),
        ("history, one build's events", f"/audit/?object_type=build&object_id={newest_layered}"),
        ("history, a page in the middle", f"/audit/?before={middle}"),
        ("provenance, newest build", f"/audit/builds/{newest_layered}/"),
        ("provenance, oldest build", f"/audit/builds/{oldest}/"),
        ("gold image history", "/audit/gold/ubuntu/"),
    ]


def serve() -> None:
    """Child: answer page names on stdin with one timed request each, as JSON lines."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    client = Client()
    client.force_login(get_user_model().objects.get(username="dave"))
    urls = dict(pages())
    print(json.dumps({"pages": list(urls)}), flush=True)
    for line in sys.stdin:
        name, mode = json.loads(line)
        url = urls[name]
        seen: list[str] = []

        def counter(execute, sql, params, many, context, seen=seen):
            seen.append(sql)
            return execute(sql, params, many, context)

        if mode == "count":
            with connection.execute_wrapper(counter):
                response = client.get(url)
        else:
            start = time.perf_counter()
            response = client.get(url)
            elapsed = (time.perf_counter() - start) * 1000
        assert response.status_code == 200, (url, response.status_code)
        rows = response.content.count(b'title="Event ') or response.content.count(b'<td><a href="/builds/')
        print(json.dumps({"ms": elapsed if mode == "time" else None, "queries": len(seen), "rows": rows}),
              flush=True)


class Server:
    def __init__(self, database_url: str):
        import subprocess

        self.process = subprocess.Popen([sys.executable, __file__, "--database-url", database_url, "--mode", "serve"],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO)
        self.pages = json.loads(self.process.stdout.readline())["pages"]

    def ask(self, name: str, mode: str) -> dict[str, Any]:
        self.process.stdin.write(json.dumps([name, mode]) + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)


def measure_pages(small_url: str, full_url: str, runs: int) -> tuple[dict, dict]:
    small, full = Server(small_url), Server(full_url)
    results: tuple[dict, dict] = ({}, {})
    try:
        for name in small.pages:
            servers = (small, full)
            for server in servers:
                for _ in range(WARMUPS):
                    server.ask(name, "warm")
            counted = [server.ask(name, "count") for server in servers]
            times: tuple[list, list] = ([], [])
            for run in range(runs):
                order = (0, 1) if run % 2 == 0 else (1, 0)
                for index in order:
                    times[index].append(servers[index].ask(name, "time")["ms"])
            for index in (0, 1):
                ordered = sorted(times[index])
                results[index][name] = {"median_ms": statistics.median(ordered),
                                        "p95_ms": ordered[max(0, int(len(ordered) * 0.95) - 1)],
                                        "queries": counted[index]["queries"], "rows": counted[index]["rows"]}
    finally:
        small.close()
        full.close()
    return results


# --- The export -----------------------------------------------------------------------------------------


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def export_child(mode: str) -> None:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    client = Client()
    client.force_login(get_user_model().objects.get(username="dave"))
    client.get("/audit/")  # warm: imports, templates, the connection
    print(json.dumps(export_run(client, trace=mode == "traced")))


def export_worst_case() -> dict[str, Any]:
    """Every row screened for secrets again, as after a change of the redaction rules (direct, no view)."""
    from portal import audit_export
    from portal.models import AuditEvent

    gc.collect()
    rss_before = rss_kb()
    start = time.perf_counter()
    total = rows = 0
    rss_peak = rss_before
    for chunk in audit_export.csv_chunks_copy(AuditEvent.objects.all(), through_id=10**12, screen_all=True):
        total += len(chunk)
        rows += chunk.count(b"\r\n")
        rss_peak = max(rss_peak, rss_kb())
    return {"seconds": time.perf_counter() - start, "bytes": total, "rows": rows - 1,
            "rss_growth_mb": (rss_peak - rss_before) / 1024}


def export_run(client, *, trace: bool) -> dict[str, Any]:
    gc.collect()
    rss_before = rss_kb()
    if trace:
        tracemalloc.start()
        traced_before = tracemalloc.get_traced_memory()[0]
    start = time.perf_counter()
    response = client.post("/audit/export/", {"format": "csv"})
    total = rows = 0
    rss_peak = rss_before
    for chunk in response.streaming_content:
        total += len(chunk)
        rows += chunk.count(b"\r\n")
        rss_peak = max(rss_peak, rss_kb())
    seconds = time.perf_counter() - start
    result = {"seconds": seconds, "bytes": total, "rows": rows - 1, "rss_growth_mb": (rss_peak - rss_before) / 1024}
    if trace:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        result["traced_peak_growth_mb"] = (peak - traced_before) / 1024 / 1024
    return result


def copy_baseline() -> dict[str, Any]:
    """PostgreSQL writing the same columns of the same rows as CSV, read by this process."""
    from django.db import connection

    sql = ("COPY (SELECT e.id, e.at, e.actor_name, e.actor_id, e.actor_ip, e.user_agent, e.action, e.object_type, "
           "e.object_id, e.object_label, e.department_id, d.slug, e.outcome, e.request_id, e.changes::text, "
           "e.prev_hash, e.hash FROM portal_auditevent e LEFT JOIN portal_department d ON d.id = e.department_id "
           "ORDER BY e.id) TO STDOUT WITH CSV HEADER")
    start = time.perf_counter()
    total = rows = 0
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for block in copy:
            total += len(block)
            rows += bytes(block).count(b"\n")
    return {"seconds": time.perf_counter() - start, "bytes": total, "rows": rows - 1}


# --- Main ---------------------------------------------------------------------------------------------------


def table(results: dict[str, dict], small: dict[str, dict]) -> str:
    lines = ["| page | rows shown | 100 builds: median / p95 ms | full: median / p95 ms | ratio (median) "
             "| queries small / full |", "| --- | --- | --- | --- | --- | --- |"]
    for name, full in results.items():
        base = small[name]
        ratio = full["median_ms"] / base["median_ms"]
        lines.append(f"| {name} | {base['rows']} / {full['rows']} | {base['median_ms']:.1f} / {base['p95_ms']:.1f} | "
                     f"{full['median_ms']:.1f} / "
                     f"{full['p95_ms']:.1f} | {ratio:.2f} | {base['queries']} / {full['queries']} |")
    return "\n".join(lines)


def child(args: argparse.Namespace, *extra: str) -> dict[str, Any]:
    """Run this script in a child process for one database; returns the JSON it prints last."""
    import subprocess

    done = subprocess.run([sys.executable, __file__, "--database-url", args.database_url, *extra],
                          stdout=subprocess.PIPE, text=True, check=True, cwd=REPO)
    return json.loads(done.stdout.strip().splitlines()[-1])


def load_database(builds: int) -> dict[str, Any]:
    """Child: a fresh database with the catalog and `builds` builds (and their events)."""
    from django.core.management import call_command
    from django.utils import timezone

    from portal import audit

    call_command("migrate", verbosity=0)
    clock = Clock(T0)
    real_now = timezone.now
    timezone.now = clock  # the seeding services stamp their rows and events with the benchmark's past
    try:
        catalog = seed_catalog(clock)
    finally:
        timezone.now = real_now
    head = audit.AuditEvent.objects.order_by("-id").values_list("id", "hash", "at").first()
    started = time.perf_counter()
    load(Generator(catalog), 0, builds, head)
    finish_load()
    return {"sizes": table_sizes(), "load_seconds": time.perf_counter() - started}


def verify_database() -> dict[str, Any]:
    from portal import audit

    started = time.perf_counter()
    verdict = audit.verify_chain()
    return {"ok": verdict.ok, "events": verdict.checked, "seconds": time.perf_counter() - started,
            "reason": verdict.reason}


def main() -> None:
    args = parse_args()
    os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    if args.mode:
        import django

        django.setup()
        if args.mode == "serve":
            serve()
            return
        if args.mode in ("plain", "traced"):
            export_child(args.mode)
            return
        result = {"load": lambda: load_database(args.builds), "verify": verify_database,
                  "copy": copy_baseline, "worst": export_worst_case}[args.mode]()
        print(json.dumps(result, default=str))
        return
    started = time.perf_counter()
    full_builds = int(100_000 * args.scale)
    small_url = args.database_url + "_small"
    for url in (small_url, args.database_url):
        recreate_database(url)
    small_args = argparse.Namespace(**{**vars(args), "database_url": small_url})
    small_load = child(small_args, "--mode", "load", "--builds", str(SMALL_BUILDS))
    print(f"small: {small_load['sizes']}", flush=True)
    full_load = child(args, "--mode", "load", "--builds", str(full_builds))
    print(f"full: {full_load['sizes']} (loaded in {full_load['load_seconds']:.0f} s)", flush=True)
    small, full = measure_pages(small_url, args.database_url, args.runs)
    print("pages measured", flush=True)
    verdict = child(args, "--mode", "verify")
    assert verdict["ok"], verdict
    copy = child(args, "--mode", "copy")
    throughput = child(args, "--mode", "plain")
    traced = child(args, "--mode", "traced")
    worst = child(args, "--mode", "worst")
    copy_again = child(args, "--mode", "copy")
    best_copy = min(copy["seconds"], copy_again["seconds"])
    figures = {
        "sizes": {"small": small_load["sizes"], "full": full_load["sizes"]}, "load_seconds": full_load["load_seconds"],
        "pages_small": small, "pages_full": full, "verify": verdict, "export": throughput, "export_traced": traced,
        "export_worst_case": worst, "copy": copy, "copy_again": copy_again, "total_seconds": time.perf_counter() - started,
        "load_average": os.getloadavg(),
    }
    print()
    print(f"Sizes: small {small_load['sizes']}; full {full_load['sizes']}.")
    print()
    print(table(full, small))
    print()
    print(f"verify_chain over {verdict['events']:,} events: {verdict['seconds']:.1f} s "
          f"({verdict['events'] / verdict['seconds']:,.0f} events/s)")
    rate = throughput["rows"] / throughput["seconds"]
    copy_rate = copy["rows"] / best_copy
    print(f"CSV export through the view: {throughput['rows']:,} rows, {throughput['bytes'] / 1e6:.0f} MB in "
          f"{throughput['seconds']:.1f} s = {rate:,.0f} rows/s; RSS growth {throughput['rss_growth_mb']:.1f} MB")
    print(f"  with tracemalloc: peak Python allocation growth {traced['traced_peak_growth_mb']:.1f} MB "
          f"(RSS growth {traced['rss_growth_mb']:.1f} MB, {traced['seconds']:.1f} s)")
    print(f"COPY ... TO STDOUT WITH CSV: {copy['rows']:,} rows, {copy['bytes'] / 1e6:.0f} MB in {best_copy:.1f} s "
          f"= {copy_rate:,.0f} rows/s; export / COPY throughput = {rate / copy_rate:.2f}")
    worst_rate = worst["rows"] / worst["seconds"]
    print(f"worst case, every row screened again (after a change of redaction rules): {worst['seconds']:.1f} s = "
          f"{worst_rate:,.0f} rows/s ({worst_rate / copy_rate:.2f} of COPY); RSS growth {worst['rss_growth_mb']:.1f} MB")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"total {figures['total_seconds'] / 60:.0f} min")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2, default=str))


if __name__ == "__main__":
    main()
