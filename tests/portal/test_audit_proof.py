"""Proof that every state-changing service and endpoint writes exactly one audit event, about the
right object, in the same transaction as the change.

Each test wraps one call in `expect_one_event` (tests/support/audit.py), which also fails when
the call writes a second event of any kind, and checks the new link of the chain. Services
whose change is made of others' (an import that creates the image, a cancel that moves the
build) use `assert_one_event` and say why. Build requests look the source image up in Azure,
so those tests run against the emulator (`azure_emulator`). Flows of other parts (sign-in,
API tokens, the admin) are proved in their own test files with the same helper.
"""

from __future__ import annotations

import pytest
from django.db import transaction

from builds import lifecycle, policies, services
from builds.models import Build, GoldImageVersion
from portal import audit
from portal.models import AuditEvent
from tests import factories
from tests.support.audit import assert_one_event, audit_mark, expect_no_event, expect_one_event


@pytest.fixture
def gold(alice):
    return factories.make_gold_version(factories.make_gold_image("ubuntu", actor=alice), "1.0.0", actor=alice)


@pytest.fixture
def draft(alice, gold):
    return factories.make_gold_version(gold.gold_image, "1.1.0", actor=alice, publish=False)


@pytest.fixture
def layer_version(bob, web, gold):
    return factories.make_layer_version(factories.make_layer(web, gold.gold_image, "nginx", actor=bob), actor=bob)


# --- Catalog services ------------------------------------------------------------------------------


def test_gold_image_create(alice):
    with expect_one_event("gold_image.create", actor=alice) as caught:
        image = services.gold_image_create(actor=alice, slug="rhel", name="RHEL", os_type="Linux")
    assert (caught.event.object_type, caught.event.object_id) == ("goldimage", str(image.pk))


def test_gold_version_create(alice, gold):
    with expect_one_event("gold_version.create", actor=alice) as caught:
        version = services.gold_version_create(actor=alice, gold_image=gold.gold_image, version="2.0.0",
                                               based_on=gold)
    assert caught.event.object_id == str(version.uuid) and caught.event.changes["based_on"] == [None, str(gold)]


def test_gold_version_update(alice, draft):
    with expect_one_event("gold_version.update", draft, actor=alice) as caught:
        services.gold_version_update(actor=alice, gold_version=draft, changelog="Kernel 6.8")
    assert caught.event.changes == {"changelog": [draft.changelog, "Kernel 6.8"]}


def test_an_update_that_changes_nothing_records_nothing(alice, draft):
    with expect_no_event():
        services.gold_version_update(actor=alice, gold_version=draft, changelog=draft.changelog)


def test_gold_version_publish(alice, draft):
    with expect_one_event("gold_version.publish", draft, actor=alice):
        services.gold_version_publish(actor=alice, gold_version=draft, lookups=False)


def test_gold_version_deprecate(alice, gold):
    with expect_one_event("gold_version.deprecate", gold, actor=alice) as caught:
        services.gold_version_deprecate(actor=alice, gold_version=gold, reason="CVE")
    assert caught.event.changes["status"] == ["published", "deprecated"]


def test_gold_version_revoke(alice, gold):
    with expect_one_event("gold_version.revoke", gold, actor=alice) as caught:
        services.gold_version_revoke(actor=alice, gold_version=gold, reason="compromised")
    assert caught.event.changes["reason"] == [None, "compromised"]


def test_a_refused_change_records_nothing_and_changes_nothing(alice, gold):
    with expect_no_event(), pytest.raises(services.ServiceError):
        services.gold_version_update(actor=alice, gold_version=gold, changelog="published versions never change")
    with expect_no_event(), pytest.raises(services.ServiceError):
        services.gold_version_deprecate(actor=alice, gold_version=gold, reason="")


