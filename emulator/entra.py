"""Entra ID (the login host): OIDC discovery, JWKS, token endpoint, sign-in page, token checks.

What the clients need from it:
- azure-identity's ClientSecretCredential (client credentials) and msal's authorization-code
  flow with PKCE, pointed at the emulator's base URL with instance discovery off;
- ARM-side verification of bearer tokens (verify_bearer), called by the authentication
  middleware for every route with auth == "arm".

Tokens are RS256 JWTs signed with a key pair kept in the store (so JWKS survives a restart,
and the control API's reset keeps it too). Access tokens are v1 tokens as ARM receives them
(iss https://sts.windows.net/<tid>/, ver 1.0); ID tokens are v2 (iss <base>/<tid>/v2.0, what the
v2 discovery document announces, aud = the client id).

Token lifetimes follow the wall clock, not app.clock, on purpose: the SDKs cache tokens by
the wall clock, so expiring them on the emulator's (advanced) clock would leave every cached
token refused with no way for a client to recover. Expired tokens are produced on demand
instead, through exp_offset on the control endpoints.

Backend (app.services["entra"]): verify_bearer, issue_access_token, issue_id_token, jwks,
user, users, add_user, principal, add_principal, rotate_keys, persist_keys.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import html
import json
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from emulator.core import ArmError, Request, Response
from emulator.resources import DEFAULT_TENANT

DEFAULT_DOMAIN = "contoso.example"
ARM_AUDIENCES = ("https://management.azure.com", "https://management.azure.com/",
                 "https://management.core.windows.net", "https://management.core.windows.net/")
GRAPH = "https://graph.microsoft.com"
RESERVED_SCOPES = {"openid", "profile", "offline_access", "email"}
ACCESS_TOKEN_SECONDS = 3599  # what Entra answers in expires_in (about an hour, varying a little)
CODE_SECONDS = 600  # authorization codes live ten minutes
REFRESH_SECONDS = 90 * 24 * 3600
ARM_CLOCK_SKEW = 300  # ARM tolerates five minutes between its clock and the token's
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
_NAMESPACE = uuid.UUID("6b1d5f0e-3a57-4c47-9f43-6d0b6c1e7a11")  # stable object ids for ad-hoc identities


def _now() -> int:
    """Seconds since the epoch on the wall clock (see the module docstring for why not app.clock)."""
    return int(time.time())


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _uint_b64(number: int) -> str:
    return _b64url(number.to_bytes((number.bit_length() + 7) // 8, "big"))


def stable_oid(*parts: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, "/".join(part.lower() for part in parts)))


class AadError(Exception):
    """An error in Entra's OAuth shape: {"error", "error_description": "AADSTSnnn: ...", "error_codes"...}."""

    def __init__(self, error: str, code: int, description: str, status: int = 400):
        super().__init__(f"AADSTS{code}: {description}")
        self.error = error
        self.code = code
        self.description = description
        self.status = status

    def body(self, base_url: str) -> dict:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
        return {
            "error": self.error,
            "error_description": f"AADSTS{self.code}: {self.description} Trace ID: {trace} "
                                 f"Correlation ID: {correlation} Timestamp: {stamp}",
            "error_codes": [self.code],
            "timestamp": stamp,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": f"{base_url}/error?code={self.code}",
        }

    def to_response(self, base_url: str) -> Response:
        return Response(self.status, self.body(base_url), headers={"Cache-Control": "no-store"})


@dataclass
class SigningKey:
    kid: str
    private_key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    @classmethod
    def generate(cls) -> SigningKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Goldsmith emulator token signing")])
        now = dt.datetime.now(dt.UTC)
        certificate = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=3650))
            .sign(key, hashes.SHA256())
        )
        # Entra's kid is the certificate's SHA-1 thumbprint, the same value as x5t.
        kid = _b64url(certificate.fingerprint(hashes.SHA1()))  # noqa: S303 - an identifier, not a security hash
        return cls(kid, key, certificate)

    def to_document(self) -> dict:
        pem = self.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption())
        return {"kid": self.kid, "key": pem.decode(),
                "certificate": self.certificate.public_bytes(serialization.Encoding.PEM).decode()}

    @classmethod
    def from_document(cls, document: dict) -> SigningKey:
        key = serialization.load_pem_private_key(document["key"].encode(), password=None)
        certificate = x509.load_pem_x509_certificate(document["certificate"].encode())
        return cls(document["kid"], key, certificate)  # type: ignore[arg-type]

    def jwk(self, issuer: str) -> dict:
        numbers = self.private_key.public_key().public_numbers()
        der = self.certificate.public_bytes(serialization.Encoding.DER)
        return {"kty": "RSA", "use": "sig", "kid": self.kid, "x5t": self.kid, "n": _uint_b64(numbers.n),
                "e": _uint_b64(numbers.e), "x5c": [base64.b64encode(der).decode()], "issuer": issuer}


