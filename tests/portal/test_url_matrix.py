"""The URL x role x method matrix: every named URL pattern, every persona, GET and POST (and the
API's methods), against the expectation table in tests/portal/url_matrix.py.

The URL names come from the resolver, so a new pattern without a row fails
`test_every_named_url_has_a_row`. Each group of URLs runs against one world (built once per
group); each request runs in a transaction that is rolled back, so no request changes what the
next one sees. Mismatches are collected and reported together, one line each.
"""

from __future__ import annotations

import os
import time
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.contrib import admin
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.core import signing
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from builds import approvals, rollouts
from builds.models import Build, Policy
from notify import events
from notify.delivery import UNSUBSCRIBE_SALT
from notify.models import Delivery, Endpoint
from portal import audit, throttle, tokens
from portal.admin_site import ADMIN_ROLE_MODELS
from portal.models import AuditEvent
from tests import factories
from tests.portal import url_matrix
from tests.portal.url_matrix import PERSONAS, ROWS, Row
from tests.support.build_rows import make_build
from tests.support.pages import without_csrf_tokens

TIMINGS: dict[str, float] = {}
GROUPS = ("portal", "builds", "admin", "django_rq", "api", "other")
# Administered models whose rows are made by their own flows (sign-in, the profile page), never
# added in the admin.
CREATED_ELSEWHERE = {"portal.apitoken", "portal.externalidentity"}


def named_patterns() -> dict[str, tuple[str, ...]]:
    """Every URL name the resolver knows, namespaced ("builds:gold-detail", "healthz"), with the
    names of its parameters."""
    names: dict[str, tuple[str, ...]] = {}

    def walk(patterns, namespace):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                inner = namespace
                if pattern.namespace:
                    inner = f"{namespace}:{pattern.namespace}" if namespace else pattern.namespace
                walk(pattern.url_patterns, inner)
            elif isinstance(pattern, URLPattern) and pattern.name:
                name = f"{namespace}:{pattern.name}" if namespace else pattern.name
                names.setdefault(name, tuple(pattern.pattern.regex.groupindex))

    walk(get_resolver().url_patterns, "")
    return names


def group_of(name: str) -> str:
    prefix = name.split(":", 1)[0] if ":" in name else ""
    return prefix if prefix in GROUPS else "other"


# --- The Django admin's rows, generated ---------------------------------------------------------


def admin_rows() -> dict[str, Row]:
    """A row for every `admin:` name the resolver knows (see url_matrix.admin_row)."""
    models = {f"{model._meta.app_label}_{model._meta.model_name}_": model for model in admin.site._registry}
    rows: dict[str, Row] = {}
    for name, parameters in named_patterns().items():
        if not name.startswith("admin:"):
            continue
        short = name.split(":", 1)[1]
        model = next((model for prefix, model in models.items() if short.startswith(prefix)), None)
        label = f"{model._meta.app_label}.{model._meta.model_name}" if model else ""
        admitted = model is None or label in ADMIN_ROLE_MODELS
        if short.endswith("_add") and label in CREATED_ELSEWHERE:
            admitted = False
        rows[name] = url_matrix.admin_row(short, admitted=admitted,
                                          kwargs=lambda w, model=model, parameters=parameters:
                                          admin_kwargs(w, model, parameters))
    return rows


def admin_kwargs(world, model, parameters: tuple[str, ...]) -> dict:
    values = {}
    for parameter in parameters:
        if parameter in ("object_id", "id"):
            values[parameter] = world.any_pk(model or Build)
        elif parameter == "app_label":
            values[parameter] = "portal"
        elif parameter == "uidb64":
            values[parameter] = "MQ"
        elif parameter == "token":
            values[parameter] = "no-such-token"
        elif parameter == "content_type_id":
            values[parameter] = ContentType.objects.get_for_model(Build).pk
        else:
            raise AssertionError(f"an admin URL wants {parameter!r}: teach admin_kwargs about it")
    return values


def all_rows() -> dict[str, Row]:
    return {**ROWS, **admin_rows()}


# --- The world -----------------------------------------------------------------------------------


