from django.core.management.base import BaseCommand, CommandError

from builds import approvals, selectors, services
from builds.management.commands._approvals import active_user, refused


class Command(BaseCommand):
    help = ("Ask for a draft to be published: SLUG VERSION for a gold image version, DEPT/LAYER VERSION for a "
            "layer version. Every publish check runs first; prints the request id alone. Exits 1 when refused.")

    def create_parser(self, prog_name, subcommand, **kwargs):
        # The positional VERSION names the catalog version; Django's own --version is not needed here.
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("target", metavar="SLUG|DEPT/LAYER")
        parser.add_argument("version", metavar="VERSION")
        parser.add_argument("--user", required=True, metavar="USERNAME", help="who asks (the request's author)")
        parser.add_argument("--comment", default="", help="what the approvers should know")

    def handle(self, *args, **options):
        user = active_user(options["user"])
        target_ref, version = options["target"], options["version"]
        try:
            if "/" in target_ref:
                target = selectors.layer_version_get(f"{target_ref}@{version}")
            else:
                target = selectors.gold_version_get(target_ref, version)
        except selectors.NotFound as exc:
            raise CommandError(str(exc)) from exc
        try:
            request = approvals.publish_request_create(actor=user, target=target, comment=options["comment"])
        except services.ServiceError as exc:
            raise refused(exc) from exc
        self.stdout.write(str(request.uuid))