class Entra:
    """Identities, keys and tokens. Users are keyed by UPN, principals by client (app) id."""

    def __init__(self, app):
        self.app = app
        self._lock = threading.Lock()
        self._keys: list[SigningKey] | None = None  # newest first; the first one signs
        self._rogue: SigningKey | None = None  # a key outside JWKS, for bad-signature tests
        self._verified: dict[str, dict] = {}  # token -> claims, to skip repeated RSA checks

    @property
    def strict(self) -> bool:
        return bool(self.app.config.strict_auth)

    # -- keys -------------------------------------------------------------------------------

    def signing_keys(self) -> list[SigningKey]:
        with self._lock:
            if self._keys is None:
                document = self.app.store.get("entra-keys", "signing")
                if document:
                    self._keys = [SigningKey.from_document(item) for item in document["keys"]]
                else:
                    self._keys = [SigningKey.generate()]
                    self._save_keys()
            return self._keys

    def _save_keys(self) -> None:
        self.app.store.put("entra-keys", "signing", {"keys": [key.to_document() for key in self._keys or []]})

    def persist_keys(self) -> None:
        """Write the keys in use back to the store (after a reset cleared it): tokens stay valid."""
        keys = self.signing_keys()
        with self._lock:
            self._keys = keys
            self._save_keys()

    def rotate_keys(self, keep_previous: bool = True) -> str:
        """Sign with a new key from now on; the old one stays in JWKS (and valid) if kept."""
        current = self.signing_keys()
        with self._lock:
            self._keys = [SigningKey.generate(), *(current[:1] if keep_previous else [])]
            self._save_keys()
            self._verified.clear()
            return self._keys[0].kid

    def jwks(self, issuer: str) -> dict:
        return {"keys": [key.jwk(issuer) for key in self.signing_keys()]}

    def sign(self, claims: dict, *, rogue: bool = False) -> str:
        key = self.signing_keys()[0]
        signer = key
        if rogue:
            self._rogue = self._rogue or SigningKey.generate()
            signer = self._rogue
        return jwt.encode(claims, signer.private_key, algorithm="RS256",
                          headers={"typ": "JWT", "kid": key.kid, "x5t": key.kid})

    # -- identities ---------------------------------------------------------------------------

    def add_user(self, entry: dict) -> dict:
        """Create or replace a user: {"username", "roles", "tenant", "name", "oid", ...}; password-less."""
        username = (entry.get("username") or "").strip()
        if not username:
            raise ArmError(400, "InvalidRequestContent", "A user needs a username.")
        upn = username if "@" in username else f"{username}@{DEFAULT_DOMAIN}"
        local = upn.split("@")[0]
        given = entry.get("given_name") or local.capitalize()
        tenant = entry.get("tenant") or DEFAULT_TENANT
        roles = entry.get("roles") or []
        user = {
            "username": upn,
            "name": entry.get("name") or f"{given} {entry.get('family_name') or 'Example'}",
            "given_name": given,
            "family_name": entry.get("family_name") or "Example",
            "oid": entry.get("oid") or stable_oid(tenant, upn),
            "tenant": tenant,
            "roles": [roles] if isinstance(roles, str) else list(roles),
            "email": entry.get("email") or upn,
            "description": entry.get("description") or "",
        }
        self.app.store.put("entra-user", upn, user)
        return user

    def user(self, username: str) -> dict | None:
        """A user by UPN or by the part before the @ (alice -> alice@contoso.example)."""
        if not username:
            return None
        found = self.app.store.get("entra-user", username)
        if found is None and "@" not in username:
            found = self.app.store.get("entra-user", f"{username}@{DEFAULT_DOMAIN}")
        return found

    def users(self) -> list[dict]:
        return self.app.store.list("entra-user")

    def delete_user(self, username: str) -> bool:
        user = self.user(username)
        return bool(user) and self.app.store.delete("entra-user", user["username"])

    def add_principal(self, entry: dict) -> dict:
        """Create or replace an app registration / service principal."""
        client_id = entry.get("client_id") or entry.get("clientId")
        if not client_id:
            raise ArmError(400, "InvalidRequestContent", "A principal needs a client_id.")
        tenant = entry.get("tenant") or DEFAULT_TENANT
        principal = {
            "client_id": client_id,
            "secret": entry.get("secret"),
            "name": entry.get("name") or client_id,
            "oid": entry.get("oid") or stable_oid(tenant, "sp", client_id),
            "tenant": tenant,
            "roles": list(entry.get("roles") or []),
            "redirect_uris": list(entry.get("redirect_uris") or []),
        }
        self.app.store.put("entra-principal", client_id, principal)
        return principal

    def principal(self, client_id: str) -> dict | None:
        return self.app.store.get("entra-principal", client_id) if client_id else None

    def tenants(self) -> set[str]:
        known = {DEFAULT_TENANT}
        known.update(user["tenant"].lower() for user in self.users())
        known.update(principal["tenant"].lower() for principal in self.app.store.list("entra-principal"))
        return known

    def resolve_tenant(self, tenant: str) -> str:
        """The tenant id a request path names; AADSTS90002 for an unknown one in strict mode."""
        if tenant.lower() in ("common", "organizations") or not _GUID.match(tenant):
            return DEFAULT_TENANT  # a domain name or a multi-tenant alias: the emulator has one home
        if self.strict and tenant.lower() not in self.tenants():
            raise AadError("invalid_request", 90002,
                           f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are "
                           "signing into the correct cloud. Check with your subscription administrator, this may "
                           "happen if there are no active subscriptions for the tenant.")
        return tenant.lower()

    # -- tokens -------------------------------------------------------------------------------

    def issue_access_token(self, *, client_id: str, tenant: str, audience: str, user: dict | None = None,
                           scp: str | None = None, exp_offset: int | None = None, extra: dict | None = None,
                           ) -> tuple[str, dict]:
        """A v1 access token, as ARM receives them; returns (jwt, claims).

        Without a user it is an app token (client credentials): oid/sub = the principal's object
        id, idtyp "app". exp_offset (seconds from now) makes expired tokens for tests.
        """
        now = _now()
        exp = now + (ACCESS_TOKEN_SECONDS if exp_offset is None else exp_offset)
        issuer = f"https://sts.windows.net/{tenant}/"
        principal = self.principal(client_id) or {}
        claims: dict[str, Any] = {
            "aud": audience, "iss": issuer, "iat": min(now, exp - 60), "nbf": min(now, exp - 60), "exp": exp,
            "aio": _b64url(secrets.token_bytes(24)), "appid": client_id, "appidacr": "1", "idp": issuer,
            "rh": f"0.{_b64url(secrets.token_bytes(18))}.", "tid": tenant, "uti": _b64url(secrets.token_bytes(16)),
            "ver": "1.0",
        }
        if user is None:
            oid = principal.get("oid") or stable_oid(tenant, "sp", client_id)
            claims.update({"idtyp": "app", "oid": oid, "sub": oid})
            if principal.get("roles"):
                claims["roles"] = list(principal["roles"])
        else:
            claims.update({
                "idtyp": "user", "acr": "1", "amr": ["pwd"], "oid": user["oid"], "sub": self.pairwise(user, client_id),
                "name": user["name"], "given_name": user["given_name"], "family_name": user["family_name"],
                "unique_name": user["username"], "upn": user["username"], "ipaddr": "127.0.0.1",
                "scp": scp or "user_impersonation",
            })
            if user.get("roles") and audience in (client_id, f"api://{client_id}"):
                claims["roles"] = list(user["roles"])
        claims.update(extra or {})
        return self.sign(claims), claims

    def issue_id_token(self, *, client_id: str, tenant: str, user: dict, base_url: str, nonce: str | None,
                       scopes: set[str], auth_time: int | None = None) -> tuple[str, dict]:
        """A v2 ID token for the client; the next-id-token hook (if set) bends it once."""
        now = _now()
        claims: dict[str, Any] = {
            "aud": client_id, "iss": f"{base_url}/{tenant}/v2.0", "iat": now, "nbf": now,
            "exp": now + ACCESS_TOKEN_SECONDS, "name": user["name"], "oid": user["oid"],
            "preferred_username": user["username"], "rh": f"0.{_b64url(secrets.token_bytes(18))}.",
            "sid": stable_oid("session", user["oid"]), "sub": self.pairwise(user, client_id), "tid": tenant,
            "uti": _b64url(secrets.token_bytes(16)), "ver": "2.0",
        }
        if nonce:
            claims["nonce"] = nonce
        if user.get("roles"):
            claims["roles"] = list(user["roles"])
        if "email" in scopes:
            claims["email"] = user.get("email") or user["username"]
        if auth_time is not None:
            claims["auth_time"] = auth_time
        rogue = self._apply_next_id_token_hook(claims, now)
        return self.sign(claims, rogue=rogue), claims

    def _apply_next_id_token_hook(self, claims: dict, now: int) -> bool:
        """Consume the control API's one-shot override; True when the token must fail its signature."""
        hook = self.app.store.get("entra-hook", "next-id-token")
        if not hook:
            return False
        self.app.store.delete("entra-hook", "next-id-token")
        for name in ("aud", "tid", "iss", "nonce", "sub", "oid", "name", "preferred_username"):
            if name in hook:
                claims[name] = hook[name]
        if "exp_offset" in hook:
            claims["exp"] = now + int(hook["exp_offset"])
            claims["iat"] = claims["nbf"] = min(now, claims["exp"] - ACCESS_TOKEN_SECONDS)
        if "roles" in hook:
            if hook["roles"]:
                claims["roles"] = list(hook["roles"])
            else:
                claims.pop("roles", None)
        claims.update(hook.get("claims") or {})
        for name in hook.get("drop") or []:
            claims.pop(name, None)
        return bool(hook.get("bad_signature"))

    @staticmethod
    def pairwise(user: dict, client_id: str) -> str:
        """Entra's sub is per application: the same user has a different sub in each app."""
        return _b64url(hashlib.sha256(f"{user['oid']}|{client_id}".encode()).digest())[:43]

    # -- ARM-side verification ----------------------------------------------------------------

    def verify_bearer(self, authorization: str | None, *, base_url: str | None = None,
                      subscription: str | None = None) -> dict:
        """Verified claims of an ARM access token, or ArmError 401 the way ARM answers.

        Checks the RS256 signature against the emulator's keys, the audience (ARM's own or the
        emulator's base URL), the issuer shape, nbf/exp with ARM's five-minute skew. base_url
        only shapes the WWW-Authenticate header. subscription: in strict mode, the token's tenant
        must be the subscription's.
        """
        if not authorization:
            raise self._unauthorized("AuthenticationFailed", "Authentication failed. The 'Authorization' header is "
                                     "missing.", "The authentication failed because of missing 'Authorization' "
                                     "header.", base_url)
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise self._unauthorized("AuthenticationFailed", "Authentication failed. The 'Authorization' header is "
                                     "provided in an invalid format.", "The authentication failed because of "
                                     "invalid 'Authorization' header.", base_url)
        token = token.strip()
        claims = self._verified.get(token) or self._decode(token, base_url)
        self._check_times(claims, base_url)
        self._check_audience(claims, base_url)
        if subscription and self.strict:
            self._check_tenant(claims, subscription, base_url)
        return claims

    def _decode(self, token: str, base_url: str | None) -> dict:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise self._invalid_token(base_url) from None
        keys = {key.kid: key for key in self.signing_keys()}
        key = keys.get(header.get("kid") or "")
        if key is None or header.get("alg") != "RS256":
            raise self._invalid_token(base_url)
        try:
            claims = jwt.decode(token, key.private_key.public_key(), algorithms=["RS256"],
                                options={"verify_aud": False, "verify_exp": False, "verify_nbf": False,
                                         "verify_iat": False, "require": ["exp", "aud", "iss", "tid"]})
        except jwt.PyJWTError:
            raise self._invalid_token(base_url) from None
        issuer, tenant = str(claims["iss"]), str(claims["tid"])
        if issuer != f"https://sts.windows.net/{tenant}/" and not issuer.endswith(f"/{tenant}/v2.0"):
            raise self._invalid_token(base_url)
        if len(self._verified) > 5000:
            self._verified.clear()
        self._verified[token] = claims
        return claims

    def _check_times(self, claims: dict, base_url: str | None) -> None:
        now = _now()
        if int(claims["exp"]) + ARM_CLOCK_SKEW < now:
            expiry, current = _arm_time(int(claims["exp"])), _arm_time(now)
            raise self._unauthorized("ExpiredAuthenticationToken",
                                     f"The access token expiry UTC time '{expiry}' is earlier than current UTC time "
                                     f"'{current}'.", "The access token has expired.", base_url)
        if int(claims.get("nbf", 0)) - ARM_CLOCK_SKEW > now:
            raise self._invalid_token(base_url)

    def _check_audience(self, claims: dict, base_url: str | None) -> None:
        audience = claims["aud"]
        allowed = set(ARM_AUDIENCES)
        if base_url:
            allowed.update({base_url, base_url + "/"})
        audiences = audience if isinstance(audience, list) else [audience]
        if not allowed.intersection(audiences):
            raise self._unauthorized(
                "InvalidAuthenticationTokenAudience",
                f"The access token has been obtained for wrong audience or resource '{audience}'. It should exactly "
                "match with one of the allowed audiences 'https://management.core.windows.net/',"
                "'https://management.core.windows.net','https://management.azure.com/','https://management.azure.com'.",
                "The access token has been obtained for wrong audience or resource.", base_url)

    def _check_tenant(self, claims: dict, subscription: str, base_url: str | None) -> None:
        record = self.app.services["resources"].ensure_subscription(subscription)
        expected = record["tenantId"]
        if claims["tid"].lower() != expected.lower():
            raise self._unauthorized(
                "InvalidAuthenticationTokenTenant",
                f"The access token is from the wrong issuer '{claims['iss']}'. It must match the tenant "
                f"'https://sts.windows.net/{expected}/' associated with this subscription. Please use the authority "
                f"(URL) '{base_url or 'https://login.windows.net'}/{expected}' to get the token. Note, if the "
                "subscription is transferred to another tenant there is no impact to the services, but information "
                "about new tenant could take time to propagate (up to an hour). If you just transferred your "
                "subscription and see this error message, please try back later.",
                "The access token is from the wrong issuer.", base_url)

    def _invalid_token(self, base_url: str | None) -> ArmError:
        return self._unauthorized("InvalidAuthenticationToken", "The access token is invalid.",
                                  "The access token is invalid.", base_url)

    @staticmethod
    def _unauthorized(code: str, message: str, description: str, base_url: str | None) -> ArmError:
        authority = f"{base_url}/{DEFAULT_TENANT}" if base_url else "https://login.windows.net/"
        header = f'Bearer authorization_uri="{authority}", error="invalid_token", error_description="{description}"'
        return ArmError(401, code, message, headers={"WWW-Authenticate": header})


