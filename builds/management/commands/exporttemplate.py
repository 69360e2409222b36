import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from builds import compose, selectors


class Command(BaseCommand):
    help = "Print the Image Builder template body composed from a gold image version and layers, as JSON."

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
        for layer_version in layers:
            if layer_version.layer.gold_image_id != gold_version.gold_image_id:
                raise CommandError(f"{layer_version} extends {layer_version.layer.gold_image.slug}, "
                                   f"not {gold_version.gold_image.slug}.")
        body = compose.compose(gold_version, layers, compose.BuildContext(location=settings.AZURE_LOCATION))
        self.stdout.write(json.dumps(body, indent=2))
