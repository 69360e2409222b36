"""Submit, follow, cancel, collect, clean up: the lifecycle steps against the emulator.

The steps are called in this process (the RQ entry points only wrap them); real worker
processes and fault injection are in test_orchestration_faults.py.
"""

import datetime as dt

import django_rq
import pytest
from django.utils import timezone

from builds import azure, compose, lifecycle, monitor, queue, services
from builds.models import Build
from tests import factories
from tests.support.workers import run_sweeps, submit

pytestmark = pytest.mark.django_db(transaction=True)
SUB = "22222222-2222-2222-2222-222222222222"
IMAGES = f"/subscriptions/{SUB}/resourceGroups/goldsmith-images/providers/Microsoft.Compute/images/"


def request(actor, **content):
    gold_version = factories.make_gold_version(actor=actor, **content)
    return services.build_request(actor=actor, gold_version=gold_version)


def finish(build, timeout=30):
    run_sweeps(lambda: Build.objects.get(pk=build.pk).is_terminal, timeout=timeout)
    monitor.sweep()  # collect outputs, schedule clean-up
    return Build.objects.get(pk=build.pk)


def put_and_run_counts(emulator, build):
    """Template PUTs and runs Azure accepted for the build."""
    def accepted(operation):
        return [r for r in emulator.requests(operation=operation)
                if r.get("template") == build.template_name and 200 <= r["status"] < 300]

    return (len(accepted("VirtualMachineImageTemplates_CreateOrUpdate")),
            len(accepted("VirtualMachineImageTemplates_Run")), emulator.stats()["byOperation"])


@pytest.mark.parametrize("distribute, artifact", [
    ([{"type": "ManagedImage", "runOutputName": "managed", "location": "eastus",
       "imageId": IMAGES + "goldsmith-test-image"}], "id"),
    ([{"type": "SharedImage", "runOutputName": "gallery", "galleryImageId": factories.GALLERY + "ubuntu-gen2-tl",
       "targetRegions": [{"name": "eastus", "replicaCount": 1}], "versioning": {"scheme": "Latest", "major": 1}}], "id"),
    ([{"type": "VHD", "runOutputName": "vhd"}], "uri"),
])
def test_a_build_succeeds_for_each_distribution_type(azure_emulator, alice, distribute, artifact):
    azure_emulator.set_time_scale(20000)
    build = request(alice, distribute=distribute)
    assert submit(build.pk) == lifecycle.DONE
    build.refresh_from_db()
    assert build.state == Build.State.RUNNING and build.run_started
    build = finish(build)
    assert build.state == Build.State.SUCCEEDED
    assert build.started_at and build.finished_at and build.staging_resource_group.startswith("/subscriptions/")
    output = build.outputs.get()
    assert output.run_output_name == distribute[0]["runOutputName"]
    assert output.distributor_type == distribute[0]["type"]
    if artifact == "id":
        assert output.artifact_id.startswith(f"/subscriptions/{SUB}/")
    else:
        assert output.artifact_uri.startswith("https://") and output.artifact_uri.endswith(".vhd")
    if distribute[0]["type"] == "SharedImage":
        assert output.artifact_id.endswith("/versions/1.2.1")  # next 1.x after the seeded 1.2.0
    assert put_and_run_counts(azure_emulator, build)[:2] == (1, 1)
    states = list(build.events.values_list("to_state", "to_sub_state"))
    assert states[:3] == [("pending", ""), ("submitting", ""), ("running", "Queued")]
    assert states[-1] == ("succeeded", "Distributing")


def test_the_template_is_deleted_after_the_build_and_outputs_stay(azure_emulator, alice):
    azure_emulator.set_time_scale(20000)
    build = request(alice)
    submit(build.pk)
    build = finish(build)
    assert lifecycle.cleanup_due(build)
    lifecycle.cleanup(build)
    build.refresh_from_db()
    assert build.template_deleted_at is not None
    assert azure_emulator.wait_for(lambda: azure.template_get(SUB, "goldsmith-images", build.template_name) is None)
    assert build.outputs.count() == 1