def _arm_time(epoch: int) -> str:
    """ARM's timestamp in these messages: 6/1/2024 3:04:05 PM."""
    moment = dt.datetime.fromtimestamp(epoch, dt.UTC)
    hour = moment.hour % 12 or 12
    return f"{moment.month}/{moment.day}/{moment.year} {hour}:{moment:%M:%S} {'AM' if moment.hour < 12 else 'PM'}"


# -- OAuth: token endpoint --------------------------------------------------------------------

def _resource_of(scope: str) -> str | None:
    """The resource a scope belongs to: https://management.azure.com/.default -> https://management.azure.com."""
    if scope.lower() in RESERVED_SCOPES:
        return None
    if scope.endswith("/.default"):
        resource = scope[: -len("/.default")]
        # "https://management.core.windows.net//.default" asks for the resource with its slash.
        return resource
    if "://" in scope:
        return scope.rsplit("/", 1)[0]
    if re.match(r"^[0-9a-f-]{36}/", scope, re.IGNORECASE):
        return scope.split("/", 1)[0]
    return GRAPH  # bare permission names (User.Read) belong to Microsoft Graph


def _audience_of(scopes: list[str]) -> str | None:
    resources = {_resource_of(scope) for scope in scopes} - {None}
    if len(resources) > 1:
        raise AadError("invalid_scope", 28000, "Provided value for the input parameter scope is not valid because it "
                                               "contains more than one resource. The scope "
                                               f"{' '.join(scopes)} is not valid.")
    return resources.pop() if resources else None


