"""The policy page and the template check page."""

import json
from dataclasses import fields

import pytest
from django.urls import reverse

from builds import policies
from builds.models import Policy
from builds.validation import PolicyRules
from portal.models import AuditEvent
from tests.support.aib import template_body
from tests.support.htmlforms import form_values
from web.forms import PolicyForm

pytestmark = pytest.mark.django_db

POLICY = {"allowed_hosts": "files.example.com\n*.blob.core.windows.net", "require_checksums": "on",
          "allowed_vm_sizes": "Standard_D2ds_v5", "allowed_regions": "eastus", "required_tags": "costCenter",
          "max_build_timeout": "120", "departments_may_use_windows_update": "on", "comment": "tighten"}


def test_the_security_team_changes_the_policy(client, alice):
    client.force_login(alice)
    response = client.post(reverse("builds:policy"), POLICY)
    assert response.status_code == 302
    policy = Policy.objects.get()
    assert policy.rules["allowed_hosts"] == ["files.example.com", "*.blob.core.windows.net"]
    assert policy.rules["departments_may_run_elevated"] is False
    event = AuditEvent.objects.get(action="policy.update")
    assert event.actor_name == "alice" and event.changes["comment"] == [None, "tighten"]
    page = client.get(reverse("builds:policy")).content.decode()
    assert "Version 1." in page and "files.example.com" in page


def test_bad_rules_are_refused_next_to_their_field(client, alice):
    client.force_login(alice)
    response = client.post(reverse("builds:policy"), {**POLICY, "allowed_hosts": "http://10.0.0.1/"})
    assert response.status_code == 422 and 'id="id_allowed_hosts-errors"' in response.content.decode()
    assert not Policy.objects.exists()


@pytest.mark.parametrize("persona, get, post", [("bob", 200, 403), ("dave", 200, 403), ("erin", 403, 403)])
def test_others_read_or_are_refused(client, request, persona, get, post):
    client.force_login(request.getfixturevalue(persona))
    assert client.get(reverse("builds:policy")).status_code == get
    assert client.post(reverse("builds:policy"), POLICY).status_code == post
    assert not Policy.objects.exists()


def test_the_check_page_lists_problems_with_their_paths(client, bob, azure_emulator):
    client.force_login(bob)
    body = template_body(customize=[{"type": "Shell", "name": "s", "scriptUri": "http://files.example.com/s"}])
    before = azure_emulator.last_seq()
    response = client.post(reverse("builds:checktemplate"), {"template": json.dumps(body), "policy": "default"})
    page = response.content.decode()
    assert response.status_code == 422 and "properties.customize[0].scriptUri" in page
    assert all(not e["operation"].startswith("VirtualMachineImageTemplates") for e in azure_emulator.requests(before))
    response = client.post(reverse("builds:checktemplate"), {"template": json.dumps(template_body()),
                                                             "policy": "default"}, headers={"HX-Request": "true"})
    assert response.status_code == 200 and "passes every check" in response.content.decode()
    assert response.content.decode().startswith('<div id="check-result"')


def test_the_check_page_explains_unreadable_input(client, dave):
    client.force_login(dave)
    response = client.post(reverse("builds:checktemplate"), {"template": "{nope", "policy": "default",
                                                             "offline": "on"})
    assert response.status_code == 422 and "not valid JSON" in response.content.decode()


def test_admins_cannot_use_the_check_page(client, erin):
    client.force_login(erin)
    assert client.get(reverse("builds:checktemplate")).status_code == 403


def test_the_check_page_refuses_json_nested_too_deep(client, dave):
    client.force_login(dave)
    response = client.post(reverse("builds:checktemplate"), {"template": "[" * 1000 + "]" * 1000,
                                                             "policy": "default", "offline": "on"})
    assert response.status_code == 422
    assert "nested more than 64 levels deep" in response.content.decode()


def test_the_check_page_answers_400_to_a_body_over_the_upload_limit(client, dave, settings):
    """Django's own answer (RequestDataTooBig is a SuspiciousOperation): a plain 400 page, not a 500."""
    client.force_login(dave)
    response = client.post(reverse("builds:checktemplate"),
                           {"template": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)})
    assert response.status_code == 400


def _main_nav(page: str) -> str:
    return page.split('<nav aria-label="Main">')[1].split("</nav>")[0]


