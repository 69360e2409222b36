"""The OpenAPI document: it validates, it lists exactly the API's URL patterns and methods, real
responses of every operation match it (with undeclared keys forbidden), and the docs page serves
Swagger UI from our own static files without inline script or style."""

from __future__ import annotations

import copy
import re
from html.parser import HTMLParser

import pytest
from django.contrib.staticfiles import finders
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate as validate_spec

from builds.models import Build, PublishRequest, Rollout
from notify.models import Endpoint
from portal import audit
from tests.api.conftest import client_with, token_of
from tests.support.aib import template_body

UNDOCUMENTED = {"api:openapi", "api:docs"}  # the document and its viewer describe the API, not part of it


def fetch_document(user) -> dict:
    response = client_with(token_of(user)).get("/api/v1/openapi.json")
    assert response.status_code == 200
    return response.json()


@pytest.fixture
def document(dave) -> dict:
    return fetch_document(dave)


def api_patterns() -> dict[str, tuple[str, type]]:
    """{"api:name": (OpenAPI path template, view class)} from the resolver."""
    found = {}

    def walk(patterns, prefix, namespace):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + str(pattern.pattern), pattern.namespace or namespace)
            elif isinstance(pattern, URLPattern) and namespace == "api" and pattern.name:
                template = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", "/" + prefix + str(pattern.pattern))
                found[f"api:{pattern.name}"] = (template, pattern.callback.view_class)

    walk(get_resolver().url_patterns, "", None)
    return found


def test_the_document_is_valid_openapi_3(document):
    validate_spec(document)
    assert document["openapi"].startswith("3.")
    bearer = document["components"]["securitySchemes"]["bearerAuth"]
    assert (bearer["type"], bearer["scheme"]) == ("http", "bearer")


def test_the_document_lists_exactly_the_resolver_s_paths_and_methods(document):
    expected = {}
    for name, (template, view) in api_patterns().items():
        if name in UNDOCUMENTED:
            continue
        expected[template] = {method for method in ("get", "post", "put", "patch", "delete") if hasattr(view, method)}
    documented = {path: set(operations) - {"parameters"} for path, operations in document["paths"].items()}

    assert documented == expected


def test_every_operation_documents_its_errors_in_the_one_shape(document):
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert {"401", "429"} <= set(operation["responses"]), f"{method} {path}"
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    assert response["content"]["application/json"]["schema"] == {
                        "$ref": "#/components/schemas/Error"}, f"{method} {path} {status}"


def test_anonymous_callers_get_401_for_the_document_and_the_docs(db):
    for path in ("/api/v1/openapi.json", "/api/v1/docs/"):
        response = Client().get(path)
        assert response.status_code == 401 and response.json()["error"]["code"] == "not_authenticated", path


# --- Real responses against the document -------------------------------------------------------------


def strict(components: dict) -> dict:
    """The components with undeclared keys forbidden in every object that declares its keys."""
    components = copy.deepcopy(components)

    def close(node):
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node and "additionalProperties" not in node:
                node["additionalProperties"] = False
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)

    close(components)
    return components


class Checker:
    def __init__(self, document: dict):
        self.document = document
        self.components = strict(document["components"])
        self.templates = [(re.compile("^" + re.sub(r"\{\w+\}", "[^/]+", path) + "$"), path)
                          for path in document["paths"]]
        self.seen: set[tuple[str, str, str]] = set()

    def check(self, method: str, response) -> None:
        path = response.wsgi_request.path
        template = next(t for pattern, t in self.templates if pattern.match(path))
        operation = self.document["paths"][template][method]
        status = str(response.status_code)
        assert status in operation["responses"], f"{method} {path}: status {status} is not documented"
        documented = operation["responses"][status]
        self.seen.add((method, template, status))
        content_type = response["Content-Type"].split(";")[0]
        assert content_type in documented["content"], f"{method} {path} {status}: {content_type} not documented"
        if content_type != "application/json":
            return
        schema = {**documented["content"][content_type]["schema"], "components": self.components}
        OAS30Validator(schema).validate(response.json())


