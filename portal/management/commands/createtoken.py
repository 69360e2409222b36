from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from portal import tokens


class Command(BaseCommand):
    help = ("Create an API token for USERNAME and print it, alone, on standard output (it is shown only "
            "this once; only its hash is kept). Use it as `Authorization: Bearer <token>` on /api/.")

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--expires", type=int, metavar="DAYS", default=None,
                            help="days until the token expires (default: never)")
        parser.add_argument("--name", default="created with manage.py createtoken",
                            help="a name to recognise the token by on the profile page")

    def handle(self, *args, username, expires, name, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user called {username!r}.")
        if not user.is_active:
            raise CommandError(f"{username} is disabled; a token would not work.")
        try:
            token, secret = tokens.token_create(actor="system:createtoken", user=user, name=name,
                                                expires_days=expires)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        # Everything but the token goes to stderr, so `TOKEN=$(manage.py createtoken bob)` works.
        when = f"expires {token.expires_at:%Y-%m-%d %H:%M} UTC" if token.expires_at else "never expires"
        self.stderr.write(f"Token {token.prefix}… for {username} ({when}).")
        self.stdout.write(secret)
