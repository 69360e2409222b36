"""Image Builder runs as timelines: planning, the status at any moment, and the build logs.

A run is planned once, when it starts: every step (Queued, Building, one per customizer,
Optimizing, one per validator, one per distributor) gets absolute start and end times from
realistic durations divided by the time scale, and the outcome is decided from the template
(deterministic failures, see plan_run). Everything a client sees afterwards (lastRunStatus,
the async operation, the logs) is a pure function of that plan and the clock, so a frozen
clock freezes the build and a restarted emulator resumes it where the wall clock says.

Times are POSIX seconds (floats) in the stored documents.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from emulator.core.clock import iso

# Realistic durations in simulated seconds (divided by the time scale when a run is planned).
QUEUED_SECONDS = 60
BUILDING_SECONDS = 300
CUSTOMIZER_SECONDS = {"Shell": 120, "PowerShell": 120, "File": 30, "WindowsRestart": 180, "WindowsUpdate": 1200}
OPTIMIZING_SECONDS = 120
VALIDATOR_SECONDS = 120
DISTRIBUTOR_SECONDS = 600
CANCEL_SECONDS = 90  # Canceling -> Canceled
PROVISION_SECONDS = 30  # provisioningState Creating -> Succeeded/Failed
DELETE_SECONDS = 60  # provisioningState Deleting -> gone
DEFAULT_TIMEOUT_MINUTES = 240  # buildTimeoutInMinutes 0

SUB_STATES = ("Queued", "Building", "Customizing", "Optimizing", "Validating", "Distributing")
GO_ZERO_TIME = "0001-01-01T00:00:00Z"  # what the service shows as endTime while a run is in progress
TROUBLESHOOTING = "https://aka.ms/azvmimagebuilderts"

PROVISIONER = {"Shell": "shell", "PowerShell": "powershell", "File": "file", "WindowsRestart": "windows-restart",
               "WindowsUpdate": "windows-update"}
_EXIT = re.compile(r"^\s*exit\s+(-?\d+)\s*;?\s*$", re.IGNORECASE)


def exit_code_of(item: dict) -> tuple[int, int] | None:
    """(line index, code) of the first inline `exit N` that the step does not accept, else None.

    This is the emulator's failure convention: a Shell/PowerShell customizer or validator whose
    inline script has a line `exit N` (N not 0 and not in validExitCodes) fails at that step.
    """
    if item.get("type") not in ("Shell", "PowerShell"):
        return None
    allowed = set(item.get("validExitCodes") or [0]) if item.get("type") == "PowerShell" else {0}
    for index, line in enumerate(item.get("inline") or []):
        found = _EXIT.match(line)
        if found and int(found.group(1)) not in allowed:
            return index, int(found.group(1))
    return None


def _ts(moment: dt.datetime) -> float:
    return moment.timestamp()


def _dt(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def iso_at(seconds: float) -> str:
    return iso(_dt(seconds))


# ---------------------------------------------------------------------------------------
# Planning
# ---------------------------------------------------------------------------------------

def plan_steps(props: dict, start: float, scale: float) -> list[dict]:
    """The run's steps with absolute times; validation-only runs skip customizing and distributing."""
    steps: list[dict] = []
    clock = start

    def add(sub: str, seconds: float, **extra: Any) -> None:
        nonlocal clock
        steps.append({"sub": sub, "start": clock, "end": clock + seconds / scale, **extra})
        clock += seconds / scale

    validate = props.get("validate") or {}
    source_only = bool(validate.get("sourceValidationOnly"))
    add("Queued", QUEUED_SECONDS, kind="phase")
    add("Building", BUILDING_SECONDS, kind="phase")
    if not source_only:
        for index, item in enumerate(props.get("customize") or []):
            add("Customizing", CUSTOMIZER_SECONDS.get(item["type"], 120), kind="customizer", index=index,
                type=item["type"], name=item.get("name") or f"{item['type']} {index}")
        if ((props.get("optimize") or {}).get("vmBoot") or {}).get("state") == "Enabled":
            add("Optimizing", OPTIMIZING_SECONDS, kind="phase")
    for index, item in enumerate(validate.get("inVMValidations") or []):
        add("Validating", VALIDATOR_SECONDS, kind="validator", index=index, type=item["type"],
            name=item.get("name") or f"{item['type']} {index}")
    if not source_only:
        for index, item in enumerate(props.get("distribute") or []):
            add("Distributing", DISTRIBUTOR_SECONDS, kind="distributor", index=index, type=item["type"],
                name=item["runOutputName"])
    return steps


