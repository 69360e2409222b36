"""The API's endpoint routes and `manage.py addwebhook`."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from notify.models import Endpoint
from portal.models import AuditEvent


def test_addwebhook_prints_the_id_alone_and_the_generated_secret_once_on_stderr(world, receiver):
    out, err = io.StringIO(), io.StringIO()
    call_command("addwebhook", receiver.url, "--user", "bob", "--events", "build.failed,build.succeeded",
                 "--scope", "department:web", stdout=out, stderr=err)
    endpoint = Endpoint.objects.get()
    assert out.getvalue() == f"{endpoint.uuid}\n"
    assert err.getvalue() == f"secret: {endpoint.secret}\n"
    assert endpoint.event_types == ["build.failed", "build.succeeded"]
    assert endpoint.department == world.web
    assert endpoint.owner == world.bob
    assert AuditEvent.objects.filter(action="notify.endpoint_create").count() == 1


def test_addwebhook_with_a_secret_prints_only_the_id(world, receiver):
    out, err = io.StringIO(), io.StringIO()
    call_command("addwebhook", receiver.url, "--user", "alice", "--events", "version.revoked", "--secret", "s3cret",
                 stdout=out, stderr=err)
    assert out.getvalue() == f"{Endpoint.objects.get().uuid}\n"
    assert err.getvalue() == ""
    assert Endpoint.objects.get().secret == "s3cret"


@pytest.mark.parametrize(("args", "message"), [
    (["--user", "nobody", "--events", "build.failed"], "No active user"),
    (["--user", "bob", "--events", "build.exploded", "--scope", "department:web"], "Unknown event types"),
    (["--user", "bob", "--events", "build.failed", "--scope", "department:data"], "may not manage"),
    (["--user", "bob", "--events", "build.failed", "--scope", "team:web"], "department:SLUG"),
])
def test_addwebhook_refuses(world, receiver, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("addwebhook", receiver.url, *args, stdout=io.StringIO(), stderr=io.StringIO())
    assert not Endpoint.objects.exists()


def test_addwebhook_refuses_a_private_address_once_deployed(world, settings):
    settings.NOTIFY_ALLOW_LOOPBACK_HTTP = False
    with pytest.raises(CommandError, match="loopback"):
        call_command("addwebhook", "https://127.0.0.1/x", "--user", "alice", "--events", "build.failed",
                     stdout=io.StringIO(), stderr=io.StringIO())


def test_the_api_creates_lists_and_deletes_endpoints(world, receiver, client):
    client.force_login(world.bob)
    created = client.post("/api/v1/notify/endpoints/", {"kind": "webhook", "url": receiver.url,
                                                        "event_types": ["build.failed"], "scope": "department:web"},
                          content_type="application/json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["secret"].startswith("whsec_")
    assert body["scope"] == "department:web"
    listed = client.get("/api/v1/notify/endpoints/").json()
    assert [item["id"] for item in listed] == [body["id"]]
    assert "secret" not in listed[0]
    client.force_login(world.carol)
    assert client.get(f"/api/v1/notify/endpoints/{body['id']}/").status_code == 404
    assert client.delete(f"/api/v1/notify/endpoints/{body['id']}/").status_code == 404
    client.force_login(world.bob)
    assert client.delete(f"/api/v1/notify/endpoints/{body['id']}/").status_code == 200
    assert not Endpoint.objects.exists()


def test_the_api_refuses_a_scope_the_caller_may_not_manage(world, receiver, client):
    client.force_login(world.bob)
    response = client.post("/api/v1/notify/endpoints/", {"kind": "webhook", "url": receiver.url,
                                                         "event_types": ["build.failed"], "scope": "all"},
                           content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_failed"
