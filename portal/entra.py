"""Microsoft Entra ID sign-in: msal's authorization-code flow with PKCE, and our own ID token checks.

msal builds the authorize URL (state, nonce, PKCE S256) and redeems the code; since msal 1.38
it no longer validates ID tokens, so `validate_id_token` checks them here with PyJWT: the
signature against the tenant's published keys (found through the discovery document), the
algorithm, issuer, audience (our client id), tenant (`tid`), expiry/not-before/issued-at with
ENTRA_CLOCK_SKEW_SECONDS of slack, the nonce, the type of every claim we read
(`check_claim_types`) and `azp` for a token with several audiences. App roles (the `roles`
claim) become Goldsmith memberships through RoleMapping rows; users are created just in time
and linked by tenant and object id, never by name.

Every refusal raises SignInRefused with a stable `reason` (the audit event's and the error
page's key); nothing here creates a session (portal/signin.py does, after `complete` returns).
"""

from __future__ import annotations

import hashlib
import time
import warnings
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import jwt
import msal
import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone

from portal.models import Department, ExternalIdentity, Membership, RoleMapping

FLOW_SESSION_KEY = "goldsmith_entra_flow"
FLOW_MAX_AGE = 10 * 60  # seconds a started sign-in may take before its callback is refused
_METADATA_SECONDS = 60 * 60
_HTTP_TIMEOUT = 15

# reason -> what the person is told. Reasons are also the `reason` in auth.login_failed events.
MESSAGES = {
    "not_configured": "Sign-in with Microsoft is not set up on this portal.",
    "no_flow": "This sign-in link has already been used or has expired. Please start again.",
    "state": "The answer from Microsoft did not match the sign-in this browser started. Please start again.",
    "idp_error": "Microsoft did not sign you in.",
    "token_error": "Microsoft refused to complete the sign-in. Please start again.",
    "nonce": "The sign-in answer was meant for another sign-in attempt. Please start again.",
    "signature": "The sign-in answer could not be verified.",
    "issuer": "The sign-in answer came from an unexpected issuer.",
    "audience": "The sign-in answer was meant for another application.",
    "tenant": "Your account belongs to a directory this portal does not accept.",
    "expired": "The sign-in answer has expired. Please start again.",
    "invalid_token": "The sign-in answer could not be verified.",
    "unavailable": "Microsoft's sign-in service could not be reached. Please try again in a moment.",
    "no_roles": "Your account has no Goldsmith role. Ask your administrator to assign you one in Entra ID.",
    "username_taken": "A local account already uses your name. Ask an administrator to link or rename it.",
    "inactive": "Your Goldsmith account is disabled.",
}


# Refusals of a callback that belongs to no sign-in in progress: they change nothing.
NO_MATCHING_FLOW = ("no_flow", "state")


class SignInRefused(Exception):
    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail

    @property
    def message(self) -> str:
        return MESSAGES.get(self.reason, MESSAGES["invalid_token"])


@dataclass(frozen=True)
class SignedIn:
    """The outcome of a successful sign-in, for the session and the audit event."""

    user: Any
    claims: dict
    created: bool
    grants: list[str] = field(default_factory=list)  # "role" or "role:department" granted now
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def enabled() -> bool:
    return settings.ENTRA_ENABLED


def authority() -> str:
    return f"{settings.ENTRA_AUTHORITY_HOST}/{settings.ENTRA_TENANT_ID}"


class _Http(requests.Session):
    """requests lets REQUESTS_CA_BUNDLE override Session.verify unless each call passes verify
    itself, and msal's calls do not; passing it on every call keeps our CA bundle in force
    while proxies from the environment still apply."""

    def __init__(self, verify: str | bool):
        super().__init__()
        self._verify = verify

    def request(self, method, url, *args, **kwargs):
        kwargs.setdefault("timeout", _HTTP_TIMEOUT)
        kwargs["verify"] = self._verify
        return super().request(method, url, *args, **kwargs)


def http() -> requests.Session:
    return _Http(settings.ENTRA_CA_BUNDLE or True)


def _app() -> msal.ConfidentialClientApplication:
    try:
        return msal.ConfidentialClientApplication(
            settings.ENTRA_CLIENT_ID, client_credential=settings.ENTRA_CLIENT_SECRET, authority=authority(),
            # The authority is tenant-specific, so there is nothing to discover; with the emulator
            # discovery would ask login.microsoftonline.com about a host it does not know.
            instance_discovery=False, http_client=http())
    except (requests.RequestException, ValueError) as exc:
        raise SignInRefused("unavailable", str(exc)) from exc


