import sys
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from builds import approvals, importer, schema, services

# As checktemplate: 1 when the template has problems (or the catalog refuses the import), 2 when
# the input cannot be read as a template at all.
EXIT_PROBLEMS, EXIT_UNREADABLE = 1, 2


class Command(BaseCommand):
    help = ("Create a gold image version from an existing Image Builder template: a bare body, an ARM resource "
            "or an ARM deployment template with one imageTemplates resource. With --publish it runs every check "
            "the wizard runs before publishing and, on any error, prints one line per problem (rule id, JSON path, "
            "message), writes nothing and exits 1; when they pass it requests publishing (four eyes) and prints "
            "the request id, or with --break-glass (administrators) publishes at once. Unreadable input exits 2.")

    stealth_options = ("stdin",)

    def create_parser(self, prog_name, subcommand, **kwargs):
        # --version names the gold image version here; it replaces Django's own --version flag.
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("path", help="the template file ('-' reads standard input)")
        parser.add_argument("--gold-image", required=True, metavar="SLUG", help="created when it does not exist")
        parser.add_argument("--version", required=True, metavar="X.Y.Z")
        parser.add_argument("--publish", action="store_true",
                            help="request publishing (needs --user); refused (nothing imported) unless every check "
                                 "passes")
        parser.add_argument("--break-glass", default="", metavar="REASON",
                            help="with --publish: publish without approvals (administrators only), for this reason")
        parser.add_argument("--resource-group", default="", metavar="RG", help="where its builds create templates")
        parser.add_argument("--name", default="", help="display name for a new gold image")
        parser.add_argument("--user", default="", metavar="USERNAME", help="record the import as this user")

    def handle(self, *args, **options):
        path = options["path"]
        try:
            raw = (options.get("stdin") or sys.stdin).read() if path == "-" else Path(path).read_bytes()
            data = importer.load(raw)
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror or exc}", returncode=EXIT_UNREADABLE) from exc
        except (UnicodeDecodeError, importer.ImportError_) as exc:
            raise CommandError(f"Cannot read {path}: {exc}", returncode=EXIT_UNREADABLE) from exc
        actor = self._actor(options["user"])
        if options["break_glass"] and not options["publish"]:
            raise CommandError("--break-glass goes with --publish.")
        if options["publish"] and actor == "system":
            raise CommandError("--publish needs --user: a publish request has an author.")
        request = None
        try:
            if options["publish"]:
                gold_version, request = approvals.gold_version_import_and_request(
                    actor=actor, gold_slug=options["gold_image"], version=options["version"], data=data,
                    resource_group=options["resource_group"], name=options["name"],
                    break_glass_reason=options["break_glass"])
                problems = []
            else:
                gold_version, problems = services.gold_version_import(
                    actor=actor, gold_slug=options["gold_image"], version=options["version"], data=data,
                    resource_group=options["resource_group"], name=options["name"])
        except importer.ImportError_ as exc:
            if not exc.problems:
                raise CommandError(str(exc), returncode=EXIT_UNREADABLE) from exc
            self._print(exc.problems)
            raise CommandError(f"{exc} Nothing was imported.", returncode=EXIT_PROBLEMS) from exc
        except services.ServiceError as exc:
            self._print(exc.problems)
            raise CommandError(exc.message + (" Nothing was imported." if exc.problems else ""),
                               returncode=EXIT_PROBLEMS) from exc
        if request is not None and request.break_glass:
            self.stdout.write(f"Imported {gold_version} as {gold_version.status} (BREAK-GLASS, no approvals).")
            return
        self.stdout.write(f"Imported {gold_version} as {gold_version.status}.")
        if request is not None:
            self.stdout.write(f"Publish request {request.uuid} is waiting for approval.")
        for problem in problems:
            self.stdout.write(f"  {problem.severity}: {problem}")
        if schema.errors(problems):
            self.stdout.write("Fix the errors above in the draft before publishing it.")

    def _print(self, problems):
        # checktemplate's format, so the same tools read both commands' output.
        for problem in schema.dedupe(problems):
            self.stdout.write(f"{problem.rule}\t{problem.path or '(template)'}\t{problem.message}"
                              + ("\t(warning)" if problem.severity != "error" else ""))

    def _actor(self, username):
        if not username:
            return "system"
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user called {username}.")
        return user
