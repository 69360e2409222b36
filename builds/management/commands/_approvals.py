"""Shared pieces of the four-eyes commands (requestpublish, approve, reject)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from builds import services
from builds.models import PublishRequest


def active_user(username: str):
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise CommandError(f"No active user called {username}.")
    return user


def publish_request(text: str) -> PublishRequest:
    try:
        key = uuid.UUID(text)
    except ValueError:
        raise CommandError(f"'{text}' is not a request id.") from None
    found = PublishRequest.objects.filter(uuid=key).first()
    if found is None:
        raise CommandError(f"No publish request {text}.")
    return found


def refused(exc: services.ServiceError) -> CommandError:
    """Exit 1 with the reason, and one line per problem."""
    return CommandError("\n".join([exc.message] + [f"  {problem}" for problem in exc.problems]))


class DecisionCommand(BaseCommand):
    """approve and reject: one decision by --user on a publish request; prints the request's state."""

    verb = ""  # "approves", "rejects"
    comment_required = False

    def add_arguments(self, parser):
        parser.add_argument("request_id", metavar="REQUEST_ID")
        parser.add_argument("--user", required=True, metavar="USERNAME", help=f"who {self.verb}")
        parser.add_argument("--comment", required=self.comment_required, default="",
                            help="why (shown to the author)" if self.comment_required else None)

    decide: Callable[..., PublishRequest]  # the service: a staticmethod taking actor, request, comment

    def handle(self, *args, **options):
        user = active_user(options["user"])
        request = publish_request(options["request_id"])
        try:
            request = self.decide(actor=user, request=request, comment=options["comment"])
        except services.ServiceError as exc:
            raise refused(exc) from exc
        self.stdout.write(request.state)

