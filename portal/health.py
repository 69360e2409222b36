"""GET /healthz: can this process reach its database and Redis? For load balancers and Docker.

The answer names no host, URL or exception message (those leak the network layout and, for
some drivers, credentials): only which dependency failed and the exception's class.
"""

from __future__ import annotations

import time

import redis
from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

PATH = "/healthz"
# Short enough that a probe with a 5 s timeout still gets an answer when Redis is unreachable.
REDIS_TIMEOUT_SECONDS = 2


def _probe(check) -> dict:
    started = time.monotonic()
    try:
        check()
    except Exception as exc:  # any failure means "not ok"; the class is enough to start looking
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "ms": round((time.monotonic() - started) * 1000, 1)}


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _redis() -> None:
    # A fresh client with its own timeouts: the shared RQ connection may block far longer.
    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=REDIS_TIMEOUT_SECONDS, socket_timeout=REDIS_TIMEOUT_SECONDS
    )
    try:
        client.ping()
    finally:
        client.close()


@require_safe
@never_cache
def healthz(request):
    database = _probe(_database)
    redis_state = _probe(_redis)
    ok = database["ok"] and redis_state["ok"]
    body = {"status": "ok" if ok else "degraded", "database": database, "redis": redis_state}
    return JsonResponse(body, status=200 if ok else 503)


class HealthzMiddleware:
    """Answers /healthz before host validation and the HTTPS redirect run.

    Probes (Docker's HEALTHCHECK, a load balancer) call the container by its internal address
    over plain HTTP, which a deployed portal would refuse with 400 (ALLOWED_HOSTS) or redirect
    (SECURE_SSL_REDIRECT). Must come first in MIDDLEWARE.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info == PATH:
            return healthz(request)
        return self.get_response(request)