def test_real_responses_of_every_operation_match_the_document(alice, bob, carol, dave, world, azure_emulator,
                                                              django_capture_on_commit_callbacks):
    audit.record("access.denied", actor="carol", label="web/nginx", outcome="denied",
                 department=world.web_layer.department)
    checker = Checker(fetch_document(alice))
    as_alice, as_bob, as_dave, as_carol = (client_with(token_of(user)) for user in (alice, bob, dave, carol))
    anonymous = client_with(None)
    build = f"/api/v1/builds/{world.web_build.uuid}/"
    calls = [
        (as_alice, "get", "/api/v1/gold-images/", None), (as_alice, "get", "/api/v1/gold-images/?limit=1", None),
        (as_bob, "get", "/api/v1/gold-images/ubuntu/", None),
        (as_bob, "get", "/api/v1/gold-images/ubuntu/versions/1.0.0/", None),
        (as_bob, "get", "/api/v1/gold-images/ubuntu/versions/1.1.0/", None),
        (as_dave, "get", "/api/v1/layers/?limit=1", None),
        (as_bob, "get", "/api/v1/layers/web/nginx/", None), (as_carol, "get", "/api/v1/layers/web/nginx/", None),
        (as_bob, "get", "/api/v1/layers/web/nginx/versions/1.0.0/", None),
        (as_dave, "get", "/api/v1/builds/?limit=2", None), (as_dave, "get", "/api/v1/builds/?state=nope", None),
        (as_bob, "get", build, None), (anonymous, "get", build, None),
        (as_bob, "get", f"{build}log", None),  # no log: this build never ran (tests/builds/test_buildlogs.py reads one)
        (as_bob, "post", "/api/v1/builds/", {"gold_image": "ubuntu", "version": "1.0.0",
                                             "layers": ["web/nginx@1.0.0"]}),
        (as_bob, "post", "/api/v1/builds/", {"gold_image": "ubuntu", "version": "1.1.0"}),
        (as_dave, "post", "/api/v1/builds/", {"gold_image": "ubuntu", "version": "1.0.0"}),
        (as_dave, "post", f"{build}cancel/", None), (as_bob, "post", f"{build}cancel/", None),
        (as_bob, "post", f"{build}cancel/", None),
        (as_alice, "post", f"/api/v1/builds/{world.security_build.uuid}/cancel/", None),
        (as_alice, "post", f"/api/v1/builds/{world.security_build.uuid}/cancel/", None),
        (as_bob, "get", "/api/v1/vm-sizes/?location=eastus&generation=V2", None),
        (as_bob, "get", "/api/v1/vm-sizes/?generation=V3", None),
        (as_dave, "get", "/api/v1/gold-images/ubuntu/versions/1.0.0/review/", None),
        (as_bob, "get", "/api/v1/gold-images/ubuntu/versions/9.9.9/review/", None),
        (as_bob, "post", "/api/v1/templates/check/", template_body()),
        (as_bob, "post", "/api/v1/templates/check/?offline=true", {"properties": {"nope": 1}}),
        (as_dave, "get", "/api/v1/audit-events/?limit=2", None), (as_bob, "get", "/api/v1/audit-events/", None),
        (as_dave, "get", "/api/v1/audit-events/export.csv", None),
        (as_dave, "get", "/api/v1/audit-events/export.csv?since=x", None),
        (as_bob, "post", "/api/v1/notify/endpoints/", {"kind": "email", "url": "web-team@example.com",
                                                       "event_types": ["build.failed"], "scope": "department:web"}),
        (as_bob, "post", "/api/v1/notify/endpoints/", {"kind": "email", "url": "x", "event_types": []}),
        (as_bob, "get", "/api/v1/notify/endpoints/", None),
        (as_bob, "post", "/api/v1/publish-requests/", {"layer": "web/nginx", "version": "1.1.0"}),
        (as_bob, "post", "/api/v1/publish-requests/", {"version": "1.1.0"}),
        (as_bob, "post", "/api/v1/publish-requests/", {"gold_image": "ubuntu", "version": "1.1.0"}),
        (as_dave, "get", "/api/v1/publish-requests/?state=pending", None),
        (as_bob, "post", "/api/v1/publish-requests/", {"layer": "web/nginx", "version": "9.9.9"}),
        (as_alice, "post", "/api/v1/publish-requests/", {"layer": "web/nginx", "version": "1.0.0"}),
    ]
    for client, method, path, body in calls:
        with django_capture_on_commit_callbacks(execute=True):
            response = getattr(client, method)(path, body, format="json") if body is not None \
                else getattr(client, method)(path)
        checker.check(method, response)

    endpoint = f"/api/v1/notify/endpoints/{Endpoint.objects.get().uuid}/"
    for client, method in ((as_carol, "get"), (as_bob, "get"), (as_carol, "delete"), (as_bob, "delete")):
        checker.check(method, getattr(client, method)(endpoint))

    publish_request = PublishRequest.objects.get(layer_version=world.web_draft)
    one = f"/api/v1/publish-requests/{publish_request.uuid}/"
    for client, path, body in [(as_bob, one, None), (as_bob, f"{one}approve/", {}),
                               (as_alice, f"{one}reject/", {"comment": ""}),
                               (as_carol, f"{one}withdraw/", None), (as_bob, f"{one}withdraw/", None),
                               (as_bob, f"{one}withdraw/", None)]:
        method = "get" if path == one else "post"
        response = getattr(client, method)(path, body, format="json") if body is not None \
            else getattr(client, method)(path)
        checker.check(method, response)
    assert PublishRequest.objects.get(pk=publish_request.pk).state == "withdrawn"
    for client, method, path, body in [
            (as_bob, "post", "/api/v1/rollouts/", {"gold_image": "ubuntu", "version": "1.0.0"}),
            (as_alice, "post", "/api/v1/rollouts/", {"gold_image": "ubuntu", "version": "1.0.0", "start": False}),
            (as_alice, "post", "/api/v1/rollouts/", {"gold_image": "ubuntu", "version": "1.0.0", "wave_size": 0}),
            (as_bob, "get", "/api/v1/rollouts/", None)]:
        response = getattr(client, method)(path, body, format="json") if body is not None \
            else getattr(client, method)(path)
        checker.check(method, response)
    rollout = f"/api/v1/rollouts/{Rollout.objects.get().uuid}/"
    for client, method, path, body in [(as_bob, "get", rollout, None), (as_alice, "post", f"{rollout}pause/", None),
                                       (as_alice, "post", f"{rollout}resume/", {}),
                                       (as_alice, "post", f"{rollout}cancel/", None),
                                       (as_bob, "post", f"{rollout}cancel/", None)]:
        with django_capture_on_commit_callbacks(execute=True):
            response = getattr(client, method)(path, body, format="json") if body is not None \
                else getattr(client, method)(path)
        checker.check(method, response)
    assert Build.objects.filter(state=Build.State.CANCELED).exists()
    operations = {(method, path) for method, path, _ in checker.seen}
    documented = {(method, path) for path, ops in checker.document["paths"].items() for method in ops}
    assert operations == documented, "every documented operation is exercised"
    statuses = {status for _, _, status in checker.seen}
    assert {"200", "202", "400", "401", "403", "404", "409"} <= statuses


