"""Who may receive an event: the access funnel's rules, applied to the event's object.

An endpoint or a user never receives an event about an object they could not open in the
portal. The rules are builds/access.py's, stated on the event's columns (object type,
department, status) so that fan-out decides thousands of (event, recipient) pairs without a
query each; tests/notify/test_visibility.py checks them against the funnel's own query sets for
every persona.

- builds: security, auditors and administrators see all; editors their departments' (gold-only
  builds have no department and are not theirs);
- gold image versions: security and auditors all; editors published, deprecated and revoked;
- the audit chain: auditors and the security team (who read the audit history);
- anything else (approvals, rollouts, source images): security and auditors, and the editors of
  the event's department.
Administrators (the operator) receive build events, as they read every build; otherwise users
without a catalog role and inactive users receive nothing.
"""

from __future__ import annotations

from typing import Any

from notify import catalog
from notify.models import Endpoint, OutboxEvent, Subscription
from portal.access import Roles, roles_of

# The gold version statuses editors may see (builds/access.py VISIBLE_GOLD_STATUSES): notify sits
# below builds and does not import it; tests/notify/test_visibility.py holds the two equal.
VISIBLE_GOLD_STATUSES = ("published", "deprecated", "revoked")


def roles_may_see(roles: Roles, event: OutboxEvent) -> bool:
    if event.type.startswith("audit."):
        return roles.auditor or roles.security
    if roles.security or roles.auditor:
        return True
    if roles.admin and event.object_type == "build":
        return True  # the operator reads every build (and cancels a stuck one)
    if event.object_type == "gold_version":
        return roles.editor and event.body.get("version", {}).get("status") in VISIBLE_GOLD_STATUSES
    return roles.edits(event.department_id)


def may_see(user: Any, event: OutboxEvent) -> bool:
    return roles_may_see(roles_of(user), event)


def endpoint_receives(endpoint: Endpoint, event: OutboxEvent, roles: Roles | None = None) -> bool:
    """Whether `endpoint` gets `event`: it asked for the type, is enabled, its owner may see the
    event, and a department endpoint only hears of its department (or of catalog-wide objects
    that department's editors may see, such as published gold image versions)."""
    if not endpoint.enabled or event.type not in endpoint.event_types:
        return False
    if not roles_may_see(roles if roles is not None else roles_of(endpoint.owner), event):
        return False
    if endpoint.department_id is None:
        return True
    if event.department_id is not None:
        return event.department_id == endpoint.department_id
    return roles_may_see(Roles(editor_departments=frozenset({endpoint.department_id})), event)


# --- Subscriptions ---------------------------------------------------------------------------------


def default_subscriptions(roles: Roles) -> set[tuple[str, str]]:
    """(event type, scope) pairs a user with `roles` gets until they choose their own."""
    chosen = set()
    for event_type in catalog.TYPES:
        for role, scope in event_type.defaults:
            if roles.has(role):
                chosen.add((event_type.name, scope))
    return chosen


def scope_matches(scope: str, user_id: int, roles: Roles, event: OutboxEvent) -> bool:
    subjects = event.subjects or {}
    if scope == Subscription.Scope.MINE:
        return user_id in subjects.get("requested_by", [])
    if scope == Subscription.Scope.DEPARTMENT:
        return roles.edits(event.department_id)
    if scope == Subscription.Scope.OWNED:
        return user_id in subjects.get("owners", [])
    if scope == Subscription.Scope.APPROVALS:
        return user_id in subjects.get("approvers", [])
    return scope == Subscription.Scope.ALL