@pytest.mark.parametrize("persona, shown", [
    ("alice", True), ("bob", True), ("dave", True), ("erin", False), ("sam", False),
])
def test_the_navigation_links_the_check_page_for_the_roles_that_may_use_it(client, request, persona, shown):
    client.force_login(request.getfixturevalue(persona))
    nav = _main_nav(client.get("/", follow=True).content.decode())  # auditors land on the history
    assert (f'<a href="{reverse("builds:checktemplate")}">Check a template</a>' in nav) is shown


def test_the_check_page_is_the_current_page_in_the_navigation(client, dave):
    client.force_login(dave)
    nav = _main_nav(client.get(reverse("builds:checktemplate")).content.decode())
    assert f'<a href="{reverse("builds:checktemplate")}" aria-current="page">Check a template</a>' in nav


@pytest.mark.parametrize("persona, page", [("alice", "builds:wizard-start"), ("alice", "builds:gold-list"),
                                           ("bob", "builds:gold-list"), ("dave", "builds:gold-list")])
def test_the_wizard_start_and_the_gold_list_link_the_check_page(client, request, persona, page):
    client.force_login(request.getfixturevalue(persona))
    content = client.get(reverse(page)).content.decode()
    main = content[content.index('<main id="main"'):]
    assert f'href="{reverse("builds:checktemplate")}"' in main


ENTERPRISE_RULES = {
    "staging_resource_group": "named", "staging_resource_group_prefix": "goldsmith-staging-",
    "required_managed_resource_tags": ["costCenter", "owner=platform"],
    "network": "private",
    "allowed_subnets": ["/subscriptions/s1/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/v/subnets/b"],
    "isolated_builds": "forbidden", "allowed_proxy_vm_sizes": ["Standard_A2_v2"],
    "on_customizer_error": "abort", "on_validation_error": "cleanup", "vm_boot_optimization": "Disabled",
    "max_replica_count": 3, "allowed_storage_account_types": ["Standard_ZRS", "Premium_LRS"],
    "gallery_versioning": "Source", "additional_data_disks": False, "max_data_disk_size_gb": 512,
    "layers_may_set_network": False,
}


def test_the_policy_form_writes_every_rule():
    rule_names = {item.name for item in fields(PolicyRules)}
    assert set(PolicyForm.base_fields) - {"comment"} == rule_names
    form = PolicyForm({})
    assert form.is_valid(), form.errors
    assert set(form.to_rules()) == rule_names


def test_saving_the_page_unchanged_keeps_every_enterprise_rule(client, alice):
    saved = policies.policy_update(actor=alice, rules=ENTERPRISE_RULES)
    client.force_login(alice)
    page = client.get(reverse("builds:policy")).content.decode()
    for shown in ("goldsmith-staging-", "owner=platform", "Standard_A2_v2", "Standard_ZRS", "at most 3"):
        assert shown in page
    data = form_values(page, "comment")
    response = client.post(reverse("builds:policy"), data)
    assert response.status_code == 302
    assert Policy.objects.count() == 1  # nothing changed: no new version
    assert Policy.objects.get().pk == saved.pk
    response = client.post(reverse("builds:policy"), {**data, "max_replica_count": "4", "comment": "one more"})
    assert response.status_code == 302
    newest = Policy.objects.order_by("-version").first()
    assert newest.version == 2
    for key, value in ENTERPRISE_RULES.items():
        assert newest.rules[key] == (4 if key == "max_replica_count" else value), key


def test_an_empty_choice_leaves_the_setting_to_the_template(client, alice):
    client.force_login(alice)
    data = form_values(client.get(reverse("builds:policy")).content.decode(), "comment")
    assert data["network"] == "" and data["additional_data_disks"] == "on"
    assert client.post(reverse("builds:policy"), {**data, "network": "private"}).status_code == 302
    assert Policy.objects.get().rules["network"] == "private"
    assert Policy.objects.get().rules["gallery_versioning"] == ""


def test_bad_enterprise_rules_are_refused_next_to_their_field(client, alice):
    client.force_login(alice)
    data = form_values(client.get(reverse("builds:policy")).content.decode(), "comment")
    response = client.post(reverse("builds:policy"), {**data, "allowed_subnets": "not-a-subnet",
                                                      "allowed_storage_account_types": "Premium_ZRS"})
    page = response.content.decode()
    assert response.status_code == 422
    assert 'id="id_allowed_subnets-errors"' in page
    assert 'id="id_allowed_storage_account_types-errors"' in page
    assert not Policy.objects.exists()


def PolicyRules_defaults():

    return PolicyRules().as_json()
