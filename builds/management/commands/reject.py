from builds import approvals
from builds.management.commands._approvals import DecisionCommand


class Command(DecisionCommand):
    help = "Reject a publish request, saying why. Prints the request's state (rejected). Exits 1 when refused."
    verb = "rejects"
    comment_required = True
    decide = staticmethod(approvals.publish_request_reject)