def build_world(personas: dict) -> SimpleNamespace:
    """Objects the rows' kwargs refer to. Department-owned objects belong to web (bob's).

    gold (slug "ubuntu") with published 1.0.0 and draft 1.1.0; web_layer (web/nginx) with
    web_version 1.0.0 (published) and web_draft 1.1.0; data_layer (data/tools) with 1.0.0;
    builds web_build (web, with nginx@1.0.0), data_build (data), security_build (gold only);
    bob_token (an API token of bob's); web_request (bob's pending publish request for web_draft);
    web_endpoint (bob's disabled web webhook) with web_delivery; bob_unsubscribe (a token of bob's
    unsubscribe link); audit_event (the newest audit event); any_pk(model).
    """
    alice, bob, carol = personas["alice"], personas["bob"], personas["carol"]
    web, data = bob.memberships.get().department, carol.memberships.get().department
    gold = factories.make_gold_image("ubuntu", actor=alice)
    published = factories.make_gold_version(gold, "1.0.0", actor=alice)
    draft = factories.make_gold_version(gold, "1.1.0", publish=False, actor=alice)
    web_layer = factories.make_layer(web, gold, "nginx", actor=bob)
    web_version = factories.make_layer_version(web_layer, "1.0.0", actor=bob)
    web_draft = factories.make_layer_version(web_layer, "1.1.0", publish=False, actor=bob)
    data_layer = factories.make_layer(data, gold, "tools", actor=carol)
    data_version = factories.make_layer_version(data_layer, "1.0.0", actor=carol)
    world = SimpleNamespace(
        gold=gold, published=published, draft=draft, web_layer=web_layer, web_version=web_version,
        web_draft=web_draft, data_layer=data_layer, data_version=data_version,
        web_build=make_build(published, [web_version], requested_by=bob, department=web,
                             state=Build.State.RUNNING, sub_state="Customizing", phases=("Queued", "Building")),
        data_build=make_build(published, [data_version], requested_by=carol, department=data),
        security_build=make_build(published, requested_by=alice),
        bob_token=tokens.token_create(actor=bob, user=bob, name="matrix")[0],
        web_request=approvals.publish_request_create(actor=bob, target=web_draft, extra_problems=[]),
    )
    world.web_endpoint = Endpoint.objects.create(kind="webhook", url="https://hooks.example.com/web", owner=bob,
                                                 department=web, event_types=["build.failed"], enabled=False)
    world.web_delivery = Delivery.objects.create(
        event=events.build_event(world.web_build, "build.failed"), endpoint=world.web_endpoint,
        idempotency_key="matrix", status=Delivery.Status.FAILED)
    world.bob_unsubscribe = signing.dumps({"u": bob.pk, "t": "build.failed", "s": "*"}, salt=UNSUBSCRIBE_SALT)
    # A planned rollout of 1.0.0: an entry of web's (nginx) and one of data's (tools) to build, and
    # web's legacy layer (accepting ^2 only) listed as needing a new version (web_needs_action).
    factories.make_layer_version(factories.make_layer(web, gold, "legacy", actor=bob), "2.0.0", accepts="^2",
                                 actor=bob)
    world.rollout = rollouts.rollout_create(actor=alice, gold_version=published)
    world.web_needs_action = world.rollout.items.get(kind="needs_action")
    world.audit_event = AuditEvent.objects.order_by("-id").first()
    # So that the admin's object pages find an object of every model (a missing one redirects).
    Policy.objects.create(name="default", version=1, rules={}, created_by=alice)
    Group.objects.create(name="matrix")
    audit.checkpoint_create()

    def any_pk(model):
        found = model._default_manager.order_by("pk").values_list("pk", flat=True).first()
        return found if found is not None else 1

    world.any_pk = any_pk
    return world


@pytest.fixture
def personas(alice, bob, carol, dave, erin, sam) -> dict:
    return {"alice": alice, "bob": bob, "carol": carol, "dave": dave, "erin": erin, "sam": sam}


# --- Outcomes ------------------------------------------------------------------------------------

_REDIRECTS = {301, 302, 303, 307, 308}


def to_sign_in(response) -> bool:
    if response.status_code not in _REDIRECTS:
        return False
    return urlsplit(response["Location"]).path in {reverse("portal:login"), reverse("admin:login")}


def matches(token: str, response) -> bool:
    status = response.status_code
    login = to_sign_in(response)
    if token == "ok":
        return not login and (status < 400 or status in (400, 409, 415, 422))
    if token == "in":
        return not login and status not in (401, 403) and status < 500
    if token == "login":
        return login
    if token == "no":
        return login or status in (401, 403, 404, 405)
    return status == int(token)


def describe(response) -> str:
    if response.status_code in _REDIRECTS:
        return f"{response.status_code} -> {response['Location']}"
    return str(response.status_code)