# --- The flow -------------------------------------------------------------------------------


def begin(session, redirect_uri: str, next_url: str = "") -> str:
    """Start a sign-in: keep msal's flow (state, nonce, PKCE verifier) in the session and
    return the authorize URL to send the browser to."""
    if not enabled():
        raise SignInRefused("not_configured")
    with warnings.catch_warnings():
        # msal recommends response_mode=form_post; a cross-site POST would not carry our
        # SameSite=Lax session cookie, so the flow stored in the session would be lost.
        warnings.filterwarnings("ignore", message="response_mode='form_post' is recommended")
        flow = _app().initiate_auth_code_flow([], redirect_uri=redirect_uri, response_mode="query")
    session[FLOW_SESSION_KEY] = {"flow": flow, "started": int(time.time()), "next": next_url}
    return flow["auth_uri"]


def complete(session, params: dict[str, str]) -> tuple[dict, str]:
    """Redeem the code from the callback's parameters and validate the ID token.

    A callback that matches no sign-in in progress (none started, expired, or another state)
    raises SignInRefused("no_flow" or "state") and leaves the session as it was: anybody can
    send a browser to the callback URL, and that must neither sign the person out nor spoil a
    sign-in they have really started. A matching callback takes the flow out of the session
    first, so it works at most once. Returns (validated claims, the next URL saved by `begin`).
    Raises SignInRefused.
    """
    if not enabled():
        raise SignInRefused("not_configured")
    stored = session.get(FLOW_SESSION_KEY)
    if not stored or int(time.time()) - int(stored.get("started", 0)) > FLOW_MAX_AGE:
        raise SignInRefused("no_flow")
    flow = stored["flow"]
    error = f"{params.get('error')}: {params.get('error_description', '')}"[:500] if "error" in params else ""
    if params.get("state") != flow.get("state"):
        raise SignInRefused("state", error or "the callback's state is not this browser's sign-in")
    session.pop(FLOW_SESSION_KEY)
    if error:
        raise SignInRefused("idp_error", error)
    try:
        result = _app().acquire_token_by_auth_code_flow(dict(flow), params)
    except ValueError as exc:  # msal: state mismatch or a malformed answer
        raise SignInRefused("state", str(exc)) from exc
    except RuntimeError as exc:  # msal still compares the nonce itself
        raise SignInRefused("nonce", str(exc)) from exc
    except requests.RequestException as exc:
        raise SignInRefused("unavailable", str(exc)) from exc
    if "error" in result:
        codes = result.get("error_codes") or []
        raise SignInRefused("token_error", f"{result['error']} {codes}".strip())
    if "id_token" not in result:
        raise SignInRefused("invalid_token", "no ID token in the token response")
    claims = validate_id_token(result["id_token"], nonce=flow.get("nonce", ""))
    return claims, stored.get("next", "")


# --- ID token validation --------------------------------------------------------------------


def _get_json(url: str) -> dict:
    try:
        response = http().get(url)
        response.raise_for_status()
        return response.json()
    except (requests.RequestException, ValueError) as exc:
        raise SignInRefused("unavailable", f"{url}: {exc}") from exc


def discovery() -> dict:
    """The tenant's OpenID configuration (issuer, jwks_uri), cached for an hour."""
    key = f"entra:discovery:{authority()}"
    document = cache.get(key)
    if document is None:
        document = _get_json(f"{authority()}/v2.0/.well-known/openid-configuration")
        cache.set(key, document, _METADATA_SECONDS)
    return document


def _signing_key(kid: str, jwks_uri: str):
    """The public key with this kid; the key set is cached and re-read once on an unknown kid
    (Entra rotates its keys)."""
    key = f"entra:jwks:{jwks_uri}"
    for refresh in (False, True):
        document = None if refresh else cache.get(key)
        if document is None:
            document = _get_json(jwks_uri)
            cache.set(key, document, _METADATA_SECONDS)
        try:
            return jwt.PyJWKSet.from_dict(document)[kid].key
        except (KeyError, jwt.PyJWKSetError, jwt.InvalidKeyError):
            continue
    raise SignInRefused("signature", f"no published key with kid {kid!r}")


