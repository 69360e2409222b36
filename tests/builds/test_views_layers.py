"""Department layer forms: create, edit steps per type, check on a gold version, publish."""

import pytest
from django.urls import reverse

from builds import approvals, policies
from builds.models import Layer, LayerVersion, PublishRequest
from tests import factories

pytestmark = pytest.mark.django_db


def edit_url(version="1.0.0"):
    return reverse("builds:layer-version-edit", args=["web", "app", version])


@pytest.fixture
def gold(db):
    return factories.make_gold_version(factories.make_gold_image("ubuntu"))


@pytest.fixture
def draft(web, gold):
    layer = factories.make_layer(web, gold.gold_image, "app")
    return factories.make_layer_version(layer, publish=False, customize=[])


def test_an_editor_creates_a_layer_and_its_first_draft(client, bob, gold):
    client.force_login(bob)
    assert client.get(reverse("builds:layer-create")).status_code == 200
    response = client.post(reverse("builds:layer-create"), {"department": "web", "gold_image": "ubuntu",
                                                            "slug": "app", "name": "App"})
    assert response.status_code == 302 and response.url == edit_url()
    assert LayerVersion.objects.get(layer__slug="app").is_draft


def test_an_editor_cannot_create_layers_in_other_departments(client, bob, gold, data_dept):
    client.force_login(bob)
    response = client.post(reverse("builds:layer-create"), {"department": "data", "gold_image": "ubuntu",
                                                            "slug": "app", "name": "App"})
    assert response.status_code == 422 and not Layer.objects.exists()


def test_the_editor_adds_reorders_and_removes_steps(client, bob, draft):
    client.force_login(bob)
    for name in ("one", "two"):
        assert client.post(edit_url(), {"op": "save", "list": "customize", "type": "Shell", "name": name,
                                        "inline": f"echo {name}"}).status_code == 302
    client.post(edit_url(), {"op": "down", "list": "customize", "index": "0"})
    client.post(edit_url(), {"op": "save", "list": "validators", "type": "File", "name": "conf",
                             "sourceUri": "https://files.example.com/app.conf", "destination": "/tmp/app.conf"})
    draft.refresh_from_db()
    assert [s["name"] for s in draft.customize] == ["two", "one"]
    assert draft.validators[0]["destination"] == "/tmp/app.conf"
    client.post(edit_url(), {"op": "remove", "list": "customize", "index": "1"})
    draft.refresh_from_db()
    assert [s["name"] for s in draft.customize] == ["two"]


@pytest.mark.parametrize("data, field", [
    ({"type": "Shell", "name": "update", "inline": "echo"}, "name"),  # a baseline step's name: refused before saving
    ({"type": "Shell", "name": "x", "scriptUri": "https://169.254.169.254/latest"}, "scriptUri"),
    ({"type": "Shell", "name": "x", "inline": "echo\nexport PASSWORD=hunter2hunter2"}, "inline"),
    ({"type": "File", "name": "x", "sourceUri": "https://user:pw@files.example.com/f",
      "destination": "/tmp/f"}, "sourceUri"),
    ({"type": "File", "name": "x", "sourceUri": "https://files.example.com/app.conf",
      "destination": "/etc/nginx/conf.d/app.conf"}, "destination"),
])
def test_refusals_name_their_field(client, bob, draft, data, field):
    client.force_login(bob)
    response = client.post(edit_url(), {"op": "save", "list": "customize", **data})
    assert response.status_code == 422
    assert f'id="id_{field}-errors"' in response.content.decode()
    draft.refresh_from_db()
    assert draft.customize == []


def test_the_department_rules_of_the_policy_apply(client, bob, alice, draft):
    policies.policy_update(actor=alice, rules={"departments_may_run_elevated": False})
    windows = factories.make_gold_version(factories.make_gold_image("win", os_type="Windows"),
                                          source={"type": "PlatformImage", "publisher": "MicrosoftWindowsServer",
                                                  "offer": "WindowsServer", "sku": "2022-datacenter-azure-edition",
                                                  "version": "latest"}, customize_before=[], customize_after=[])
    layer = factories.make_layer(draft.layer.department, windows.gold_image, "winapp")
    factories.make_layer_version(layer, publish=False, customize=[])
    client.force_login(bob)
    url = reverse("builds:layer-version-edit", args=["web", "winapp", "1.0.0"])
    response = client.post(url, {"op": "save", "list": "customize", "type": "PowerShell", "name": "ps",
                                 "inline": "Write-Host hi", "runElevated": "on"})
    assert response.status_code == 422 and 'id="id_runElevated-errors"' in response.content.decode()


def test_details_refuse_a_bad_range_and_reserved_tags(client, bob, draft):
    client.force_login(bob)
    response = client.post(edit_url(), {"op": "details", "accepts": ">>1", "tags": ""})
    assert response.status_code == 422 and 'id="id_accepts-errors"' in response.content.decode()
    response = client.post(edit_url(), {"op": "details", "accepts": "^1.0", "tags": "goldsmith.gold=x"})
    assert response.status_code == 422 and 'id="id_tags-errors"' in response.content.decode()
    assert client.post(edit_url(), {"op": "details", "accepts": "^1.0", "tags": "team=web"}).status_code == 302
    draft.refresh_from_db()
    assert (draft.accepts, draft.tags) == ("^1.0", {"team": "web"})


