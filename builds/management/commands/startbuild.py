from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from builds import approvals, selectors, services
from builds.models import GoldImage


class Command(BaseCommand):
    help = ("Request a build of a gold image version, or of what one of its release channels points at "
            "(with department layers); prints the build id alone.")

    def add_arguments(self, parser):
        parser.add_argument("gold_slug")
        parser.add_argument("version", nargs="?", help="the gold version (leave out with --channel)")
        parser.add_argument("--channel", metavar="CHANNEL",
                            help="build whatever the channel (e.g. production) points at now, instead of a version; "
                                 "the build records the channel")
        parser.add_argument("--layer", action="append", default=[], metavar="DEPT/LAYER@VERSION",
                            help="a department layer to add, in order (repeatable)")
        parser.add_argument("--user", required=True, metavar="USERNAME", help="who requests the build")

    def handle(self, *args, **options):
        if bool(options["version"]) == bool(options["channel"]):
            raise CommandError("Name either a gold version or --channel CHANNEL (one of them).")
        user = get_user_model().objects.filter(username=options["user"], is_active=True).first()
        if user is None:
            raise CommandError(f"No active user called {options['user']}.")
        try:
            if options["channel"]:
                gold_image = GoldImage.objects.filter(slug=options["gold_slug"]).first()
                if gold_image is None:
                    raise selectors.NotFound(f"No gold image {options['gold_slug']}.")
            else:
                gold_version = selectors.gold_version_get(options["gold_slug"], options["version"])
            layers = [selectors.layer_version_get(ref) for ref in options["layer"]]
        except selectors.NotFound as exc:
            raise CommandError(str(exc)) from exc
        try:
            if options["channel"]:
                build = approvals.build_request_on_channel(actor=user, gold_image=gold_image,
                                                           channel=options["channel"], layer_versions=layers)
            else:
                build = services.build_request(actor=user, gold_version=gold_version, layer_versions=layers)
        except services.ServiceError as exc:
            lines = [exc.message] + [f"  {problem}" for problem in exc.problems]
            raise CommandError("\n".join(lines)) from exc
        self.stdout.write(str(build.uuid))