def _forced_failure(steps: list[dict], forced: dict, scale: float) -> dict:
    """Where a control-API forced failure lands: halfway through the first step of its sub-state,
    or where that sub-state would begin when the template has no such step."""
    sub = forced["sub_state"]
    order = SUB_STATES.index(sub)
    for step in steps:
        if step["sub"] == sub:
            return {"at": (step["start"] + step["end"]) / 2, "sub": sub, "step": steps.index(step)}
        if SUB_STATES.index(step["sub"]) > order:
            return {"at": step["start"], "sub": sub, "step": None}
    return {"at": steps[-1]["end"], "sub": sub, "step": None}


def plan_run(props: dict, *, run_id: str, op_id: str, start: float, scale: float, forced: dict | None,
             distributor_errors: dict[int, str], build_error: dict | None, log_url: str, log_path: str) -> dict:
    """Plan a run: steps, the failure that stops it (if any) and the outcome of each distributor.

    Failures, earliest first: `build_error` (the source vanished: fails in Building), a forced
    failure from the control API, a customizer `exit N`, the build timeout (measured over
    Building..Validating), a validator `exit N` (stops the run unless continueDistributeOnFailure,
    in which case the images are still distributed and the run ends Failed).
    distributor_errors maps distributor index -> error text (e.g. region unavailable).
    """
    steps = plan_steps(props, start, scale)
    candidates: list[dict] = []
    if build_error:
        building = next(s for s in steps if s["sub"] == "Building")
        candidates.append({"at": building["start"] + 5 / scale, "sub": "Building", "kind": "source", **build_error})
    if forced:
        spot = _forced_failure(steps, forced, scale)
        candidates.append({**spot, "kind": "forced", "code": forced.get("code") or "InternalOperationError",
                           "message": forced.get("message") or (
                               "Internal error occurred. This is a generic error. To identify possible causes, "
                               f"go to {TROUBLESHOOTING}.")})
    validation_failure = None
    for position, step in enumerate(steps):
        if step["kind"] not in ("customizer", "validator"):
            continue
        collection = props.get("customize") if step["kind"] == "customizer" else props["validate"]["inVMValidations"]
        found = exit_code_of(collection[step["index"]])
        if not found:
            continue
        failure = {"at": step["end"], "sub": step["sub"], "step": position, "kind": step["kind"],
                   "exitCode": found[1], "line": found[0]}
        if step["kind"] == "customizer":
            candidates.append(failure)
        elif validation_failure is None:
            validation_failure = failure
    timeout_minutes = props.get("buildTimeoutInMinutes") or DEFAULT_TIMEOUT_MINUTES
    queued_end = steps[0]["end"]
    deadline = queued_end + timeout_minutes * 60 / scale
    last_build_step = max((s["end"] for s in steps if s["sub"] in ("Building", "Customizing", "Optimizing",
                                                                     "Validating")), default=queued_end)
    if last_build_step > deadline:
        at_deadline = next(s for s in steps if s["end"] > deadline)
        candidates.append({"at": deadline, "sub": at_deadline["sub"], "step": None, "kind": "timeout"})
    continue_on_failure = bool((props.get("validate") or {}).get("continueDistributeOnFailure"))
    if validation_failure and not continue_on_failure:
        candidates.append(validation_failure)
        validation_failure = None
    stop = min(candidates, key=lambda c: c["at"]) if candidates else None
    if stop and validation_failure and validation_failure["at"] > stop["at"]:
        validation_failure = None  # the run ended before the validator would have failed
    run = {
        "id": run_id, "opId": op_id, "start": start, "steps": steps, "stop": stop,
        "validationFailure": validation_failure, "distributorErrors": {str(k): v for k, v in distributor_errors.items()},
        "distributed": {}, "canceledAt": None, "cancelDoneAt": None, "done": False,
        "logUrl": log_url, "logPath": log_path,
    }
    run["end"] = stop["at"] if stop else steps[-1]["end"]
    return run


# ---------------------------------------------------------------------------------------
# Status at a moment
# ---------------------------------------------------------------------------------------

def run_end(run: dict) -> float:
    """When the run reaches its terminal state (a cancel ends it when Canceling is over)."""
    if run.get("cancelDoneAt") is not None:
        return run["cancelDoneAt"]
    return run["end"]


def sub_state_at(run: dict, moment: float) -> str:
    """runSubState of a run still in progress at `moment`."""
    for step in run["steps"]:
        if step["start"] <= moment < step["end"]:
            return step["sub"]
    return "Queued" if moment < run["steps"][0]["start"] else run["steps"][-1]["sub"]


