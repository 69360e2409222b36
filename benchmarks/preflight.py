#!/usr/bin/env python
"""Does the wizard's review-step preflight stay under 300 ms of server time with warm caches?

    .venv/bin/python benchmarks/preflight.py [--runs 50]

Starts the emulator (python -m emulator), points builds/azure.py at it with Redis as the
cache (REDIS_URL), creates the template identity and grants it Contributor, then times
`preflight.check_body(body)` with every look-up (source, gallery target, regions, Image
Builder's regions, VM sizes, identity, role assignments and definitions, staging group,
policy assignments) on a template with a private subnet, a bring-your-own staging group and
a gallery target in two regions: once cold, then `--runs` times warm. It prints the figures
and the ARM reads the warm runs made (there should be two: the staging group and its
first resource, read every time because it fills and empties with builds). The rules' own cost is included; the
database is not (the policy is passed in), so the review step adds one policy query.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    redis_proc = None
    if not os.environ.get("REDIS_URL"):  # a private Redis, as the test suite starts one
        from portal.devservices import start_private_redis

        redis_proc, os.environ["REDIS_URL"] = start_private_redis(Path(tempfile.mkdtemp(prefix="goldsmith-bench-")))
    try:
        run(args)
    finally:
        if redis_proc is not None:
            from portal.devservices import stop_process

            stop_process(redis_proc)


def run(args: argparse.Namespace) -> None:
    import django

    django.setup()
    from django.test import override_settings

    from builds import azure, preflight
    from builds.validation import PolicyRules
    from tests.support.aib import GEN2_DEFINITION, template_body
    from tests.support.emulator import EmulatorHandle, EmulatorProcess
    from tests.support.workers import WORKER_PRINCIPAL_ID, flush_redis, identity_id, provision_identities

    with tempfile.TemporaryDirectory() as data:
        process = EmulatorProcess(Path(data)).start()
        try:
            emulator = EmulatorHandle(process.base_url, process.ca_path, process)
            provision_identities(emulator)
            flush_redis()
            with override_settings(AZURE_ARM_ENDPOINT=emulator.base_url, AZURE_AUTHORITY_HOST=emulator.base_url,
                                   AZURE_CA_BUNDLE=str(emulator.ca_path), AZURE_EMULATOR=True,
                                   AZURE_CLIENT_ID="goldsmith-worker", AZURE_CLIENT_SECRET="emulator-secret",
                                   AZURE_PRINCIPAL_ID=WORKER_PRINCIPAL_ID):
                azure.reset_clients()
                azure.lookup_cache_clear()
                sub = "/subscriptions/22222222-2222-2222-2222-222222222222"
                body = template_body(
                    distribute=[{"type": "SharedImage", "runOutputName": "g", "galleryImageId": GEN2_DEFINITION,
                                 "targetRegions": [{"name": "eastus", "replicaCount": 1},
                                                   {"name": "westeurope", "replicaCount": 2}]}],
                    vmProfile={"vmSize": "Standard_D2ds_v5", "vnetConfig": {
                        "subnetId": f"{sub}/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/v/"
                                    "subnets/builds"}},
                    stagingResourceGroup=f"{sub}/resourceGroups/goldsmith-staging",
                    managedResourceTags={"cost-center": "42"})
                body["identity"]["userAssignedIdentities"] = {identity_id("goldsmith-aib"): {}}
                rules = PolicyRules()
                start = time.perf_counter()
                cold_problems = preflight.check_body(body, policy=rules)
                cold = (time.perf_counter() - start) * 1000
                since = emulator.last_seq()
                timings = []
                for _ in range(args.runs):
                    start = time.perf_counter()
                    preflight.check_body(body, policy=rules)
                    timings.append((time.perf_counter() - start) * 1000)
                reads = emulator.requests(since)
            timings.sort()
            print("| preflight (review step) | ms |")
            print("| --- | --- |")
            print(f"| cold (every look-up) | {cold:.0f} |")
            print(f"| warm median ({args.runs} runs) | {statistics.median(timings):.1f} |")
            print(f"| warm p95 | {timings[int(len(timings) * 0.95) - 1]:.1f} |")
            print(f"| warm max | {timings[-1]:.1f} |")
            print(f"\nARM reads per warm run: {len(reads) / args.runs:.1f} "
                  f"({', '.join(sorted({r['operation'] for r in reads})) or 'none'})")
            print(f"errors on the benchmark template: {[p.rule for p in cold_problems if p.severity == 'error']}")
        finally:
            process.stop()


if __name__ == "__main__":
    main()
