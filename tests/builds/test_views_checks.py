"""The policy page and the template check page."""

import json

import pytest
from django.urls import reverse

from builds.models import Policy
from portal.models import AuditEvent
from tests.support.aib import template_body

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
