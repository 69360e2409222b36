"""`Idempotency-Key` for POST /api/v1/builds/: a pipeline that retries after a dropped
connection gets the build it already requested instead of a second one.

The key is remembered per user for KEEP_SECONDS in the shared cache (Redis) with a digest of
the request body. The same key again with the same body answers the same build; with another
body, or while the first request is still running (at most PENDING_SECONDS, should its process
die), it answers 409 `conflict`. A request that was refused (400, 403) forgets its key, so it
may be corrected and retried under the same key.
Without a reachable cache the header is ignored (logged): the request itself still works.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass

from django.core.cache import cache

from api.errors import Conflict, ProblemsError, problem

log = logging.getLogger(__name__)
KEEP_SECONDS = 24 * 60 * 60
# A claim whose request never finished (the process died) is forgotten after this long.
PENDING_SECONDS = 120
HEADER = "Idempotency-Key"
_VALID = re.compile(r"^[\x21-\x7e]{1,255}$")  # visible ASCII, like a UUID or a pipeline run id
_PENDING = "pending"


@dataclass
class Claim:
    key: str  # the cache key; empty when there is no header or no cache
    fingerprint: str
    replay: str | None = None  # the build id requested earlier under this key


def claim(request, payload: dict) -> Claim:
    """Claim the request's Idempotency-Key, or say which build it already made.

    Raises ProblemsError for a malformed key and Conflict for a key in use by another body
    or by a request still running.
    """
    value = request.headers.get(HEADER)
    fingerprint = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
    if value is None:
        return Claim("", fingerprint)
    if not _VALID.match(value):
        raise ProblemsError("The request is not valid.", [
            problem("request.idempotency-key", HEADER, "Use 1 to 255 visible ASCII characters, e.g. a UUID.")])
    key = f"api-idem:{request.user.pk}:{hashlib.sha256(value.encode()).hexdigest()}"
    try:
        if cache.add(key, {"fingerprint": fingerprint, "build": _PENDING}, PENDING_SECONDS):
            return Claim(key, fingerprint)
        found = cache.get(key)
    except Exception:
        log.warning("Idempotency-Key: the cache is unreachable, ignoring the key", exc_info=True)
        return Claim("", fingerprint)
    if not found:  # expired between add and get: take it over
        return claim(request, payload)
    if found["fingerprint"] != fingerprint:
        raise Conflict("This Idempotency-Key was used for a different request body.")
    if found["build"] == _PENDING:
        raise Conflict("A request with this Idempotency-Key is still being processed; retry in a moment.")
    return Claim(key, fingerprint, replay=found["build"])


def complete(claim_: Claim, build_id: str) -> None:
    if claim_.key:
        _quietly(cache.set, claim_.key, {"fingerprint": claim_.fingerprint, "build": build_id}, KEEP_SECONDS)


def release(claim_: Claim) -> None:
    if claim_.key and claim_.replay is None:
        _quietly(cache.delete, claim_.key)


def _quietly(operation, *args) -> None:
    try:
        operation(*args)
    except Exception:
        log.warning("Idempotency-Key: the cache is unreachable", exc_info=True)