class TokenEndpoint:
    """POST <base>/<tenant>/oauth2/v2.0/token (and the v1 /oauth2/token with resource=)."""

    def __init__(self, entra: Entra):
        self.entra = entra
        self.store = entra.app.store

    def handle(self, request: Request, tenant_path: str, *, v1: bool = False) -> Response:
        try:
            form = self._form(request)
            if v1 and form.get("resource") and not form.get("scope"):
                form["scope"] = form["resource"].rstrip("/") + "/.default"
            tenant = self.entra.resolve_tenant(tenant_path)
            grant = form.get("grant_type")
            if not grant:
                raise AadError("invalid_request", 900144,
                               "The request body must contain the following parameter: 'grant_type'.")
            client_id = form.get("client_id") or ""
            if not client_id:
                raise AadError("invalid_request", 900144,
                               "The request body must contain the following parameter: 'client_id'.")
            handlers = {"client_credentials": self._client_credentials, "authorization_code": self._authorization_code,
                        "refresh_token": self._refresh_token}
            if grant not in handlers:
                raise AadError("unsupported_grant_type", 70003, f"The app requested an unsupported grant type "
                                                                f"'{grant}'.")
            return Response(200, handlers[grant](request, form, tenant), headers={"Cache-Control": "no-store",
                                                                                   "Pragma": "no-cache"})
        except AadError as error:
            return error.to_response(request.base_url)

    @staticmethod
    def _form(request: Request) -> dict[str, str]:
        fields = {key: values[0] for key, values in parse_qs(request.body.decode(errors="replace"),
                                                             keep_blank_values=True).items()}
        basic = request.headers.get("Authorization") or ""
        if basic.lower().startswith("basic "):
            # client_secret_basic: the id and secret travel in the header instead of the body.
            try:
                decoded = base64.b64decode(basic[6:], validate=True).decode(errors="replace")
            except ValueError:
                raise AadError("invalid_client", 7000216, "The Authorization header is not valid Basic "
                                                          "authentication.", status=401) from None
            client_id, _, secret = decoded.partition(":")
            fields.setdefault("client_id", client_id)
            fields.setdefault("client_secret", secret)
        return fields

    def _authenticate_client(self, form: dict[str, str], tenant: str, *, confidential_required: bool) -> dict | None:
        """Check the client's credentials; returns its principal (None for an ad-hoc one in default mode)."""
        client_id = form["client_id"]
        principal = self.entra.principal(client_id)
        secret, assertion = form.get("client_secret"), form.get("client_assertion")
        if self.entra.strict and principal is None:
            raise AadError("unauthorized_client", 700016,
                           f"Application with identifier '{client_id}' was not found in the directory '{tenant}'. "
                           "This can happen if the application has not been installed by the administrator of the "
                           "tenant or consented to by any user in the tenant. You may have sent your authentication "
                           "request to the wrong tenant.")
        if not secret and not assertion:
            if confidential_required or (principal and principal.get("secret")):
                raise AadError("invalid_client", 7000218,
                               "The request body must contain the following parameter: 'client_assertion' or "
                               "'client_secret'.", status=401)
            return principal
        if assertion:
            self._check_assertion(form, client_id)
        elif self.entra.strict and principal and principal.get("secret") != secret:
            raise AadError("invalid_client", 7000215,
                           "Invalid client secret provided. Ensure the secret being sent in the request is the client "
                           f"secret value, not the client secret ID, for a secret added to app '{client_id}'.",
                           status=401)
        return principal

    def _check_assertion(self, form: dict[str, str], client_id: str) -> None:
        """private_key_jwt: the emulator holds no client certificates, so only the claims are checked
        (and only in default mode; strict mode has no certificate credentials to check against)."""
        if form.get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
            raise AadError("invalid_request", 50027, "Invalid client_assertion_type.")
        try:
            claims = jwt.decode(form["client_assertion"], options={"verify_signature": False})
        except jwt.PyJWTError:
            raise AadError("invalid_client", 50027, "JWT token is invalid or malformed.", status=401) from None
        if self.entra.strict or claims.get("iss") != client_id or claims.get("sub") != client_id:
            raise AadError("invalid_client", 700027, "Client assertion failed signature validation.", status=401)

    def _scopes(self, form: dict[str, str]) -> list[str]:
        scope = (form.get("scope") or "").strip()
        if not scope:
            raise AadError("invalid_request", 900144, "The request body must contain the following parameter: 'scope'.")
        return scope.split()

    def _client_credentials(self, request: Request, form: dict[str, str], tenant: str) -> dict:
        principal = self._authenticate_client(form, tenant, confidential_required=True)
        scopes = self._scopes(form)
        if len(scopes) != 1 or not scopes[0].endswith("/.default"):
            raise AadError("invalid_scope", 1002012,
                           f"The provided value for scope {' '.join(scopes)} is not valid. Client credential flows "
                           "must have a scope value with /.default suffixed to the resource identifier (application "
                           "ID URI).")
        audience = _audience_of(scopes) or GRAPH
        if principal and principal.get("tenant") and self.entra.strict and principal["tenant"].lower() != tenant:
            raise AadError("unauthorized_client", 700016,
                           f"Application with identifier '{form['client_id']}' was not found in the directory "
                           f"'{tenant}'.")
        token, _ = self.entra.issue_access_token(client_id=form["client_id"], tenant=tenant, audience=audience)
        return {"token_type": "Bearer", "expires_in": ACCESS_TOKEN_SECONDS, "ext_expires_in": ACCESS_TOKEN_SECONDS,
                "access_token": token}

    def _authorization_code(self, request: Request, form: dict[str, str], tenant: str) -> dict:
        code = form.get("code") or ""
        grant = self.store.get("entra-code", code) if code else None
        if grant is None:
            raise AadError("invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.")
        if grant["client_id"] != form["client_id"]:
            raise AadError("invalid_grant", 70000, "The provided value for the 'code' parameter is not valid. The "
                                                   "code was issued to a different client.")
        self._authenticate_client(form, tenant, confidential_required=False)
        if grant.get("redeemed"):
            raise AadError("invalid_grant", 54005, "OAuth2 Authorization code was already redeemed, please retry "
                                                   "with a new valid code or use an existing refresh token.")
        if grant["issued"] + CODE_SECONDS < _now():
            raise AadError("invalid_grant", 70008, "The provided authorization code or refresh token has expired due "
                                                   "to inactivity. Send a new interactive authorization request for "
                                                   "this user and resource.")
        if (form.get("redirect_uri") or "") != grant["redirect_uri"]:
            raise AadError("invalid_grant", 500112, f"The reply address '{form.get('redirect_uri') or ''}' does not "
                                                    f"match the reply address '{grant['redirect_uri']}' provided when "
                                                    "requesting Authorization code.")
        _check_pkce(grant, form.get("code_verifier"))
        grant["redeemed"] = True
        self.store.put("entra-code", code, grant)
        scopes = (form.get("scope") or grant["scope"]).split()
        return self._user_tokens(request, form["client_id"], grant["tenant"], grant["username"], scopes,
                                 nonce=grant.get("nonce"), auth_time=grant.get("auth_time"),
                                 client_info=form.get("client_info") == "1")

    def _refresh_token(self, request: Request, form: dict[str, str], tenant: str) -> dict:
        token = form.get("refresh_token") or ""
        grant = self.store.get("entra-refresh", token) if token else None
        if grant is None or grant["client_id"] != form["client_id"]:
            raise AadError("invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.")
        self._authenticate_client(form, tenant, confidential_required=False)
        if grant["issued"] + REFRESH_SECONDS < _now():
            raise AadError("invalid_grant", 700082, "The refresh token has expired due to inactivity.")
        scopes = (form.get("scope") or grant["scope"]).split()
        return self._user_tokens(request, form["client_id"], grant["tenant"], grant["username"], scopes,
                                 nonce=None, auth_time=None, client_info=form.get("client_info") == "1")

    def _user_tokens(self, request: Request, client_id: str, tenant: str, username: str, scopes: list[str], *,
                     nonce: str | None, auth_time: int | None, client_info: bool) -> dict:
        user = self.entra.user(username)
        if user is None:
            raise AadError("invalid_grant", 50034, f"The user account {username} does not exist in the "
                                                   f"{tenant} directory. To sign into this application, the account "
                                                   "must be added to the directory.")
        audience = _audience_of(scopes) or GRAPH
        resource_scopes = [scope for scope in scopes if scope.lower() not in RESERVED_SCOPES]
        scp = "user_impersonation" if audience in ARM_AUDIENCES else " ".join(
            scope.rsplit("/", 1)[-1] for scope in resource_scopes if not scope.endswith("/.default")) or "User.Read"
        access, _ = self.entra.issue_access_token(client_id=client_id, tenant=tenant, audience=audience, user=user,
                                                  scp=scp)
        granted = [scope for scope in scopes if scope.lower() != "offline_access"]
        body: dict[str, Any] = {"token_type": "Bearer", "scope": " ".join(granted), "expires_in": ACCESS_TOKEN_SECONDS,
                                "ext_expires_in": ACCESS_TOKEN_SECONDS, "access_token": access}
        lowered = {scope.lower() for scope in scopes}
        if "offline_access" in lowered:
            refresh = f"1.A{_b64url(secrets.token_bytes(48))}"
            self.store.put("entra-refresh", refresh, {"client_id": client_id, "tenant": tenant, "username":
                                                      user["username"], "scope": " ".join(scopes), "issued": _now()})
            body["refresh_token"] = refresh
        if "openid" in lowered:
            body["id_token"], _ = self.entra.issue_id_token(client_id=client_id, tenant=tenant, user=user,
                                                            base_url=request.base_url, nonce=nonce, scopes=lowered,
                                                            auth_time=auth_time)
        if client_info:
            body["client_info"] = _b64url(json.dumps({"uid": user["oid"], "utid": tenant}).encode())
        return body


