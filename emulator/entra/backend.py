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
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from emulator.core import ArmError, Response
from emulator.resources.backend import DEFAULT_TENANT

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