def test_gold_version_import(alice):
    """An import is up to three changes (image, version, publish), each recorded once."""
    body = {"properties": {"source": {"type": "PlatformImage", "publisher": "Canonical",
                                      "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts-gen2",
                                      "version": "latest"},
                           "distribute": [{"type": "ManagedImage", "runOutputName": "m", "location": "eastus",
                                           "imageId": "/subscriptions/x/resourceGroups/r/providers/"
                                                      "Microsoft.Compute/images/i"}]}}
    mark = audit_mark()
    version, _ = services.gold_version_import(actor=alice, gold_slug="imported", version="1.0.0", data=body)
    assert_one_event("gold_version.import", version, since=mark, actor=alice)
    assert_one_event("gold_image.create", version.gold_image, since=mark)
    assert AuditEvent.objects.filter(id__gt=mark).count() == 2


def test_layer_create(bob, web, gold):
    with expect_one_event("layer.create", actor=bob, department=web) as caught:
        layer = services.layer_create(actor=bob, department=web, gold_image=gold.gold_image, slug="redis", name="R")
    assert caught.event.object_id == str(layer.pk)


def test_layer_version_create(bob, web, layer_version):
    with expect_one_event("layer_version.create", actor=bob, department=web) as caught:
        new = services.layer_version_create(actor=bob, layer=layer_version.layer, version="1.1.0",
                                            based_on=layer_version)
    assert caught.event.object_id == str(new.uuid)


def test_layer_version_update(bob, web, layer_version):
    draft = services.layer_version_create(actor=bob, layer=layer_version.layer, version="1.1.0")
    with expect_one_event("layer_version.update", draft, actor=bob, department=web):
        services.layer_version_update(actor=bob, layer_version=draft, accepts=">=1.0.0")


def test_layer_version_publish(bob, web, layer_version):
    draft = services.layer_version_create(actor=bob, layer=layer_version.layer, version="1.1.0",
                                          customize=[{"type": "Shell", "name": "x", "inline": ["echo x"]}])
    with expect_one_event("layer_version.publish", draft, actor=bob, department=web):
        services.layer_version_publish(actor=bob, layer_version=draft)


def test_policy_update(alice):
    with expect_one_event("policy.update", actor=alice) as caught:
        policy = policies.policy_update(actor=alice, rules={"allowed_vm_sizes": ["Standard_D2ds_v5"]})
    assert caught.event.object_id == str(policy.pk)
    with expect_no_event():
        policies.policy_update(actor=alice, rules={"allowed_vm_sizes": ["Standard_D2ds_v5"]})


# --- Builds ---------------------------------------------------------------------------------------------


def test_build_request(bob, web, gold, layer_version, azure_emulator):
    with expect_one_event("build.request", actor=bob, department=web) as caught:
        build = services.build_request(actor=bob, gold_version=gold, layer_versions=[layer_version])
    assert caught.event.object_id == str(build.uuid)
    assert caught.event.changes["template_sha256"] == [None, build.template_sha256]


def test_build_rebuild(bob, gold, layer_version, azure_emulator):
    build = services.build_request(actor=bob, gold_version=gold, layer_versions=[layer_version])
    with expect_one_event("build.request", actor=bob) as caught:
        new = services.build_rebuild(actor=bob, build=build)
    assert caught.event.object_id == str(new.uuid) and caught.event.changes["rebuild_of"] == [None, str(build.uuid)]


def test_a_worker_transition_records_one_state_change(bob, gold, azure_emulator):
    build = services.build_request(actor=bob, gold_version=gold)
    with expect_one_event("build.state_change", build, actor=audit.worker_actor()) as caught:
        lifecycle.transition(build, state=Build.State.SUBMITTING)
    assert caught.event.changes["state"] == ["pending", "submitting"]


def test_a_sub_state_change_is_a_timeline_event_not_an_audit_event(bob, gold, azure_emulator):
    build = services.build_request(actor=bob, gold_version=gold)
    build = lifecycle.transition(build, state=Build.State.RUNNING, sub_state="queued")
    with expect_no_event():
        lifecycle.transition(build, sub_state="building")
    assert build.events.count() == 3