def _check_pkce(grant: dict, verifier: str | None) -> None:
    challenge = grant.get("code_challenge")
    if not challenge:
        return
    if not verifier:
        raise AadError("invalid_grant", 50148, "The code_verifier does not match the code_challenge supplied in the "
                                               "authorization request for PKCE.")
    method = (grant.get("code_challenge_method") or "plain").upper()
    computed = _b64url(hashlib.sha256(verifier.encode()).digest()) if method == "S256" else verifier
    if not secrets.compare_digest(computed, challenge):
        raise AadError("invalid_grant", 50148, "The code_verifier does not match the code_challenge supplied in the "
                                               "authorization request for PKCE.")


# -- OAuth: the authorize endpoint and its sign-in page ---------------------------------------

_LOOPBACK = {"localhost", "127.0.0.1", "::1", "[::1]"}
SESSION_COOKIE = "emulator_session"


class Authorize:
    """GET/POST <base>/<tenant>/oauth2/v2.0/authorize: a plain page to pick a seeded user."""

    def __init__(self, entra: Entra):
        self.entra = entra

    def handle(self, request: Request, tenant_path: str) -> Response:
        params = {key: values[0] for key, values in request.query.items() if values}
        if request.method == "POST":
            params.update({key: values[0] for key, values in parse_qs(request.body.decode(errors="replace"),
                                                                      keep_blank_values=True).items()})
        try:
            tenant = self.entra.resolve_tenant(tenant_path)
            self._check_client(params)
        except AadError as error:
            # Errors about the client or its redirect URI are shown, never redirected: the
            # redirect target is not trusted yet.
            return _error_page(error)
        if params.get("response_type", "").split() != ["code"]:
            return self._redirect_error(params, "unsupported_response_type", 700054,
                                        "response_type 'id_token' is not enabled for the application.")
        method = params.get("code_challenge_method")
        if method and method not in ("S256", "plain"):
            return self._redirect_error(params, "invalid_request", 501491,
                                        "Invalid size of Code_Challenge parameter.")
        chosen = self._chosen_user(request, params)
        if chosen is None:
            if params.get("prompt") == "none":
                return self._redirect_error(params, "login_required", 50058,
                                            "A silent sign-in request was sent but no user is signed in.")
            return self._page(request, params, tenant)
        return self._issue_code(request, params, tenant, chosen)

    def _check_client(self, params: dict[str, str]) -> None:
        client_id = params.get("client_id")
        if not client_id:
            raise AadError("invalid_request", 900144,
                           "The request body must contain the following parameter: 'client_id'.")
        redirect_uri = params.get("redirect_uri") or ""
        principal = self.entra.principal(client_id)
        if self.entra.strict and principal is None:
            raise AadError("unauthorized_client", 700016,
                           f"Application with identifier '{client_id}' was not found in the directory.")
        parts = urlsplit(redirect_uri)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise AadError("invalid_request", 90102, "'redirect_uri' value must be a valid absolute URI.")
        if self.entra.strict and not _redirect_allowed(redirect_uri, principal or {}):
            raise AadError("invalid_request", 50011,
                           f"The redirect URI '{redirect_uri}' specified in the request does not match the redirect "
                           f"URIs configured for the application '{client_id}'. Make sure the redirect URI sent in "
                           "the request matches one added to your application in the Azure portal.")

    def _chosen_user(self, request: Request, params: dict[str, str]) -> dict | None:
        """The user picked on the page, or named by login_hint / the session cookie for prompt=none."""
        if request.method == "POST" and params.get("username"):
            user = self.entra.user(params["username"])
            if user is None and not self.entra.strict:
                user = self.entra.add_user({"username": params["username"]})
            return user
        if params.get("prompt") == "none":
            hint = params.get("login_hint") or _cookie(request, SESSION_COOKIE)
            return self.entra.user(hint) if hint else None
        return None

    def _issue_code(self, request: Request, params: dict[str, str], tenant: str, user: dict) -> Response:
        code = f"1.A{_b64url(secrets.token_bytes(48))}"
        max_age = params.get("max_age")
        grant = {
            "client_id": params["client_id"], "redirect_uri": params["redirect_uri"],
            "scope": params.get("scope") or "openid profile", "nonce": params.get("nonce"),
            "code_challenge": params.get("code_challenge"), "code_challenge_method": params.get("code_challenge_method"),
            "username": user["username"], "tenant": user.get("tenant") or tenant, "issued": _now(), "redeemed": False,
            "auth_time": _now() if max_age is not None else None,
        }
        self.entra.app.store.put("entra-code", code, grant)
        values = {"code": code}
        if params.get("state") is not None:
            values["state"] = params["state"]
        values["session_state"] = stable_oid("session", user["oid"])
        cookie = f"{SESSION_COOKIE}={user['username']}; Path=/; HttpOnly; Secure; SameSite=None"
        return _deliver(params, values, extra_headers={"Set-Cookie": cookie})

    def _redirect_error(self, params: dict[str, str], error: str, code: int, description: str) -> Response:
        values = {"error": error, "error_description": f"AADSTS{code}: {description}"}
        if params.get("state") is not None:
            values["state"] = params["state"]
        return _deliver(params, values)

    def _page(self, request: Request, params: dict[str, str], tenant: str) -> Response:
        action = html.escape(request.path + "?" + urlencode(params))
        hint = (params.get("login_hint") or "").lower()
        rows = []
        for user in self.entra.users():
            roles = ", ".join(user["roles"]) or "no app roles"
            hinted = " (suggested)" if hint and hint in (user["username"].lower(), user["username"].split("@")[0]) else ""
            rows.append(
                f'<li><form method="post" action="{action}"><input type="hidden" name="username" '
                f'value="{html.escape(user["username"])}"><button type="submit">Sign in as '
                f'{html.escape(user["name"])}{hinted}</button> <span>{html.escape(user["username"])} &middot; '
                f'roles: {html.escape(roles)}</span></form></li>')
        other = "" if self.entra.strict else (
            f'<h2>Another account</h2><form method="post" action="{action}"><label for="username">User name</label> '
            f'<input id="username" name="username" autocomplete="username" required> '
            f'<button type="submit">Sign in</button></form>')
        client = html.escape(params.get("client_id", ""))
        body = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign in - Azure emulator</title>'
            '<meta name="viewport" content="width=device-width, initial-scale=1"></head><body><main>'
            f'<h1>Sign in to {client}</h1><p>Azure emulator, tenant {html.escape(tenant)}. '
            'Pick an account; no password is needed.</p>'
            f'<ul>{"".join(rows) or "<li>No users are seeded.</li>"}</ul>{other}</main></body></html>')
        return Response(200, body, content_type="text/html; charset=utf-8",
                        headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY"})


def _redirect_allowed(redirect_uri: str, principal: dict) -> bool:
    """Registered URIs match exactly; loopback ones on any port, as Entra allows for native apps."""
    if redirect_uri in principal.get("redirect_uris", []):
        return True
    return (urlsplit(redirect_uri).hostname or "") in _LOOPBACK


def _deliver(params: dict[str, str], values: dict[str, str], extra_headers: dict | None = None) -> Response:
    """Send the authorization response back by the response_mode the client asked for."""
    redirect_uri = params["redirect_uri"]
    mode = params.get("response_mode") or "query"
    headers = dict(extra_headers or {})
    if mode == "form_post":
        inputs = "".join(f'<input type="hidden" name="{html.escape(key)}" value="{html.escape(value)}">'
                         for key, value in values.items())
        body = ('<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Signing in</title></head>'
                f'<body onload="document.forms[0].submit()"><form method="post" action="{html.escape(redirect_uri)}">'
                f'{inputs}<noscript><p>Script is off: continue by hand.</p></noscript>'
                '<button type="submit">Continue</button></form></body></html>')
        return Response(200, body, content_type="text/html; charset=utf-8", headers={**headers,
                                                                                     "Cache-Control": "no-store"})
    separator = "#" if mode == "fragment" else ("&" if "?" in redirect_uri else "?")
    headers["Location"] = f"{redirect_uri}{separator}{urlencode(values)}"
    return Response(302, None, headers=headers)


def _error_page(error: AadError) -> Response:
    body = ('<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign-in error</title></head><body>'
            f'<main><h1>Sorry, but we are having trouble signing you in.</h1><p>AADSTS{error.code}: '
            f'{html.escape(error.description)}</p></main></body></html>')
    return Response(400, body, content_type="text/html; charset=utf-8")


def _cookie(request: Request, name: str) -> str | None:
    for part in (request.headers.get("Cookie") or "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name and value:
            return value
    return None


# -- discovery ---------------------------------------------------------------------------------

def discovery_v2(base: str, tenant_path: str, tenant_id: str) -> dict:
    root = f"{base}/{tenant_path}"
    return {
        "token_endpoint": f"{root}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": f"{root}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        # Multi-tenant aliases announce the template, as Entra does.
        "issuer": f"{base}/{'{tenantid}' if tenant_path.lower() in ('common', 'organizations') else tenant_id}/v2.0",
        "request_uri_parameter_supported": False,
        "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{root}/oauth2/v2.0/logout",
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username",
                             "name", "tid", "ver", "at_hash", "c_hash", "email", "oid", "roles"],
        "tenant_region_scope": "NA",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
    }


def discovery_v1(base: str, tenant_path: str, tenant_id: str) -> dict:
    root = f"{base}/{tenant_path}"
    return {
        "token_endpoint": f"{root}/oauth2/token",
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": f"{root}/discovery/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "token id_token", "token"],
        "scopes_supported": ["openid"],
        "issuer": f"https://sts.windows.net/{tenant_id}/",
        "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
        "end_session_endpoint": f"{root}/oauth2/v2.0/logout",
        "tenant_region_scope": "NA",
        "cloud_instance_name": "microsoftonline.com",
    }