def terminal_sub_state(run: dict) -> str:
    """runSubState once the run is over: where it stopped, where it was canceled, or the last phase."""
    if run.get("canceledAt") is not None:
        return sub_state_at(run, run["canceledAt"])
    if run.get("stop"):
        return run["stop"]["sub"]
    return run["steps"][-1]["sub"]


def build_message(run: dict) -> str:
    """lastRunStatus.message for a failed run (§5.10-§5.12 shapes)."""
    stop = run.get("stop")
    if stop:
        kind = stop["kind"]
        if kind == "customizer":
            return _packer_message(run, run["logUrl"])
        if kind == "validator":
            return _validation_message(run)
        if kind == "timeout":
            return ("Failed in building/customizing image: Failed while waiting for packerizer: Timeout waiting for "
                    "microservice to complete: 'context deadline exceeded'")
        return stop["message"]
    if run.get("validationFailure"):
        return _validation_message(run)
    errors = failed_distributors(run)
    if errors:
        return distribution_message(run, errors)
    return ""


def _packer_message(run: dict, url: str) -> str:
    return ("Failed while waiting for packerizer: Microservice has failed: Failed while processing request: Error "
            "when executing packerizer: Packer build command has failed: exit status 1. During the image build, a "
            "failure has occurred, please review the build log to identify which build/customization step failed. "
            f"For more troubleshooting steps go to {TROUBLESHOOTING}. Image Build log location: {url}. "
            f"OperationId: {run['opId']}. Use this operationId to search packer logs.")


def _validation_message(run: dict) -> str:
    url = run["logUrl"].rsplit("/", 1)[0] + "/validation.log"
    distributed = " The output images were distributed because continueDistributeOnFailure is set." if (
        run.get("validationFailure") and not run.get("stop")) else ""
    return ("Failed while waiting for packerizer: Microservice has failed: Failed while processing request: Error "
            "when executing packerizer: Packer validation command has failed: exit status 1. During the image "
            "validation, a failure has occurred, please review the validation log to identify which validation "
            f"step failed. For more troubleshooting steps go to {TROUBLESHOOTING}. Image validation log location: "
            f"{url}. OperationId: {run['opId']}. Use this operationId to search packer logs.{distributed}")


def failed_distributors(run: dict) -> dict[str, str]:
    """Distributor index (as str) -> error, for the distributors that ran and failed."""
    errors = {}
    for step in run["steps"]:
        if step["kind"] != "distributor":
            continue
        key = str(step["index"])
        result = run["distributed"].get(key)
        if result is not None and not result.get("ok"):
            errors[key] = result["error"]
    return errors


def distribution_message(run: dict, errors: dict[str, str]) -> str:
    total = sum(1 for step in run["steps"] if step["kind"] == "distributor")
    parts = " ".join(f"[Error {n}] [Distribute {index}] {text}" for n, (index, text) in enumerate(errors.items()))
    return f"Failed in distributing {len(errors)} images out of total {total}: {{{parts}}}"


def final_state(run: dict) -> str:
    """Terminal runState once every distributor result is known."""
    if run.get("cancelDoneAt") is not None:
        return "Canceled"
    if run.get("stop") or run.get("validationFailure"):
        return "Failed"
    errors = failed_distributors(run)
    total = sum(1 for step in run["steps"] if step["kind"] == "distributor")
    if errors:
        return "Failed" if len(errors) == total else "PartiallySucceeded"
    return "Succeeded"


def last_run_status(run: dict, now: float) -> dict:
    """ImageTemplateLastRunStatus at `now`."""
    end = run_end(run)
    status = {"startTime": iso_at(run["start"]), "endTime": GO_ZERO_TIME}
    if now >= end:
        state = final_state(run)
        status.update(endTime=iso_at(end), runState=state, runSubState=terminal_sub_state(run),
                      message="" if state in ("Succeeded", "Canceled") else build_message(run))
        return status
    if run.get("canceledAt") is not None and now >= run["canceledAt"]:
        status.update(runState="Canceling", runSubState=sub_state_at(run, run["canceledAt"]), message="")
        return status
    status.update(runState="Running", runSubState=sub_state_at(run, now), message="")
    return status