SUBNET = "/subscriptions/s1/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/corp/subnets/web"


def test_an_editor_chooses_the_build_network_of_the_layer(client, bob, alice, draft):
    client.force_login(bob)
    details = {"op": "details", "accepts": "^1.0", "tags": ""}
    response = client.post(edit_url(), {**details, "subnetId": "corp/web"})
    assert response.status_code == 422
    assert 'id="id_subnetId-errors"' in response.content.decode()
    response = client.post(edit_url(), {**details, "subnetId": SUBNET, "proxyVmSize": "Standard_A2_v2"})
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.network == {"subnetId": SUBNET, "proxyVmSize": "Standard_A2_v2"}
    assert SUBNET in client.get(edit_url()).content.decode()
    policies.policy_update(actor=alice, rules={"allowed_subnets": [SUBNET.replace("/web", "/other")]})
    response = client.post(edit_url(), {**details, "subnetId": SUBNET})
    assert response.status_code == 422
    assert "does not allow this subnet" in response.content.decode()
    policies.policy_update(actor=alice, rules={"layers_may_set_network": False})
    response = client.post(edit_url(), {**details, "subnetId": SUBNET})
    assert response.status_code == 422
    assert "leaves the build network to the gold version" in response.content.decode()
    assert client.post(edit_url(), details).status_code == 302  # clearing it is always allowed
    draft.refresh_from_db()
    assert draft.network == {}


def test_the_check_composes_on_a_gold_version_with_every_check(client, bob, draft, azure_emulator):
    client.force_login(bob)
    client.post(edit_url(), {"op": "save", "list": "customize", "type": "Shell", "name": "app", "inline": "echo"})
    url = reverse("builds:layer-version-check", args=["web", "app", "1.0.0"])
    response = client.get(url, {"gold": "1.0.0"}, headers={"HX-Request": "true"})
    page = response.content.decode()
    assert response.status_code == 200 and page.startswith('<div id="layer-check">')
    assert "passes every check" in page and "Layers only extend the baseline" in page


def test_publish_runs_every_rule(client, bob, grace, draft, azure_emulator):
    client.force_login(bob)
    client.post(edit_url(), {"op": "save", "list": "customize", "type": "Shell", "name": "app", "inline": "echo"})
    client.post(edit_url(), {"op": "details", "accepts": "^2.0", "tags": ""})
    response = client.post(reverse("builds:layer-version-publish", args=["web", "app", "1.0.0"]))
    assert response.status_code == 302 and response.url == edit_url()
    draft.refresh_from_db()
    assert draft.is_draft
    client.post(edit_url(), {"op": "details", "accepts": "^1.0", "tags": ""})
    # Four eyes: publishing makes a request; another editor of web approves it.
    response = client.post(reverse("builds:layer-version-publish", args=["web", "app", "1.0.0"]))
    request = PublishRequest.objects.get(layer_version=draft)
    assert response.status_code == 302
    assert response.url == reverse("builds:approval-detail", args=[request.uuid])
    approvals.publish_request_approve(actor=grace, request=request)
    draft.refresh_from_db()
    assert draft.status == "published"
    assert client.get(edit_url()).status_code == 302  # published versions are not edited


def test_a_new_version_starts_from_the_last_one(client, bob, draft):
    client.force_login(bob)
    response = client.post(reverse("builds:layer-version-create", args=["web", "app"]),
                           {"version": "1.1.0", "based_on": "1.0.0"})
    assert response.status_code == 302 and response.url == edit_url("1.1.0")


def test_a_new_version_below_the_newest_is_created_with_a_warning(client, bob, draft):
    client.force_login(bob)
    response = client.post(reverse("builds:layer-version-create", args=["web", "app"]), {"version": "0.9.0"},
                           follow=True)
    assert response.redirect_chain[-1][0] == edit_url("0.9.0")
    page = response.content.decode()
    assert "0.9.0 is below 1.0.0, the newest version of web/app" in page


def test_a_new_layer_accepts_the_gold_images_current_major_version(client, bob, gold):
    client.force_login(bob)
    client.post(reverse("builds:layer-create"), {"department": "web", "gold_image": "ubuntu", "slug": "app",
                                                 "name": "App"})
    assert LayerVersion.objects.get(layer__slug="app").accepts == "^1"
    assert 'value="^1"' in client.get(edit_url()).content.decode()


@pytest.mark.parametrize("persona, status", [("carol", 404), ("alice", 403), ("dave", 403), ("erin", 403)])
def test_only_the_departments_editors_edit_its_layers(client, request, draft, persona, status):
    client.force_login(request.getfixturevalue(persona))
    assert client.get(edit_url()).status_code == status
    assert client.post(edit_url(), {"op": "save", "list": "customize", "type": "Shell", "name": "x",
                                    "inline": "echo"}).status_code == status


def test_a_step_named_like_a_baseline_step_is_refused_next_to_its_name_before_saving(client, bob, draft):
    client.force_login(bob)
    response = client.post(edit_url(), {"op": "save", "list": "customize", "type": "Shell", "name": "update",
                                        "inline": "echo"})
    page = response.content.decode()
    assert response.status_code == 422
    errors = page[page.index('id="id_name-errors"'):][:600]
    assert "is the name of a baseline step" in errors and "a baseline step of ubuntu" in errors
    assert "customize[0].name" not in page  # no raw path
    draft.refresh_from_db()
    assert draft.customize == []
