"""The API's rate limit: API_RATE_PER_MINUTE requests per token (per user for session calls).

A fixed one-minute window per caller, counted with an atomic increment in the shared cache
(Redis), so every web process and host counts the same requests. Over the limit the request
is answered 429 `throttled` with `Retry-After`: the seconds until the window ends. A window
boundary can let up to twice the rate through in a short burst; that is fine for the
purpose (keeping one runaway pipeline from crowding out everybody else). If the cache is
unreachable the limit is not applied (logged), like the sign-in throttle: Redis being down
must not stop every pipeline.
"""

from __future__ import annotations

import logging
import math
import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle

from portal.models import ApiToken

log = logging.getLogger(__name__)
WINDOW_SECONDS = 60  # tests shorten it so that a Retry-After is a second, not a minute


def caller_key(request) -> str | None:
    """Whose budget a request spends: its token's, else its signed-in user's, else nobody's."""
    if isinstance(request.auth, ApiToken):
        return f"t{request.auth.pk}"
    user = request.user
    if user is not None and user.is_authenticated:
        return f"u{user.pk}"
    return None


class TokenRateThrottle(BaseThrottle):
    def __init__(self):
        self._wait = 0.0

    def allow_request(self, request, view) -> bool:
        rate = settings.API_RATE_PER_MINUTE
        who = caller_key(request)
        if not rate or who is None:
            return True
        now = time.time()
        window = int(now // WINDOW_SECONDS)
        key = f"api-rate:{who}:{window}"
        try:
            cache.add(key, 0, WINDOW_SECONDS + 5)
            count = cache.incr(key)
        except Exception:
            log.warning("API rate limit: the cache is unreachable, not limiting", exc_info=True)
            return True
        if count <= rate:
            return True
        self._wait = max(1.0, math.ceil((window + 1) * WINDOW_SECONDS - now))
        return False

    def wait(self) -> float:
        return self._wait