# -- registration ------------------------------------------------------------------------------

_TENANT = r"/(?P<tenant>[^/_][^/]*)"


def register(app) -> None:
    """Register the login-host routes, the users/principals/entra control endpoints and the backend."""
    entra = Entra(app)
    app.services["entra"] = entra
    tokens = TokenEndpoint(entra)
    authorize = Authorize(entra)
    route = app.router.add

    def aad(handler):
        """Answer AadError in Entra's shape rather than ARM's."""
        def wrapped(request: Request) -> Response:
            try:
                return handler(request)
            except AadError as error:
                return error.to_response(request.base_url)
        return wrapped

    @route("GET", _TENANT + r"/v2\.0/\.well-known/openid-configuration", "Entra_DiscoveryV2", auth="none")
    @aad
    def discovery(request: Request) -> Response:
        tenant = request.params["tenant"]
        return Response(200, discovery_v2(request.base_url, tenant, entra.resolve_tenant(tenant)))

    @route("GET", _TENANT + r"/\.well-known/openid-configuration", "Entra_DiscoveryV1", auth="none")
    @aad
    def discovery_legacy(request: Request) -> Response:
        tenant = request.params["tenant"]
        return Response(200, discovery_v1(request.base_url, tenant, entra.resolve_tenant(tenant)))

    @route("GET", _TENANT + r"/discovery(?:/v2\.0)?/keys", "Entra_Keys", auth="none")
    @aad
    def keys(request: Request) -> Response:
        tenant = entra.resolve_tenant(request.params["tenant"])
        return Response(200, entra.jwks(f"{request.base_url}/{tenant}/v2.0"))

    @route("POST", _TENANT + r"/oauth2/v2\.0/token", "Entra_Token", auth="none")
    def token(request: Request) -> Response:
        return tokens.handle(request, request.params["tenant"])

    @route("POST", _TENANT + r"/oauth2/token", "Entra_TokenV1", auth="none")
    def token_v1(request: Request) -> Response:
        return tokens.handle(request, request.params["tenant"], v1=True)

    for method in ("GET", "POST"):
        route(method, _TENANT + r"/oauth2/v2\.0/authorize", "Entra_Authorize", auth="none")(
            lambda request: authorize.handle(request, request.params["tenant"]))

    @route("GET", _TENANT + r"/oauth2/v2\.0/logout", "Entra_Logout", auth="none")
    def logout(request: Request) -> Response:
        target = request.arg("post_logout_redirect_uri")
        cookie = f"{SESSION_COOKIE}=; Path=/; Max-Age=0; Secure; SameSite=None"
        if target and urlsplit(target).scheme in ("http", "https"):
            return Response(302, None, headers={"Location": target, "Set-Cookie": cookie})
        page = ('<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Signed out</title></head>'
                '<body><main><h1>You signed out of your account</h1></main></body></html>')
        return Response(200, page, content_type="text/html; charset=utf-8", headers={"Set-Cookie": cookie})

    _register_control(app, entra)


