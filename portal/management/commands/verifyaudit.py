"""`manage.py verifyaudit`: prove the audit trail was not edited.

Exit status: 0 when the chain is intact (and matches every checkpoint), 1 naming the first
bad event otherwise, 2 when a checkpoint file cannot be read.
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from portal import audit


class Command(BaseCommand):
    help = ("Walk the audit hash chain and check it against the stored checkpoints and any exported "
            "checkpoint files. Exits 0 when intact, 1 naming the first bad event, 2 for unreadable input.")

    def add_arguments(self, parser):
        parser.add_argument("--since", type=int, metavar="ID",
                            help="start the walk at event ID (linked to the event before it) instead of the start")
        parser.add_argument("--checkpoint", action="append", default=[], metavar="FILE",
                            help="a checkpoint exported by `auditcheckpoint` (JSON or JSON Lines); repeatable, "
                                 "'-' reads standard input")
        parser.add_argument("--no-stored-checkpoints", action="store_true",
                            help="ignore the checkpoints kept in the database (check only the files given)")

    def handle(self, *args, **options):
        checkpoints: list[audit.Checkpoint] = []
        for name in options["checkpoint"]:
            checkpoints += _read_checkpoints(name, self.stdin if name == "-" else None)
        if options["since"] is not None and options["since"] < 1:
            raise CommandError("--since must be an event id of 1 or more.", returncode=2)
        verdict = audit.verify_chain(since_id=options["since"], checkpoints=checkpoints,
                                     stored_checkpoints=not options["no_stored_checkpoints"])
        for note in verdict.notes:
            self.stdout.write(f"note: {note}")
        if not verdict.ok:
            raise CommandError(f"audit trail TAMPERED at event #{verdict.bad_event_id}: {verdict.reason} "
                               f"({verdict.checked} events read)", returncode=1)
        walked = f"#{verdict.first_id} to #{verdict.last_id}" if verdict.checked else "no events"
        self.stdout.write(self.style.SUCCESS(
            f"audit trail intact: {verdict.checked} events verified ({walked}), "
            f"{len(checkpoints)} checkpoint file entr{'y' if len(checkpoints) == 1 else 'ies'} matched"))


def _read_checkpoints(name: str, stdin=None) -> list[audit.Checkpoint]:
    try:
        text = stdin.read() if stdin is not None else Path(name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"cannot read checkpoint file {name}: {exc}", returncode=2) from exc
    try:
        return audit.checkpoints_from_text(text, source=f"checkpoint file {name}")
    except audit.CheckpointError as exc:
        raise CommandError(f"checkpoint file {name} is not a checkpoint: {exc}", returncode=2) from exc
