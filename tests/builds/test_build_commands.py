"""`startbuild` and `showbuild`, as scripts use them: the id alone on stdout, then the build as JSON."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from builds import lifecycle, monitor
from builds.models import Build
from tests import factories
from tests.support.workers import run_sweeps

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

    assert lifecycle.submit(build.pk) == lifecycle.DONE
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


@pytest.mark.parametrize("build_id", ["5b0c6f4e-0000-4000-8000-000000000000", "not-an-id"])
def test_showbuild_names_an_unknown_build(build_id, db):
    with pytest.raises(CommandError, match=f"No build {build_id}."):
        run("showbuild", build_id)
