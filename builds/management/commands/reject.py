from django.core.management.base import BaseCommand

from builds import approvals, services
from builds.management.commands._approvals import active_user, publish_request, refused


class Command(BaseCommand):
    help = "Reject a publish request, saying why. Prints the request's state (rejected). Exits 1 when refused."

    def add_arguments(self, parser):
        parser.add_argument("request_id", metavar="REQUEST_ID")
        parser.add_argument("--user", required=True, metavar="USERNAME", help="who rejects")
        parser.add_argument("--comment", required=True, help="why (shown to the author)")

    def handle(self, *args, **options):
        user = active_user(options["user"])
        request = publish_request(options["request_id"])
        try:
            request = approvals.publish_request_reject(actor=user, request=request, comment=options["comment"])
        except services.ServiceError as exc:
            raise refused(exc) from exc
        self.stdout.write(request.state)
