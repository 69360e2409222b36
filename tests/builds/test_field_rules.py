"""Slugs, names and versions: every way in (command, wizard form, admin, API) applies the same
rules (builds/validators.py), so no row can break the pages; scripts show invisible characters."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from builds import schema
from builds.models import GoldImage
from tests import factories
from tests.support.aib import shell, template_body

pytestmark = pytest.mark.django_db

BAD_SLUGS = ["Bad_Slug!", "bad.slug", "Bad-Slug", "dash-"]
LIST_PAGES = ["portal:home", "builds:gold-list", "api:gold-list"]


@pytest.fixture
def root(db):
    # Only a superuser can add gold images in the admin: the admin role administers users and departments.
    return factories.make_user("root", role="admin", is_superuser=True, is_staff=True)


def by_command(tmp_path, slug):
    path = tmp_path / "t.json"
    path.write_text(json.dumps(template_body()))
    try:
        call_command("importtemplate", str(path), "--gold-image", slug, "--version", "1.0.0", stdout=StringIO())
    except CommandError as exc:
        return str(exc)
    return ""


def by_form(client, slug, alice):
    client.force_login(alice)
    response = client.post(reverse("builds:wizard-start"), {"slug": slug, "name": "Image", "os_type": "Linux",
                                                            "version": "1.0.0"})
    return response.content.decode() if response.status_code != 302 else ""


def by_admin(client, slug, root, name="Image"):
    client.force_login(root)
    response = client.post(reverse("admin:builds_goldimage_add"), {
        "slug": slug, "name": name, "os_type": "Linux", "description": "",
        "versions-TOTAL_FORMS": "0", "versions-INITIAL_FORMS": "0"})
    return response.content.decode() if response.status_code != 302 else ""


@pytest.mark.parametrize("slug", BAD_SLUGS)
def test_it_refuses_a_bad_slug_through_every_way_in(slug, client, tmp_path, alice, root):
    assert "is not a valid short name" in by_command(tmp_path, slug)
    assert "lower-case letters, digits and hyphens" in by_form(client, slug, alice)
    assert 'class="errorlist' in by_admin(client, slug, root)
    # The API reads the catalog only: there is no way to create a gold image through it.
    client.force_login(root)
    assert client.post(reverse("api:gold-list"), {"slug": slug}, content_type="application/json").status_code == 405
    assert not GoldImage.objects.exists()


def test_rows_made_through_every_way_in_keep_every_list_page_up(client, tmp_path, alice, root, bob, dave):
    assert by_command(tmp_path, "from-command") == ""
    assert by_form(client, "from-form", alice) == ""
    assert by_admin(client, "from-admin", root) == ""
    assert set(GoldImage.objects.values_list("slug", flat=True)) == {"from-command", "from-form", "from-admin"}
    for user in (alice, bob, dave):
        client.force_login(user)
        for name in LIST_PAGES:
            assert client.get(reverse(name), follow=True).status_code == 200, (user.username, name)


@pytest.mark.parametrize("char", ["\u202e", "\u2066", "\u200b", "\u2028", "\ufeff", "\x07", "\x85"])
def test_it_refuses_invisible_and_bidi_characters_in_names(char, client, tmp_path, alice, root):
    name = f"update{char}gnp"
    client.force_login(alice)
    response = client.post(reverse("builds:wizard-start"), {"slug": "img", "name": name, "os_type": "Linux",
                                                            "version": "1.0.0"})
    assert response.status_code == 422
    assert f"U+{ord(char):04X}" in response.content.decode()
    assert f"U+{ord(char):04X}" in by_admin(client, "img", root, name)
    problems = schema.check_customizer(shell(name), "properties.customize[0]", os_type="Linux")
    assert [(p.rule, p.path) for p in problems] == [("name.invisible-character", "properties.customize[0].name")]
    path = tmp_path / "t.json"
    path.write_text(json.dumps(template_body(customize=[shell(name)])))
    out = StringIO()
    call_command("importtemplate", str(path), "--gold-image", "img", "--version", "1.0.0", stdout=out)
    assert "error: name.invisible-character properties.customize[0].name" in out.getvalue()


def test_scripts_show_invisible_and_bidi_characters_visibly(client, alice):
    # Scripts are not refused (a script may need any character), but review must see them.
    gold_version = factories.make_gold_version(customize_before=[
        shell("update", "echo 'access granted'\u202e #\u200b", "rm -rf /tmp/x\u2066")])
    client.force_login(alice)
    response = client.get(reverse("builds:gold-version", args=[gold_version.gold_image.slug, "1.0.0"]))
    assert response.status_code == 200
    page = response.content.decode()
    for label in ("U+202E RIGHT-TO-LEFT OVERRIDE", "U+200B ZERO WIDTH SPACE", "U+2066 LEFT-TO-RIGHT ISOLATE"):
        code = label.split(" ", 1)[0]
        assert f'<span class="invisible-char" title="{label}">\u27e8{code}\u27e9</span>' in page
    steps = page[page.index('<ol class="steps">'):]
    assert "\u202e" not in steps[:steps.index("</ol>")]