def run_group(group: str, personas: dict) -> list[str]:
    world = build_world(personas)
    clients = {"anonymous": Client(raise_request_exception=False)}
    for name, user in personas.items():
        clients[name] = Client(raise_request_exception=False)
        clients[name].force_login(user)
    rows = all_rows()
    mismatches = []
    for name in sorted(n for n in named_patterns() if group_of(n) == group):
        row = rows[name]
        url = reverse(name, kwargs=row.kwargs(world) if row.kwargs else None)
        for method, expected in row.expectations().items():
            for persona in PERSONAS:
                client = clients[persona]
                cookie = client.cookies.get(settings.SESSION_COOKIE_NAME)
                started = time.monotonic()
                with transaction.atomic():
                    response = getattr(client, method)(url)
                    transaction.set_rollback(True)
                TIMINGS[f"{name} {method} {persona}"] = time.monotonic() - started
                if cookie is not None:  # a sign-out in a rolled-back request must not sign the client out
                    client.cookies[settings.SESSION_COOKIE_NAME] = cookie.value
                if not matches(expected[persona], response):
                    mismatches.append(f"{name} {method.upper()} {url} as {persona}: "
                                      f"expected {expected[persona]}, got {describe(response)}")
    throttle.clear("", "127.0.0.1")  # the empty sign-in forms the matrix posted
    if os.environ.get("GOLDSMITH_MATRIX_TIMINGS"):
        slowest = sorted(TIMINGS.items(), key=lambda item: -item[1])[:20]
        print("\n".join(f"{seconds:6.2f}s {what}" for what, seconds in slowest))
    return mismatches


# --- Tests ---------------------------------------------------------------------------------------


def test_every_named_url_has_a_row():
    missing = sorted(name for name in named_patterns() if name not in all_rows())
    assert not missing, (
        "These URL names have no row in tests/portal/url_matrix.py (see docs/security.md, "
        "'Adding a URL to the access matrix'):\n  " + "\n  ".join(missing))


def test_every_row_names_an_existing_url():
    stale = sorted(set(ROWS) - set(named_patterns()))
    assert not stale, "Rows for URL names that no longer exist:\n  " + "\n  ".join(stale)


def test_every_row_is_well_formed():
    for name, row in all_rows().items():
        assert row.expectations(), f"{name}: no method tested"
        assert "get" in row.expectations() or "post" in row.expectations(), name


@pytest.mark.parametrize("group", GROUPS)
def test_the_matrix(group, personas, azure_emulator):
    """azure_emulator: pages that look things up in Azure (the wizard, layer checks) answer at once."""
    names = [n for n in named_patterns() if group_of(n) == group]
    if not names:
        pytest.skip(f"no {group} URLs yet")
    mismatches = run_group(group, personas)
    assert not mismatches, f"{len(mismatches)} outcomes differ from the table:\n  " + "\n  ".join(mismatches)


# --- Department isolation, object by object ----------------------------------------------------------

REFUSED = {403, 404, 405}


def department_object_urls(world) -> list[tuple[str, dict, dict]]:
    """(name, kwargs for web's object, kwargs for data's counterpart) for every row whose URL
    names an object of the web department (a layer, layer version, build, token of bob's)."""
    web_values = {"web": "data", world.web_layer.slug: world.data_layer.slug,
                  str(world.web_build.uuid): str(world.data_build.uuid),
                  str(world.web_version.uuid): str(world.data_version.uuid)}
    found = []
    for name, row in sorted(ROWS.items()):
        if row.kwargs is None:
            continue
        kwargs = row.kwargs(world)
        if not any(str(value) in web_values for value in kwargs.values()):
            continue
        swapped = {key: web_values.get(str(value), value) for key, value in kwargs.items()}
        found.append((name, kwargs, swapped))
    return found


def test_an_editor_of_another_department_is_refused_every_object_url(personas, azure_emulator):
    world = build_world(personas)
    urls = department_object_urls(world)
    assert len(urls) >= 15, "the world's web objects should appear in many rows"
    carol, bob = Client(raise_request_exception=False), Client(raise_request_exception=False)
    carol.force_login(personas["carol"])
    bob.force_login(personas["bob"])
    leaks = []
    for name, web_kwargs, data_kwargs in urls:
        for client, who, kwargs in ((carol, "carol on web's", web_kwargs), (bob, "bob on data's", data_kwargs)):
            url = reverse(name, kwargs=kwargs)
            for method in ("get", "post"):
                with transaction.atomic():
                    response = getattr(client, method)(url)
                    transaction.set_rollback(True)
                if response.status_code not in REFUSED:
                    leaks.append(f"{who} {name} {method.upper()} {url}: {describe(response)}")
    assert not leaks, "An editor reached another department's object:\n  " + "\n  ".join(leaks)


def test_outsiders_see_the_same_404_as_for_a_missing_object(personas, azure_emulator):
    """A refused layer and a layer that does not exist must be indistinguishable."""
    world = build_world(personas)
    carol = Client(raise_request_exception=False)
    carol.force_login(personas["carol"])
    real = carol.get(reverse("builds:layer-detail", kwargs={"department": "web", "slug": world.web_layer.slug}))
    missing = carol.get(reverse("builds:layer-detail", kwargs={"department": "web", "slug": "no-such-layer"}))
    assert real.status_code == missing.status_code == 404
    assert without_csrf_tokens(real.content) == without_csrf_tokens(missing.content)  # the 404 page has the
    # signed-in navigation, whose sign-out form carries a CSRF token masked afresh for each answer
