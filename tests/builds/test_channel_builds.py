"""Building from a release channel, and what a build of a version outside `production` publishes:
the channel resolved when the build is requested and recorded (startbuild --channel, showbuild),
and gallery versions of unpromoted versions kept out of `latest` until promotion flips them
(through the emulator's Image Builder and gallery)."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from builds import approvals, lifecycle, monitor, release, services
from builds.models import Build
from tests import factories
from tests.support.gallery import profile_of
from tests.support.workers import run_sweeps, submit

pytestmark = pytest.mark.django_db(transaction=True)


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def promote(gold_version, channel, requester, approver):
    request = approvals.promotion_request_create(actor=requester, gold_version=gold_version, channel=channel)
    approvals.publish_request_approve(actor=approver, request=request)


def finish(build):
    assert submit(build.pk) == lifecycle.DONE
    run_sweeps(lambda: Build.objects.get(pk=build.pk).is_terminal, timeout=30)
    monitor.sweep()  # outputs
    build = Build.objects.get(pk=build.pk)
    assert build.state == Build.State.SUCCEEDED
    return build


def shared_image_targets(build):
    return [t for t in build.template["properties"]["distribute"] if t["type"] == "SharedImage"]


def test_a_version_outside_production_publishes_excluded_from_latest_and_promotion_flips_it(
        azure_emulator, alice, frank):
    azure_emulator.set_time_scale(20000)
    current = factories.make_gold_version(actor=alice)
    candidate = factories.make_gold_version(current.gold_image, "1.1.0", actor=alice)
    promote(current, "production", alice, frank)

    build = services.build_request(actor=alice, gold_version=candidate)
    assert [t["excludeFromLatest"] for t in shared_image_targets(build)] == [True]
    build = finish(build)
    (output,) = build.outputs.all()
    assert profile_of(azure_emulator, output.artifact_id)["excludeFromLatest"] is True

    promote(candidate, "production", alice, frank)
    progress = release.apply(candidate.pk, "promote", 1)
    assert progress.done == 1 and progress.patched == 1
    assert profile_of(azure_emulator, output.artifact_id)["excludeFromLatest"] is False
    assert output.azure_state.exclude_from_latest is False  # read back, not assumed

    # What production points at now builds straight into `latest`.
    on_channel = approvals.build_request_on_channel(actor=alice, gold_image=candidate.gold_image,
                                                    channel="production")
    assert on_channel.gold_version == candidate and on_channel.channel == "production"
    assert "excludeFromLatest" not in shared_image_targets(on_channel)[0]


def test_a_gold_image_without_a_production_channel_keeps_its_templates_value(azure_emulator, alice):
    gold = factories.make_gold_version(actor=alice)
    build = services.build_request(actor=alice, gold_version=gold)
    assert "excludeFromLatest" not in shared_image_targets(build)[0]
    assert not release.excluded_until_promoted(gold)


def test_a_preview_channel_alone_does_not_exclude_anything(alice, frank):
    gold = factories.make_gold_version(actor=alice)
    promote(gold, "preview", alice, frank)
    newer = factories.make_gold_version(gold.gold_image, "1.1.0", actor=alice)
    assert not release.excluded_until_promoted(newer)


def test_startbuild_on_a_channel_resolves_it_now_and_showbuild_reports_it(azure_emulator, alice, frank, bob, web):
    gold = factories.make_gold_version(actor=alice)
    newer = factories.make_gold_version(gold.gold_image, "1.1.0", actor=alice)
    factories.make_layer_version(factories.make_layer(web, gold.gold_image, slug="nginx"))
    promote(gold, "production", alice, frank)
    slug = gold.gold_image.slug

    printed = run("startbuild", slug, "--channel", "production", "--layer", "web/nginx@1.0.0", "--user", "bob")
    build = Build.objects.get()
    assert printed == f"{build.uuid}\n"
    assert build.gold_version == gold and build.channel == "production" and build.requested_by == bob
    summary = json.loads(run("showbuild", str(build.uuid), "--json"))
    assert summary["channel"] == "production" and summary["gold_version"] == str(gold)
    assert "channel       production (resolved to" in run("showbuild", str(build.uuid))

    promote(newer, "production", alice, frank)  # later builds follow the channel; this one keeps its version
    run("startbuild", slug, "--channel", "production", "--user", "alice")
    assert Build.objects.order_by("-created_at").first().gold_version == newer
    assert Build.objects.get(pk=build.pk).gold_version == gold

    # The pinned form is unchanged, and says no channel.
    pinned = run("startbuild", slug, "1.0.0", "--user", "alice").strip()
    assert json.loads(run("showbuild", pinned, "--json"))["channel"] is None


@pytest.mark.parametrize("args, message", [
    (["--user", "alice"], "Name either a gold version or --channel"),
    (["1.0.0", "--channel", "production", "--user", "alice"], "Name either a gold version or --channel"),
    (["--channel", "candidate", "--user", "alice"], "no version in the channel 'candidate'"),
])
def test_startbuild_refuses_a_channel_it_cannot_resolve_and_requests_nothing(azure_emulator, alice, args, message):
    gold = factories.make_gold_version(actor=alice)
    with pytest.raises(CommandError, match=message):
        run("startbuild", gold.gold_image.slug, *args)
    assert not Build.objects.exists()