def test_clean_ups_wait_behind_the_submits_of_builds_requested_meanwhile(azure_emulator, alice):
    azure_emulator.set_time_scale(20000)
    ended = request(alice)
    submit(ended.pk)
    finish(ended)  # the sweep enqueues its clean-up
    waiting = request(alice)  # say, the next wave of a rollout
    # A worker serves `builds` before `default`: the submit goes first.
    builds, default = django_rq.get_queue("builds").job_ids, django_rq.get_queue("default").job_ids
    assert queue.submit_job_id(waiting) in builds
    assert queue.cleanup_job_id(ended) in default
    assert queue.cleanup_job_id(ended) not in builds


def test_the_sweep_and_the_reconciler_are_queued_ahead_of_housekeeping():
    from rq.cron import CronScheduler

    scheduler = CronScheduler(django_rq.get_connection(queue.QUEUE))
    scheduler.load_config_from_file("builds.cron")
    queues = {job.func_name.rsplit(".", 1)[1]: job.queue_name for job in scheduler.get_jobs()}
    # Clean-ups and notifications wait on default, which a worker serves after builds.
    assert queues["builds_sweep"] == queues["builds_reconcile"] == queue.QUEUE
    assert queue.CLEANUP_QUEUE == queues["notify_reconcile"] == "default"


def test_a_vhd_left_in_staging_storage_keeps_its_template(azure_emulator, alice):
    azure_emulator.set_time_scale(20000)
    build = request(alice, distribute=[{"type": "VHD", "runOutputName": "vhd"}])
    submit(build.pk)
    build = finish(build)
    assert not lifecycle.cleanup_due(build)  # the VHD would be deleted with the template


def test_a_failing_customizer_fails_the_build_with_azures_code_message_and_log(azure_emulator, alice):
    azure_emulator.set_time_scale(20000)
    build = request(alice, customize_after=[{"type": "Shell", "name": "broken", "inline": ["echo hi", "exit 3"]}])
    submit(build.pk)
    build = finish(build)
    assert build.state == Build.State.FAILED
    assert build.error_code == "PackerBuildFailed"
    assert "customization.log" in build.error_message
    assert build.log_uri.endswith("customization.log")
    assert build.events.last().to_sub_state == "Customizing"
    log = azure.fetch_log(build.log_uri)
    assert log is not None and "(telemetry) Starting provisioner shell" in log
    assert not lifecycle.cleanup_due(build)  # the log lives as long as the template: keep it


def test_a_failing_validator_fails_the_build_in_validating(azure_emulator, alice):
    azure_emulator.set_time_scale(20000)
    build = request(alice, validators_after=[{"type": "Shell", "name": "check", "inline": ["exit 1"]}])
    submit(build.pk)
    build = finish(build)
    assert build.state == Build.State.FAILED
    assert build.error_message
    assert build.events.last().to_sub_state == "Validating"


def test_a_build_longer_than_its_timeout_fails(azure_emulator, alice):
    azure_emulator.set_time_scale(20000)
    steps = [{"type": "Shell", "name": f"s{i}", "inline": ["sleep 1"]} for i in range(6)]
    build = request(alice, customize_before=steps, build_timeout_minutes=6)
    submit(build.pk)
    build = finish(build)
    assert build.state == Build.State.FAILED
    assert "deadline" in build.error_message.lower() or "timeout" in build.error_message.lower()


def test_a_source_gone_since_the_request_fails_at_provisioning_without_a_run(azure_emulator, alice):
    image = {"location": "eastus", "publisher": "Contoso", "offer": "short-lived", "sku": "gen2",
             "version": "1.0.0", "hyperVGeneration": "V2", "architecture": "x64",
             "features": {"SecurityType": "TrustedLaunchSupported"}, "plan": None}
    azure_emulator.add_image(**image)
    build = request(alice, source={"type": "PlatformImage", "publisher": "Contoso", "offer": "short-lived",
                                   "sku": "gen2", "version": "latest"})
    azure_emulator.reset()  # the image leaves the catalog after the checks passed
    submit(build.pk)
    build.refresh_from_db()
    assert build.state == Build.State.FAILED
    assert build.error_code == "BadPIRSource"
    assert "Platform Image was not found" in build.error_message
    puts, runs, _ = put_and_run_counts(azure_emulator, build)
    assert (puts, runs) == (1, 0)


