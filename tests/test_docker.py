"""The Dockerfile, its entrypoint and docker-compose.yml refer only to things that exist.

No Docker engine runs here, so the image is never built; instead the files are read and the
entrypoint's roles are run directly against the checkout, which is what the image contains.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from django.core.management import get_commands

BASE_DIR = Path(__file__).resolve().parent.parent
DOCKERFILE = (BASE_DIR / "Dockerfile").read_text()
ENTRYPOINT = BASE_DIR / "portal" / "docker_entrypoint.sh"
COMPOSE = yaml.safe_load((BASE_DIR / "docker-compose.yml").read_text())
ROLES = {"web", "worker", "scheduler", "emulator", "manage"}
APP_SERVICES = {"web", "worker", "scheduler", "emulator"}


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with continuation lines joined."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE)
    pairs = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(index for index, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last_from:]


# --- Dockerfile ---------------------------------------------------------------------------------

def test_it_is_multi_stage_on_slim_python_311():
    froms = [rest for keyword, rest in instructions() if keyword == "FROM"]
    assert len(froms) >= 2
    assert froms[-1] == "python:3.11-slim"
    assert all(image.split()[0].startswith("python:3.11") for image in froms)


def test_every_copied_path_exists():
    for keyword, rest in instructions():
        if keyword == "COPY" and "--from=" not in rest:
            *sources, _destination = rest.split()
            for source in sources:
                assert (BASE_DIR / source).exists(), f"COPY {source}: no such file in the checkout"


def test_the_image_copies_every_part_the_portal_runs():
    copied = {rest.split()[0] for keyword, rest in instructions() if keyword == "COPY" and "--from=" not in rest}
    assert {"manage.py", "portal", "builds", "emulator", "templates", "static", "requirements.txt"} <= copied


def test_it_runs_as_a_non_root_user():
    users = [rest for keyword, rest in final_stage() if keyword == "USER"]
    assert users and users[-1] not in {"root", "0"}


def test_collectstatic_runs_at_build_time_with_a_throwaway_key():
    runs = " ".join(rest for keyword, rest in final_stage() if keyword == "RUN")
    assert re.search(r"SECRET_KEY=\S+ python manage\.py collectstatic", runs)
    assert not any(keyword == "ENV" and "SECRET_KEY" in rest for keyword, rest in instructions())


def test_the_healthcheck_asks_healthz_with_python():
    (check,) = [rest for keyword, rest in instructions() if keyword == "HEALTHCHECK"]
    assert '"python"' in check and "/healthz" in check
    assert "curl" not in check and "wget" not in check


def test_the_entrypoint_is_the_executable_script():
    (entrypoint,) = [rest for keyword, rest in instructions() if keyword == "ENTRYPOINT"]
    assert entrypoint == '["/app/portal/docker_entrypoint.sh"]'
    assert ENTRYPOINT.stat().st_mode & 0o111
    (cmd,) = [rest for keyword, rest in instructions() if keyword == "CMD"]
    assert cmd == '["web"]'


def test_the_builder_installs_the_pinned_requirements():
    runs = " ".join(rest for keyword, rest in instructions() if keyword == "RUN")
    assert "--requirement /tmp/requirements.txt" in runs
    assert "gunicorn==" in (BASE_DIR / "requirements.txt").read_text()
    assert "whitenoise==" in (BASE_DIR / "requirements.txt").read_text()


# --- entrypoint ---------------------------------------------------------------------------------

def test_every_role_names_a_command_that_exists():
    script = ENTRYPOINT.read_text()
    roles = set(re.findall(r"^\s{4}(\w+)\)", script, re.MULTILINE))
    assert roles == ROLES

    commands = set(re.findall(r"python manage\.py (\w+)", script))
    assert {"migrate", "rqworker", "rqcron"} <= commands
    assert commands <= set(get_commands())
    for module in re.findall(r"python -m (\w+)", script):
        assert importlib.util.find_spec(f"{module}.__main__"), f"python -m {module} has no __main__"
    (wsgi,) = re.findall(r"exec gunicorn (\S+)", script)
    assert importlib.util.find_spec(wsgi)


def test_the_scheduler_config_exists():
    (config,) = re.findall(r"rqcron (\S+)", ENTRYPOINT.read_text())
    assert importlib.util.find_spec(config)


def run_entrypoint(*args: str, env: dict[str, str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen(["sh", str(ENTRYPOINT), *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True, **kwargs)


@pytest.fixture
def container_env(tmp_path) -> dict[str, str]:
    """The environment a container would have, with the checkout's virtualenv as /opt/venv."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AZURE_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["GOLDSMITH_VAR_DIR"] = str(tmp_path / "var")
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    return env


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unknown_role_is_refused(container_env):
    proc = run_entrypoint("webserver", env=container_env)
    output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 64
    assert "usage:" in output


def test_the_manage_role_runs_a_management_command(container_env):
    proc = run_entrypoint("manage", "check", "--tag", "goldsmith", env=container_env)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, output


def test_the_worker_role_starts_an_rq_worker(container_env):
    proc = run_entrypoint("worker", "--burst", env=container_env)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, output
    assert "Listening on builds, default" in output


