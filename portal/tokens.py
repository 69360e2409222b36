"""Personal API tokens: creation, revocation and `Authorization: Bearer` authentication for /api/.

A token is "gst_" followed by 43 URL-safe characters (256 random bits). Only its SHA-256 is
stored (a slow hash adds nothing for a random secret of that size), with its first characters
as `prefix` so owners can tell their tokens apart. It is shown once, when created. A token acts
as its user with the user's roles *at the time of each request* (portal.access), so removing a
membership narrows every token at once; it stops working when revoked, expired, or when the user
is deactivated. Bearer tokens are accepted under /api/ only: pages never read them, so a stolen
token cannot drive the HTML forms.

For the API: `BearerTokenAuthentication` (a DRF authentication class) or, for plain Django
views, `user_from_bearer(request)`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from django.db import transaction
from django.utils import timezone

from portal import audit
from portal.models import ApiToken

TOKEN_PREFIX = "gst_"
API_PREFIX = "/api/"
_LAST_USED_RESOLUTION = dt.timedelta(minutes=1)  # write last_used_at at most once a minute


class TokenError(Exception):
    """The Authorization header carries a token that is not (or no longer) valid."""


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@transaction.atomic
def token_create(*, actor, user, name: str, expires_days: int | None = None) -> tuple[ApiToken, str]:
    """Make a token for `user`; returns (the row, the token itself, which is never stored).

    Raises ValueError for an empty name or a non-positive expiry. Records `token.create`.
    """
    name = name.strip()
    if not name:
        raise ValueError("Give the token a name, e.g. the pipeline that will use it.")
    if expires_days is not None and expires_days < 1:
        raise ValueError("A token must be valid for at least one day.")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires_at = timezone.now() + dt.timedelta(days=expires_days) if expires_days else None
    token = ApiToken.objects.create(user=user, name=name[:100], prefix=secret[:12], digest=digest(secret),
                                    expires_at=expires_at)
    audit.record("token.create", actor=actor, obj=token, label=f"{token.name} ({token.prefix}…) of {user}",
                 changes={"user": user.get_username(), "expires_at": expires_at.isoformat() if expires_at else None})
    return token, secret


@transaction.atomic
def token_revoke(*, actor, token: ApiToken) -> ApiToken:
    """Revoke the token (idempotent: revoking a revoked token changes nothing and records nothing)."""
    token = ApiToken.objects.select_for_update().get(pk=token.pk)
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit.record("token.revoke", actor=actor, obj=token,
                     label=f"{token.name} ({token.prefix}…) of {token.user}", changes={"user": token.user.get_username()})
    return token


def is_usable(token: ApiToken, now: dt.datetime | None = None) -> bool:
    now = now or timezone.now()
    return token.revoked_at is None and (token.expires_at is None or token.expires_at > now)


def authenticate_token(secret: str):
    """The active user a token belongs to; raises TokenError when it is unknown, revoked,
    expired, or its user is inactive. Updates last_used_at (at most once a minute)."""
    if not secret.startswith(TOKEN_PREFIX):
        raise TokenError("Invalid token.")
    wanted = digest(secret)
    token = ApiToken.objects.select_related("user").filter(digest=wanted).first()
    # The lookup is by digest (an index), and the compare is constant-time for good measure.
    if token is None or not hmac.compare_digest(token.digest, wanted):
        raise TokenError("Invalid token.")
    now = timezone.now()
    if not is_usable(token, now):
        raise TokenError("This token has been revoked or has expired.")
    if not token.user.is_active:
        raise TokenError("The token's user is disabled.")
    if token.last_used_at is None or now - token.last_used_at >= _LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    token.user.api_token = token  # lets views and the audit see which token acted
    return token.user


def bearer_secret(request) -> str | None:
    """The token of an `Authorization: Bearer ...` header, or None when there is no such header."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip()


def user_from_bearer(request):
    """For plain Django views under /api/: the token's user, None without a Bearer header.

    Raises TokenError for a bad token; returns None outside /api/ whatever the header says.
    """
    if not request.path.startswith(API_PREFIX):
        return None
    secret = bearer_secret(request)
    if secret is None:
        return None
    return authenticate_token(secret)


try:
    from rest_framework import authentication, exceptions
except ImportError:  # pragma: no cover - DRF is a pinned dependency
    authentication = None

if authentication is not None:

    class BearerTokenAuthentication(authentication.BaseAuthentication):
        """DRF authentication with Goldsmith API tokens; answers 401 with
        `WWW-Authenticate: Bearer realm="goldsmith"` when credentials are missing or bad."""

        def authenticate(self, request):
            try:
                user = user_from_bearer(request._request)
            except TokenError as exc:
                raise exceptions.AuthenticationFailed(str(exc)) from exc
            if user is None:
                return None
            return (user, user.api_token)

        def authenticate_header(self, request):
            return 'Bearer realm="goldsmith"'