def test_submitting_again_never_puts_or_runs_twice(azure_emulator, alice):
    azure_emulator.set_time_scale(50)
    build = request(alice)
    submit(build.pk)
    # A second job for the same build (say the reconciler raced a slow one) changes nothing.
    Build.objects.filter(pk=build.pk).update(state=Build.State.SUBMITTING, lease_until=None)
    submit(build.pk)
    assert put_and_run_counts(azure_emulator, build)[:2] == (1, 1)
    assert Build.objects.get(pk=build.pk).state == Build.State.RUNNING


def test_submit_puts_the_template_without_waiting_and_runs_it_on_a_later_attempt(azure_emulator, alice):
    azure_emulator.settings(retry_after=3)
    build = request(alice)
    azure_emulator.freeze()  # Azure takes its time to provision the template
    since = azure_emulator.last_seq()

    def arm_operations():
        return [r["operation"].removeprefix("VirtualMachineImageTemplates_")
                for r in azure_emulator.requests(since=since) if r["kind"] == "arm"]

    result = lifecycle.submit(build.pk)
    # One PUT and its answer: no operation polled, the worker does not sleep; back when Azure said.
    assert arm_operations() == ["Get", "CreateOrUpdate"]
    assert (result.retry_in, result.note) == (3, "Azure is still provisioning the template")
    build.refresh_from_db()
    assert build.state == Build.State.SUBMITTING and build.submitted_at
    assert build.lease_until is None and build.next_attempt_at  # the reconciler knows when it is due
    azure_emulator.advance_simulated(31)
    assert lifecycle.submit(build.pk) == lifecycle.DONE
    assert arm_operations() == ["Get", "CreateOrUpdate", "Get", "Run"]
    assert Build.objects.get(pk=build.pk).state == Build.State.RUNNING


def test_the_sweep_reads_one_listing_page_for_many_builds(azure_emulator, alice):
    azure_emulator.set_time_scale(1000)
    builds = [request(alice) for _ in range(5)]
    for build in builds:
        submit(build.pk)
    azure_emulator.freeze()  # they stay running
    since = azure_emulator.last_seq()
    report = monitor.sweep()
    assert report.builds == 5 and report.groups == 1
    reads = azure_emulator.requests(since=since)
    assert [r["operation"] for r in reads] == ["VirtualMachineImageTemplates_ListByResourceGroup"]


@pytest.mark.parametrize("sub_state", ["Queued", "Building", "Customizing", "Validating", "Distributing"])
def test_cancel_at_every_sub_state(azure_emulator, alice, sub_state):
    azure_emulator.set_time_scale(1000)
    build = request(alice, validators_after=[{"type": "Shell", "name": "check", "inline": ["true"]}])
    submit(build.pk)
    azure_emulator.freeze()
    offsets = {"Queued": 1, "Building": 100, "Customizing": 400, "Validating": 650, "Distributing": 900}
    azure_emulator.advance_simulated(offsets[sub_state])
    monitor.sweep()
    build.refresh_from_db()
    assert (build.state, build.sub_state) == ("running", sub_state)
    build = services.build_cancel(actor=alice, build=build)
    assert build.state == Build.State.CANCELING
    lifecycle.cancel(build.pk)
    azure_emulator.unfreeze()
    azure_emulator.set_time_scale(20000)
    build = finish(build)
    assert build.state == Build.State.CANCELED
    states = [s for s, _ in build.events.values_list("to_state", "to_sub_state")]
    assert states[-2:] == ["canceling", "canceled"]
    cancels = azure_emulator.requests(operation="VirtualMachineImageTemplates_Cancel")
    assert len(cancels) == 1


