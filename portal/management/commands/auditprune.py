"""`manage.py auditprune`: the break-glass retention procedure (docs/audit.md).

Verifies the chain, archives events 1..ID as JSON Lines (every stored field, so the archive
verifies on its own), then deletes them in one transaction that lifts the append-only
triggers for itself only and records an `audit.prune` event anchoring what remains.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from portal import audit


class Command(BaseCommand):
    help = "Archive and delete the audit events up to --through ID (retention; break glass, see docs/audit.md)."

    def add_arguments(self, parser):
        parser.add_argument("--through", type=int, required=True, metavar="ID",
                            help="the last event id to remove (must be below the newest event)")
        parser.add_argument("--archive", required=True, metavar="FILE",
                            help="JSON Lines file to write the removed events to; must not exist yet")
        parser.add_argument("--reason", required=True, help="why, for the audit.prune event (e.g. the ticket)")
        parser.add_argument("--actor", required=True, help="who is breaking the glass (named in the audit event)")
        parser.add_argument("--yes", action="store_true", help="do it; without it only the plan is printed")

    def handle(self, *args, **options):
        through = options["through"]
        archive = Path(options["archive"])
        if archive.exists():
            raise CommandError(f"{archive} exists already; pick a new archive file.")
        verdict = audit.verify_chain()
        if not verdict.ok:
            raise CommandError(f"refusing to prune a broken chain: event #{verdict.bad_event_id}: {verdict.reason}")
        last_id, _ = audit.head()
        first_id = verdict.first_id or 0
        if through < first_id or through >= last_id:
            raise CommandError(f"--through must be between #{first_id} and #{last_id - 1} (the retained events).")
        if not options["yes"]:
            self.stdout.write(f"would archive events #{first_id} to #{through} to {archive} and delete them; "
                              "add --yes to do it")
            return
        digest = hashlib.sha256()
        with archive.open("x", encoding="utf-8") as handle:
            for values in audit.iter_events_as_dicts(through_id=through):
                line = json.dumps(values, sort_keys=True, ensure_ascii=False, default=str) + "\n"
                handle.write(line)
                digest.update(line.encode())
        try:
            result = audit.prune(through_id=through, actor=options["actor"], archive_sha256=digest.hexdigest(),
                                 reason=options["reason"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(
            f"pruned {result.deleted} events through #{result.through_id}; archive {archive} "
            f"(sha256 {digest.hexdigest()}); anchor recorded in event #{result.event.id}"))
