import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand

from builds import importer, preflight, schema

EXIT_CLEAN, EXIT_PROBLEMS, EXIT_UNREADABLE = 0, 1, 2


class Command(BaseCommand):
    help = ("Check an Image Builder template file (bare body, ARM resource or ARM deployment template) against every "
            "rule Goldsmith enforces. Exit 0 when clean, 1 with one line per problem (rule id, JSON path, message), "
            "2 when the input cannot be read.")

    stealth_options = ("stdin",)

    def add_arguments(self, parser):
        parser.add_argument("path", help="the template file ('-' reads standard input)")
        parser.add_argument("--json", action="store_true", help="print the problems as JSON")
        parser.add_argument("--policy", default=None, metavar="NAME",
                            help="the build policy to apply (default: the current default policy)")
        parser.add_argument("--offline", action="store_true",
                            help="skip the catalog look-ups (source image, security types, gallery targets)")
        parser.add_argument("--os-type", choices=["Linux", "Windows"], default=None,
                            help="check steps against this OS family (default: guessed from the template)")
        parser.add_argument("--warnings", action="store_true", help="list warnings too (they never fail the check)")

    def execute(self, *args, **options):
        # CommandError's exit status is 1, which means "problems found" here; unreadable input is 2.
        try:
            return super().execute(*args, **options)
        except _Unreadable as exc:
            self.stderr.write(str(exc))
            sys.exit(EXIT_UNREADABLE)

    def handle(self, *args, **options):
        path = options["path"]
        try:
            raw = (options.get("stdin") or sys.stdin).read() if path == "-" else Path(path).read_bytes()
        except (OSError, UnicodeDecodeError) as exc:
            raise _Unreadable(f"Cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from exc
        try:
            # load() refuses non-UTF-8 bytes and too-deep nesting before json.loads could recurse.
            parsed = importer.parse(importer.load(raw))
        except importer.ImportError_ as exc:
            if not exc.problems:
                raise _Unreadable(str(exc)) from exc
            problems, body = exc.problems, None
        else:
            body = parsed.body
            try:
                problems = parsed.problems + preflight.check_body(
                    body, policy=options["policy"], lookups=not options["offline"],
                    os_type=options["os_type"] or importer.guess_os_type(body))
            except preflight.UnknownPolicy as exc:
                raise _Unreadable(str(exc)) from exc
        problems = schema.dedupe(problems)
        errors = schema.errors(problems)
        shown = problems if options["warnings"] or options["json"] else errors
        if options["json"]:
            self.stdout.write(json.dumps({"ok": not errors, "problems": [p.as_dict() for p in shown]}, indent=2))
        else:
            for problem in shown:
                self.stdout.write(f"{problem.rule}\t{problem.path or '(template)'}\t{problem.message}"
                                  + ("\t(warning)" if problem.severity != "error" else ""))
            if not errors:
                self.stdout.write(f"OK: {path} passes every check" + (" (offline)." if options["offline"] else "."))
        if errors:
            sys.exit(EXIT_PROBLEMS)


class _Unreadable(Exception):
    pass