def _register_control(app, entra: Entra) -> None:
    route = app.router.add

    def body_of(request: Request) -> dict:
        body = request.json()
        if body is None:
            return {}
        if not isinstance(body, dict):
            raise ArmError(400, "InvalidRequestContent", "The request body must be a JSON object.")
        return body

    @route("GET", r"/_emulator/users", "Control_ListUsers", auth="none")
    def list_users(request: Request) -> Response:
        return Response(200, {"value": entra.users()})

    @route("POST", r"/_emulator/users", "Control_AddUser", auth="none")
    def add_user(request: Request) -> Response:
        return Response(201, entra.add_user(body_of(request)))

    @route("DELETE", r"/_emulator/users/(?P<username>[^/]+)", "Control_DeleteUser", auth="none")
    def delete_user(request: Request) -> Response:
        if not entra.delete_user(request.params["username"]):
            raise ArmError(404, "NotFound", f"User '{request.params['username']}' was not found.")
        return Response(204)

    @route("GET", r"/_emulator/principals", "Control_ListPrincipals", auth="none")
    def list_principals(request: Request) -> Response:
        return Response(200, {"value": app.store.list("entra-principal")})

    @route("POST", r"/_emulator/principals", "Control_AddPrincipal", auth="none")
    def add_principal(request: Request) -> Response:
        return Response(201, entra.add_principal(body_of(request)))

    @route("POST", r"/_emulator/entra/next-id-token", "Control_NextIdToken", auth="none")
    def next_id_token(request: Request) -> Response:
        body = body_of(request)
        if "exp_offset" in body and not isinstance(body["exp_offset"], int):
            raise ArmError(400, "InvalidRequestContent", "exp_offset must be a whole number of seconds.")
        app.store.put("entra-hook", "next-id-token", body)
        return Response(200, body)

    @route("DELETE", r"/_emulator/entra/next-id-token", "Control_ClearNextIdToken", auth="none")
    def clear_next_id_token(request: Request) -> Response:
        app.store.delete("entra-hook", "next-id-token")
        return Response(204)

    @route("POST", r"/_emulator/entra/tokens", "Control_IssueToken", auth="none")
    def issue_token(request: Request) -> Response:
        body = body_of(request)
        if body.get("exp_offset") is not None and not isinstance(body["exp_offset"], int):
            raise ArmError(400, "InvalidRequestContent", "exp_offset must be a whole number of seconds.")
        tenant = body.get("tenant") or DEFAULT_TENANT
        user = None
        if body.get("username"):
            user = entra.user(body["username"])
            if user is None:
                raise ArmError(404, "NotFound", f"User '{body['username']}' was not found.")
        token, claims = entra.issue_access_token(
            client_id=body.get("client_id") or "goldsmith-worker", tenant=tenant,
            audience=body.get("audience") or "https://management.azure.com", user=user,
            exp_offset=body.get("exp_offset"), extra=body.get("claims"))
        return Response(201, {"access_token": token, "claims": claims})

    @route("POST", r"/_emulator/entra/rotate-keys", "Control_RotateKeys", auth="none")
    def rotate(request: Request) -> Response:
        body = body_of(request)
        kid = entra.rotate_keys(keep_previous=body.get("keep_previous", True))
        return Response(200, {"kid": kid, "kids": [key.kid for key in entra.signing_keys()]})