def operation_error(run: dict) -> dict | None:
    """The run's async-operation error when it ends Failed/PartiallySucceeded."""
    state = final_state(run)
    if state in ("Succeeded", "Canceled"):
        return None
    stop = run.get("stop")
    if (stop and stop["kind"] in ("customizer", "validator")) or (not stop and run.get("validationFailure")):
        log = "customization.log" if stop and stop["kind"] == "customizer" else "validation.log"
        return {"code": "PackerBuildFailed",
                "message": f"During the image build a failure has occurred. Packer build logs are at location "
                           f"{run['logPath'].rsplit('/', 1)[0]}/{log}. Please review them to identify the failing "
                           f"step. Use this operationId {run['opId']} to search packer logs. For more "
                           f"troubleshooting steps go to {TROUBLESHOOTING}."}
    if stop and stop["kind"] == "timeout":
        return {"code": "InternalOperationError", "message": build_message(run)}
    if stop:
        return {"code": stop["code"], "message": stop["message"]}
    return {"code": "InternalOperationError", "message": build_message(run)}


# ---------------------------------------------------------------------------------------
# Logs
# ---------------------------------------------------------------------------------------

def _line(moment: float, text: str) -> tuple[float, str]:
    return moment, text


def _spread(start: float, end: float, texts: list[str]) -> list[tuple[float, str]]:
    """Lines evenly spaced inside [start, end)."""
    if not texts:
        return []
    gap = (end - start) / (len(texts) + 1)
    return [(start + gap * (i + 1), text) for i, text in enumerate(texts)]


def _step_lines(step: dict, item: dict, failure: dict | None) -> list[tuple[float, str]]:
    provisioner = PROVISIONER.get(step["type"], step["type"].lower())
    start, end = step["start"], step["end"]
    lines = [_line(start, f"PACKER OUT ==> azure-arm: (telemetry) Starting provisioner {provisioner}")]
    body: list[str] = []
    kind = step["type"]
    if kind in ("Shell", "PowerShell"):
        if item.get("scriptUri"):
            body.append(f"PACKER OUT ==> azure-arm: Provisioning with {kind.lower()} script: {item['scriptUri']}")
        else:
            suffix = "ps1" if kind == "PowerShell" else "sh"
            # The path on the build VM where packer uploads an inline script (log text only).
            folder = "C:/Windows/Temp" if kind == "PowerShell" else "/tmp"  # noqa: S108
            body.append(f"PACKER OUT ==> azure-arm: Provisioning with {kind.lower()} script: "
                        f"{folder}/packer-{kind.lower()}-{step['index']}.{suffix}")
            inline = item.get("inline") or []
            last = failure["line"] if failure else len(inline) - 1
            body += [f"PACKER OUT     azure-arm: + {command}" for command in inline[: last + 1]]
    elif kind == "File":
        body.append(f"PACKER OUT ==> azure-arm: Uploading {item.get('sourceUri')} => {item.get('destination')}")
    elif kind == "WindowsRestart":
        body += ["PACKER OUT ==> azure-arm: Restarting Machine",
                 "PACKER OUT ==> azure-arm: Waiting for machine to restart...",
                 "PACKER OUT     azure-arm: restarted.",
                 "PACKER OUT ==> azure-arm: Machine successfully restarted, moving on"]
    elif kind == "WindowsUpdate":
        body += ["PACKER OUT ==> azure-arm: Uploading the Windows update elevated script...",
                 "PACKER OUT ==> azure-arm: Running Windows update...",
                 "PACKER OUT     azure-arm: Searching for Windows updates...",
                 "PACKER OUT     azure-arm: Found 3 updates to install.",
                 "PACKER OUT     azure-arm: Installing updates...",
                 "PACKER OUT     azure-arm: Windows updates installed."]
    lines += _spread(start, end - 1e-3, body)
    if failure:
        allowed = item.get("validExitCodes") or [0]
        lines.append(_line(end - 5e-4, f"PACKER ERR ==> azure-arm: Script exited with non-zero exit status: "
                                       f"{failure['exitCode']}. Allowed exit codes are: {allowed}"))
    lines.append(_line(end, f"PACKER OUT ==> azure-arm: (telemetry) ending {provisioner}"))
    return lines


def _closing(moment: float, error: str | None) -> list[tuple[float, str]]:
    lines = []
    if error:
        lines += [_line(moment, f"PACKER ERR Build 'azure-arm' errored: {error}"),
                  _line(moment, "PACKER OUT ==> Some builds didn't complete successfully and had errors:"),
                  _line(moment, f"PACKER OUT --> azure-arm: {error}"),
                  _line(moment, "PACKER OUT ==> Builds finished but no artifacts were created.")]
    lines += [_line(moment, "PACKER OUT ==> azure-arm: (telemetry) Finalizing."),
              _line(moment, "Done exporting Packer logs to Azure Storage.")]
    return lines