# Claims we use, and their types in a v2 ID token: a signature only proves Entra (or the
# emulator) issued the token, not that every claim has the shape our code assumes, and a list
# where a name belongs would otherwise become a 500 or a user called "['a', 'b']".
_IDENTIFIERS = ("tid", "oid")  # non-empty strings; they key ExternalIdentity (64 characters)
_TEXT_CLAIMS = ("sub", "nonce", "azp", "preferred_username", "name", "email")  # strings when present


def check_claim_types(claims: dict) -> None:
    """Raise SignInRefused("invalid_token") unless every claim we read has the type we read it as.

    `tid` and `oid` are non-empty strings of at most 64 characters; `sub`, `nonce`, `azp`,
    `preferred_username`, `name` and `email` are strings when present; `roles`, when present,
    is a list of strings. Pure: takes the decoded payload.
    """
    for name in _IDENTIFIERS:
        value = claims.get(name)
        if not isinstance(value, str) or not value or len(value) > 64:
            raise SignInRefused("invalid_token", f"claim {name!r} must be a non-empty string of at most 64 "
                                f"characters, got {type(value).__name__}")
    for name in _TEXT_CLAIMS:
        if name in claims and not isinstance(claims[name], str):
            raise SignInRefused("invalid_token", f"claim {name!r} must be a string, got {type(claims[name]).__name__}")
    roles = claims.get("roles", [])
    if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
        raise SignInRefused("invalid_token", "claim 'roles' must be a list of strings")


def check_authorized_party(claims: dict, client_id: str) -> None:
    """OpenID Connect Core 3.1.3.7: a token for several audiences must name us in `azp`, and an
    `azp` that is present must be us. PyJWT has already checked that `aud` includes us."""
    audience = claims.get("aud")
    several = isinstance(audience, list) and len(audience) > 1
    if "azp" in claims and claims["azp"] != client_id:
        raise SignInRefused("audience", f"azp {claims['azp']!r} is not this application")
    if several and claims.get("azp") != client_id:
        raise SignInRefused("audience", f"aud {audience!r} names other applications and no azp names this one")


def nonce_hash(nonce: str) -> str:
    """What msal sends as the nonce (and the ID token echoes): the SHA-256 of the flow's nonce."""
    return hashlib.sha256(nonce.encode("ascii")).hexdigest()


