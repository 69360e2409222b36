"""`manage.py runall`: the whole portal in one terminal, for `make run`.

Starts a private Redis (unless REDIS_URL is set), the Azure emulator (unless it is not
installed or AZURE_ARM_ENDPOINT points elsewhere), the sandbox's SMTP sink (when e-mail goes
to the local default), then the web server, an RQ worker and the
periodic scheduler, each child's output prefixed with its name. Ctrl-C or SIGTERM stops them
all and exits 0. A child that dies once everything is up is started again with a growing
delay (portal/supervisor.py); one that keeps crashing stops the rest, and the exit code is 1.
"""

from __future__ import annotations

import http.client
import importlib
import importlib.util
import os
import socket
import ssl
import sys
from pathlib import Path

from django.conf import settings
from django.core.management import get_commands
from django.core.management.base import BaseCommand, CommandError

from emulator.storage.azurite import NOT_INSTALLED as AZURITE_NOT_INSTALLED
from emulator.storage.azurite import Azurite
from emulator.storage.azurite import find_binary as find_azurite
from portal.devservices import clear_stale_socket, find_redis_server, redis_answers, redis_command
from portal.env import env_int
from portal.supervisor import ChildFailed, Stopping, Supervisor

HOST = "127.0.0.1"


class Command(BaseCommand):
    help = "Run Redis, the Azure emulator, the web server, an RQ worker and the scheduler until Ctrl-C."
    # The web server runs the checks itself; running them here too would print them twice.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--prepare", action="store_true",
                            help="run migrate, collectstatic and seeddemo once the services are up")
        parser.add_argument("--no-emulator", action="store_true", help="do not start the Azure emulator")
        parser.add_argument("--stop-timeout", type=float, default=10.0,
                            help="seconds a child may take to stop before it is killed (default 10)")

    def handle(self, *args, **options):
        supervisor = Supervisor(self.stdout)
        supervisor.install_signal_handlers()
        try:
            start_everything(supervisor, options)
            supervisor.watch()
        except Stopping as stop:
            supervisor.say("goldsmith", f"{stop}: stopping")
        except ChildFailed as failure:
            supervisor.say("goldsmith", f"error: {failure}; stopping the others")
            raise CommandError(f"{failure}; stopped the others.") from None
        finally:  # runs before the CommandError reaches Django, so the message comes last
            supervisor.stop_all(options["stop_timeout"])
            supervisor.restore_signal_handlers()


def start_everything(supervisor: Supervisor, options: dict) -> None:
    web_port = env_int("GOLDSMITH_WEB_PORT", 8000, minimum=1)
    emulator_port = settings.GOLDSMITH_EMULATOR_PORT
    var_dir = Path(settings.VAR_DIR).resolve()
    var_dir.mkdir(parents=True, exist_ok=True)
    base = str(settings.BASE_DIR)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    manage = [sys.executable, "manage.py"]  # children run in base

    start_emulator_here = not options["no_emulator"] and emulator_wanted(emulator_port)
    require_free_port(web_port, "GOLDSMITH_WEB_PORT")
    if start_emulator_here:
        require_free_port(emulator_port, "GOLDSMITH_EMULATOR_PORT")

    env["REDIS_URL"] = start_redis(supervisor, var_dir, env, base)
    if start_emulator_here:
        storage_args = start_azurite(supervisor, var_dir, base)
        env.update(start_emulator(supervisor, var_dir, emulator_port, env, base, storage_args))

    if options["prepare"]:
        prepare(supervisor, manage, env, base)

    mail = start_mail_sink(supervisor, var_dir, env, base)
    supervisor.spawn("web", [*manage, "runserver", f"{HOST}:{web_port}", "--noreload"], env=env, cwd=base)
    supervisor.spawn("worker", [*manage, "rqworker", "builds", "default", "--with-scheduler"], env=env, cwd=base)
    supervisor.spawn("scheduler", [*manage, "rqcron", "builds.cron"], env=env, cwd=base)

    supervisor.wait_until(lambda: http_answers(HOST, web_port, "/healthz"), timeout=60, what="the web server")
    print_banner(supervisor, web_port, mail=mail,
                 entra=start_emulator_here and env.get("ENTRA_AUTHORITY_HOST") == emulator_url(emulator_port))


