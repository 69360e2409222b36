"""Changing the build policy: each change is a new Policy row (the newest applies), audited.

The rules themselves (what they mean, how they are checked) live in builds/validation.py;
reading the policy that applies is builds/preflight.policy_rules().
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils.text import slugify

from builds import validation
from builds.models import Policy
from builds.preflight import DEFAULT_POLICY
from builds.schema import Problem
from builds.services import ServiceError, _user
from portal import audit
from portal.access import roles_of
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


# --- Approval policy (four eyes) -------------------------------------------------------------------
#
# Who may ask for a version to be published, who may approve, and how many approvals publish
# it. Whoever made the request, or created the version, never approves it: publishing always
# takes a second person. Break-glass (builds/approvals.py) is the administrators' way round,
# with a mandatory reason, marked everywhere.


@dataclass(frozen=True)
class ApprovalRule:
    kind: str
    approvals: int  # approvals that publish (or promote); one rejection ends the request
    requesters: str  # who may request: "security" or "department" (the layer's editors)
    approvers: str  # who may approve: "security", or "department" (its editors or the security team)

    @property
    def description(self) -> str:
        who = {"security": "members of the security team",
               "department": "editors of the layer's department or members of the security team"}[self.approvers]
        count = "one approval" if self.approvals == 1 else f"{self.approvals} approvals"
        return f"{count} from {who}, other than the requester and the version's author"


APPROVAL_RULES = {
    "gold": ApprovalRule("gold", approvals=1, requesters="security", approvers="security"),
    "layer": ApprovalRule("layer", approvals=1, requesters="department", approvers="department"),
    "promotion": ApprovalRule("promotion", approvals=1, requesters="security", approvers="security"),
    # Made by the scheduler on behalf of whoever revoked the version (builds/approvals.py).
    "deletion": ApprovalRule("deletion", approvals=1, requesters="security", approvers="security"),
}


def approval_rule(kind: str) -> ApprovalRule:
    return APPROVAL_RULES[kind]


def request_refusal(user: Any, kind: str, department_id: int | None) -> str:
    """Why `user` may not request publishing of this kind ("" when they may)."""
    roles = roles_of(user)
    if approval_rule(kind).requesters == "security":
        return "" if roles.security else "Only the security team may request this."
    return "" if roles.edits(department_id) else "Only editors of the layer's department may request this."


def approval_refusal(user: Any, request: Any) -> str:
    """Why `user` may not decide on the publish request ("" when they may). The four-eyes rule
    comes first, so the author hears it even when they also hold an approving role."""
    if request.author_id == user.pk:
        return "You made this request: somebody else must approve it (four eyes)."
    target = request.target
    if target.created_by_id == user.pk and request.kind not in ("promotion", "deletion"):
        return f"You created {target}: somebody else must approve it (four eyes)."
    roles = roles_of(user)
    rule = approval_rule(request.kind)
    allowed = roles.security or (rule.approvers == "department" and roles.edits(request.department_id))
    if not allowed:
        who = "the security team" if rule.approvers == "security" else "the department's editors or the security team"
        return f"Only {who} may approve this request."
    if request.decisions.filter(approver=user).exists():
        return "You have already decided on this request."
    return ""