def test_the_web_role_migrates_and_serves_healthz_with_gunicorn(container_env):
    port = free_port()
    container_env.update(PORT=str(port), WEB_CONCURRENCY="1")
    proc = run_entrypoint("web", "--bind", f"127.0.0.1:{port}", env=container_env)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                    assert response.status == 200
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"gunicorn did not answer:\n{proc.stdout.read()}")
                time.sleep(0.3)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    assert "Applying" in output or "No migrations to apply" in output
    assert "Booting worker" in output


def test_the_emulator_role_keeps_its_ca_under_the_var_dir(container_env, tmp_path):
    proc = run_entrypoint("emulator", "--port", "0", env=container_env)
    try:
        line = proc.stdout.readline()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.communicate(timeout=30)
    assert "listening on https://" in line
    assert (tmp_path / "var" / "emulator" / "ca.pem").exists()


# --- docker-compose.yml -------------------------------------------------------------------------

def service(name: str) -> dict:
    return COMPOSE["services"][name]


def test_compose_has_every_part():
    assert set(COMPOSE["services"]) == APP_SERVICES | {"postgres", "redis", "azurite"}


def test_compose_runs_microsofts_azurite_over_https_with_oauth_from_the_emulators_files():
    azurite = service("azurite")
    command = " ".join(azurite["command"])
    assert azurite["image"].startswith("mcr.microsoft.com/azure-storage/azurite:")
    assert "--oauth basic" in command
    assert "--cert /emulator/azurite/cert.pem --key /emulator/azurite/key.pem" in command
    assert "emulator-data:/emulator:ro" in azurite["volumes"]
    # The emulator writes those files and the logs, naming the host Azurite's certificate covers.
    assert service("emulator")["command"][-2:] == ["--azurite", "https://azurite:10000"]


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_compose_runs_each_part_through_an_entrypoint_role(name):
    assert service(name)["command"][0] == name
    assert service(name)["image"] == "goldsmith:latest"
    assert service(name)["build"] == "."


def default_of(value: str) -> str:
    """The fallback of a compose ${NAME:-fallback} expression (nested ones resolved too)."""
    while match := re.search(r"\$\{[A-Z_]+:-((?:[^${}]|\$\{[^}]*\})*)\}", value):
        value = value[: match.start()] + match.group(1) + value[match.end():]
    return value


@pytest.mark.parametrize("name", ["web", "worker", "scheduler"])
def test_compose_points_the_apps_at_the_services(name):
    env = {key: default_of(value) for key, value in service(name)["environment"].items()}
    assert urlsplit(env["DATABASE_URL"]).hostname == "postgres"
    assert urlsplit(env["REDIS_URL"]).hostname == "redis"
    assert urlsplit(env["AZURE_ARM_ENDPOINT"]).hostname == "emulator"
    assert urlsplit(env["AZURE_AUTHORITY_HOST"]).hostname == "emulator"
    assert env["AZURE_EMULATOR"] == "1"
    for dependency in ("postgres", "redis", "emulator"):
        assert dependency in service(name)["depends_on"]


@pytest.mark.parametrize("name", ["web", "worker", "scheduler"])
def test_compose_shares_the_emulator_ca_through_a_volume(name):
    bundle = default_of(service(name)["environment"]["AZURE_CA_BUNDLE"])
    mounts = dict(reversed(volume.split(":")[:2]) for volume in service(name)["volumes"])
    emulator_mounts = dict(reversed(volume.split(":")[:2]) for volume in service("emulator")["volumes"])
    folder = str(Path(bundle).parent)
    assert folder in mounts, f"{bundle} is not inside a mounted volume"
    volume = mounts[folder]
    # The emulator writes ca.pem into GOLDSMITH_VAR_DIR/emulator, /app/var in the image.
    assert emulator_mounts.get("/app/var/emulator") == volume
    assert "GOLDSMITH_VAR_DIR=/app/var" in DOCKERFILE


def test_compose_declares_every_volume_it_mounts():
    for name, spec in COMPOSE["services"].items():
        for volume in spec.get("volumes", []):
            source = volume.split(":")[0]
            assert source in COMPOSE["volumes"], f"{name} mounts undeclared volume {source}"


def test_compose_health_checks():
    assert "healthcheck" not in service("web")  # the image's /healthz check
    assert service("worker")["healthcheck"] == {"disable": True}
    assert service("scheduler")["healthcheck"] == {"disable": True}
    for name in ("emulator", "postgres", "redis"):
        assert service(name)["healthcheck"]["test"][0] == "CMD"
    # Workers start after web, which applies the migrations.
    assert service("worker")["depends_on"]["web"]["condition"] == "service_healthy"


def test_compose_publishes_ports_on_loopback_only():
    for name, spec in COMPOSE["services"].items():
        for port in spec.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"


def test_the_shell_scripts_parse():
    for script in (ENTRYPOINT, BASE_DIR / ".ci" / "run"):
        shell = "sh" if script == ENTRYPOINT else "bash"
        assert shutil.which(shell)
        result = subprocess.run([shell, "-n", str(script)], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
