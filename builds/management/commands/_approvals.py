"""Shared pieces of the four-eyes commands (requestpublish, approve, reject)."""

from __future__ import annotations

import uuid

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

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
