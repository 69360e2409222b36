"""Bad input everywhere: every API endpoint, every form page and both template commands get the
same hostile payload classes, and none may answer 500 (or raise), write a row, or break the
audit chain.

Targets come from the URL resolver (the `portal`, `builds` and `api` names of the URL matrix,
tests/portal/url_matrix.py, with its world and its kwargs; the wizard once per step). Each is
called as a persona the matrix admits, pages through a session, the API with a Bearer token;
form fields are read from the forms the pages render (and their query parameters from the
OpenAPI document for the API). Payload classes (PAYLOADS): JSON nested 1,000 levels deep, a
3 MB body, binary bytes, wrong types, NUL bytes, fullwidth look-alikes, bidi controls and
zero-width characters. The text classes are probed twice on forms: in every field at once, and
only in the name fields of an otherwise valid form ("names"), which is where a refusal matters.

Every probe runs in a transaction that is rolled back, so probes do not see each other's
effects; inside it, after the request, the row count of every model must be unchanged and the
audit chain must verify. Audit events are left out of the count: a refusal may be recorded
(`access.denied`, a failed build request) and the chain check covers what was written there.
Actions that take no input at all (cancel, rebuild, publish, revoke...) are called too, for the
status, but their writes are legitimate and not counted (NO_INPUT_ACTIONS).
"""

from __future__ import annotations

import html
import io
import json
import re
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse
from drf_spectacular.generators import SchemaGenerator

from builds.models import GoldImage
from portal import audit, throttle
from portal.models import AuditEvent
from tests.api.conftest import client_with, token_of
from tests.portal.test_url_matrix import build_world, group_of, named_patterns
from tests.portal.url_matrix import ROWS
from tests.support.aib import template_body
from web import wizard

DEEP = "[" * 1000 + "]" * 1000
HUGE_BYTES = 3 * 1024 * 1024
BINARY = bytes(range(256)) * 4
# Text payloads, one per class; "lookalike" is fullwidth Latin, "bidi" a right-to-left override.
TEXT = {
    "nul": "web\x00nginx",
    "lookalike": "\uff55\uff42\uff55\uff4e\uff54\uff55",  # "ubuntu" in fullwidth letters
    "bidi": "evil\u202egnp.exe",
    "zero-width": "ubu\u200bntu",
}
PAYLOADS = ("deep", "huge", "binary", "wrong-types", *TEXT)

# Surfaces and URL names left out, and why: the admin and the RQ dashboard are Django's and
# django-rq's own forms; signing out ends the session the probes use; Entra ID is not configured
# here (404); the sign-in form is the "signin" engineer's (tests/portal/test_signin.py).
SKIPPED = {"portal:logout", "portal:entra-start", "portal:entra-callback", "portal:login", "healthz"}
# Called for the status only: they take no input, so a write is what they are for.
NO_INPUT_ACTIONS = {
    "builds:build-cancel", "builds:build-rebuild", "builds:gold-version-build", "builds:layer-version-build",
    "builds:wizard-publish", "builds:layer-version-publish", "portal:token-revoke", "portal:audit-checkpoint",
    "builds:gold-version-action", "api:build-cancel", "api:publish-request-approve", "api:publish-request-reject",
    "api:publish-request-withdraw", "builds:rollout-action", "builds:rollout-prepare-draft", "api:rollout-pause",
    "api:rollout-resume", "api:rollout-cancel",
    # Four eyes: a free-text reason or comment is all they take, like gold-version-action's.
    "builds:approval-decide", "builds:approval-withdraw", "builds:approval-promote", "builds:approval-break-glass",
}
# Persona preference: the first the matrix admits for the method is used.
PREFERENCE = ("alice", "bob", "dave", "erin", "sam")
ADMITTED = {"ok", "in", "past"}
# The fields that name things. A look-alike matters where a name identifies (a slug, a run
# output); a display name or a token's label may be written in any script, so "name" is not
# probed with look-alikes.
NAME_FIELDS = {"name", "slug", "runOutputName"}
IDENTIFYING_NAME_FIELDS = {"slug", "runOutputName"}
# Valid values for fields a create form leaves empty, so that a "names" probe is refused for its
# name alone.
KNOWN = {"slug": "fuzz", "name": "Fuzz", "os_type": "Linux", "version": "9.0.0", "department": "web",
         "gold_image": "ubuntu", "accepts": "*", "expires": "30", "based_on": "", "policy": "default",
         "template": json.dumps(template_body()), "offline": "on"}
