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

# Lines are (moment, text). The text starts with the stream: "OUT " (Packer's UI on stdout),
# "ERR " (Packer's stderr: UI errors as they are, debug-log lines with a NUL where the
# timestamp goes), or neither (Image Builder's own lines). _render prefixes "[<operationId>] PACKER"
# (aib-reference-2 §1.4, the older format). Every line of a run only ever appears once its
# moment has passed, so the text at a later moment always extends the text at an earlier one:
# the staging storage writer relies on that to append to the blob.

PACKER_VERSION = "1.10.0 [go1.21.5 linux amd64]"


def _line(moment: float, text: str) -> tuple[float, str]:
    return moment, text


def _out(moment: float, text: str) -> tuple[float, str]:
    return moment, "OUT " + text


def _debug(moment: float, text: str) -> tuple[float, str]:
    """A Packer debug-log line (stderr, with a timestamp)."""
    return moment, "ERR \x00 " + text


def _ui_error(moment: float, text: str) -> tuple[float, str]:
    """A Packer UI error (stderr, no timestamp): what builds/packerlog.py reads as an error."""
    return moment, "ERR " + text


def _spread(start: float, end: float, lines: list[tuple[float, str]]) -> list[tuple[float, str]]:
    """The lines (moments ignored) evenly spaced inside [start, end)."""
    if not lines:
        return []
    gap = (end - start) / (len(lines) + 1)
    return [(start + gap * (i + 1), text) for i, (_, text) in enumerate(lines)]


def _command(kind: str, item: dict, tag: str) -> str:
    """The remote command Packer's communicator runs for a script step (log text only)."""
    if kind == "PowerShell":
        if item.get("runElevated"):
            return f'powershell -executionpolicy bypass -file "C:/Windows/Temp/packer-elevated-shell-{tag}.ps1"'
        return ("powershell -executionpolicy bypass \"& { if (Test-Path variable:global:ProgressPreference)"
                "{set-variable -name variable:global:ProgressPreference -value 'SilentlyContinue'};"
                f". c:/Windows/Temp/packer-ps-env-vars-{tag}.ps1; &'c:/Windows/Temp/script-{tag}.ps1'; "
                "exit $LastExitCode }\"")
    # The path on the build VM where packer uploads the script (log text only).
    script = f"/tmp/script_{tag}.sh"  # noqa: S108
    return f"chmod +x {script}; PACKER_BUILDER_TYPE='azure-arm' PACKER_BUILD_NAME='azure-arm'  {script}"


