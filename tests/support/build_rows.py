"""Build rows for page tests: a build in any state with its events and outputs, written directly.

Page tests need builds that are running, failed or finished without waiting for a worker,
so these helpers write the rows the orchestration would have written (the composed
template through builds.compose, events for each phase, outputs) and nothing else: no job
is enqueued and Azure is never called.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from django.conf import settings
from django.utils import timezone

from builds import compose
from builds.models import Build, BuildEvent, BuildLayer, BuildOutput, GoldImageVersion, LayerVersion

PHASES = ("Queued", "Building", "Customizing", "Validating", "Distributing")
LOG_URL = "https://127.0.0.1:8443/_emulator/blobs/logs/{name}/customization.log"


def make_build(gold_version: GoldImageVersion, layer_versions: Sequence[LayerVersion] = (), *, requested_by,
               department=None, state: str = Build.State.PENDING, sub_state: str = "", phases: Sequence[str] = (),
               started: dt.datetime | None = None, step_seconds: float = 60, error_code: str = "",
               error_message: str = "", log_uri: str = "", outputs: Sequence[dict] = ()) -> Build:
    """A build of gold_version + layer_versions in `state`, with one event per phase in `phases`.

    `started` is when it was requested (default: now minus the phases' total time); each
    phase lasts `step_seconds`. Terminal states get a final event and finished_at.
    """
    build_id = uuid.uuid4()
    layer_versions = list(layer_versions)
    if department is None and layer_versions:
        department = layer_versions[0].layer.department
    body = compose.compose(gold_version, layer_versions,
                           compose.BuildContext(location=settings.AZURE_LOCATION, build_id=build_id,
                                                requester=requested_by.get_username()))
    total = step_seconds * (len(phases) + 1)
    started = started or timezone.now() - dt.timedelta(seconds=total)
    build = Build.objects.create(
        uuid=build_id, gold_version=gold_version, requested_by=requested_by, department=department, template=body,
        template_sha256=compose.template_sha256(body), template_name=compose.template_name(
            build_id, gold_version.gold_image.slug),
        subscription_id=settings.AZURE_SUBSCRIPTION_ID, resource_group=settings.AZURE_RESOURCE_GROUP,
        location=body["location"], state=state, sub_state=sub_state, error_code=error_code,
        error_message=error_message, log_uri=log_uri, run_started=bool(phases))
    BuildLayer.objects.bulk_create(BuildLayer(build=build, layer_version=lv, position=index)
                                   for index, lv in enumerate(layer_versions))
    moment = started
    events = [BuildEvent(build=build, at=moment, to_state=Build.State.PENDING, detail="requested")]
    previous = (Build.State.PENDING, "")
    if phases:
        moment += dt.timedelta(seconds=step_seconds / 4)
        events.append(BuildEvent(build=build, at=moment, from_state=previous[0], to_state=Build.State.SUBMITTING))
        previous = (Build.State.SUBMITTING, "")
    for phase in phases:
        moment += dt.timedelta(seconds=step_seconds)
        events.append(BuildEvent(build=build, at=moment, from_state=previous[0], from_sub_state=previous[1],
                                 to_state=Build.State.RUNNING, to_sub_state=phase))
        previous = (Build.State.RUNNING, phase)
    finished = None
    if state in Build.TERMINAL:
        finished = moment + dt.timedelta(seconds=step_seconds)
        events.append(BuildEvent(build=build, at=finished, from_state=previous[0], from_sub_state=previous[1],
                                 to_state=state, to_sub_state=sub_state, detail=error_code))
    BuildEvent.objects.bulk_create(events)
    for index, output in enumerate(outputs):
        BuildOutput.objects.create(build=build, run_output_name=output.get("name", f"output{index}"),
                                   distributor_type=output.get("type", "SharedImage"),
                                   artifact_id=output.get("artifact_id", ""), artifact_uri=output.get("artifact_uri", ""),
                                   provisioning_state=output.get("state", "Succeeded"))
    Build.objects.filter(pk=build.pk).update(created_at=started, started_at=events[1].at if phases else None,
                                             finished_at=finished, outputs_collected=bool(outputs))
    build.refresh_from_db()
    return build


def succeeded(gold_version, layer_versions=(), *, requested_by, **extra) -> Build:
    artifact = (gold_version.distribute[0].get("galleryImageId", "") + "/versions/1.0.3") if gold_version.distribute \
        else ""
    return make_build(gold_version, layer_versions, requested_by=requested_by, state=Build.State.SUCCEEDED,
                      sub_state="Distributing", phases=PHASES,
                      outputs=[{"name": "gallery", "artifact_id": artifact}], **extra)


def failed(gold_version, layer_versions=(), *, requested_by, **extra) -> Build:
    values = {"error_code": "PackerBuildFailed",
              "error_message": "During the image build a failure has occurred. Image Build log location: "
                               + LOG_URL.format(name="x") + ". Please review the log.",
              **extra}
    return make_build(gold_version, layer_versions, requested_by=requested_by, state=Build.State.FAILED,
                      sub_state="Customizing", phases=PHASES[:3], **values)


def running(gold_version, layer_versions=(), *, requested_by, sub_state: str = "Customizing", **extra) -> Build:
    phases = PHASES[: PHASES.index(sub_state) + 1]
    return make_build(gold_version, layer_versions, requested_by=requested_by, state=Build.State.RUNNING,
                      sub_state=sub_state, phases=phases, **extra)
