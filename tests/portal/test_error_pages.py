"""400, 403, 404 and 500 are pages in the portal's layout, with a way back, that never say
whether a refused object exists (templates/400.html, 403.html, 404.html, 500.html)."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.template.loader import render_to_string
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests import factories
from tests.support import build_rows
from tests.support.pages import without_csrf_tokens

pytestmark = pytest.mark.urls("tests.portal.error_urls")


def assert_portal_layout(page: str) -> None:
    assert '<link rel="stylesheet" href="/static/app.css">' in page
    assert '<nav aria-label="Main">' in page  # the navigation
    assert 'href="/">Go to the home page</a>' in page  # and a way back
    assert "Traceback" not in page and "the test&#x27;s own" not in page


@pytest.fixture(autouse=True)
def production(settings):
    settings.DEBUG = False


def test_404_is_a_portal_page(client, bob):
    client.force_login(bob)
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    page = response.content.decode()
    assert_portal_layout(page)
    assert "Page not found" in page and "Sign out" in page  # the signed-in navigation


def test_403_is_a_portal_page(client, bob):
    client.force_login(bob)
    response = client.get("/audit/")  # the history is for auditors and the security team
    assert response.status_code == 403
    page = response.content.decode()
    assert_portal_layout(page)
    assert "You may not do this" in page and 'href="/profile/">See your roles</a>' in page


def test_500_is_a_portal_page(bob):
    client = Client(raise_request_exception=False)
    client.force_login(bob)
    response = client.get("/test-errors/500/")
    assert response.status_code == 500
    page = response.content.decode()
    assert_portal_layout(page)
    assert "Something went wrong on our side" in page


def test_400_is_a_portal_page(client):
    response = client.get("/test-errors/400/")
    assert response.status_code == 400
    page = response.content.decode()
    assert_portal_layout(page)
    assert "The request could not be used" in page


@pytest.mark.parametrize("name", ["400.html", "500.html"])
def test_the_pages_django_renders_without_a_request_need_no_database(db, name):
    """Django renders 400.html and 500.html with an empty context: they must not need a user
    or a query, which may be what failed."""
    with CaptureQueriesContext(connection) as queries:
        page = render_to_string(name)
    assert len(queries) == 0
    assert_portal_layout(page)


def test_a_refused_object_and_a_missing_one_get_the_same_404(client, alice, bob, carol, web):
    image = factories.make_gold_image("ubuntu", actor=alice)
    version = factories.make_gold_version(image, "1.0.0", actor=alice)
    layer_version = factories.make_layer_version(factories.make_layer(web, image, "nginx", actor=bob), actor=bob)
    build = build_rows.failed(version, [layer_version], requested_by=bob, log_uri="")
    client.force_login(carol)  # an editor of another department: web's build is not hers to see
    refused = client.get(f"/builds/{build.uuid}/")
    missing = client.get(f"/builds/{uuid.uuid4()}/")
    assert refused.status_code == missing.status_code == 404
    assert without_csrf_tokens(refused.content.decode()) == without_csrf_tokens(missing.content.decode())
    refused_layer = client.get("/layers/web/nginx/")
    missing_layer = client.get("/layers/web/no-such-layer/")
    assert refused_layer.status_code == missing_layer.status_code == 404
    assert without_csrf_tokens(refused_layer.content.decode()) == without_csrf_tokens(missing_layer.content.decode())


def test_the_api_keeps_its_json_errors(client, bob):
    client.force_login(bob)
    response = client.get("/api/v1/no-such-endpoint/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["error"]["code"] == "not_found"