def _step_lines(step: dict, item: dict, failure: dict | None, tag: str) -> list[tuple[float, str]]:
    """One customizer or validator: the telemetry markers around it, what Packer prints while it
    runs, the communicator's exit code and, when it fails, Packer's error."""
    provisioner = PROVISIONER.get(step["type"], step["type"].lower())
    start, end = step["start"], step["end"]
    plugin = "packer-plugin-azure plugin: \x00"
    lines = [_debug(start, f"[INFO] (telemetry) Starting provisioner {provisioner}")]
    body: list[tuple[float, str]] = []
    kind = step["type"]
    code = None
    if kind in ("Shell", "PowerShell"):
        if item.get("scriptUri"):
            body.append(_out(0, f"==> azure-arm: Provisioning with {kind.lower()} script: {item['scriptUri']}"))
        else:
            suffix = "ps1" if kind == "PowerShell" else "sh"
            # The path where packer writes an inline script before uploading it (log text only).
            folder = "C:/Windows/Temp" if kind == "PowerShell" else "/tmp"  # noqa: S108
            body.append(_out(0, f"==> azure-arm: Provisioning with {kind.lower()} script: "
                                f"{folder}/packer-{kind.lower()}-{step['index']}.{suffix}"))
            inline = item.get("inline") or []
            last = failure["line"] if failure else len(inline) - 1
            body += [_out(0, f"    azure-arm: + {command}") for command in inline[: last + 1]]
        code = failure["exitCode"] if failure else 0
        body += [_debug(0, f"{plugin} [INFO] command '{_command(kind, item, tag)}' exited with code: {code}"),
                 _debug(0, f"[INFO] RPC client: Communicator ended with: {code}")]
    elif kind == "File":
        body += [_out(0, f"==> azure-arm: Uploading {item.get('sourceUri')} => {item.get('destination')}"),
                 _debug(0, f"{plugin} Uploading file to '{item.get('destination')}'")]
    elif kind == "WindowsRestart":
        command = item.get("restartCommand") or 'shutdown /r /f /t 0 /c "packer restart"'
        body += [_out(0, "==> azure-arm: Restarting Machine"),
                 _debug(0, f"{plugin} [INFO] command '{command}' exited with code: 0"),
                 _out(0, "==> azure-arm: Waiting for machine to restart..."),
                 _out(0, "    azure-arm: restarted."),
                 _out(0, "==> azure-arm: Machine successfully restarted, moving on")]
    elif kind == "WindowsUpdate":
        body += [_out(0, "==> azure-arm: Uploading the Windows update elevated script..."),
                 _out(0, "==> azure-arm: Running Windows update..."),
                 _out(0, "    azure-arm: Searching for Windows updates..."),
                 _out(0, "    azure-arm: Found 3 updates to install."),
                 _out(0, "    azure-arm: Waiting for operation to complete (system performance: 42% cpu; 61% memory)..."),
                 _out(0, "    azure-arm: Windows updates installed.")]
    lines += _spread(start, end - 1e-3, body)
    if failure:
        allowed = item.get("validExitCodes") or [0]
        lines += [_out(end - 6e-4, "==> azure-arm: Provisioning step had errors: Running the cleanup provisioner, "
                                   "if present..."),
                  _ui_error(end - 5e-4, f"==> azure-arm: Script exited with non-zero exit status: "
                                        f"{failure['exitCode']}. Allowed exit codes are: {allowed}")]
    lines.append(_debug(end, f"[INFO] (telemetry) ending {provisioner}"))
    return lines


def _building(step: dict, windows: bool) -> list[tuple[float, str]]:
    """Packer starting, deploying the build VM and connecting to it."""
    wait = (["==> azure-arm: Waiting for WinRM to become available...", "Waiting for WinRM, up to timeout: 10m0s",
             "==> azure-arm: Connected to WinRM!"] if windows else
            ["==> azure-arm: Waiting for SSH to become available...", "Waiting for SSH, up to timeout: 20m0s",
             "==> azure-arm: Connected to SSH!"])
    return _spread(step["start"], step["end"], [
        _debug(0, f"[INFO] Packer version: {PACKER_VERSION}"),
        _out(0, "azure-arm: output will be in this color."),
        _out(0, "==> azure-arm: Running builder ..."),
        _out(0, "==> azure-arm: Getting tokens using Managed Identity for Azure..."),
        _out(0, "    azure-arm: Creating Azure Resource Manager (ARM) client ..."),
        _out(0, "==> azure-arm: Deploying deployment template ..."),
        _out(0, wait[0]),
        _debug(0, "packer-plugin-azure plugin: \x00 [INFO] " + wait[1]),
        _out(0, wait[2]),
    ])


def _closing(moment: float, error: str | None) -> list[tuple[float, str]]:
    """Packer's cleanup and summary, then the line that marks the log complete."""
    lines = [_out(moment, "==> azure-arm: The resource group was not created by Packer, deleting individual "
                          "resources ...")]
    if error:
        lines += [_debug(moment, f'machine readable: azure-arm,error []string{{"{error}"}}'),
                  _out(moment, f"Build 'azure-arm' errored: {error}"),
                  _out(moment, "==> Some builds didn't complete successfully and had errors:"),
                  _out(moment, f"--> azure-arm: {error}"),
                  _ui_error(moment, "==> Builds finished but no artifacts were created.")]
    else:
        lines += [_out(moment, "Build 'azure-arm' finished."),
                  _out(moment, "==> Builds finished. The artifacts of successful builds are:")]
    lines += [_debug(moment, "[INFO] (telemetry) Finalizing."),
              _out(moment, "Done exporting Packer logs to Azure Storage.")]
    return lines