# Model tables not counted: see the module docstring (AuditEvent), and the session store, which
# a page may save for its messages without any input being accepted.
NOT_COUNTED = {"portal.auditevent", "sessions.session"}

# --- Targets ---------------------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    url: str
    method: str
    persona: str
    fields: dict[str, str] = field(default_factory=dict)  # name -> the value the page rendered


def persona_for(name: str, method: str) -> str | None:
    expected = ROWS[name].expectations().get(method, {})
    return next((p for p in PREFERENCE if expected.get(p) in ADMITTED), None)


def page_urls(world) -> list[tuple[str, str]]:
    """(name, url) of every page and API URL the probes call; the wizard once per step."""
    found = []
    for name in sorted(named_patterns()):
        if group_of(name) not in ("portal", "builds", "api") or name in SKIPPED or name not in ROWS:
            continue
        row = ROWS[name]
        kwargs = row.kwargs(world) if row.kwargs else None
        if name == "builds:wizard-step":
            found += [(name, reverse(name, kwargs={**kwargs, "step": step})) for step in wizard.STEP_NAMES]
        else:
            found.append((name, reverse(name, kwargs=kwargs)))
    return found


_FORM = re.compile(r"<form\b([^>]*)>(.*?)</form>", re.S | re.I)
_ATTR = re.compile(r'([\w-]+)="([^"]*)"')
_CONTROL = re.compile(r"<textarea\b([^>]*)>(.*?)</textarea>|<(input|select)\b([^>]*)>", re.S | re.I)


def forms_on(page: str, url: str) -> dict[tuple[str, str], dict[str, str]]:
    """{(method, action URL): {field: rendered value}} for every form on the page."""
    found: dict[tuple[str, str], dict[str, str]] = {}
    for attrs, body in _FORM.findall(page):
        attributes = dict(_ATTR.findall(attrs))
        action = html.unescape(attributes.get("action") or url).split("?")[0]
        values = found.setdefault((attributes.get("method", "get").lower(), action), {})
        for textarea_attrs, content, tag, control_attrs in _CONTROL.findall(body):
            tag, control_attrs = tag or "textarea", control_attrs or textarea_attrs
            control = dict(_ATTR.findall(control_attrs))
            name = control.get("name")
            if not name or name == "csrfmiddlewaretoken" or control.get("type") in ("submit", "button"):
                continue
            if control.get("type") in ("checkbox", "radio") and "checked" not in control_attrs:
                values.setdefault(name, "")
                continue
            value = content if tag.lower() == "textarea" else control.get("value", "")
            if tag.lower() == "select":
                chosen = re.search(r'<option[^>]*value="([^"]*)"[^>]*selected', body[body.find(control_attrs):])
                value = chosen.group(1) if chosen else ""
            if not values.get(name):
                values[name] = html.unescape(value)
    return found


_DISCOVERED: dict[tuple[str, str], dict[str, str]] = {}  # (method, URL with ids masked) -> fields


def _masked(url: str) -> str:
    return re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<uuid>", url)


def page_targets(world, clients) -> list[Target]:
    """Every page URL and method an admitted persona may call, with the fields of its forms (read
    once per test session: the worlds differ only in their ids)."""
    urls = page_urls(world)
    if not _DISCOVERED:
        _DISCOVERED.update({(method, _masked(url)): fields
                            for (method, url), fields in discover_forms(urls, clients).items()})
    targets = []
    for name, url in urls:
        if name.startswith("api:"):
            continue
        for method in ("get", "post"):
            persona = persona_for(name, method)
            if persona is not None:
                targets.append(Target(name, url, method, persona, dict(_DISCOVERED.get((method, _masked(url)), {}))))
    return targets