def customization_log(run: dict, props: dict, template_name: str, now: float) -> str:
    """customization.log as far as the build has progressed at `now`."""
    lines: list[tuple[float, str]] = [
        _line(run["start"], f"Image Builder run {run['id']} for image template '{template_name}' queued."),
    ]
    stop = run.get("stop")
    end = run_end(run)
    canceled = run.get("cancelDoneAt") is not None
    # Steps stop where the run stopped or was canceled; a step cut short shows no ending marker.
    cutoff = run["canceledAt"] if canceled else end
    for position, step in enumerate(run["steps"]):
        if step["start"] >= cutoff:
            break
        if step["sub"] == "Building":
            lines += _spread(step["start"], step["end"], [
                "PACKER OUT azure-arm: output will be in this color.",
                "PACKER OUT ==> azure-arm: Running builder ...",
                "PACKER OUT ==> azure-arm: Getting tokens using Managed Identity for Azure...",
                "PACKER OUT ==> azure-arm: Deploying deployment template ...",
                "PACKER OUT ==> azure-arm: Waiting for the build VM to become available...",
                "PACKER OUT ==> azure-arm: Connected to the build VM!",
            ])
        elif step["kind"] == "customizer":
            item = props["customize"][step["index"]]
            failure = stop if stop and stop.get("step") == position and stop["kind"] == "customizer" else None
            lines += _step_lines(step, item, failure)
        elif step["sub"] == "Optimizing":
            lines += _spread(step["start"], step["end"], ["PACKER OUT ==> azure-arm: Optimizing the image for VM boot..."])
        elif step["kind"] == "validator" and position == next(
                i for i, s in enumerate(run["steps"]) if s["kind"] == "validator"):
            lines.append(_line(step["start"], "PACKER OUT ==> azure-arm: Running in-VM validations (see validation.log)."))
        elif step["kind"] == "distributor":
            lines.append(_line(step["start"], f"Distributing the image to '{step['name']}' ({step['type']})..."))
            result = run["distributed"].get(str(step["index"]))
            if result is not None:
                text = "succeeded" if result.get("ok") else f"failed: {result['error']}"
                lines.append(_line(step["end"], f"Distribution to '{step['name']}' {text}"))
    lines = [line for line in lines if line[0] <= cutoff]
    if stop and stop["kind"] in ("forced", "timeout", "source"):
        lines.append(_line(stop["at"], f"PACKER ERR ==> azure-arm: {build_message(run)}"))
    if canceled:
        lines.append(_line(run["canceledAt"], "PACKER OUT ==> azure-arm: Cancelling the build on request..."))
    error = None
    if stop and stop["kind"] == "customizer":
        item = props["customize"][run["steps"][stop["step"]]["index"]]
        error = (f"Script exited with non-zero exit status: {stop['exitCode']}. Allowed exit codes are: "
                 f"{item.get('validExitCodes') or [0]}")
    elif canceled:
        error = "Build was cancelled."
    lines += _closing(end, error)
    return _render(lines, now)


def validation_log(run: dict, props: dict, now: float) -> str | None:
    """validation.log (None when the template has no in-VM validations)."""
    validators = (props.get("validate") or {}).get("inVMValidations") or []
    if not validators:
        return None
    end = run_end(run)
    lines: list[tuple[float, str]] = []
    failure = run.get("validationFailure") or (run["stop"] if run.get("stop") and run["stop"]["kind"] == "validator"
                                               else None)
    ran = False
    for position, step in enumerate(run["steps"]):
        if step["kind"] != "validator" or step["start"] >= end:
            continue
        ran = True
        step_failure = failure if failure and failure.get("step") == position else None
        lines += _step_lines(step, validators[step["index"]], step_failure)
        if step_failure:
            break
    if not ran:
        return _render([], now)
    last = max(moment for moment, _ in lines)
    error = None
    if failure:
        error = f"Script exited with non-zero exit status: {failure['exitCode']}. Allowed exit codes are: " \
                f"{validators[run['steps'][failure['step']]['index']].get('validExitCodes') or [0]}"
    lines += _closing(last, error)
    return _render(lines, now)


def _render(lines: list[tuple[float, str]], now: float) -> str:
    shown = sorted((line for line in lines if line[0] <= now), key=lambda line: line[0])
    return "".join(f"{_dt(moment).strftime('%Y/%m/%d %H:%M:%S')} {text}\n" for moment, text in shown)