def test_build_cancel(bob, gold, azure_emulator):
    """One event: the cancel, which records the change of state it makes (pending -> canceled)."""
    build = services.build_request(actor=bob, gold_version=gold)
    with expect_one_event("build.cancel", build, actor=bob) as caught:
        services.build_cancel(actor=bob, build=build)
    assert caught.event.changes["state"] == ["pending", "canceled"]


def test_an_event_rolls_back_with_its_change(alice, draft):
    with expect_no_event(), pytest.raises(RuntimeError), transaction.atomic():
        services.gold_version_publish(actor=alice, gold_version=draft, lookups=False)
        raise RuntimeError("the caller's transaction fails after the service")
    assert GoldImageVersion.objects.get(pk=draft.pk).status == "draft"


# --- Endpoints ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("action, audit_action", [("deprecate", "gold_version.deprecate"),
                                                  ("revoke", "gold_version.revoke")])
def test_gold_version_status_endpoints(client, alice, gold, action, audit_action):
    client.force_login(alice)
    with expect_one_event(audit_action, gold, actor=alice):
        response = client.post(f"/gold/ubuntu/v/1.0.0/{action}/", {"reason": "CVE-2026-1"})
    assert response.status_code == 302


def test_gold_version_publish_endpoint(client, alice, frank, draft, azure_emulator):
    # Four eyes: the page records the request; the approval records the publication.
    client.force_login(alice)
    with expect_one_event("publish_request.create", actor=alice):
        assert client.post("/gold/ubuntu/v/1.1.0/publish/", {"reason": ""}).status_code == 302
    client.force_login(frank)
    request = draft.publish_requests.get()
    with expect_one_event("gold_version.publish", draft, actor=frank):
        assert client.post(f"/approvals/{request.uuid}/decide/", {"verdict": "approve"}).status_code == 302


def test_gold_build_endpoint(client, alice, gold, azure_emulator):
    client.force_login(alice)
    with expect_one_event("build.request", actor=alice) as caught:
        response = client.post("/gold/ubuntu/v/1.0.0/build/")
    assert response.status_code == 302 and caught.event.object_id in response["Location"]


def test_layer_build_endpoint(client, bob, web, layer_version, azure_emulator):
    client.force_login(bob)
    with expect_one_event("build.request", actor=bob, department=web) as caught:
        response = client.post("/layers/web/nginx/v/1.0.0/build/", {"gold": "1.0.0"})
    assert response.status_code == 302 and caught.event.object_id in response["Location"]


def test_build_rebuild_endpoint(client, bob, gold, layer_version, azure_emulator):
    build = services.build_request(actor=bob, gold_version=gold, layer_versions=[layer_version])
    client.force_login(bob)
    with expect_one_event("build.request", actor=bob):
        assert client.post(f"/builds/{build.uuid}/rebuild/").status_code == 302


def test_build_cancel_endpoint(client, bob, gold, layer_version, azure_emulator):
    build = services.build_request(actor=bob, gold_version=gold, layer_versions=[layer_version])
    build = lifecycle.transition(build, state=Build.State.RUNNING, sub_state="building", run_started=True)
    client.force_login(bob)
    mark = audit_mark()
    assert client.post(f"/builds/{build.uuid}/cancel/").status_code == 302
    assert_one_event("build.cancel", build, since=mark, actor=bob)


def test_a_denied_endpoint_records_exactly_one_denial(client, bob, gold):
    client.force_login(bob)
    with expect_one_event("access.denied", gold, actor=bob, outcome="denied"):
        assert client.post("/gold/ubuntu/v/1.0.0/revoke/", {"reason": "x"}).status_code == 403


def test_every_state_changing_service_has_a_test_here():
    """A reminder that fails: a new write service in builds/services.py needs its proof above."""
    import inspect

    tested = {name.removeprefix("test_") for name in globals() if name.startswith("test_")}
    writers = {name for name, function in inspect.getmembers(services, inspect.isfunction)
               if function.__module__ == "builds.services" and not name.startswith("_")
               and "@transaction.atomic" in inspect.getsource(function)}
    assert writers, "the scan found no services: it is broken, not the services"
    assert writers <= tested, f"no exactly-one-event test for: {sorted(writers - tested)}"
