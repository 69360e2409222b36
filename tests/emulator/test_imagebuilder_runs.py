"""Builds on the emulator's clock: sub-states, run outputs and the compute resources they make
visible, cancel, the state rules, and the deterministic failures (aib-reference §2.5, §2.10,
§5.10-§5.12; emulator/README.md "Failure conventions")."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from tests.support.aib import (
    GEN1_DEFINITION,
    GEN2_DEFINITION,
    JAMMY_GEN2_LATEST,
    Recorder,
    gallery_target,
    managed_image_id,
    managed_target,
    shell,
    template_body,
)
from tests.support.emulator import RESOURCE_GROUP, SUBSCRIPTION_ID

RG = RESOURCE_GROUP
SIMPLE_BUILD = 60 + 300 + 120 + 600  # Queued, Building, one Shell step, one distributor (simulated seconds)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def client(emulator, recorder):
    return emulator.imagebuilder_client(raw_response_hook=recorder)


@pytest.fixture
def templates(client):
    return client.virtual_machine_image_templates


def create(templates, name: str = "web", **body) -> None:
    templates.begin_create_or_update(RG, name, template_body(**body)).result()


def status(templates, name: str = "web"):
    return templates.get(RG, name).last_run_status


def outputs(templates, name: str = "web") -> dict:
    return {output.name: output for output in templates.list_run_outputs(RG, name)}


def test_run_answers_202_with_both_lro_headers_and_completes_when_the_build_does(fast_emulator, templates, recorder):
    create(templates)
    recorder.clear()

    templates.begin_run(RG, "web").result()

    run = recorder.first("POST")
    assert run.status == 202
    assert "/operations/" in run.headers["Azure-AsyncOperation"]
    assert "/operationResults/" in run.headers["Location"]
    assert "Retry-After" in run.headers
    final = recorder.exchanges[-1]  # after the operation succeeds the SDK reads the Location URL once
    assert (final.method, final.url, final.status) == ("GET", run.headers["Location"], 200)
    last = status(templates)
    assert last.run_state == "Succeeded"
    assert last.message == ""
    assert last.end_time > last.start_time


def test_the_run_operation_stays_in_progress_for_the_whole_build(emulator, templates):
    create(templates)
    emulator.freeze()
    poller = templates.begin_run(RG, "web")

    emulator.advance_simulated(SIMPLE_BUILD - 10)
    assert poller.status() == "InProgress"
    assert status(templates).run_sub_state == "Distributing"

    emulator.advance_simulated(11)
    poller.result()
    assert status(templates).run_state == "Succeeded"


def test_the_sub_states_follow_the_build_timeline(emulator, templates):
    create(templates, optimize={"vmBoot": {"state": "Enabled"}},
           validate={"inVMValidations": [shell("check", "test -f /etc/os-release")]})
    emulator.freeze()
    templates.begin_run(RG, "web", polling=False)

    seen = []
    for seconds in (1, 60, 300, 120, 120, 120, 600):
        emulator.advance_simulated(seconds)
        current = status(templates)
        seen.append((current.run_state, current.run_sub_state))

    assert seen == [("Running", "Queued"), ("Running", "Building"), ("Running", "Customizing"),
                    ("Running", "Optimizing"), ("Running", "Validating"), ("Running", "Distributing"),
                    ("Succeeded", "Distributing")]


def test_the_build_takes_realistic_time_divided_by_the_time_scale(emulator, templates):
    create(templates)
    emulator.freeze()
    templates.begin_run(RG, "web", polling=False)

    emulator.advance_simulated(SIMPLE_BUILD - 1)
    assert status(templates).run_state == "Running"
    emulator.advance_simulated(2)
    assert status(templates).run_state == "Succeeded"


def test_a_run_makes_one_output_per_distributor_and_compute_shows_them(fast_emulator, client, templates):
    create(templates, distribute=[managed_target(), gallery_target(), {"type": "VHD", "runOutputName": "vhd"}])

    templates.begin_run(RG, "web").result()

    found = outputs(templates)
    assert found["managed"].artifact_id.endswith("/providers/Microsoft.Compute/images/goldsmith-output")
    assert found["acg"].artifact_id == f"{GEN2_DEFINITION}/versions/2.1.1"  # seeded up to 2.1.0
    assert found["vhd"].artifact_uri.startswith("https://")
    assert found["vhd"].artifact_uri.endswith(".vhd") and ".blob.core.windows.net/vhds/" in found["vhd"].artifact_uri
    assert {o.provisioning_state for o in found.values()} == {"Succeeded"}
    assert found["acg"].type == "Microsoft.VirtualMachineImages/imageTemplates/runOutputs"
    assert templates.get_run_output(RG, "web", "acg").artifact_id == found["acg"].artifact_id

    compute = fast_emulator.compute_client()
    assert compute.images.get(RG, "goldsmith-output").location == "eastus"
    version = compute.gallery_image_versions.get("goldsmith-galleries", "goldsmith_gallery", "ubuntu-gen2-tl", "2.1.1")
    assert version.name == "2.1.1"


def test_gallery_versions_follow_the_versioning_scheme(fast_emulator, templates):
    create(templates, distribute=[
        gallery_target("major1", versioning={"scheme": "Latest", "major": 1}),
        gallery_target("explicit", definition=f"{GEN1_DEFINITION}/versions/5.0.0"),
    ])

    templates.begin_run(RG, "web").result()

    found = outputs(templates)
    assert found["major1"].artifact_id.endswith("/ubuntu-gen2-tl/versions/1.2.1")
    assert found["explicit"].artifact_id.endswith("/ubuntu-gen1/versions/5.0.0")


def test_a_second_run_publishes_the_next_version(fast_emulator, templates):
    create(templates, distribute=[gallery_target()])

    templates.begin_run(RG, "web").result()
    templates.begin_run(RG, "web").result()

    assert outputs(templates)["acg"].artifact_id.endswith("/versions/2.1.2")


def test_latest_is_resolved_into_exact_version(fast_emulator, templates):
    create(templates)
    assert templates.get(RG, "web").source.exact_version is None

    templates.begin_run(RG, "web").result()

    assert templates.get(RG, "web").source.exact_version == JAMMY_GEN2_LATEST


def test_run_while_running_and_delete_while_running_are_not_allowed(emulator, templates):
    create(templates)
    emulator.freeze()
    templates.begin_run(RG, "web", polling=False)

    with pytest.raises(ResourceExistsError) as run_again:
        templates.begin_run(RG, "web")
    with pytest.raises(ResourceExistsError) as delete:
        templates.begin_delete(RG, "web")

    assert run_again.value.error.code == "OperationNotAllowed"
    assert delete.value.error.code == "OperationNotAllowed"
    assert delete.value.error.message == ("Operation Microsoft.VirtualMachineImages/imageTemplates/delete is not "
                                          "allowed in provisioning state: provisioned or run state: running.")


def test_run_is_not_allowed_while_the_template_is_still_creating(emulator, templates):
    emulator.freeze()
    templates.begin_create_or_update(RG, "web", template_body(), polling=False)

    with pytest.raises(ResourceExistsError) as caught:
        templates.begin_run(RG, "web")
    assert "provisioning state: creating" in caught.value.error.message


def test_cancel_passes_through_canceling_to_canceled(emulator, templates, recorder):
    create(templates)
    emulator.freeze()
    run = templates.begin_run(RG, "web")
    emulator.advance_simulated(400)

    cancel = templates.begin_cancel(RG, "web")
    answer = next(e for e in recorder.exchanges if e.url.split("?")[0].endswith("/cancel"))
    assert answer.status == 202 and "Azure-AsyncOperation" in answer.headers and "Location" in answer.headers
    assert (status(templates).run_state, status(templates).run_sub_state) == ("Canceling", "Customizing")
    with pytest.raises(ResourceExistsError) as twice:
        templates.begin_cancel(RG, "web")
    assert "run state: canceling" in twice.value.error.message

    emulator.advance_simulated(91)
    cancel.result()
    assert status(templates).run_state == "Canceled"
    with pytest.raises(HttpResponseError):
        run.result()  # the run's operation ends Canceled, which the SDK reports as an error
    assert outputs(templates) == {}


def test_cancel_when_nothing_runs_is_not_allowed(templates):
    create(templates)

    with pytest.raises(ResourceExistsError) as caught:
        templates.begin_cancel(RG, "web")
    assert caught.value.error.code == "OperationNotAllowed"


def test_a_customizer_that_exits_non_zero_fails_the_build_in_customizing(fast_emulator, templates):
    create(templates, customize=[shell("ok", "echo fine"), shell("broken", "apt-get install nothing", "exit 3")])

    with pytest.raises(HttpResponseError) as caught:
        templates.begin_run(RG, "web").result()

    assert caught.value.error.code == "PackerBuildFailed"
    assert "/containers/packerlogs/" in caught.value.error.message
    assert caught.value.error.message.count("customization.log") == 1
    last = status(templates)
    assert (last.run_state, last.run_sub_state) == ("Failed", "Customizing")
    assert last.message.startswith("Failed while waiting for packerizer: Microservice has failed:")
    assert "Packer build command has failed: exit status 1." in last.message
    assert "/_emulator/blobs/" in last.message and "/customization.log" in last.message
    assert outputs(templates) == {}


def test_the_build_log_shows_each_step_and_the_failure(fast_emulator, templates):
    create(templates, customize=[shell("ok", "echo fine"), {"type": "File", "name": "f", "sourceUri":
                                                            "https://example.com/f", "destination": "/tmp/f"},
                                 shell("broken", "exit 2")])
    with pytest.raises(HttpResponseError):
        templates.begin_run(RG, "web").result()

    url = status(templates).message.split("Image Build log location: ")[1].split(". OperationId")[0]
    log = fast_emulator.blob(url)

    assert log.status_code == 200
    text = log.text
    assert text.count("(telemetry) Starting provisioner shell") == 2
    assert text.count("(telemetry) ending shell") == 2
    assert "(telemetry) Starting provisioner file" in text and "(telemetry) ending file" in text
    assert "Script exited with non-zero exit status: 2. Allowed exit codes are: [0]" in text
    assert text.rstrip().endswith("Done exporting Packer logs to Azure Storage.")
    assert text.index("(telemetry) Finalizing.") < text.index("Done exporting")


def test_the_log_grows_as_the_build_progresses(emulator, templates):
    create(templates, customize=[shell("first"), shell("second")])
    emulator.freeze()
    templates.begin_run(RG, "web", polling=False)
    emulator.advance_simulated(60 + 300 + 130)  # into the second customizer

    # lastRunStatus has no message while running: the control API lists the runs' log URLs.
    url = emulator.control("GET", f"imagebuilder/templates/{SUBSCRIPTION_ID}/{RG}/web/logs").json()["value"][-1][
        "customizationLog"]
    text = emulator.blob(url).text

    assert text.count("Starting provisioner shell") == 2
    assert text.count("(telemetry) ending shell") == 1
    assert "Done exporting" not in text

    emulator.advance_simulated(2000)
    assert emulator.blob(url).text.rstrip().endswith("Done exporting Packer logs to Azure Storage.")


def test_a_powershell_exit_code_listed_as_valid_does_not_fail(fast_emulator, templates):
    step = {"type": "PowerShell", "name": "reboot-pending", "inline": ["exit 3010"], "validExitCodes": [0, 3010]}
    create(templates, customize=[step])

    templates.begin_run(RG, "web").result()

    assert status(templates).run_state == "Succeeded"


def test_a_failing_validator_fails_in_validating_without_distributing(fast_emulator, templates):
    create(templates, validate={"inVMValidations": [shell("check", "exit 1")]})

    with pytest.raises(HttpResponseError) as caught:
        templates.begin_run(RG, "web").result()

    assert caught.value.error.code == "PackerBuildFailed"
    assert "validation.log" in caught.value.error.message
    assert (status(templates).run_state, status(templates).run_sub_state) == ("Failed", "Validating")
    assert outputs(templates) == {}


def test_continue_distribute_on_failure_still_distributes_but_the_run_fails(fast_emulator, templates):
    create(templates, validate={"continueDistributeOnFailure": True, "inVMValidations": [shell("check", "exit 1")]})

    with pytest.raises(HttpResponseError):
        templates.begin_run(RG, "web").result()

    last = status(templates)
    assert last.run_state == "Failed"
    assert "validation" in last.message
    assert set(outputs(templates)) == {"vhd"}


def test_the_validation_log_is_served_next_to_the_customization_log(fast_emulator, templates):
    create(templates, validate={"inVMValidations": [shell("check", "systemctl is-enabled nginx")]})
    templates.begin_run(RG, "web").result()

    runs = fast_emulator.control("GET", f"imagebuilder/templates/{SUBSCRIPTION_ID}/{RG}/web/logs").json()["value"]
    url = runs[-1]["validationLog"]
    text = fast_emulator.blob(url).text

    assert "(telemetry) Starting provisioner shell" in text and "(telemetry) ending shell" in text
    assert "systemctl is-enabled nginx" in text


def test_a_build_longer_than_its_timeout_fails_with_the_timeout_message(fast_emulator, templates):
    create(templates, buildTimeoutInMinutes=10, customize=[{"type": "WindowsUpdate", "name": "updates"}])

    with pytest.raises(HttpResponseError):
        templates.begin_run(RG, "web").result()

    last = status(templates)
    assert (last.run_state, last.run_sub_state) == ("Failed", "Customizing")
    assert last.message == ("Failed in building/customizing image: Failed while waiting for packerizer: Timeout "
                            "waiting for microservice to complete: 'context deadline exceeded'")


def test_the_default_timeout_is_four_hours(fast_emulator, templates):
    # Building (5 min) + 12 Windows Update steps (20 min each) = 245 min > 240 min.
    create(templates, customize=[{"type": "WindowsUpdate", "name": f"u{index}"} for index in range(12)])

    with pytest.raises(HttpResponseError):
        templates.begin_run(RG, "web").result()
    assert "context deadline exceeded" in status(templates).message


def test_a_forced_failure_fails_the_next_run_at_the_sub_state(fast_emulator, templates):
    create(templates)
    fast_emulator.force_failure("web", "Building", code="SkuNotAvailable",
                                message="The requested VM size is not available in the current region.")

    with pytest.raises(HttpResponseError) as caught:
        templates.begin_run(RG, "web").result()

    assert caught.value.error.code == "SkuNotAvailable"
    last = status(templates)
    assert (last.run_state, last.run_sub_state) == ("Failed", "Building")
    assert last.message == "The requested VM size is not available in the current region."
    templates.begin_run(RG, "web").result()  # only the next run
    assert status(templates).run_state == "Succeeded"


def test_a_forced_failure_at_a_phase_the_template_lacks_still_reports_it(fast_emulator, templates):
    create(templates)
    fast_emulator.force_failure("web", "Optimizing")

    with pytest.raises(HttpResponseError) as caught:
        templates.begin_run(RG, "web").result()

    assert caught.value.error.code == "InternalOperationError"
    assert status(templates).run_sub_state == "Optimizing"


def test_an_unavailable_region_makes_a_run_partially_succeed(fast_emulator, templates):
    fast_emulator.set_unavailable_regions(["westus2"])
    create(templates, distribute=[{"type": "VHD", "runOutputName": "vhd"},
                                  gallery_target(targetRegions=[{"name": "eastus"}, {"name": "westus2"}])])

    with pytest.raises(HttpResponseError) as caught:
        templates.begin_run(RG, "web").result()

    assert caught.value.error.code == "InternalOperationError"
    last = status(templates)
    assert last.run_state == "PartiallySucceeded"
    assert last.message.startswith("Failed in distributing 1 images out of total 2:")
    assert "westus2" in last.message
    assert set(outputs(templates)) == {"vhd"}


def test_when_every_target_fails_the_run_fails(fast_emulator, templates):
    fast_emulator.set_unavailable_regions(["eastus"])
    create(templates, distribute=[managed_target()])

    with pytest.raises(HttpResponseError):
        templates.begin_run(RG, "web").result()
    assert status(templates).run_state == "Failed"


def test_auto_run_starts_a_build_when_provisioning_succeeds(fast_emulator, templates):
    create(templates, autoRun={"state": "Enabled"})

    fast_emulator.wait_for(lambda: (status(templates) or None) and status(templates).run_state == "Succeeded")


def test_source_validation_only_validates_without_building_outputs(fast_emulator, templates):
    create(templates, validate={"sourceValidationOnly": True, "inVMValidations": [shell("check", "true")]})

    templates.begin_run(RG, "web").result()

    assert (status(templates).run_state, status(templates).run_sub_state) == ("Succeeded", "Validating")
    assert outputs(templates) == {}


def test_a_source_removed_before_the_run_fails_it_in_building(fast_emulator, templates):
    from azure.mgmt.resource.resources import ResourceManagementClient

    groups = ResourceManagementClient(fast_emulator.credential(), SUBSCRIPTION_ID,
                                      **fast_emulator.client_kwargs()).resource_groups
    groups.create_or_update("team-sources", {"location": "eastus"})
    image_id = managed_image_id("base", "team-sources")
    fast_emulator.add_managed_image(id=image_id, location="eastus", osType="Linux", hyperVGeneration="V2")
    create(templates, source={"type": "ManagedImage", "imageId": image_id})
    groups.begin_delete("team-sources").result()  # the image goes with its group

    with pytest.raises(HttpResponseError):
        templates.begin_run(RG, "web").result()

    last = status(templates)
    assert (last.run_state, last.run_sub_state) == ("Failed", "Building")
    assert "was not found" in last.message


def test_deleting_a_template_removes_its_run_outputs(fast_emulator, templates):
    create(templates)
    templates.begin_run(RG, "web").result()
    templates.begin_delete(RG, "web").result()
    create(templates)

    with pytest.raises(ResourceNotFoundError):
        templates.get_run_output(RG, "web", "vhd")


def test_a_worker_can_resume_the_run_operation_from_its_continuation_token(emulator, templates):
    create(templates)
    emulator.freeze()
    token = templates.begin_run(RG, "web").continuation_token()

    resumed = emulator.imagebuilder_client().virtual_machine_image_templates.begin_run(
        RG, "web", continuation_token=token)
    assert resumed.status() == "InProgress"

    emulator.advance_simulated(SIMPLE_BUILD + 1)
    resumed.result()
    assert status(templates).run_state == "Succeeded"
