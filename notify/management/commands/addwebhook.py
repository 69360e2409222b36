"""`manage.py addwebhook URL --user U --events TYPE[,TYPE...] [--scope department:SLUG] [--secret S]`

Creates a generic (signed) webhook owned by U and prints its id alone on stdout (so
`ID=$(manage.py addwebhook ...)` works); when --secret is not given, a secret is generated and
printed once on stderr as `secret: whsec_...` (it is never shown again).
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from notify import services
from portal.models import Department


class Command(BaseCommand):
    help = "Add a signed webhook endpoint; prints its id (and the generated secret, once)."

    def add_arguments(self, parser):
        parser.add_argument("url")
        parser.add_argument("--user", required=True, help="the owner's user name")
        parser.add_argument("--events", required=True, help="event types, comma-separated (docs/events.md)")
        parser.add_argument("--scope", default="", help="department:SLUG for one department's objects")
        parser.add_argument("--secret", default="", help="the HMAC secret (default: a new one, printed once)")

    def handle(self, *args, url, user, events, scope, secret, **options):
        owner = get_user_model().objects.filter(username=user, is_active=True).first()
        if owner is None:
            raise CommandError(f"No active user {user!r}.")
        department = None
        if scope:
            kind, _, slug = scope.partition(":")
            if kind != "department" or not slug:
                raise CommandError("--scope must be department:SLUG.")
            department = Department.objects.filter(slug=slug).first()
            if department is None:
                raise CommandError(f"No department {slug!r}.")
        try:
            endpoint, made_secret = services.endpoint_create(
                actor=owner, kind="webhook", url=url, department=department, secret=secret,
                event_types=[name.strip() for name in events.split(",") if name.strip()])
        except services.NotifyError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(str(endpoint.uuid))
        if not secret:
            self.stderr.write(f"secret: {made_secret}")
