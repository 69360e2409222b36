from builds import approvals
from builds.management.commands._approvals import DecisionCommand


class Command(DecisionCommand):
    help = ("Approve a publish request; the last approval the policy asks for publishes the version. Prints the "
            "request's state (pending, approved). Exits 1 when refused (four eyes, role, changed content).")
    verb = "approves"
    decide = staticmethod(approvals.publish_request_approve)
