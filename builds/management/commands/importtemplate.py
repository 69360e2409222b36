from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from builds import importer, services


class Command(BaseCommand):
    help = ("Create a gold image version from an existing Image Builder template: a bare body, an ARM resource "
            "or an ARM deployment template with one imageTemplates resource.")

    def create_parser(self, prog_name, subcommand, **kwargs):
        # --version names the gold image version here; it replaces Django's own --version flag.
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("path", help="the template file ('-' reads standard input)")
        parser.add_argument("--gold-image", required=True, metavar="SLUG", help="created when it does not exist")
        parser.add_argument("--version", required=True, metavar="X.Y.Z")
        parser.add_argument("--publish", action="store_true", help="publish the version when it has no problems")
        parser.add_argument("--resource-group", default="", metavar="RG", help="where its builds create templates")
        parser.add_argument("--name", default="", help="display name for a new gold image")
        parser.add_argument("--user", default="", metavar="USERNAME", help="record the import as this user")

    def handle(self, *args, **options):
        path = options["path"]
        try:
            text = self.stdin.read() if path == "-" else Path(path).read_text()
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}") from exc
        actor = self._actor(options["user"])
        try:
            gold_version, problems = services.gold_version_import(
                actor=actor, gold_slug=options["gold_image"], version=options["version"], data=importer.load(text),
                publish=options["publish"], resource_group=options["resource_group"], name=options["name"])
        except importer.ImportError_ as exc:
            lines = [str(exc)] + [f"  {problem}" for problem in exc.problems]
            raise CommandError("\n".join(lines)) from exc
        except services.ServiceError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"Imported {gold_version} as {gold_version.status}.")
        for problem in problems:
            self.stdout.write(f"  {problem.severity}: {problem}")
        if options["publish"] and gold_version.is_draft:
            self.stdout.write("Not published: fix the errors above in the draft, then publish it.")

    def _actor(self, username):
        if not username:
            return "system"
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user called {username}.")
        return user
