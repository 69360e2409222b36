"""The shared-endpoints page (/notifications/endpoints/): creating an endpoint through its form,
the secret shown once, the scopes offered per role, and refusals re-rendered with the errors."""

from __future__ import annotations

import pytest

from notify.models import Endpoint
from tests.support.audit import expect_no_event, expect_one_event

URL = "/notifications/endpoints/"


def post(client, **fields):
    data = {"name": "web team", "kind": "webhook", "url": "", "scope": "department:web",
            "event_types": ["build.failed"], "secret": ""}
    data.update(fields)
    return client.post(URL, data)


def test_an_editor_creates_a_webhook_and_sees_its_generated_secret_once(world, receiver, client):
    client.force_login(world.bob)
    with expect_one_event("notify.endpoint_create", actor=world.bob, department=world.web) as caught:
        response = post(client, url=receiver.url, event_types=["build.failed", "build.succeeded"])
    assert response.status_code == 201
    endpoint = Endpoint.objects.get()
    assert caught.event.object_id == str(endpoint.uuid)
    assert (endpoint.owner, endpoint.department, endpoint.kind, endpoint.name) == (world.bob, world.web, "webhook",
                                                                                    "web team")
    assert endpoint.event_types == ["build.failed", "build.succeeded"]
    page = response.content.decode()
    assert endpoint.secret.startswith("whsec_")
    assert f'value="{endpoint.secret}"' in page
    assert f"/notifications/endpoints/{endpoint.uuid}/" in page
    again = client.get(URL).content.decode()
    assert endpoint.secret not in again  # shown once
    assert endpoint.secret not in client.get(f"{URL}{endpoint.uuid}/").content.decode()


def test_a_secret_one_chose_is_kept_and_not_echoed(world, receiver, client):
    client.force_login(world.bob)
    response = post(client, url=receiver.url, secret="my-own-secret-value")
    assert response.status_code == 201
    assert Endpoint.objects.get().secret == "my-own-secret-value"
    assert "my-own-secret-value" not in response.content.decode()


def test_an_email_endpoint_takes_an_address(world, client):
    client.force_login(world.bob)
    assert post(client, kind="email", url="web-team@example.com").status_code == 201
    endpoint = Endpoint.objects.get()
    assert (endpoint.kind, endpoint.url, endpoint.secret) == ("email", "web-team@example.com", "")


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"url": "https://10.0.0.5/hook"}, "url", "This URL is refused"),
        ({"url": "ftp://example.com/hook"}, "url", "https://"),
        ({"kind": "email", "url": "not an address"}, "url", "Give an e-mail address."),
        ({"event_types": []}, "event_types", "This field is required."),
        ({"scope": "department:data"}, "scope", "Select a valid choice."),  # not bob's department
        ({"scope": "all"}, "scope", "Select a valid choice."),  # Goldsmith-wide: security and auditors only
    ],
)
def test_refused_input_is_shown_on_the_form_and_creates_nothing(world, receiver, client, fields, field, message):
    client.force_login(world.bob)
    fields.setdefault("url", receiver.url)
    with expect_no_event():
        response = post(client, **fields)
    assert response.status_code == 422
    form = response.context["form"]
    assert any(message in error for error in form.errors[field]), form.errors
    assert '<p class="error">' in response.content.decode()  # shown next to the field
    assert not Endpoint.objects.exists()


@pytest.mark.parametrize(
    ("persona", "scopes"),
    [
        ("alice", ["all", "department:data", "department:web"]),  # security: everything
        ("bob", ["department:web"]),
        ("carol", ["department:data"]),
        ("dave", ["all"]),  # auditors: the audit chain's alarms, Goldsmith-wide
    ],
)
def test_the_form_offers_only_the_scopes_one_may_manage(world, client, persona, scopes):
    client.force_login(getattr(world, persona))
    response = client.get(URL)
    assert response.status_code == 200
    offered = [value for value, _ in response.context["form"].fields["scope"].choices]
    assert sorted(offered) == scopes


def test_the_security_team_creates_a_goldsmith_wide_endpoint(world, receiver, client):
    client.force_login(world.alice)
    assert post(client, url=receiver.url, scope="all", event_types=["audit.verify_failed"]).status_code == 201
    endpoint = Endpoint.objects.get()
    assert endpoint.department is None and endpoint.scope == "all"


@pytest.mark.parametrize("persona", ["erin", "sam"])
def test_people_without_a_catalog_role_cannot_create_endpoints(world, receiver, client, request, persona):
    client.force_login(request.getfixturevalue(persona))
    assert client.get(URL).status_code == 403
    assert post(client, url=receiver.url).status_code == 403
    assert not Endpoint.objects.exists()