def start_mail_sink(supervisor: Supervisor, var_dir: Path, env: dict, base: str) -> bool:
    """In the sandbox, e-mail goes to the local default (EMAIL_HOST 127.0.0.1): start the SMTP sink
    there (portal/mailsink.py), which keeps each message in NOTIFY_SANDBOX_MAILDIR for the "Sent
    mail" page. Returns whether it started; elsewhere mail goes to the configured server."""
    smtp = settings.EMAIL_BACKEND == "django.core.mail.backends.smtp.EmailBackend"
    if not (smtp and settings.EMAIL_HOST == HOST and settings.NOTIFY_ALLOW_LOOPBACK_HTTP):
        return False
    port = settings.EMAIL_PORT
    require_free_port(port, "EMAIL_PORT")
    argv = [sys.executable, "-m", "portal.mailsink", "--host", HOST, "--port", str(port),
            "--dir", str(Path(settings.NOTIFY_SANDBOX_MAILDIR).resolve())]
    supervisor.spawn("mail", argv, env=env, cwd=base, service=True)
    supervisor.wait_until(lambda: port_answers(HOST, port), timeout=10, what="the SMTP sink")
    return True


def port_answers(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False


def emulator_wanted(port: int) -> bool:
    """Start the emulator only if it is installed and the user has not pointed Azure elsewhere."""
    if not importlib.util.find_spec("emulator.__main__"):
        return False
    configured = os.environ.get("AZURE_ARM_ENDPOINT", "").rstrip("/")
    return configured in ("", emulator_url(port))


def emulator_url(port: int) -> str:
    return f"https://{HOST}:{port}"


def require_free_port(port: int, variable: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # The servers set SO_REUSEADDR too, so a port in TIME_WAIT is not reported as taken.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            raise CommandError(f"Port {port} on {HOST} is in use (another Goldsmith?); "
                               f"stop it or choose another port with {variable}.") from None


def start_redis(supervisor: Supervisor, var_dir: Path, env: dict, base: str) -> str:
    """Return the Redis URL the children use, starting a private server when REDIS_URL is unset."""
    configured = os.environ.get("REDIS_URL")
    if configured:
        supervisor.wait_until(lambda: redis_answers(configured), timeout=10, what="the Redis server at REDIS_URL")
        return configured
    executable = find_redis_server()
    if not executable:
        raise CommandError("No redis-server found: install Debian's redis-server, run `make install`, or set REDIS_URL.")
    try:
        clear_stale_socket(var_dir)
    except RuntimeError as exc:
        raise CommandError(str(exc)) from None
    url = f"unix://{var_dir / 'redis.sock'}"
    supervisor.spawn("redis", redis_command(executable, var_dir, persist=True), env=env, cwd=base, service=True)
    supervisor.wait_until(lambda: redis_answers(url, timeout=0.5), timeout=10, what="redis-server")
    return url


def emulator_command(data_dir: Path, port: int, browser_port: int, extra: list[str] | None = None) -> list[str]:
    """The emulator as `make run` starts it. Its Entra sign-in and sign-out pages are also served
    on plain-HTTP loopback (browser_port), which browsers trust without its private CA; tokens,
    keys and discovery stay HTTPS, where the portal verifies the certificate."""
    return [sys.executable, "-m", "emulator", "--host", HOST, "--port", str(port), "--data-dir", str(data_dir),
            "--time-scale", str(settings.GOLDSMITH_EMULATOR_TIME_SCALE), "--browser-http-port", str(browser_port),
            *(extra or [])]


def start_azurite(supervisor: Supervisor, var_dir: Path, base: str) -> list[str]:
    """Azurite, the staging storage the emulator writes build logs into, when `make install` could
    install it (Node); returns the emulator's arguments for it. Without Node the sandbox runs on,
    without logs, and says so once. It starts before the emulator: it makes the emulator's CA
    if there is none yet, and the emulator keeps using it."""
    if find_azurite() is None:
        supervisor.say("goldsmith", AZURITE_NOT_INSTALLED)
        return []
    port = settings.GOLDSMITH_AZURITE_PORT
    require_free_port(port, "GOLDSMITH_AZURITE_PORT")
    azurite = Azurite(var_dir / "azurite", var_dir / "emulator", host=HOST, port=port)
    supervisor.spawn("azurite", azurite.command, env=azurite.prepare(), cwd=base, service=True)
    supervisor.wait_until(azurite.answers, timeout=30, what="Azurite")
    return azurite.emulator_args()


def start_emulator(supervisor: Supervisor, var_dir: Path, port: int, env: dict, base: str,
                   extra: list[str] | None = None) -> dict[str, str]:
    """Start the emulator and return the Azure settings that point the children at it.

    A variable the user set wins, so one can, say, keep a CA bundle of their own.
    """
    data_dir = var_dir / "emulator"
    require_free_port(settings.GOLDSMITH_EMULATOR_BROWSER_PORT, "GOLDSMITH_EMULATOR_PORT (it uses the next port too)")
    argv = emulator_command(data_dir, port, settings.GOLDSMITH_EMULATOR_BROWSER_PORT, extra)
    supervisor.spawn("emulator", argv, env=env, cwd=base, service=True)
    ca_bundle = data_dir / "ca.pem"
    supervisor.wait_until(lambda: https_answers(HOST, port, ca_bundle), timeout=30, what="the Azure emulator")
    defaults = {
        "AZURE_ARM_ENDPOINT": emulator_url(port),
        "AZURE_AUTHORITY_HOST": emulator_url(port),
        "AZURE_CA_BUNDLE": str(ca_bundle),
        "AZURE_EMULATOR": "1",
    }
    chosen = {name: os.environ.get(name, value) for name, value in defaults.items()}
    return {**chosen, **entra_defaults(emulator_url(port))}


# The emulator's own tenant and an app registration it accepts (emulator/README.md, Entra ID).
EMULATOR_TENANT = "11111111-1111-1111-1111-111111111111"


def entra_defaults(url: str) -> dict[str, str]:
    """Sign-in with Microsoft against the emulator's login host, unless the user configured
    Entra ID themselves (then none of these is touched: a half-emulated set-up helps nobody)."""
    names = ("ENTRA_CLIENT_ID", "ENTRA_TENANT_ID", "ENTRA_CLIENT_SECRET", "ENTRA_AUTHORITY_HOST")
    if any(name in os.environ or f"{name}_FILE" in os.environ for name in names):
        return {}
    return {"ENTRA_CLIENT_ID": "goldsmith-portal", "ENTRA_TENANT_ID": EMULATOR_TENANT,
            "ENTRA_CLIENT_SECRET": "emulator-portal-secret", "ENTRA_AUTHORITY_HOST": url}


def prepare(supervisor: Supervisor, manage: list[str], env: dict, base: str) -> None:
    supervisor.run_step("migrate", [*manage, "migrate", "--noinput"], env=env, cwd=base)
    # DEBUG is off by default, so the static files are served by WhiteNoise from STATIC_ROOT.
    supervisor.run_step("static", [*manage, "collectstatic", "--noinput", "--verbosity", "0"], env=env, cwd=base)
    if "seeddemo" in get_commands():
        supervisor.run_step("seeddemo", [*manage, "seeddemo"], env=env, cwd=base)
    else:
        supervisor.say("goldsmith", "warning: no seeddemo command yet; the demo data is not loaded")


def http_answers(host: str, port: int, path: str) -> bool:
    connection = http.client.HTTPConnection(host, port, timeout=2)
    try:
        connection.request("GET", path)
        connection.getresponse().read()
        return True
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def https_answers(host: str, port: int, ca_bundle: Path) -> bool:
    """True once the emulator answers over TLS with a certificate its own CA vouches for."""
    if not ca_bundle.exists():
        return False
    context = ssl.create_default_context(cafile=str(ca_bundle))
    connection = http.client.HTTPSConnection(host, port, timeout=2, context=context)
    try:
        connection.request("GET", "/")
        connection.getresponse().read()
        return True
    except ssl.SSLCertVerificationError as exc:
        raise ChildFailed(f"the emulator's certificate does not match {ca_bundle}: {exc.verify_message}") from None
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def demo_users() -> list[dict]:
    """builds.demo.DEMO_USERS (named by its dotted path: the floor does not import the domain)."""
    return list(importlib.import_module("builds.demo").DEMO_USERS)


def describe(user: dict) -> str:
    role, department = user.get("role", ""), user.get("department", "")
    return f"{role} in {department}" if department else role


def print_banner(supervisor: Supervisor, web_port: int, *, entra: bool = False, mail: bool = False) -> None:
    lines = ["", f"Goldsmith is running at http://{HOST}:{web_port}"]
    users = demo_users()
    if users:
        lines.append("Demo sign-ins:")
        lines += [f"  {user['username']:<10} {user['password']:<18} {describe(user)}" for user in users]
    if entra:
        lines.append("Or choose \"Sign in with Microsoft\" and pick alice@contoso.example (or bob, carol, dave, erin)"
                     " on the emulator's Entra ID page.")
    if mail:
        lines.append(f"Sent mail: http://{HOST}:{web_port}/sandbox/mail/")
    lines += ["Press Ctrl-C to stop.", ""]
    for line in lines:
        supervisor.say("goldsmith", line)
