import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from builds import compose, preflight, release, selectors, services


class Command(BaseCommand):
    help = ("Print the Image Builder template body composed from a gold image version and layers, as JSON. "
            "Exit 1 with the reason when they could not be built (a draft, a layer outside its accepted range).")

    def add_arguments(self, parser):
        parser.add_argument("gold_slug")
        parser.add_argument("version")
        parser.add_argument("--layer", action="append", default=[], metavar="DEPT/LAYER@VERSION",
                            help="a department layer to add, in order (repeatable)")

    def handle(self, *args, **options):
        try:
            gold_version = selectors.gold_version_get(options["gold_slug"], options["version"])
            layers = [selectors.layer_version_get(ref) for ref in options["layer"]]
        except selectors.NotFound as exc:
            raise CommandError(str(exc)) from exc
        # The build request's own preconditions, so a template that could never be built (a draft,
        # a layer outside its accepted range) is refused here as the pages and the API refuse it.
        problems = services.build_preconditions(gold_version, layers)
        if problems:
            raise CommandError("\n".join(problem.message for problem in problems))
        # A Goldsmith-named staging group is per build: its name keeps the <build-id> placeholder here.
        body = compose.compose(gold_version, layers, compose.BuildContext(
            location=settings.AZURE_LOCATION, subscription=settings.AZURE_SUBSCRIPTION_ID,
            exclude_from_latest=release.excluded_until_promoted(gold_version), policy=preflight.policy_rules()))
        self.stdout.write(json.dumps(body, indent=2))