def customization_log(run: dict, props: dict, template_name: str, now: float) -> str:
    """customization.log as far as the build has progressed at `now`."""
    lines: list[tuple[float, str]] = []
    stop = run.get("stop")
    end = run_end(run)
    canceled = run.get("cancelDoneAt") is not None
    windows = (run.get("source") or {}).get("osType") == "Windows"
    # Steps stop where the run stopped or was canceled; a step cut short shows no ending marker.
    cutoff = run["canceledAt"] if canceled else end
    for position, step in enumerate(run["steps"]):
        if step["start"] >= cutoff:
            break
        if step["sub"] == "Building":
            lines += _building(step, windows)
        elif step["kind"] == "customizer":
            item = props["customize"][step["index"]]
            failure = stop if stop and stop.get("step") == position and stop["kind"] == "customizer" else None
            lines += _step_lines(step, item, failure, _tag(run, position))
        elif step["sub"] == "Optimizing":
            lines += _spread(step["start"], step["end"], [_out(0, "==> azure-arm: Optimizing the image for VM boot...")])
        elif step["kind"] == "validator" and position == next(
                i for i, s in enumerate(run["steps"]) if s["kind"] == "validator"):
            lines.append(_out(step["start"], "==> azure-arm: Running in-VM validations (see validation.log)."))
        elif step["kind"] == "distributor":
            lines.append(_line(step["start"], f"Distributing the image to '{step['name']}' ({step['type']})..."))
            result = run["distributed"].get(str(step["index"]))
            if result is not None:
                text = "succeeded" if result.get("ok") else f"failed: {result['error']}"
                lines.append(_line(step["end"], f"Distribution to '{step['name']}' {text}"))
    lines = [line for line in lines if line[0] <= cutoff]
    if stop and stop["kind"] in ("forced", "timeout", "source"):
        lines.append(_ui_error(stop["at"], f"==> azure-arm: {build_message(run)}"))
    if canceled:
        lines.append(_out(run["canceledAt"], "==> azure-arm: Cancelling build after receiving terminated"))
    error = None
    if stop and stop["kind"] == "customizer":
        item = props["customize"][run["steps"][stop["step"]]["index"]]
        error = (f"Script exited with non-zero exit status: {stop['exitCode']}. Allowed exit codes are: "
                 f"{item.get('validExitCodes') or [0]}")
    elif canceled:
        error = "Build was cancelled."
    lines += _closing(end, error)
    return _render(lines, now, run["opId"])


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
        lines += _step_lines(step, validators[step["index"]], step_failure, _tag(run, position))
        if step_failure:
            break
    if not ran:
        return _render([], now, run["opId"])
    last = max(moment for moment, _ in lines)
    error = None
    if failure:
        error = f"Script exited with non-zero exit status: {failure['exitCode']}. Allowed exit codes are: " \
                f"{validators[run['steps'][failure['step']]['index']].get('validExitCodes') or [0]}"
    lines += _closing(last, error)
    return _render(lines, now, run["opId"])


def _tag(run: dict, position: int) -> str:
    """A stable id for one step's uploaded script (Packer makes a random one)."""
    return f"{run['id'][:8]}-{position:04d}"


def _render(lines: list[tuple[float, str]], now: float, op_id: str) -> str:
    shown = sorted((line for line in lines if line[0] <= now), key=lambda line: line[0])
    rendered = []
    for moment, text in shown:
        stamp = _dt(moment).strftime("%Y/%m/%d %H:%M:%S")
        if text.startswith(("OUT ", "ERR ")):
            text = "PACKER " + text.replace("\x00", stamp)
        rendered.append(f"[{op_id}] {text}\n")
    return "".join(rendered)
