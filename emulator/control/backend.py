"""The emulator's control API (/_emulator/...) and the middlewares every request goes through.

Middlewares, outermost first: the request log (sees every request, refused ones included),
ARM's response headers (request ids, remaining-requests counters), fault injection, then
bearer-token authentication with denials. The control endpoints need no token: they are the
test harness's side door, like Azurite's well-known key, and are documented in README.md.

Fault rules, denials and the request log live in memory (a restart forgets them, as a test
harness expects); the clock and settings are kept in the store so a restart resumes builds
at the same simulated time.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import random
import threading
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from emulator.core import ArmError, Request, Route
from emulator.core.clock import iso

if TYPE_CHECKING:
    from emulator.core.pipeline import App

CONTROL = "/_emulator"
READ_LIMIT = 12000  # ARM's hourly per-subscription budgets, shown in x-ms-ratelimit-remaining-*
WRITE_LIMIT = 1200
LOG_CAPACITY = 200_000  # request-log entries kept in memory; the oldest are dropped first
FAULT_STATUSES = {429, 500, 503}


# ---------------------------------------------------------------------------------------
# ARM vocabulary shared by the middlewares
# ---------------------------------------------------------------------------------------

def arm_action(method: str, path: str) -> tuple[str, str]:
    """The RBAC action and scope ARM would check for a request, e.g.
    POST .../imageTemplates/t/run -> ("Microsoft.VirtualMachineImages/imageTemplates/run/action", ".../imageTemplates/t").
    """
    segments = [s for s in path.split("/") if s]
    lowered = [s.lower() for s in segments]
    verb = {"GET": "read", "HEAD": "read", "DELETE": "delete"}.get(method.upper(), "write")
    if "providers" in lowered:
        at = len(lowered) - 1 - lowered[::-1].index("providers")
        if at + 1 >= len(segments):
            return "Microsoft.Resources/providers/read", path
        namespace, rest = segments[at + 1], segments[at + 2:]
        types = rest[0::2]
        scope_segments = segments
        if method.upper() == "POST" and len(rest) % 2 == 1:
            # An odd tail on a POST is an action on the resource before it (run, cancel...).
            scope_segments = segments[:-1]
            return "/".join([namespace, *types[:-1], types[-1], "action"]), "/" + "/".join(scope_segments)
        return "/".join([namespace, *types, verb]), "/" + "/".join(scope_segments)
    if len(lowered) >= 3 and lowered[2] == "resourcegroups":
        return f"Microsoft.Resources/subscriptions/resourceGroups/{verb}", path
    return f"Microsoft.Resources/subscriptions/{verb}", path


def subscription_of(path: str) -> str | None:
    segments = [s for s in path.split("/") if s]
    if len(segments) >= 2 and segments[0].lower() == "subscriptions":
        return segments[1]
    return None


def unverified_claims(authorization: str | None) -> dict | None:
    """The payload of a bearer JWT without checking it (for logging, or while no verifier exists)."""
    if not authorization or not authorization.lower().startswith("bearer "):
        return None
    parts = authorization.split(" ", 1)[1].strip().split(".")
    if len(parts) != 3:
        return None
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, UnicodeDecodeError):
        return None
    return claims if isinstance(claims, dict) else None


def client_of(claims: dict | None) -> str | None:
    if not claims:
        return None
    return claims.get("appid") or claims.get("azp") or claims.get("oid") or claims.get("sub")


# ---------------------------------------------------------------------------------------
# Fault rules and denials
# ---------------------------------------------------------------------------------------

@dataclass
class FaultRule:
    id: int
    operation: str = "*"  # an operation name as logged, a glob of them, or "*" (every ARM operation)
    status: int | None = None
    rate: float = 1.0
    count: int | None = None  # how many more times it may fire; None = unlimited
    retry_after: float | None = None
    latency_ms: int = 0
    drop: bool = False
    code: str | None = None
    message: str | None = None
    template: str | None = None  # only requests about this image template (name, case-insensitive)
    seed: int | None = None
    hits: int = 0
    _random: random.Random = field(default_factory=random.Random, repr=False)

    def matches(self, request: Request, route: Route) -> bool:
        if self.count is not None and self.count <= 0:
            return False
        if self.operation == "*":
            if route.auth != "arm":
                return False  # "*" means Azure's APIs, never the control API or Entra sign-in
        elif not fnmatch.fnmatchcase(route.operation.lower(), self.operation.lower()):
            return False
        return not self.template or (request.params.get("template") or "").lower() == self.template.lower()

    def public(self) -> dict:
        data = asdict(self)
        data.pop("_random")
        return data


@dataclass
class Denial:
    id: int
    principal: str  # client (app) id, object id or user principal name in the token
    action: str = "*"  # glob over RBAC actions, case-insensitive
    scope: str | None = None  # ARM id prefix; None = everywhere

    def applies(self, claims: dict, action: str, scope: str) -> bool:
        names = {str(claims.get(k, "")).lower() for k in ("appid", "azp", "oid", "sub", "upn", "preferred_username")}
        if self.principal.lower() not in names:
            return False
        if not fnmatch.fnmatchcase(action.lower(), self.action.lower()):
            return False
        return not self.scope or scope.lower().startswith(self.scope.lower().rstrip("/"))


# ---------------------------------------------------------------------------------------
# The control service
# ---------------------------------------------------------------------------------------

class Control:
    """Request log, fault rules, denials, rate-limit counters, clock and settings."""

    def __init__(self, app: App):
        self.app = app
        self.startup_time_scale = app.clock.time_scale
        self._lock = threading.Lock()
        self._log: deque[dict] = deque(maxlen=LOG_CAPACITY)
        self._seq = 0
        self._faults: list[FaultRule] = []
        self._denials: list[Denial] = []
        self._next_id = 0
        self._budgets: dict[tuple[str, str], tuple[int, int]] = {}  # (sub, reads|writes) -> (hour, used)
        self.settings: dict[str, Any] = {}
        self._restore()

    # -- persistence of clock and settings -------------------------------------------------
    def _restore(self) -> None:
        # A clock moved or rescaled through the control API stays so across a restart; the
        # command line's --time-scale applies again after a reset.
        saved = self.app.store.get("emulator", "clock")
        if saved:
            self.app.clock.restore(saved)
        self.settings = self.app.store.get("emulator", "settings") or {}

    def clock_state(self) -> dict:
        clock = self.app.clock
        return {"now": iso(clock.now()), "frozen": clock.frozen, "time_scale": clock.time_scale,
                "startup_time_scale": self.startup_time_scale}

    def change_clock(self, *, time_scale: float | None = None, freeze: bool | None = None,
                     advance_seconds: float | None = None) -> dict:
        """Apply clock changes in a fixed order: scale, freeze/unfreeze, then advance."""
        clock = self.app.clock
        if time_scale is not None:
            if time_scale <= 0:
                raise ArmError(400, "InvalidParameter", "time_scale must be positive.")
            clock.time_scale = float(time_scale)
        if freeze is True:
            clock.freeze()
        elif freeze is False:
            clock.unfreeze()
        if advance_seconds is not None:
            if advance_seconds < 0:
                raise ArmError(400, "InvalidParameter", "The clock only moves forward: advance_seconds must be >= 0.")
            clock.advance(advance_seconds)
        self.app.store.put("emulator", "clock", clock.state())
        for hook in self.app.clock_hooks:
            hook()
        return self.clock_state()

    def change_settings(self, changes: dict) -> dict:
        """retry_after: seconds sent as Retry-After on LRO answers (null: 10 s / time scale);
        page_size: templates and gallery image versions per list page (null: 100); provision_seconds: simulated seconds a
        template takes to provision (null: 30)."""
        allowed = {"retry_after", "page_size", "provision_seconds"}
        unknown = set(changes) - allowed
        if unknown:
            raise ArmError(400, "InvalidParameter", f"Unknown settings: {', '.join(sorted(unknown))}.")
        retry_after = changes.get("retry_after")
        if retry_after is not None and (not isinstance(retry_after, int | float) or retry_after < 0):
            raise ArmError(400, "InvalidParameter", "retry_after must be a number >= 0 or null.")
        page_size = changes.get("page_size")
        if page_size is not None and (not isinstance(page_size, int) or not 1 <= page_size <= 1000):
            raise ArmError(400, "InvalidParameter", "page_size must be an integer from 1 to 1000 or null.")
        provision = changes.get("provision_seconds")
        if provision is not None and (not isinstance(provision, int | float) or provision < 0):
            raise ArmError(400, "InvalidParameter", "provision_seconds must be a number >= 0 or null.")
        self.settings.update(changes)
        self.app.store.put("emulator", "settings", self.settings)
        return dict(self.settings)

    def on_reset(self) -> None:
        """After the store is cleared: forget faults, denials, the log and clock changes."""
        with self._lock:
            self._log.clear()
            self._faults.clear()
            self._denials.clear()
            self._budgets.clear()
        self.settings = {}
        self.app.clock.reset(self.startup_time_scale)

    # -- request log -----------------------------------------------------------------------
    def record(self, entry: dict) -> None:
        with self._lock:
            self._seq += 1
            entry["seq"] = self._seq
            self._log.append(entry)

    def entries(self, *, since: int = 0, control: bool = True, operation: str | None = None,
                template: str | None = None, client_id: str | None = None,
                limit: int | None = None) -> tuple[list[dict], int]:
        with self._lock:
            entries = [e for e in self._log if e["seq"] > since]
            last = self._seq
        if not control:
            entries = [e for e in entries if e["kind"] != "control"]
        if operation:
            entries = [e for e in entries if fnmatch.fnmatchcase(e["operation"].lower(), operation.lower())]
        if template:
            entries = [e for e in entries if (e["template"] or "").lower() == template.lower()]
        if client_id:
            entries = [e for e in entries if (e["clientId"] or "").lower() == client_id.lower()]
        if limit is not None:
            entries = entries[:limit]
        return entries, last

    def stats(self, since: int = 0) -> dict:
        entries, last = self.entries(since=since, control=False)
        return {
            "total": len(entries),
            "lastSeq": last,
            "byOperation": dict(Counter(e["operation"] for e in entries)),
            "byTemplate": dict(Counter(e["template"] for e in entries if e["template"])),
            "byStatus": dict(Counter(str(e["status"]) for e in entries)),
            "byClient": dict(Counter(e["clientId"] for e in entries if e["clientId"])),
        }

    # -- faults and denials ----------------------------------------------------------------
    def _new_id(self) -> int:
        with self._lock:
            self._next_id += 1
            return self._next_id

    def add_fault(self, spec: dict) -> FaultRule:
        known = {"operation", "status", "rate", "count", "retry_after", "latency_ms", "drop", "code", "message",
                 "template", "seed"}
        unknown = set(spec) - known
        if unknown:
            raise ArmError(400, "InvalidParameter", f"Unknown fault fields: {', '.join(sorted(unknown))}.")
        rule = FaultRule(id=self._new_id(), **spec)
        problems = []
        if rule.status is not None and rule.status not in FAULT_STATUSES:
            problems.append(f"status must be one of {sorted(FAULT_STATUSES)}")
        if not 0 <= float(rule.rate) <= 1:
            problems.append("rate must be between 0 and 1")
        if rule.count is not None and rule.count < 0:
            problems.append("count must be >= 0")
        if rule.status is None and not rule.drop and not rule.latency_ms:
            problems.append("a rule needs a status, drop or latency_ms")
        if problems:
            raise ArmError(400, "InvalidParameter", "; ".join(problems) + ".")
        rule._random = random.Random(rule.seed if rule.seed is not None else rule.id)
        with self._lock:
            self._faults.append(rule)
        return rule

    def faults(self) -> list[dict]:
        with self._lock:
            return [rule.public() for rule in self._faults]

    def remove_fault(self, rule_id: int | None = None) -> bool:
        with self._lock:
            before = len(self._faults)
            self._faults = [r for r in self._faults if rule_id is not None and r.id != rule_id]
            return len(self._faults) != before

    def firing_rules(self, request: Request, route: Route) -> list[FaultRule]:
        """The rules that fire for this request (each roll of `rate` consumes one `count`)."""
        fired = []
        with self._lock:
            for rule in self._faults:
                if rule.matches(request, route) and rule._random.random() < rule.rate:
                    rule.hits += 1
                    if rule.count is not None:
                        rule.count -= 1
                    fired.append(rule)
        return fired

    def add_denial(self, spec: dict) -> Denial:
        if not spec.get("principal"):
            raise ArmError(400, "InvalidParameter", "A denial needs a principal (client id, object id or UPN).")
        unknown = set(spec) - {"principal", "action", "scope"}
        if unknown:
            raise ArmError(400, "InvalidParameter", f"Unknown denial fields: {', '.join(sorted(unknown))}.")
        denial = Denial(id=self._new_id(), **spec)
        with self._lock:
            self._denials.append(denial)
        return denial

    def denials(self) -> list[dict]:
        with self._lock:
            return [asdict(d) for d in self._denials]

    def remove_denial(self, denial_id: int | None = None) -> bool:
        with self._lock:
            before = len(self._denials)
            self._denials = [d for d in self._denials if denial_id is not None and d.id != denial_id]
            return len(self._denials) != before

    def denied(self, claims: dict, action: str, scope: str) -> bool:
        with self._lock:
            return any(d.applies(claims, action, scope) for d in self._denials)

    # -- ARM's remaining-request counters --------------------------------------------------
    def remaining(self, subscription: str, kind: str) -> int:
        """Decrement and return the hourly budget ARM reports; it never throttles by itself."""
        hour = int(self.app.clock.now().timestamp() // 3600)
        limit = READ_LIMIT if kind == "reads" else WRITE_LIMIT
        with self._lock:
            window, used = self._budgets.get((subscription, kind), (hour, 0))
            if window != hour:
                used = 0
            used += 1
            self._budgets[(subscription, kind)] = (hour, used)
        return max(0, limit - used)


# ---------------------------------------------------------------------------------------
# Middlewares