def test_a_build_stuck_in_canceling_is_reported_once(azure_emulator, alice, settings):
    settings.BUILD_CANCEL_STUCK_MINUTES = 1
    build = request(alice)
    submit(build.pk)
    azure_emulator.freeze()  # Azure's cancel never completes
    services.build_cancel(actor=alice, build=Build.objects.get(pk=build.pk))
    lifecycle.cancel(build.pk)
    monitor.sweep()
    assert not Build.objects.get(pk=build.pk).stuck_reported  # not yet past the limit
    Build.objects.filter(pk=build.pk).update(cancel_requested_at=timezone.now() - dt.timedelta(minutes=2))
    monitor.sweep()
    monitor.sweep()
    build = Build.objects.get(pk=build.pk)
    assert build.state == Build.State.CANCELING and build.stuck_reported
    reports = [detail for detail in build.events.values_list("detail", flat=True) if "stuck in Canceling" in detail]
    assert reports == ["stuck in Canceling for over 1 minutes: check the template in Azure"]


def test_no_more_builds_submit_at_once_than_the_cap(azure_emulator, alice, settings):
    settings.BUILD_MAX_SUBMITTING = 1
    holder, waiting = request(alice), request(alice)
    Build.objects.filter(pk=holder.pk).update(state=Build.State.SUBMITTING,
                                              lease_until=timezone.now() + dt.timedelta(minutes=5))
    since = azure_emulator.last_seq()
    result = lifecycle.submit(waiting.pk)
    assert 5 <= result.retry_in <= 10 and result.note == "too many builds submitting at once"
    waiting.refresh_from_db()
    assert waiting.state == Build.State.PENDING and waiting.next_attempt_at  # the reconciler knows when
    assert azure_emulator.requests(since=since) == []
    Build.objects.filter(pk=holder.pk).update(lease_until=None)  # the holder is done
    assert submit(waiting.pk) == lifecycle.DONE
    assert Build.objects.get(pk=waiting.pk).state == Build.State.RUNNING


def test_arm_rate_limit_headers_are_recorded_for_the_operator_page(azure_emulator, alice):
    assert azure.rate_limits(SUB) == {}
    submit(request(alice).pk)  # reads and writes
    limits = azure.rate_limits(SUB)
    assert 0 < limits["reads"] < 12000 and 0 < limits["writes"] < 1200 and limits["at"]


def test_cancel_while_submitting_stops_before_the_run(azure_emulator, alice):
    build = request(alice)
    Build.objects.filter(pk=build.pk).update(state=Build.State.SUBMITTING)
    build.refresh_from_db()
    # Someone holds the lease: cancel only flags it.
    Build.objects.filter(pk=build.pk).update(cancel_requested=True)
    lifecycle.submit(build.pk)
    build.refresh_from_db()
    assert build.state == Build.State.CANCELED
    assert not azure_emulator.requests(operation="VirtualMachineImageTemplates_Run")


def test_a_throttled_submit_waits_for_retry_after_and_sends_nothing_meanwhile(azure_emulator, alice, settings):
    settings.AZURE_THROTTLE_MIN_SECONDS = 180
    azure_emulator.add_fault("VirtualMachineImageTemplates_CreateOrUpdate", 429, count=1, retry_after=30)
    build = request(alice)
    result = lifecycle.submit(build.pk)
    assert result.retry_in >= 180
    build.refresh_from_db()
    assert build.state == Build.State.PENDING and build.error_code == "TooManyRequests"
    since = azure_emulator.last_seq()
    assert lifecycle.submit(build.pk).retry_in > 170  # the gate is closed: nothing sent
    assert monitor.sweep().builds == 0
    assert azure_emulator.requests(since=since) == []
    assert azure.gate_remaining(SUB) > 170