def validate_id_token(token: str, *, nonce: str) -> dict:
    """Return the ID token's claims after every check; raises SignInRefused naming the failed one."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise SignInRefused("invalid_token", str(exc)) from exc
    if header.get("alg") != "RS256" or not header.get("kid"):
        raise SignInRefused("signature", f"unexpected token header {header!r}")
    metadata = discovery()
    key = _signing_key(header["kid"], metadata["jwks_uri"])
    try:
        claims = jwt.decode(
            token, key, algorithms=["RS256"], audience=settings.ENTRA_CLIENT_ID, issuer=metadata["issuer"],
            leeway=settings.ENTRA_CLOCK_SKEW_SECONDS,
            options={"require": ["exp", "iat", "aud", "iss", "tid", "oid", "nonce"]})
    except jwt.InvalidSignatureError as exc:
        raise SignInRefused("signature", str(exc)) from exc
    except jwt.ExpiredSignatureError as exc:
        raise SignInRefused("expired", str(exc)) from exc
    except jwt.InvalidAudienceError as exc:
        raise SignInRefused("audience", str(exc)) from exc
    except jwt.InvalidIssuerError as exc:
        raise SignInRefused("issuer", str(exc)) from exc
    except jwt.PyJWTError as exc:
        raise SignInRefused("invalid_token", str(exc)) from exc
    check_claim_types(claims)
    check_authorized_party(claims, settings.ENTRA_CLIENT_ID)
    if claims["tid"] != settings.ENTRA_TENANT_ID:
        raise SignInRefused("tenant", f"tid {claims['tid']}")
    if not nonce or claims["nonce"] != nonce_hash(nonce):
        raise SignInRefused("nonce", "the ID token's nonce is not this flow's")
    return claims


# --- Users and roles ------------------------------------------------------------------------


def grants_for(app_roles: list[str]) -> set[tuple[str, int | None]]:
    """(role, department id) pairs the app roles map to."""
    if not app_roles:
        return set()
    return set(RoleMapping.objects.filter(claim_value__in=app_roles).values_list("role", "department_id"))


def _label(grant: tuple[str, int | None], departments: dict[int, str]) -> str:
    role, department_id = grant
    return f"{role}:{departments[department_id]}" if department_id else role


@transaction.atomic
def provision_user(claims: dict) -> SignedIn:
    """Find or create the user for these validated claims and set their memberships.

    Raises SignInRefused("no_roles") when no app role maps to anything, ("username_taken")
    when a new account's name is already a local user's, ("inactive") for a disabled user.
    """
    app_roles = claims.get("roles") or []  # a list of strings: validate_id_token checked it
    grants = grants_for(app_roles)
    if not grants:
        raise SignInRefused("no_roles", f"app roles {app_roles!r} map to no Goldsmith role")
    User = get_user_model()
    link = (ExternalIdentity.objects.select_related("user")
            .filter(tenant_id=claims["tid"], object_id=claims["oid"]).first())
    created = False
    if link is None:
        username = (claims.get("preferred_username") or claims["oid"])[:150]
        if User.objects.filter(username=username).exists():
            raise SignInRefused("username_taken", f"username {username!r} exists and is not linked to this account")
        user = User(username=username, email=claims.get("email", "")[:254])
        _set_names(user, claims.get("name", ""))
        user.set_unusable_password()  # Entra users never sign in with a local password
        try:
            with transaction.atomic():
                user.save()
                link = ExternalIdentity.objects.create(user=user, tenant_id=claims["tid"], object_id=claims["oid"])
        except IntegrityError as exc:  # two first sign-ins at once
            raise SignInRefused("username_taken", str(exc)) from exc
        created = True
    user = link.user
    if not user.is_active:
        raise SignInRefused("inactive", f"user {user.get_username()} is inactive")
    link.last_sign_in_at = timezone.now()
    link.save(update_fields=["last_sign_in_at"])
    current = set(Membership.objects.filter(user=user).values_list("role", "department_id"))
    added, removed = grants - current, current - grants
    for role, department_id in added:
        Membership.objects.create(user=user, role=role, department_id=department_id)
    for role, department_id in removed:
        Membership.objects.filter(user=user, role=role, department_id=department_id).delete()
    names = dict(Department.objects.filter(pk__in={d for _, d in grants | current if d}).values_list("pk", "slug"))
    return SignedIn(user=user, claims=claims, created=created,
                    grants=sorted(_label(g, names) for g in grants),
                    added=sorted(_label(g, names) for g in added),
                    removed=sorted(_label(g, names) for g in removed))


def _set_names(user, name: str) -> None:
    first, _, last = name.strip().partition(" ")
    user.first_name, user.last_name = first[:150], last[:150]


def logout_url(post_logout_redirect_uri: str) -> str:
    """Where to send the browser after our own sign-out, to end the Entra session too.

    The discovery document's end_session_endpoint, as msal takes the authorize endpoint from it
    (the emulator announces both on its plain-HTTP loopback listener, so a browser reaches them
    without trusting its CA); the authority's own logout URL when discovery cannot be read, so
    signing out never fails.
    """
    try:
        endpoint = discovery().get("end_session_endpoint")
    except SignInRefused:
        endpoint = None
    if not isinstance(endpoint, str) or not endpoint.startswith(("https://", "http://")):
        endpoint = f"{authority()}/oauth2/v2.0/logout"
    return f"{endpoint}?{urlencode({'post_logout_redirect_uri': post_logout_redirect_uri})}"


# The app roles of the emulator's seeded users (and the names an Entra app registration for
# Goldsmith would declare): the default mapping `default_role_mappings` creates.
DEFAULT_MAPPINGS = [
    ("Goldsmith.Security", "security", None),
    ("Goldsmith.Auditor", "auditor", None),
    ("Goldsmith.Admin", "admin", None),
    ("Goldsmith.Editor.{department}", "editor", "{department}"),
]


def default_role_mappings() -> list[str]:
    """Create the default mappings that are missing (one editor app role per department);
    idempotent. Returns a line per mapping created."""
    created = []
    for claim_value, role, department in DEFAULT_MAPPINGS:
        targets = Department.objects.all() if department else [None]
        for target in targets:
            value = claim_value.format(department=target.slug) if target else claim_value
            _, made = RoleMapping.objects.get_or_create(claim_value=value, role=role, department=target)
            if made:
                created.append(f"role mapping {value} -> {role}" + (f" in {target.slug}" if target else ""))
    return created
