"""Throttling of failed local sign-ins, kept in the shared cache (Redis).

Two counters per failure, both living LOGIN_LOCKOUT_SECONDS from the latest failure:

- the (username, client address) pair, locked at LOGIN_FAILURE_LIMIT failures: guessing one
  account's password from one place stops quickly, while the real owner elsewhere is unaffected.
  The username is keyed in its canonical form (`canonical_username`: NFKC, stripped,
  case-folded), because authentication normalises it too: a fullwidth `victim` (U+FF56...), `VICTIM`
  and `victim ` are all the same account's guesses, not fresh ones;
- the client address alone, locked at ten times that: one place trying many usernames stops too.

While locked, the password is not even checked, so a lock-out cannot be used as an oracle. A
successful sign-in clears the pair's counter. If the cache is unreachable the throttle lets
sign-ins through (logged as a warning): Redis being down must not lock every user out.
"""

from __future__ import annotations

import hashlib
import logging
import unicodedata

from django.conf import settings
from django.core.cache import cache

log = logging.getLogger(__name__)
ADDRESS_FACTOR = 10


def canonical_username(username: str) -> str:
    """The form every spelling of one name shares: NFKC (as Django's sign-in form applies it),
    stripped, case-folded, and NFKC again (case folding can undo it). Two names with the same
    canonical form are one name to the throttle and to the audit trail."""
    folded = unicodedata.normalize("NFKC", username).strip().casefold()
    return unicodedata.normalize("NFKC", folded)


def _pair_key(username: str, address: str) -> str:
    digest = hashlib.sha256(f"{canonical_username(username)}\x00{address}".encode()).hexdigest()
    return f"login-fail:pair:{digest}"


def _address_key(address: str) -> str:
    return f"login-fail:addr:{hashlib.sha256(address.encode()).hexdigest()}"


def is_locked(username: str, address: str) -> bool:
    """True when this username from this address, or this address, has failed too often."""
    try:
        counts = cache.get_many([_pair_key(username, address), _address_key(address)])
    except Exception:
        log.warning("login throttle: the cache is unreachable, not throttling", exc_info=True)
        return False
    limit = settings.LOGIN_FAILURE_LIMIT
    return (counts.get(_pair_key(username, address), 0) >= limit
            or counts.get(_address_key(address), 0) >= limit * ADDRESS_FACTOR)


def record_failure(username: str, address: str) -> int:
    """Count one failure; returns the pair's failure count (0 if the cache is unreachable)."""
    timeout = settings.LOGIN_LOCKOUT_SECONDS
    try:
        counts = []
        for key in (_pair_key(username, address), _address_key(address)):
            cache.add(key, 0, timeout)
            counts.append(cache.incr(key))
            cache.touch(key, timeout)  # the lock-out runs from the latest failure
        return counts[0]
    except Exception:
        log.warning("login throttle: the cache is unreachable, failure not counted", exc_info=True)
        return 0


def record_success(username: str, address: str) -> None:
    try:
        cache.delete(_pair_key(username, address))
    except Exception:
        log.warning("login throttle: the cache is unreachable", exc_info=True)


def clear(username: str, address: str) -> None:
    """Lift both locks (for tests and for an admin helping a locked-out user)."""
    try:
        cache.delete_many([_pair_key(username, address), _address_key(address)])
    except Exception:
        log.warning("login throttle: the cache is unreachable", exc_info=True)