def test_a_server_error_puts_the_build_back_and_it_succeeds_later(azure_emulator, alice):
    azure_emulator.set_time_scale(20000)
    azure_emulator.add_fault("VirtualMachineImageTemplates_Run", 503, count=1)
    build = request(alice)
    result = submit(build.pk)
    assert result.retry_in is not None
    build.refresh_from_db()
    assert build.state == Build.State.PENDING
    assert azure.gate_remaining(SUB) == 0  # a 503 without Retry-After holds back only this build
    assert submit(build.pk) == lifecycle.DONE
    build = finish(build)
    assert build.state == Build.State.SUCCEEDED
    assert put_and_run_counts(azure_emulator, build)[:2] == (1, 1)


def test_a_503_with_retry_after_holds_back_the_whole_subscription(azure_emulator, alice):
    azure_emulator.add_fault("VirtualMachineImageTemplates_CreateOrUpdate", 503, count=1, retry_after=30)
    build = request(alice)
    assert lifecycle.submit(build.pk).retry_in >= 29
    since = azure_emulator.last_seq()
    assert monitor.sweep().skipped_groups == [] and lifecycle.submit(build.pk).retry_in > 25
    assert azure_emulator.requests(since=since) == []
    assert 25 < azure.gate_remaining(SUB) <= 30


def test_a_template_that_disappears_fails_the_build(azure_emulator, alice, settings):
    settings.BUILD_MISSING_GRACE_SECONDS = 0
    build = request(alice)
    submit(build.pk)
    # As if someone deleted the template in Azure: the listing no longer shows it.
    Build.objects.filter(pk=build.pk).update(template_name="gs-deleted-elsewhere")
    monitor.sweep()
    build.refresh_from_db()
    assert (build.state, build.error_code) == ("failed", "TemplateNotFound")


def test_a_stale_running_status_never_undoes_a_cancel(azure_emulator, alice):
    build = request(alice)
    submit(build.pk)
    stale = Build.objects.get(pk=build.pk)  # read by a sweep before the cancel...
    services.build_cancel(actor=alice, build=build)
    lifecycle.apply_status(stale, azure.TemplateStatus(name=build.template_name, provisioning_state="Succeeded",
                                                       run_state="Running", run_sub_state="Building"))
    assert Build.objects.get(pk=build.pk).state == Build.State.CANCELING  # ...applied after it


def test_outputs_named_exactly_by_the_template_need_no_read(azure_emulator, alice):
    azure_emulator.set_time_scale(20000)
    image_id = IMAGES + "exactly-this"
    build = request(alice, distribute=[{"type": "ManagedImage", "runOutputName": "managed", "location": "eastus",
                                         "imageId": image_id}])
    submit(build.pk)
    build = finish(build)
    assert build.outputs.get().artifact_id == image_id
    assert not azure_emulator.requests(operation="VirtualMachineImageTemplates_ListRunOutputs")