# --- The docs page ---------------------------------------------------------------------------------


class Assets(HTMLParser):
    def __init__(self):
        super().__init__()
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self.inline: list[str] = []
        self._tag = ""

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self._tag = tag
        if tag == "script":
            if attrs.get("src"):
                self.scripts.append(attrs["src"])
        elif tag == "link" and attrs.get("rel") in ("stylesheet", "icon"):
            self.styles.append(attrs["href"])
        elif tag == "style":
            self.inline.append("<style>")
        if any(name.startswith("on") for name in attrs):
            self.inline.append(f"event handler on <{tag}>")

    def handle_data(self, data):
        if self._tag == "script" and data.strip():
            self.inline.append(data.strip()[:40])

    def handle_endtag(self, tag):
        self._tag = ""


def test_the_docs_page_loads_swagger_ui_from_our_static_files_only(client, bob):
    client.force_login(bob)

    response = client.get("/api/v1/docs/")

    assert response.status_code == 200 and "default-src 'self'" in response["Content-Security-Policy"]
    assets = Assets()
    assets.feed(response.content.decode())
    assert not assets.inline
    assert len(assets.scripts) == 3
    for url in assets.scripts[:2] + assets.styles:
        assert url.startswith("/static/drf_spectacular_sidecar/swagger-ui-dist/"), url
        assert finders.find(url.removeprefix("/static/")), url
    start = client.get(assets.scripts[2])
    assert start.status_code == 200 and start["Content-Type"].startswith("application/javascript")
    assert "/api/v1/openapi.json" in start.content.decode()


# --- docs/api.md -------------------------------------------------------------------------------------


def test_docs_api_md_names_every_operation_and_error_code(document):
    from pathlib import Path

    from api.errors import CODES

    text = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()
    for path, operations in document["paths"].items():
        for method in operations:
            written = path.replace("{build_uuid}", "{id}")
            assert f"`{method.upper()} {written}" in text, f"docs/api.md does not mention {method.upper()} {written}"
    for code, status in CODES.items():
        assert f"| {status} | `{code}` |" in text, f"docs/api.md has no row for {code}"
