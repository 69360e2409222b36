"""POST /api/v1/templates/check/: the checktemplate result as JSON."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from builds import policies
from tests.support.aib import template_body

CHECK = "/api/v1/templates/check/"


def test_a_clean_template_passes_with_the_checks_that_ran(api, bob, azure_emulator):
    response = api(bob).post(CHECK, template_body(), format="json")

    assert response.status_code == 200
    result = response.json()
    assert result["ok"] is True and result["form"] == "body"
    assert [p for p in result["problems"] if p["severity"] == "error"] == []
    checks = {check["group"]: check for check in result["checks"]}
    assert checks["source"]["ran"] and checks["source"]["passed"]
    assert set(checks["schema"]) == {"group", "title", "ran", "passed"}


def test_problems_come_with_rule_path_and_message_like_checktemplate(api, dave, azure_emulator):
    body = template_body(customize=[{"type": "Shell", "name": "s", "scriptUri": "http://files.example.com/s"}])
    out = io.StringIO()
    with pytest.raises(SystemExit):
        call_command("checktemplate", "-", "--json", stdin=io.StringIO(json.dumps(body)), stdout=out)

    response = api(dave).post(CHECK, body, format="json")

    assert response.status_code == 200
    result = response.json()
    assert result["ok"] is False
    assert ("properties.customize[0].scriptUri" in {p["path"] for p in result["problems"]})
    assert result["problems"] == json.loads(out.getvalue())["problems"]


def test_arm_resources_are_read_and_shape_errors_reported(api, bob):
    resource = {"type": "Microsoft.VirtualMachineImages/imageTemplates", "apiVersion": "2024-02-01",
                "name": "x", **template_body()}
    resource["properties"]["customize"][0]["Inline"] = ["x"]

    result = api(bob).post(CHECK + "?offline=true", resource, format="json").json()

    assert result["ok"] is False and result["form"] == ""
    assert {(p["rule"], p["path"]) for p in result["problems"]} >= {
        ("schema.unknown-field", "properties.customize[0].Inline")}


def test_options_come_as_query_parameters(api, alice):
    policies.policy_update(actor="system", name="strict", rules={"require_checksums": True})
    body = template_body(customize=[{"type": "Shell", "name": "s", "scriptUri": "https://files.example.com/s.sh"}])
    client = api(alice)

    lenient = client.post(CHECK + "?offline=1", body, format="json").json()
    strict = client.post(CHECK + "?offline=1&policy=strict", body, format="json").json()
    unknown = client.post(CHECK + "?offline=1&policy=nope", body, format="json")
    offline = {check["group"]: check["ran"] for check in lenient["checks"]}

    assert lenient["ok"] and not offline["source"]
    assert not strict["ok"] and "policy.checksum-required" in {p["rule"] for p in strict["problems"]}
    assert unknown.status_code == 400
    assert unknown.json()["error"]["problems"][0]["path"] == "policy"


def test_a_template_that_cannot_be_read_is_a_failed_check_and_a_body_that_is_no_object_a_400(api, bob):
    client = api(bob)

    trigger = client.post(CHECK, {"properties": {"kind": "Schedule"}}, format="json")
    not_object = client.post(CHECK, [1, 2], format="json")
    broken = client.post(CHECK, "{nope", content_type="application/json")
    form = client.post(CHECK, "template=%7B%7D", content_type="application/x-www-form-urlencoded")

    assert trigger.status_code == 200
    assert trigger.json()["problems"][0]["rule"] == "import.unreadable" and not trigger.json()["ok"]
    assert not_object.status_code == 400
    assert not_object.json()["error"]["problems"][0]["rule"] == "request.not-an-object"
    assert broken.status_code == 400 and broken.json()["error"]["problems"][0]["rule"] == "request.malformed"
    assert form.status_code == 415 and form.json()["error"]["code"] == "unsupported_media_type"


@pytest.mark.parametrize("persona, expected", [("erin", 403), ("sam", 403), (None, 401)])
def test_who_may_not_check(api, request, persona, expected):
    user = request.getfixturevalue(persona) if persona else None

    assert api(user).post(CHECK, template_body(), format="json").status_code == expected


def test_a_body_over_the_limit_is_refused_unread(api, bob):
    from api.parsers import MAX_BODY_BYTES

    body = template_body(customize=[{"type": "Shell", "name": "big", "inline": ["x" * MAX_BODY_BYTES]}])

    response = api(bob).post(CHECK + "?offline=true", body, format="json")

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"


@pytest.mark.parametrize("mangle", [
    {"distribute": True},  # once a TypeError in the region and permission checks
    {"customize": {"type": "Shell"}},  # once a TypeError guessing the OS type
    {"source": "ubuntu"},
    {"validate": ["x"], "customize": None},
], ids=["distribute-true", "customize-object", "source-string", "validate-list"])
def test_a_template_of_the_wrong_shapes_is_answered_with_problems_not_a_crash(api, bob, azure_emulator, mangle):
    body = template_body()
    body["properties"].update(mangle)
    response = api(bob).post(CHECK, body, format="json")
    assert response.status_code == 200, response.content[:500]
    result = response.json()
    assert result["ok"] is False
    paths = [problem["path"] for problem in result["problems"]]
    for key, value in mangle.items():  # each wrong shape is named where it is
        if value is not None:
            assert any(path.startswith(f"properties.{key}") for path in paths), (key, paths)
