"""`manage.py auditcheckpoint`: record the audit trail's head and export it.

Keep the output somewhere the database's writers cannot reach (object storage with
retention lock, a ticket, a signed e-mail): `verifyaudit --checkpoint FILE` then detects
truncation and rewriting of everything up to that head.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from portal import audit


class Command(BaseCommand):
    help = ("Record a checkpoint of the audit trail's head (last event id, its hash, the count) and print it "
            "as JSON, or write it to --output.")

    def add_arguments(self, parser):
        parser.add_argument("--output", metavar="FILE", help="write the checkpoint to FILE instead of standard output")
        parser.add_argument("--append", action="store_true",
                            help="append to FILE as one JSON line, keeping earlier checkpoints (JSON Lines)")
        parser.add_argument("--actor", default="system",
                            help="who the audit.checkpoint event names (default: system; cron jobs: e.g. cron)")

    def handle(self, *args, **options):
        if options["append"] and not options["output"]:
            raise CommandError("--append needs --output FILE.")
        checkpoint = audit.checkpoint_create(actor=options["actor"])
        document = audit.checkpoint_document(checkpoint)
        if not options["output"]:
            self.stdout.write(json.dumps(document, indent=2))
            return
        path = Path(options["output"])
        try:
            if options["append"]:
                with path.open("a", encoding="utf-8") as handle:
                    handle.write(json.dumps(document) + "\n")
            else:
                _write_atomically(path, json.dumps(document, indent=2) + "\n")
        except OSError as exc:
            raise CommandError(f"cannot write {path}: {exc}") from exc
        self.stdout.write(f"checkpoint at event #{document['last_event_id']} ({document['head_hash'][:16]}...) "
                          f"written to {path}")


def _write_atomically(path: Path, text: str) -> None:
    """Write through a temporary file and rename, so a crash never leaves half a checkpoint."""
    handle, temporary = tempfile.mkstemp(dir=path.parent or ".", prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
