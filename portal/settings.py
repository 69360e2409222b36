"""Goldsmith settings.

Everything comes from environment variables with safe embedded defaults (SQLite and a
private Redis under var/, the emulator on loopback), so `make run` needs no configuration.
Every variable read here is documented in .env.example and docs/operations.md; a test keeps
the three in step. Misconfiguration is reported by the system checks in portal/checks.py.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from portal.env import env_bool, env_int, env_list, env_str, was_set

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("GOLDSMITH_VAR_DIR", str(BASE_DIR / "var")))

# --- Core -------------------------------------------------------------------------------

DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
# "Deployed" means somebody named the public host names: production defaults apply then.
DEPLOYED = not DEBUG and was_set("ALLOWED_HOSTS")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])


def _secret_key() -> str:
    """SECRET_KEY or SECRET_KEY_FILE; otherwise a random key kept under var/ for make run."""
    value = env_str("SECRET_KEY")
    if value:
        return value
    if DEPLOYED:
        raise ImproperlyConfigured("SECRET_KEY (or SECRET_KEY_FILE) must be set when ALLOWED_HOSTS is set and DEBUG is off.")
    path = VAR_DIR / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(50)
        path.write_text(key)
        path.chmod(0o600)
        return key


SECRET_KEY = _secret_key()

INSTALLED_APPS = [
    "portal.admin_apps.GoldsmithAdminConfig",  # the Django admin, for the admin role only
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_rq",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files for the API docs, served from our static files
    "portal",
    "builds",
    "notify",
    "web",
]

MIDDLEWARE = [
    "portal.health.HealthzMiddleware",  # first: probes skip host checks and the HTTPS redirect
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "portal.middleware.RequestIdMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "portal.timezones.TimezoneMiddleware",  # the browser's zone for times on pages (see portal/timezones.py)
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "portal.security.SessionTimeoutMiddleware",  # after auth: ends idle and over-age sessions
    "portal.security.SecurityHeadersMiddleware",  # Content-Security-Policy and friends
]

ROOT_URLCONF = "web.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.context_processors.sandbox",
            ],
        },
    },
]

# --- Data -------------------------------------------------------------------------------

DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'goldsmith.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0))}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and scheduler share the file: WAL lets readers run beside the one writer,
    # IMMEDIATE transactions take the write lock up front so two writers queue instead of
    # deadlocking on a lock upgrade, and the timeout lets them wait their turn.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Tests start real worker processes and a live server: they need a file, not :memory:
    # (one per test run, so concurrent runs on one machine never share it).
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-goldsmith-{os.getpid()}.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL", f"unix://{VAR_DIR / 'redis.sock'}")
RQ_QUEUES = {
    "builds": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 600},
    "default": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 600},
}
RQ_SHOW_ADMIN_LINK = False
# rq's worker, fetching the Entra ID tokens jobs use before it forks each one (builds/worker.py).
RQ = {"WORKER_CLASS": "builds.worker.Worker"}

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "goldsmith",
    }
}

# --- Auth and sessions -------------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Passwords are checked by ModelBackend; the second backend authenticates nobody and gives the
# admin role its Django admin permissions (portal/admin_site.py).
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "portal.admin_site.AdminRolePermissions",
]
LOGIN_URL = "portal:login"
LOGIN_REDIRECT_URL = "portal:home"
LOGOUT_REDIRECT_URL = "portal:login"

# Sessions live in the database, so signing out (or a timeout) ends them on the server. A
# session ends after SESSION_IDLE_TIMEOUT seconds without a page load or form post, and in any
# case SESSION_ABSOLUTE_TIMEOUT seconds after sign-in (portal/security.py enforces both).
SESSION_IDLE_TIMEOUT = env_int("SESSION_IDLE_TIMEOUT", 30 * 60, minimum=60)
SESSION_ABSOLUTE_TIMEOUT = env_int("SESSION_ABSOLUTE_TIMEOUT", 12 * 60 * 60, minimum=300)
SESSION_COOKIE_AGE = SESSION_ABSOLUTE_TIMEOUT
SESSION_COOKIE_SAMESITE = "Lax"  # the Entra callback is a top-level GET redirect, which Lax admits

# Failed local sign-ins: a (username, address) pair is locked for LOGIN_LOCKOUT_SECONDS after
# LOGIN_FAILURE_LIMIT failures, an address after ten times as many across usernames.
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
LOGIN_LOCKOUT_SECONDS = env_int("LOGIN_LOCKOUT_SECONDS", 15 * 60, minimum=1)
# Repeated refusals (auth.login_failed, access.denied) of one kind from one address are
# recorded once per this many seconds; the repeats are counted into the next event of that
# kind (portal.audit.record_refusal, docs/audit.md), so nobody can flood the audit trail.
AUDIT_REFUSAL_WINDOW_SECONDS = 60

# Microsoft Entra ID sign-in (authorization code flow with PKCE, portal/entra.py) is offered
# once the app registration's client id, tenant id and secret are all set. `make run` points
# it at the emulator's login host; local accounts keep working beside it.
ENTRA_CLIENT_ID = env_str("ENTRA_CLIENT_ID")
ENTRA_TENANT_ID = env_str("ENTRA_TENANT_ID")
ENTRA_CLIENT_SECRET = env_str("ENTRA_CLIENT_SECRET")
ENTRA_AUTHORITY_HOST = env_str("ENTRA_AUTHORITY_HOST", "https://login.microsoftonline.com").rstrip("/")
ENTRA_REDIRECT_URI = env_str("ENTRA_REDIRECT_URI")  # empty: <this site>/auth/entra/callback/
ENTRA_CLOCK_SKEW_SECONDS = env_int("ENTRA_CLOCK_SKEW_SECONDS", 120, minimum=0)
ENTRA_ENABLED = bool(ENTRA_CLIENT_ID and ENTRA_TENANT_ID and ENTRA_CLIENT_SECRET)

# --- Web security ------------------------------------------------------------------------
# Production defaults apply once the portal is deployed (DEBUG off and ALLOWED_HOSTS set);
# each can still be turned off explicitly, e.g. behind a proxy that terminates TLS itself.

SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", DEPLOYED)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", DEPLOYED)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", DEPLOYED)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if DEPLOYED else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", DEPLOYED)
# The preload token only takes effect for a registrable domain submitted to the browsers'
# lists; on the portal's own host name it is inert, so it is on by default like the rest.
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", DEPLOYED)
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")


def _networks(name: str, values: list[str]) -> list[str]:
    """`values` when each is an IP address or network (CIDR): a typo fails loudly, at start."""
    for value in values:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError as exc:
            raise ImproperlyConfigured(f"{name}: {value!r} is not an IP address or network") from exc
    return values


# The reverse proxies whose X-Request-ID is taken as the request id (portal/middleware.py);
# from any other client the header is ignored and a fresh id is made, so nobody can choose the
# request id that the audit trail and the logs record. Empty: trust no one.
TRUSTED_PROXIES = _networks("TRUSTED_PROXIES", env_list("TRUSTED_PROXIES", []))
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the page, not the cookie
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Sent on every response by portal.security.SecurityHeadersMiddleware: scripts and styles come
# from our own static files only (no inline <script>, no event handler attributes, no eval),
# nothing may frame the portal. Inline style attributes stay allowed: they cannot run script.
CONTENT_SECURITY_POLICY = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "style-src-attr": ["'unsafe-inline'"],
    "img-src": ["'self'", "data:"],
    "font-src": ["'self'"],
    "connect-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    # Signing out of Entra ID posts to /logout/, which redirects to the login host.
    "form-action": ["'self'"] + ([ENTRA_AUTHORITY_HOST] if ENTRA_ENABLED else []),
    "frame-ancestors": ["'none'"],
}

# --- Internationalisation ------------------------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- Static files --------------------------------------------------------------------------

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Hashed, compressed file names (cacheable forever) once deployed; they need `collectstatic`
# to have run with the same setting, which the Docker image does at build time.
STATIC_MANIFEST = env_bool("STATIC_MANIFEST", DEPLOYED)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if STATIC_MANIFEST
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- Azure -------------------------------------------------------------------------------
# With no Azure variable set (and not deployed), this is the sandbox: every process, runall's
# children and any `manage.py` command in another shell alike, talks to the emulator that
# `make run` starts on loopback, trusting the CA it writes under var/emulator/. Setting any of
# the Azure variables below turns that off: nothing then falls back to the emulator, and the
# defaults are public Azure's (see emulator/README.md and docs/operations.md).

GOLDSMITH_EMULATOR_PORT = env_int("GOLDSMITH_EMULATOR_PORT", 8443, minimum=1)
# Realistic build durations are divided by this: 20 ends a demo build in about two minutes.
GOLDSMITH_EMULATOR_TIME_SCALE = env_int("GOLDSMITH_EMULATOR_TIME_SCALE", 20, minimum=1)
SANDBOX_EMULATOR_URL = f"https://127.0.0.1:{GOLDSMITH_EMULATOR_PORT}"
AZURE_SANDBOX = not DEPLOYED and not any((
    was_set("AZURE_ARM_ENDPOINT"), was_set("AZURE_AUTHORITY_HOST"), was_set("AZURE_CA_BUNDLE"),
    was_set("AZURE_EMULATOR"), was_set("AZURE_SUBSCRIPTION_ID"), was_set("AZURE_TENANT_ID"),
    was_set("AZURE_CLIENT_ID"), was_set("AZURE_CLIENT_SECRET"),
))

AZURE_PUBLIC_ARM_ENDPOINT = "https://management.azure.com"
AZURE_SUBSCRIPTION_ID = env_str("AZURE_SUBSCRIPTION_ID", "22222222-2222-2222-2222-222222222222")
AZURE_TENANT_ID = env_str("AZURE_TENANT_ID", "11111111-1111-1111-1111-111111111111")
AZURE_CLIENT_ID = env_str("AZURE_CLIENT_ID", "goldsmith-worker")
AZURE_CLIENT_SECRET = env_str("AZURE_CLIENT_SECRET", "emulator-secret")
AZURE_RESOURCE_GROUP = env_str("AZURE_RESOURCE_GROUP", "goldsmith-images")
AZURE_LOCATION = env_str("AZURE_LOCATION", "eastus")
AZURE_ARM_ENDPOINT = env_str("AZURE_ARM_ENDPOINT",
                             SANDBOX_EMULATOR_URL if AZURE_SANDBOX else AZURE_PUBLIC_ARM_ENDPOINT).rstrip("/")
AZURE_AUTHORITY_HOST = env_str("AZURE_AUTHORITY_HOST",
                               SANDBOX_EMULATOR_URL if AZURE_SANDBOX else "https://login.microsoftonline.com").rstrip("/")
# The emulator writes its CA on its first start; before that there is nothing to trust yet.
_SANDBOX_CA = VAR_DIR / "emulator" / "ca.pem"
AZURE_CA_BUNDLE = env_str("AZURE_CA_BUNDLE", str(_SANDBOX_CA) if AZURE_SANDBOX and _SANDBOX_CA.exists() else "")
# The CA bundle for calls to the Entra login host (discovery, keys, tokens); Azure's by default.
ENTRA_CA_BUNDLE = env_str("ENTRA_CA_BUNDLE", AZURE_CA_BUNDLE)
# The emulator also serves Entra's sign-in and sign-out pages over plain HTTP on loopback one
# port up (`runall` passes --browser-http-port): browsers treat loopback as secure, so they need
# no trust in the emulator's CA. Sign-out's redirect goes there, so the form-action policy
# allows that origin, only when sign-in is the sandbox's own.
GOLDSMITH_EMULATOR_BROWSER_PORT = GOLDSMITH_EMULATOR_PORT + 1
# `make run`: Azurite, the sandbox's staging storage for build logs (emulator/storage/azurite.py).
GOLDSMITH_AZURITE_PORT = env_int("GOLDSMITH_AZURITE_PORT", 10000, minimum=1)
if ENTRA_ENABLED and ENTRA_AUTHORITY_HOST == SANDBOX_EMULATOR_URL:
    CONTENT_SECURITY_POLICY["form-action"].append(f"http://127.0.0.1:{GOLDSMITH_EMULATOR_BROWSER_PORT}")
# The identity Image Builder runs as, filled into gold images whose template has none.
AZURE_TEMPLATE_IDENTITY = env_str(
    "AZURE_TEMPLATE_IDENTITY",
    f"/subscriptions/{AZURE_SUBSCRIPTION_ID}/resourceGroups/{AZURE_RESOURCE_GROUP}"
    "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/goldsmith-aib",
)
# Tells the portal the endpoints are the emulator's (for its fault-free control features, the
# operator page and the sandbox banner); production settings pointing here are reported by
# check goldsmith.E002.
AZURE_EMULATOR = env_bool("AZURE_EMULATOR", AZURE_SANDBOX)
# Seconds between polls of a long-running operation when Azure sends no Retry-After.
AZURE_POLLING_INTERVAL = env_int("AZURE_POLLING_INTERVAL", 5, minimum=0)
# Image Builder's TooManyRequests: wait at least this long, whatever Retry-After says.
AZURE_THROTTLE_MIN_SECONDS = env_int("AZURE_THROTTLE_MIN_SECONDS", 180, minimum=0)
# Seconds a catalog look-up (Marketplace image, gallery definition, managed image) is reused;
# 0 looks up every time. The wizard and the validation rules ask the same questions often.
AZURE_LOOKUP_CACHE_SECONDS = env_int("AZURE_LOOKUP_CACHE_SECONDS", 300, minimum=0)
# Seconds the preflight look-ups (regions, VM sizes, role assignments and definitions,
# identities, policy assignments) are reused: at most one ARM read per kind per subscription
# in that window. A permission that looks missing is always read again before it is reported.
AZURE_PREFLIGHT_CACHE_SECONDS = env_int("AZURE_PREFLIGHT_CACHE_SECONDS", 600, minimum=0)
# The object id of the portal's own principal (the identity AZURE_CLIENT_ID signs in as), for
# checking that it may create templates and assign the template identity. Empty: only the
# template identity's permissions are checked, and preflight says so once as a warning.
AZURE_PRINCIPAL_ID = env_str("AZURE_PRINCIPAL_ID", "")

# --- Builds --------------------------------------------------------------------------------

BUILD_SWEEP_SECONDS = env_int("BUILD_SWEEP_SECONDS", 30, minimum=1)
# A JSON file of build VM prices ({"Standard_D2ds_v5": 0.113, ...}, per hour, in one currency)
# for the rough cost per build-hour shown next to each size; empty shows no prices. Read from
# disk only (no price API is called).
BUILD_VM_PRICES_FILE = env_str("BUILD_VM_PRICES_FILE", "")
BUILD_VM_PRICES_CURRENCY = env_str("BUILD_VM_PRICES_CURRENCY", "USD")
BUILD_MAX_SUBMITTING = env_int("BUILD_MAX_SUBMITTING", 20, minimum=1)
# Rollouts (builds/rollouts.py) share BUILD_MAX_SUBMITTING: they never hold more builds waiting
# to be submitted than it allows. An advance job holds its rollout at most this long.
ROLLOUT_LEASE_SECONDS = env_int("ROLLOUT_LEASE_SECONDS", 120, minimum=1)
# How often the source watch lists each watched source image (builds/sourcewatch.py).
SOURCE_WATCH_HOURS = env_int("SOURCE_WATCH_HOURS", 6, minimum=1)
BUILD_TEMPLATE_RETENTION_HOURS = env_int("BUILD_TEMPLATE_RETENTION_HOURS", 0, minimum=0)
# A VHD without an explicit uri lives in the template's staging storage and is lost when the
# template is deleted, so such builds keep their template longer.
BUILD_VHD_RETENTION_HOURS = env_int("BUILD_VHD_RETENTION_HOURS", 168, minimum=0)
# A failed build's logs live in its template's staging storage: keep it so people can read them.
BUILD_FAILED_RETENTION_HOURS = env_int("BUILD_FAILED_RETENTION_HOURS", 72, minimum=0)
# Where a finished build's log is kept once its staging group is deleted: a blob container URL
# (https://<account>.blob.core.windows.net/<container>, read and written with the portal's
# identity), or empty to keep it, compressed, in the database.
BUILD_LOG_CONTAINER_URL = env_str("BUILD_LOG_CONTAINER_URL", "").rstrip("/")
# Days a kept log is kept (0: for ever); the nightly job deletes older copies.
BUILD_LOG_RETENTION_DAYS = env_int("BUILD_LOG_RETENTION_DAYS", 365, minimum=0)
BUILD_LEASE_SECONDS = env_int("BUILD_LEASE_SECONDS", 300, minimum=1)
# First delay after a transient error; it doubles with each attempt, up to BUILD_RETRY_MAX_SECONDS.
BUILD_RETRY_BASE_SECONDS = env_int("BUILD_RETRY_BASE_SECONDS", 5, minimum=1)
BUILD_RETRY_MAX_SECONDS = env_int("BUILD_RETRY_MAX_SECONDS", 300, minimum=1)
BUILD_MAX_ATTEMPTS = env_int("BUILD_MAX_ATTEMPTS", 50, minimum=1)
BUILD_RECONCILE_SECONDS = env_int("BUILD_RECONCILE_SECONDS", 60, minimum=1)
BUILD_CANCEL_STUCK_MINUTES = env_int("BUILD_CANCEL_STUCK_MINUTES", 60, minimum=1)
BUILD_MISSING_GRACE_SECONDS = env_int("BUILD_MISSING_GRACE_SECONDS", 600, minimum=0)
# Days between a gold version's deprecation and the endOfLifeDate set on its gallery image versions.
RELEASE_DEPRECATION_EOL_DAYS = env_int("RELEASE_DEPRECATION_EOL_DAYS", 30, minimum=0)

# --- Notifications (notify/, docs/events.md) ----------------------------------------------
# E-mail goes through Django's SMTP backend. In the sandbox `make run` starts a local SMTP sink
# on EMAIL_PORT (8025) that keeps every message under var/mail/ (the "Sent mail" page).

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "127.0.0.1")
EMAIL_PORT = env_int("EMAIL_PORT", 8025 if AZURE_SANDBOX else 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Goldsmith <goldsmith@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# The portal's public address, for links in messages (no request to take it from in a worker):
# deployed, https:// and the first ALLOWED_HOSTS name that is neither a wildcard nor loopback.
_PUBLIC_HOSTS = [host for host in ALLOWED_HOSTS if host and not host.startswith((".", "*"))
                 and host not in ("localhost", "127.0.0.1", "[::1]")]
NOTIFY_BASE_URL = env_str("NOTIFY_BASE_URL", f"https://{_PUBLIC_HOSTS[0]}" if DEPLOYED and _PUBLIC_HOSTS else
                          f"http://127.0.0.1:{env_int('GOLDSMITH_WEB_PORT', 8000, minimum=1)}")
# More than this many e-mails to one person within NOTIFY_DIGEST_MINUTES become one digest.
NOTIFY_DIGEST_THRESHOLD = env_int("NOTIFY_DIGEST_THRESHOLD", 5, minimum=1)
NOTIFY_DIGEST_MINUTES = env_int("NOTIFY_DIGEST_MINUTES", 10, minimum=1)
# Failed deliveries are retried after NOTIFY_RETRY_BASE_SECONDS, doubling up to an hour, for
# NOTIFY_RETRY_HOURS after the event; an endpoint failing NOTIFY_DISABLE_AFTER times in a row is disabled.
NOTIFY_RETRY_BASE_SECONDS = env_int("NOTIFY_RETRY_BASE_SECONDS", 30, minimum=1)
NOTIFY_RETRY_HOURS = env_int("NOTIFY_RETRY_HOURS", 24, minimum=1)
NOTIFY_DISABLE_AFTER = env_int("NOTIFY_DISABLE_AFTER", 20, minimum=1)
NOTIFY_WEBHOOK_TIMEOUT_SECONDS = env_int("NOTIFY_WEBHOOK_TIMEOUT_SECONDS", 10, minimum=1)
# A delivery whose worker died is sent again once this lease has passed (and the reconciler runs).
NOTIFY_LEASE_SECONDS = env_int("NOTIFY_LEASE_SECONDS", 120, minimum=1)
NOTIFY_RECONCILE_SECONDS = env_int("NOTIFY_RECONCILE_SECONDS", 60, minimum=1)
# CA bundle for https webhooks; empty: the public CAs (certifi).
NOTIFY_CA_BUNDLE = env_str("NOTIFY_CA_BUNDLE")
# The SSRF guard allows http to loopback only here, so receivers can be tried on one machine.
NOTIFY_ALLOW_LOOPBACK_HTTP = DEBUG or AZURE_SANDBOX
# Where the sandbox's SMTP sink keeps messages (one .eml file each), read by the "Sent mail" page.
NOTIFY_SANDBOX_MAILDIR = VAR_DIR / "mail"

# --- Logging -------------------------------------------------------------------------------

LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "portal.middleware.RequestIdLogFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["request_id"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "azure": {"level": "WARNING"},
        "django.db.backends": {"level": "WARNING"},
    },
}

# --- API (api/, docs/api.md) -----------------------------------------------------------

# Requests per minute per API token (per user for session calls), counted in Redis across
# every web process; over it the API answers 429 with Retry-After. 0 turns the limit off.
API_RATE_PER_MINUTE = env_int("API_RATE_PER_MINUTE", 120, minimum=0)

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Bearer first: its challenge is the WWW-Authenticate of every 401. Session calls are for
    # the docs page; DRF's SessionAuthentication makes them carry the CSRF token to change anything.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "portal.tokens.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": ["api.throttling.TokenRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["api.parsers.BoundedJSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "api.negotiation.JsonFallbackNegotiation",
    "EXCEPTION_HANDLER": "api.errors.exception_handler",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "UNICODE_JSON": True,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Goldsmith API",
    "DESCRIPTION": ("Gold images, department layers, builds, template checks and the audit trail of Goldsmith, "
                    "for pipelines and scripts. Authenticate with `Authorization: Bearer <token>`. Every error is "
                    '`{"error": {"code", "message", "problems"?}}`; lists are cursor-paginated. Guide: docs/api.md.'),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "SERVE_AUTHENTICATION": REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "displayOperationId": False},
    "ENUM_NAME_OVERRIDES": {
        "BuildStateEnum": "builds.models.Build.State",
        "GoldVersionStatusEnum": "builds.models.GoldImageVersion.Status",
        "LayerVersionStatusEnum": "builds.models.LayerVersion.Status",
        "OsTypeEnum": "builds.models.OsType",
        "AuditOutcomeEnum": "portal.models.AuditEvent.Outcome",
        "PublishRequestKindEnum": "builds.models.PublishRequest.Kind",
        "EndpointKindEnum": "notify.models.Endpoint.Kind",
        "RolloutStateEnum": "builds.models.Rollout.State",
        "RolloutWaveStateEnum": "builds.models.RolloutWave.State",
        "ErrorHandlingEnum": ["cleanup", "abort"],  # the policy's on_customizer_error and on_validation_error
        "AutomaticRolloutEnum": ["plan", "start"],  # the policy's rollout_on_publish and rollout_on_promote
    },
}
