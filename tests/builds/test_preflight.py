"""check_build and check_body: the look-ups plus the rules, as a build request runs them."""

import pytest

from builds import azure, compose, preflight, schema
from builds.validation import PolicyRules
from tests import factories
from tests.support.aib import template_body

pytestmark = pytest.mark.django_db


def rules(problems, severity="error"):
    return {(p.rule, p.path) for p in problems if p.severity == severity}


def test_a_good_gold_version_with_a_layer_passes(azure_emulator, web):
    gold = factories.make_gold_version()
    layer_version = factories.make_layer_version(factories.make_layer(web, gold.gold_image, "app"))
    assert schema.errors(preflight.check_build(gold, [layer_version])) == []


def test_it_checks_the_exact_body_it_is_given(azure_emulator, web):
    gold = factories.make_gold_version()
    layer_version = factories.make_layer_version(factories.make_layer(web, gold.gold_image, "app"))
    body = compose.compose(gold, [layer_version], compose.BuildContext(location="eastus", requester="bob"))
    body["properties"]["source"]["sku"] = "22_04-lts"
    found = rules(preflight.check_build(gold, [layer_version], body=body))
    assert ("layer.source-changed", "properties.source") in found


def test_layer_problems_carry_composed_paths(azure_emulator, web):
    gold = factories.make_gold_version()
    layer_version = factories.make_layer_version(factories.make_layer(web, gold.gold_image, "app"), customize=[
        {"type": "Shell", "name": "ok", "inline": ["echo"]},
        {"type": "Shell", "name": "leak", "inline": ["echo fine", "export TOKEN=abcd1234secret"]}])
    problems = preflight.check_build(gold, [layer_version])
    leak = next(p for p in problems if p.rule == "secret.inline")
    assert leak.path == "properties.customize[2].inline[1]" and "Line 2 " in leak.message


def test_it_refuses_a_gold_version_outside_the_layer_range(azure_emulator, web):
    gold = factories.make_gold_version(version="3.0.0")
    layer_version = factories.make_layer_version(factories.make_layer(web, gold.gold_image, "app"), accepts="<3")
    assert ("layer.gold-range", "layers[0].accepts") in rules(preflight.check_build(gold, [layer_version]))


def test_it_refuses_the_same_layer_twice(azure_emulator, web):
    gold = factories.make_gold_version()
    layer = factories.make_layer(web, gold.gold_image, "app")
    one, two = factories.make_layer_version(layer, "1.0.0"), factories.make_layer_version(layer, "1.1.0")
    assert ("layer.duplicate", "layers[1]") in rules(preflight.check_build(gold, [one, two]))


def test_the_current_policy_applies_by_default(azure_emulator, alice):
    from builds import policies

    gold = factories.make_gold_version()
    assert not rules(preflight.check_build(gold, []))
    policies.policy_update(actor=alice, rules={"allowed_vm_sizes": ["Standard_D4ds_v5"]})
    assert ("policy.vm-size", "properties.vmProfile.vmSize") in rules(preflight.check_build(gold, []))
    assert not rules(preflight.check_build(gold, [], policy=PolicyRules()))


def test_a_failed_look_up_refuses_rather_than_passes(azure_emulator):
    azure_emulator.add_fault("VirtualMachineImages_*", 500)
    problems = preflight.check_body(template_body())
    assert ("source.lookup-failed", "properties.source") in rules(problems)


def test_without_look_ups_no_azure_call_is_made(azure_emulator):
    before = azure_emulator.last_seq()
    gold = factories.make_gold_version()
    report = preflight.build_report(gold, [], lookups=False)
    assert report.ok and azure_emulator.requests(before) == []
    assert {c.group for c in report.checks if c.ran} == {"schema", "policy", "secret", "security"}


def test_publish_problems_leave_the_schema_to_the_service(azure_emulator):
    gold = factories.make_gold_version(publish=False, security_type="Standard", identity="")
    problems = preflight.publish_problems(gold)
    assert ("security.declared-mismatch", "security_type") in rules(problems)
    assert not any(p.rule.startswith("schema.") for p in problems)


def test_placeholders_are_not_looked_up(azure_emulator):
    body = template_body(location="<region1>")
    before = azure_emulator.last_seq()
    problems = preflight.check_body(body)
    assert rules(problems, "warning") == {("source.not-checked", "location")}
    assert azure_emulator.requests(before) == []


def test_a_placeholder_left_from_a_sample_passes_the_check_but_not_a_build_request():
    body = template_body()
    body["properties"]["distribute"][0]["runOutputName"] = "<runOutputName>"
    body["properties"]["customize"][0]["inline"] = ["cat <<EOF > /etc/motd", "{ hello }", "EOF"]
    assert not schema.errors(preflight.check_body(body, os_type="Linux", lookups=False))
    problems = schema.errors(preflight.check_body(body, os_type="Linux", lookups=False, building=True))
    assert [(p.rule, p.path) for p in problems] == [("build.placeholder", "properties.distribute[0].runOutputName")]


def test_the_source_step_check_looks_up_the_source_and_runs_its_rules(azure_emulator):
    azure_emulator.add_image(location="eastus", publisher="Goldsmith-Tests", offer="step", sku="tl-only",
                             version="1.0.0", hyperVGeneration="V2", features={"SecurityType": "TrustedLaunch"})
    good = preflight.check_source_step(factories.linux_content()["source"], "eastus", os_type="Linux")
    assert good.facts is not None
    assert not schema.errors(good.problems)
    refused = preflight.check_source_step({"type": "PlatformImage", "publisher": "Goldsmith-Tests", "offer": "step",
                                           "sku": "tl-only", "version": "latest"}, "eastus", os_type="Linux")
    assert "security.source-unsupported" in {p.rule for p in schema.errors(refused.problems)}


def test_a_portal_without_the_log_reader_role_is_warned_with_the_fix(azure_emulator):
    from tests.support.emulator import SUBSCRIPTION_ID
    from tests.support.workers import WORKER_PRINCIPAL_ID

    body = template_body()
    assert not [p for p in preflight.check_permissions(body) if p.rule == "permission.missing"]
    azure_emulator.control("POST", "authorization/revoke", {"principalId": WORKER_PRINCIPAL_ID,
                                                            "role": "Storage Blob Data Reader",
                                                            "scope": f"/subscriptions/{SUBSCRIPTION_ID}"})
    azure.lookup_cache_clear()  # role assignments are cached for AZURE_PREFLIGHT_CACHE_SECONDS
    [problem] = [p for p in preflight.check_permissions(body) if p.rule == "permission.missing"]
    assert problem.severity == "warning"
    assert "read the build log" in problem.message
    assert (f'az role assignment create --assignee {WORKER_PRINCIPAL_ID} --role "Storage Blob Data Reader" '
            f"--scope /subscriptions/{SUBSCRIPTION_ID}") in problem.message