def discover_forms(urls: list[tuple[str, str]], clients) -> dict[tuple[str, str], dict[str, str]]:
    forms: dict[tuple[str, str], dict[str, str]] = {}
    for name, url in urls:
        persona = persona_for(name, "get")
        if name.startswith("api:") or persona is None:
            continue
        with transaction.atomic():
            response = clients[persona].get(url)
            transaction.set_rollback(True)
        if response.status_code == 200 and "text/html" in response.get("Content-Type", ""):
            for key, values in forms_on(response.content.decode(), url).items():
                forms.setdefault(key, {}).update({k: v for k, v in values.items() if v or k not in forms.get(key, {})})
    return forms


def api_targets(world) -> list[Target]:
    """Every API URL and method an admitted persona may call; `fields` holds its query parameters."""
    document = SchemaGenerator().get_schema(request=None, public=True)
    targets = []
    for name, url in page_urls(world):
        if not name.startswith("api:"):
            continue
        operations = next((ops for path, ops in document["paths"].items()
                           if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", path), url)), {})
        for method in ("get", "post", "put", "patch", "delete"):
            persona = persona_for(name, method)
            if persona is None:
                continue
            parameters = operations.get(method, {}).get("parameters", [])
            query = {p["name"]: "" for p in parameters if p["in"] == "query"}
            targets.append(Target(name, url, method, persona, query))
    return targets


# --- Requests ------------------------------------------------------------------------------------------


def form_data(target: Target, payload: str, *, names_only: bool) -> list[dict]:
    """The form bodies of a probe class for a target: one, or for "names" one per name field
    (the rest of the form valid, so that the name alone decides); none when it has no names."""
    fields = target.fields or {"name": "", "slug": ""}
    if payload == "deep":
        return [{name: DEEP for name in fields}]
    if payload == "huge":
        return [{next(iter(fields)): "x" * HUGE_BYTES}]
    if payload == "wrong-types":
        return [{name: ["99999999999999999999999999", "x", "-1"] for name in fields}]
    if payload == "binary":
        return [{name: BINARY.decode("latin-1") for name in fields}]
    text = TEXT[payload]
    if not names_only:
        return [{name: text for name in fields}]
    base = {name: value or KNOWN.get(name, "") for name, value in fields.items()}
    probed = IDENTIFYING_NAME_FIELDS if payload == "lookalike" else NAME_FIELDS
    return [{**base, name: text} for name in fields if name in probed]


def api_body(target: Target, payload: str):
    """(bytes, content type) of an API probe."""
    if payload == "deep":
        return DEEP.encode(), "application/json"
    if payload == "huge":
        return json.dumps({"gold_image": "x" * HUGE_BYTES}).encode(), "application/json"
    if payload == "binary":
        return BINARY, "application/json"
    if payload == "wrong-types":
        return None, "application/json"  # several bodies: see WRONG_TYPES
    text = TEXT[payload]
    if target.name == "api:template-check":
        body = template_body(customize=[{"type": "Shell", "name": text, "inline": [text]}],
                             distribute=[{"type": "VHD", "runOutputName": text}])
        body["tags"] = {text: text}
    else:
        body = {"gold_image": text, "version": f"1.0.0{text}", "layers": [f"web/{text}@1.0.0"], "department": text}
    return json.dumps(body).encode(), "application/json"


WRONG_TYPES = [[], [{}], 42, "a string", None, {"gold_image": 1, "version": 2, "layers": "web/nginx@1.0.0"},
               {"gold_image": ["ubuntu"], "version": {"a": 1}, "layers": [1, None, {}], "department": 3},
               {"properties": [], "location": 7, "identity": "x"}]


def counts() -> dict[str, int]:
    """The row count of every model table (one query: a probe makes two of these)."""
    models = [model for model in apps.get_models()
              if model._meta.managed and not model._meta.proxy and model._meta.label_lower not in NOT_COUNTED]
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(f"(SELECT COUNT(*) FROM {quote(m._meta.db_table)})" for m in models))
        row = cursor.fetchone()
    return {model._meta.label_lower: count for model, count in zip(models, row, strict=True)}


def audit_head() -> int:
    return AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


@dataclass
class Prober:
    failures: list[str] = field(default_factory=list)
    made: int = 0

    def probe(self, label: str, target_name: str, send, *args, count_rows: bool = True, **kwargs) -> None:
        """One request in a rolled-back transaction: no 500, no new row, the audit chain intact."""
        self.made += 1
        with transaction.atomic():
            before, head = counts(), audit_head()
            response = send(*args, **kwargs)
            after = counts()
            verdict = audit.verify_chain(since_id=head) if audit_head() != head else None
            transaction.set_rollback(True)
        if response.status_code >= 500:
            self.failures.append(f"{label}: {response.status_code}")
        elif count_rows and target_name not in NO_INPUT_ACTIONS and after != before:
            grown = {k: after[k] - before[k] for k in after if after[k] != before[k]}
            self.failures.append(f"{label}: {response.status_code} but wrote {grown}")
        if verdict is not None and not verdict.ok:
            self.failures.append(f"{label}: the audit chain broke: {verdict.reason}")

    def check(self) -> None:
        assert self.made, "no probe ran"
        assert not self.failures, f"{len(self.failures)} of {self.made} probes failed:\n  " + "\n  ".join(
            self.failures)


@pytest.fixture
def world(alice, bob, carol, dave, erin, sam, azure_emulator) -> SimpleNamespace:
    """The URL matrix's world, sessions and API tokens for the personas; azure_emulator: the wizard
    and layer pages look things up in Azure."""
    personas = {"alice": alice, "bob": bob, "carol": carol, "dave": dave, "erin": erin, "sam": sam}
    world = build_world(personas)
    world.sessions, world.tokens = {}, {}
    for name, user in personas.items():
        world.sessions[name] = Client(raise_request_exception=False)
        world.sessions[name].force_login(user)
        world.tokens[name] = client_with(token_of(user))
    yield world
    throttle.clear("", "127.0.0.1")


# --- Pages ---------------------------------------------------------------------------------------------

PAGE_CASES = [*PAYLOADS, *(f"{name}-names" for name in TEXT)]


@pytest.mark.parametrize("case", PAGE_CASES)
def test_it_never_answers_500_nor_writes_for_bad_form_input(world, case):
    payload, names_only = case.removesuffix("-names"), case.endswith("-names")
    prober = Prober()
    for target in page_targets(world, world.sessions):
        client = world.sessions[target.persona]
        if target.method == "get":
            if payload in ("huge", "binary") or names_only or not target.fields:
                continue  # a query string is not a body: the GET classes are the text ones and deep
            data = form_data(target, payload, names_only=False)[0]
            prober.probe(f"GET {target.url} {case}", target.name, client.get, target.url, data)
            continue
        if payload == "binary":
            # Django reads an undecodable form body as Latin-1 keys no form knows: an empty form,
            # which some forms (the policy's, all optional) accept. So: the status only.
            prober.probe(f"POST {target.url} binary body", target.name, client.post, target.url, BINARY,
                         content_type="application/x-www-form-urlencoded", count_rows=False)
        for data in form_data(target, payload, names_only=names_only):
            poisoned = next((n for n in NAME_FIELDS if names_only and data.get(n) == TEXT[payload]), "")
            prober.probe(f"POST {target.url} {case} {poisoned}".rstrip(), target.name, client.post, target.url, data)
    prober.check()


# --- API -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", list(PAYLOADS))
def test_it_never_answers_500_nor_writes_for_bad_api_input(world, case):
    prober = Prober()
    for target in api_targets(world):
        client = world.tokens[target.persona]
        call = getattr(client, target.method)
        if target.method == "get":
            if target.fields and case in TEXT:
                query = {name: TEXT[case] for name in target.fields}
                prober.probe(f"GET {target.url} {case} query", target.name, call, target.url, query)
            continue
        # A DELETE reads no body: deleting is what it is for, so only its status is judged.
        count_rows = target.method != "delete"
        if case == "wrong-types":
            for value in WRONG_TYPES:
                prober.probe(f"{target.method.upper()} {target.url} {json.dumps(value)[:40]}", target.name,
                             call, target.url, json.dumps(value), content_type="application/json",
                             count_rows=count_rows)
            continue
        body, content_type = api_body(target, case)
        prober.probe(f"{target.method.upper()} {target.url} {case}", target.name,
                     call, target.url, body, content_type=content_type, count_rows=count_rows)
    prober.check()


# --- Commands ------------------------------------------------------------------------------------------

EXIT_UNREADABLE = 2


def command_inputs(case: str) -> list[tuple[str, bytes, bool]]:
    """(label, file bytes, unreadable?) for a payload class."""
    if case == "deep":
        return [("deep", DEEP.encode(), True)]
    if case == "huge":
        return [("huge", json.dumps(template_body(description="x" * HUGE_BYTES)).encode(), False)]
    if case == "binary":
        return [("binary", BINARY, True), ("binary-json", b'{"location": "\xff\xfe"}', True)]
    if case == "wrong-types":
        return [(f"wrong-types {json.dumps(v)[:20]}", json.dumps(v).encode(), not isinstance(v, dict))
                for v in WRONG_TYPES]
    text = TEXT[case]
    named = template_body(customize=[{"type": "Shell", "name": text, "inline": ["echo"]}],
                          distribute=[{"type": "VHD", "runOutputName": text}])
    return [(case, json.dumps(named).encode(), False), (f"{case}-raw", text.encode() + b"{}", True)]


def run(command: str, path, *args) -> int:
    """The exit status `manage.py <command>` would have; any other exception is a traceback."""
    try:
        call_command(command, str(path), *args, stdout=io.StringIO(), stderr=io.StringIO())
    except SystemExit as exc:
        return int(exc.code or 0)
    except CommandError as exc:
        return exc.returncode
    return 0


COMMAND_CASES = [f"{command}-{case}" for command in ("checktemplate", "importtemplate") for case in PAYLOADS]


@pytest.mark.parametrize("case", COMMAND_CASES)
def test_the_template_commands_refuse_bad_input_without_a_traceback(world, tmp_path, case):
    command, payload = case.split("-", 1)
    failures, made = [], 0
    for label, data, unreadable in command_inputs(payload):
        path = tmp_path / "template.json"
        path.write_bytes(data)
        slugs = [TEXT[payload]] if payload in TEXT else ["fuzz"]
        for slug in slugs if command == "importtemplate" else [None]:
            made += 1
            args = ("--offline",) if command == "checktemplate" else ("--gold-image", slug, "--version", "9.0.0")
            with transaction.atomic():
                before = counts()
                try:
                    status = run(command, path, *args)
                except Exception as exc:  # any exception here is the bug being looked for
                    failures.append(f"{label}: raised {type(exc).__name__}: {exc}"[:300])
                    transaction.set_rollback(True)
                    continue
                after = counts()
                transaction.set_rollback(True)
            if unreadable and status != EXIT_UNREADABLE:
                failures.append(f"{label}: exit {status}, not {EXIT_UNREADABLE} (unreadable input)")
            if payload in TEXT and command == "importtemplate" and after != before:
                failures.append(f"{label}: imported a name with {payload} characters "
                                f"({GoldImage.objects.count()} gold images)")
    assert made
    assert not failures, "\n  ".join([f"{len(failures)} of {made} inputs failed:", *failures])


def test_the_probes_cover_every_api_endpoint_and_form_page(world):
    """The enumeration itself: a URL added without reaching the probes would be fuzzed by nobody."""
    api = {target.name for target in api_targets(world)}
    pages = {target.name for target in page_targets(world, world.sessions) if target.method == "post"}

    assert api >= {"api:build-list", "api:template-check", "api:build-cancel", "api:audit-event-list"}
    assert pages >= {"builds:wizard-start", "builds:wizard-step", "builds:layer-create", "builds:layer-version-edit",
                     "builds:checktemplate", "builds:policy", "portal:token-create", "builds:gold-version-action"}
    assert AuditEvent.objects.exists()


@pytest.mark.parametrize("name, model", [("builds:wizard-start", "builds.goldimage"),
                                         ("builds:layer-create", "builds.layer"),
                                         ("portal:token-create", "portal.apitoken")])
def test_a_names_probe_is_refused_for_its_name_alone(world, name, model):
    """The control: the same form with plain names is accepted, so a refused probe was refused for
    the characters in its name, not for the rest of the form."""
    target = next(t for t in page_targets(world, world.sessions) if t.name == name and t.method == "post")
    plain = {field: value or KNOWN.get(field, "") for field, value in target.fields.items()}
    plain.update({field: "plain" for field in ("slug", "name") if field in plain})
    before = counts()[model]

    response = world.sessions[target.persona].post(target.url, plain)

    assert response.status_code in (200, 201, 302)
    assert counts()[model] == before + 1