def test_builds_ending_together_learn_their_gallery_versions_from_one_listing(azure_emulator, alice):
    """Automatic versioning leaves the version Azure picked unknown; one paged listing of the
    definition finds every build's version by its goldsmith.build tag. A definition whose last
    listing took more pages than there are builds waiting keeps one run-output read per build."""
    azure_emulator.set_time_scale(20000)
    azure_emulator.settings(page_size=1)  # one version per page: the listing costs one read per version
    target = {"type": "SharedImage", "runOutputName": "gallery", "galleryImageId": factories.GALLERY + "ubuntu-gen2-tl",
              "targetRegions": [{"name": "eastus", "replicaCount": 1}], "versioning": {"scheme": "Latest", "major": 1}}
    gold_version = factories.make_gold_version(actor=alice, distribute=[target])

    def ended_together(count):
        builds = [services.build_request(actor=alice, gold_version=gold_version) for _ in range(count)]
        for build in builds:
            assert submit(build.pk) == lifecycle.DONE
        azure_emulator.wait_for(lambda: all(azure.template_get(SUB, build.resource_group, build.template_name).run_state
                             == "Succeeded" for build in builds))
        since = azure_emulator.last_seq()
        monitor.sweep()  # sees every run ended at once
        calls = {operation: len(azure_emulator.requests(since, operation=operation)) for operation in
                 ("GalleryImageVersions_ListByGalleryImage", "VirtualMachineImageTemplates_ListRunOutputs")}
        return [Build.objects.get(pk=build.pk) for build in builds], calls

    builds, calls = ended_together(3)
    # the five seeded versions and three new ones, a page each; no run-output read
    assert calls == {"GalleryImageVersions_ListByGalleryImage": 8, "VirtualMachineImageTemplates_ListRunOutputs": 0}
    outputs = [build.outputs.get() for build in builds]
    assert sorted(output.artifact_id.rsplit("/", 1)[1] for output in outputs) == ["1.2.1", "1.2.2", "1.2.3"]
    versions = azure_emulator.compute_client().gallery_image_versions
    for build, output in zip(builds, outputs, strict=True):
        assert build.outputs_collected and output.run_output_name == "gallery"
        assert output.distributor_type == "SharedImage" and output.provisioning_state == "Succeeded"
        version = versions.get("goldsmith-galleries", "goldsmith_gallery", "ubuntu-gen2-tl", output.artifact_id
                               .rsplit("/", 1)[1])
        assert version.tags["goldsmith.build"] == str(build.uuid)

    builds, calls = ended_together(2)  # two builds, but the last listing took eight pages
    assert calls == {"GalleryImageVersions_ListByGalleryImage": 0, "VirtualMachineImageTemplates_ListRunOutputs": 2}
    assert sorted(build.outputs.get().artifact_id.rsplit("/", 1)[1] for build in builds) == ["1.2.4", "1.2.5"]


def test_a_sweep_that_changes_nothing_costs_the_same_database_work_for_any_number_of_builds(azure_emulator,
                                                                                              alice):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    azure_emulator.set_time_scale(1000)

    def unchanged_sweep_queries(count):
        for _ in range(count):
            submit(request(alice).pk)
        azure_emulator.freeze()
        monitor.sweep()  # catches up with whatever moved
        with CaptureQueriesContext(connection) as queries:
            report = monitor.sweep()
        azure_emulator.unfreeze()
        assert report.changed == 0
        return len(queries)

    assert unchanged_sweep_queries(2) == unchanged_sweep_queries(6)


def test_the_backoff_doubles_per_attempt_up_to_its_cap_and_never_undercuts_retry_after(settings):
    settings.BUILD_RETRY_BASE_SECONDS = 5
    settings.BUILD_RETRY_MAX_SECONDS = 60
    first, third, twentieth = (lifecycle.backoff(n) for n in (1, 3, 20))
    assert 3.75 <= first <= 6.25 and 15 <= third <= 25  # 5 s, then 20 s, with ±25% jitter
    assert 45 <= twentieth <= 75  # capped at 60 s, not 5 * 2^19
    slow = azure.AzureError("ServiceUnavailable", "busy", permanent=False, status=503, retry_after=200)
    assert lifecycle.backoff(1, slow) >= 200


def test_two_concurrent_builds_of_one_version_each_get_a_goldsmith_named_staging_group(azure_emulator, alice):
    """Per version, the second template would find the first's group in use (BadStagingResourceGroup)."""
    azure_emulator.set_time_scale(20000)
    gold_version = factories.make_gold_version(actor=alice, staging_resource_group=compose.goldsmith_named())
    builds = [services.build_request(actor=alice, gold_version=gold_version) for _ in range(2)]
    assert [submit(build.pk) for build in builds] == [lifecycle.DONE, lifecycle.DONE]
    finished = [finish(build) for build in builds]
    assert [build.state for build in finished] == [Build.State.SUCCEEDED, Build.State.SUCCEEDED]
    groups = {build.staging_resource_group.lower() for build in finished}
    assert groups == {build.template["properties"]["stagingResourceGroup"].lower() for build in builds}
    assert len(groups) == 2
