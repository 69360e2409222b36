"""importtemplate --publish runs the wizard's publish checks and writes nothing when they fail;
when they pass it requests publishing (four eyes), or publishes at once with --break-glass."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from builds.models import GoldImage, GoldImageVersion, PublishRequest
from portal.models import AuditEvent
from tests.support.aib import GEN1_DEFINITION, gallery_target, shell, template_body

pytestmark = pytest.mark.django_db

TL_ONLY = {"type": "PlatformImage", "publisher": "Contoso", "offer": "hardened-ubuntu", "sku": "22_04-tl-only",
           "version": "latest"}


def run(*args):
    from io import StringIO

    out = StringIO()
    try:
        call_command("importtemplate", *args, stdout=out)
    except CommandError as exc:
        return exc.returncode, out.getvalue(), str(exc)
    return 0, out.getvalue(), ""


def test_it_refuses_to_publish_what_the_wizard_refuses_and_writes_nothing(tmp_path, azure_emulator, alice):
    body = template_body(source=TL_ONLY, distribute=[gallery_target(definition=GEN1_DEFINITION)], customize=[
        {"type": "Shell", "name": "fetch", "scriptUri": "http://files.example.com/setup.sh"},
        shell("configure", "export PASSWORD=Hunter2-Hunter2", "echo done"),
        {"type": "File", "name": "conf", "sourceUri": "https://files.example.com/app.conf",
         "destination": "/etc/app.conf"}])
    path = tmp_path / "t.json"
    path.write_text(json.dumps(body))
    code, out, err = run(str(path), "--gold-image", "hardened", "--version", "1.0.0", "--publish", "--user", "alice")
    print(out)
    assert code == 1
    assert "Nothing was imported" in err
    rows = {tuple(line.split("\t")[:2]) for line in out.strip().splitlines()}
    assert ("policy.uri-https", "properties.customize[0].scriptUri") in rows
    assert ("secret.inline", "properties.customize[1].inline[0]") in rows
    assert ("file.destination-not-writable", "properties.customize[2].destination") in rows
    assert ("security.source-unsupported", "properties.source.sku") in rows
    assert any(rule.startswith("security.target") for rule, path in rows
               if path == "properties.distribute[0].galleryImageId")
    assert not GoldImage.objects.exists()
    assert not GoldImageVersion.objects.exists()
    assert not AuditEvent.objects.exists()


def test_it_requests_publishing_of_a_clean_template_declared_as_the_catalog_says(tmp_path, azure_emulator, alice,
                                                                                 frank):
    # Changed with four-eyes publishing: --publish used to publish at once; it now makes a
    # request that somebody else approves.
    path = tmp_path / "t.json"
    path.write_text(json.dumps(template_body()))
    code, out, _ = run(str(path), "--gold-image", "jammy", "--version", "1.0.0", "--publish", "--user", "alice")
    assert code == 0, out
    gold_version = GoldImageVersion.objects.get(gold_image__slug="jammy", version="1.0.0")
    assert gold_version.status == "draft"
    assert (gold_version.security_type, gold_version.hyper_v_generation) == ("TrustedLaunch", "V2")
    request = PublishRequest.objects.get(gold_version=gold_version)
    assert out.splitlines() == ["Imported jammy@1.0.0 as draft.",
                                f"Publish request {request.uuid} is waiting for approval."]
    assert list(AuditEvent.objects.values_list("action", flat=True)) == [
        "gold_image.create", "gold_version.import", "publish_request.create"]

    call_command("approve", str(request.uuid), "--user", "frank", stdout=StringIO())
    gold_version.refresh_from_db()
    assert gold_version.status == "published"


def test_publish_needs_a_user_who_may_request_it(tmp_path, azure_emulator, bob):
    path = tmp_path / "t.json"
    path.write_text(json.dumps(template_body()))
    code, _, err = run(str(path), "--gold-image", "jammy", "--version", "1.0.0", "--publish")
    assert (code, err) == (1, "--publish needs --user: a publish request has an author.")
    code, _, err = run(str(path), "--gold-image", "jammy", "--version", "1.0.0", "--publish", "--user", "bob")
    assert code == 1
    assert "security team" in err
    assert not GoldImage.objects.exists()


def test_break_glass_publishes_at_once_for_an_administrator(tmp_path, azure_emulator, erin):
    path = tmp_path / "t.json"
    path.write_text(json.dumps(template_body()))
    code, out, _ = run(str(path), "--gold-image", "jammy", "--version", "1.0.0", "--publish", "--user", "erin",
                       "--break-glass", "INC-4711: the old image leaks keys")
    assert code == 0, out
    assert out.strip() == "Imported jammy@1.0.0 as published (BREAK-GLASS, no approvals)."
    event = AuditEvent.objects.get(action="gold_version.publish")
    assert event.changes["break_glass"] == [None, True]


def test_without_publish_it_imports_a_draft_listing_its_problems(tmp_path):
    body = template_body(customize=[{"type": "Shell", "name": "fetch", "scriptUri": "http://files.example.com/s.sh"}])
    path = tmp_path / "t.json"
    path.write_text(json.dumps(body))
    code, out, _ = run(str(path), "--gold-image", "jammy", "--version", "1.0.0")
    assert code == 0
    assert "error: policy.uri-https properties.customize[0].scriptUri" in out
    assert "Fix the errors above in the draft before publishing it." in out
    assert GoldImageVersion.objects.get(gold_image__slug="jammy").status == "draft"


DEEP = "[" * 1000 + "]" * 1000  # 2 KB that made json.loads raise RecursionError


@pytest.mark.parametrize("content, message", [
    (DEEP.encode(), "more than 64 levels deep"),
    (json.dumps(template_body()).encode("utf-16"), "not UTF-8 text"),
    (bytes(range(256)) * 4, "not UTF-8 text"),
    (b"\x00\x01 not json", "not valid JSON"),
])
def test_unreadable_input_exits_2_without_writing(content, message, tmp_path):
    path = tmp_path / "t.json"
    path.write_bytes(content)
    code, _, err = run(str(path), "--gold-image", "x", "--version", "1.0.0", "--publish")
    assert code == 2
    assert message in err
    assert not GoldImage.objects.exists()


def test_it_reads_standard_input():
    from io import StringIO

    out = StringIO()
    call_command("importtemplate", "-", "--gold-image", "jammy", "--version", "1.0.0", stdout=out,
                 stdin=StringIO(json.dumps(template_body())))
    assert "Imported jammy@1.0.0 as draft." in out.getvalue()


def test_it_imports_a_version_below_the_newest_with_a_warning(tmp_path):
    path = tmp_path / "t.json"
    path.write_text(json.dumps(template_body()))
    assert run(str(path), "--gold-image", "jammy", "--version", "1.0.0")[0] == 0
    code, out, _ = run(str(path), "--gold-image", "jammy", "--version", "0.9.0")
    assert code == 0
    assert "Imported jammy@0.9.0 as draft." in out
    assert "warning: version.below-newest version: 0.9.0 is below 1.0.0, the newest version of jammy" in out
