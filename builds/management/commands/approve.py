from django.core.management.base import BaseCommand

from builds import approvals, services
from builds.management.commands._approvals import active_user, publish_request, refused


class Command(BaseCommand):
    help = ("Approve a publish request; the last approval the policy asks for publishes the version. Prints the "
            "request's state (pending, approved). Exits 1 when refused (four eyes, role, changed content).")

    def add_arguments(self, parser):
        parser.add_argument("request_id", metavar="REQUEST_ID")
        parser.add_argument("--user", required=True, metavar="USERNAME", help="who approves")
        parser.add_argument("--comment", default="")

    def handle(self, *args, **options):
        user = active_user(options["user"])
        request = publish_request(options["request_id"])
        try:
            request = approvals.publish_request_approve(actor=user, request=request, comment=options["comment"])
        except services.ServiceError as exc:
            raise refused(exc) from exc
        self.stdout.write(request.state)
