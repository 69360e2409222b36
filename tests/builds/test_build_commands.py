"""`startbuild` and `showbuild`, as scripts use them: the id alone on stdout, then the build as JSON."""

import json
import uuid
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from builds import lifecycle, monitor
from builds.models import Build
from tests import factories
from tests.support.build_rows import make_build
from tests.support.workers import run_sweeps, submit

pytestmark = pytest.mark.django_db(transaction=True)


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_startbuild_prints_the_id_alone_and_showbuild_reports_the_finished_build(azure_emulator, alice, bob, web):
    azure_emulator.set_time_scale(20000)
    gold = factories.make_gold_version(actor=alice)
    factories.make_layer_version(factories.make_layer(web, gold.gold_image, slug="nginx"))

    printed = run("startbuild", gold.gold_image.slug, "1.0.0", "--layer", "web/nginx@1.0.0", "--user", "bob")
    build = Build.objects.get()
    assert printed == f"{build.uuid}\n"
    assert build.requested_by == bob and build.state == Build.State.PENDING

    assert submit(build.pk) == lifecycle.DONE
    run_sweeps(lambda: Build.objects.get(pk=build.pk).is_terminal, timeout=30)
    monitor.sweep()  # outputs
    summary = json.loads(run("showbuild", str(build.uuid), "--json"))
    assert {"id", "state", "sub_state", "template_name", "error_code", "error_message", "outputs",
            "events"} <= set(summary)
    assert summary["id"] == str(build.uuid) and summary["state"] == "succeeded"
    assert summary["template_name"] == build.template_name and summary["error_code"] == ""
    assert summary["layers"] == ["web/nginx@1.0.0"]
    assert [output["name"] for output in summary["outputs"]] == ["gallery"]
    assert [event["to_state"] for event in summary["events"]][:3] == ["pending", "submitting", "running"]
    assert summary["events"][-1]["to_state"] == "succeeded"

    text = run("showbuild", str(build.uuid))
    assert text.startswith(f"Build {build.uuid}: succeeded")
    assert "layer         web/nginx@1.0.0" in text and "output        gallery: /subscriptions/" in text


@pytest.mark.parametrize("args, message", [
    (["--user", "nobody"], "No active user called nobody."),
    (["--layer", "web/missing@1.0.0", "--user", "alice"], "web/missing@1.0.0"),
    (["--layer", "not a reference", "--user", "alice"], "is not a layer reference"),
])
def test_startbuild_refuses_what_it_cannot_build_and_requests_nothing(alice, args, message):
    gold = factories.make_gold_version(actor=alice)
    with pytest.raises(CommandError, match=message):
        run("startbuild", gold.gold_image.slug, "1.0.0", *args)
    with pytest.raises(CommandError, match="No gold image version"):
        run("startbuild", gold.gold_image.slug, "9.9.9", "--user", "alice")
    assert not Build.objects.exists()


@pytest.mark.parametrize("build_id", ["5b0c6f4e-0000-4000-8000-000000000000", "not-an-id", "5b0c6f4e", "5b0"])
def test_showbuild_names_an_unknown_build(build_id, db):
    with pytest.raises(CommandError, match=f"No build {build_id}.") as refused:
        run("showbuild", build_id)
    assert refused.value.returncode == 1


def builds_with_ids(alice, *ids: str) -> list[Build]:
    gold = factories.make_gold_version(actor=alice)
    builds = []
    for build_id in ids:
        build = make_build(gold, requested_by=alice)
        Build.objects.filter(pk=build.pk).update(uuid=uuid.UUID(build_id))
        builds.append(Build.objects.get(pk=build.pk))
    return builds


@pytest.mark.parametrize("reference", [
    "5b0c6f4e",  # the 8 characters the pages show
    "5b0c",  # the shortest prefix looked up
    "5B0C6F4E-12",  # any case, hyphens as in the id
    "5b0c6f4e12",  # or without them
    "5b0c6f4e-1234-4000-8000-000000000001",  # the whole id
])
def test_showbuild_accepts_any_unique_prefix_of_the_id(alice, reference):
    build, _ = builds_with_ids(alice, "5b0c6f4e-1234-4000-8000-000000000001", "9f00aa11-0000-4000-8000-000000000002")
    assert json.loads(run("showbuild", reference, "--json"))["id"] == str(build.uuid)


def test_showbuild_says_when_a_prefix_is_ambiguous(alice):
    builds_with_ids(alice, "5b0c6f4e-0000-4000-8000-000000000001", "5b0c6f4e-0000-4000-8000-000000000002",
                    "5b0c0000-0000-4000-8000-000000000003")
    with pytest.raises(CommandError, match="ambiguous: 2 builds start with 5b0c6f4e") as refused:
        run("showbuild", "5b0c6f4e")
    assert refused.value.returncode == 1
    with pytest.raises(CommandError, match="ambiguous: 3 builds start with 5b0c"):
        run("showbuild", "5b0c")
    assert json.loads(run("showbuild", "5b0c6f4e-0000-4000-8000-000000000002", "--json"))["id"].endswith("2")
