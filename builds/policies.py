"""Changing the build policy: each change is a new Policy row (the newest applies), audited.

The rules themselves (what they mean, how they are checked) live in builds/validation.py;
reading the policy that applies is builds/preflight.policy_rules().
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.utils.text import slugify

from builds import validation
from builds.models import Policy
from builds.preflight import DEFAULT_POLICY
from builds.schema import Problem
from builds.services import ServiceError, _user
from portal import audit
from portal.audit import Actor


@transaction.atomic
def policy_update(*, actor: Actor, rules: Any, name: str = DEFAULT_POLICY, comment: str = "") -> Policy:
    """Save `rules` as the next version of the named policy and record `policy.update`.

    Returns the new version, or the current one unchanged (and nothing recorded) when the
    rules are the same. Raises ServiceError naming each bad rule.
    """
    if slugify(name) != name or not name:
        raise ServiceError("A policy name uses lower-case letters, digits and hyphens.",
                           [Problem("policy.name", "name", "Use lower-case letters, digits and hyphens.")])
    problems = validation.check_policy_rules(rules)
    if problems:
        raise ServiceError("The policy has mistakes; nothing was saved.", problems)
    normalized = validation.PolicyRules.from_json(rules).as_json()
    current = Policy.objects.select_for_update().filter(name=name).order_by("-version").first()
    before = validation.PolicyRules.from_json(current.rules).as_json() if current else {}
    if current is not None and before == normalized:
        return current
    try:
        with transaction.atomic():
            policy = Policy.objects.create(name=name, version=(current.version + 1) if current else 1,
                                           rules=normalized, comment=comment.strip(), created_by=_user(actor))
    except IntegrityError as exc:  # somebody saved the same version number a moment ago
        raise ServiceError("The policy changed while you edited it; reload and try again.") from exc
    changes = {key: [before.get(key), value] for key, value in normalized.items() if before.get(key) != value}
    changes["version"] = [current.version if current else None, policy.version]
    if comment.strip():
        changes["comment"] = [None, comment.strip()]
    audit.record("policy.update", actor=actor, obj=policy, label=f"policy {name} v{policy.version}", changes=changes)
    return policy


def policy_history(name: str = DEFAULT_POLICY) -> list[Policy]:
    return list(Policy.objects.filter(name=name).select_related("created_by").order_by("-version"))


def policy_names() -> list[str]:
    names = set(Policy.objects.values_list("name", flat=True))
    names.add(DEFAULT_POLICY)
    return sorted(names)
