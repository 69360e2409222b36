"""`python -m emulator --host 127.0.0.1 --port 8443 --data-dir DIR [--time-scale N] [--seed FILE]
[--browser-http-port PORT]`."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import signal
import sys
import urllib.parse
from pathlib import Path

from emulator.app import Config, build_app
from emulator.core.clock import Clock
from emulator.core.server import EmulatorServer, serve_in_thread
from emulator.core.store import Store
from emulator.core.tls import DEFAULT_HOSTS, ensure_tls_files, ephemeral_tls_files
from emulator.storage.azurite import POOL_SIZE, prepare_files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8443, help="0 picks a free port")
    parser.add_argument("--data-dir", type=Path, help="keep state and TLS files here (default: in memory)")
    parser.add_argument("--time-scale", type=float, default=1.0, help="divide realistic build durations by N")
    parser.add_argument("--seed", help="catalog seed file (default: the one shipped in emulator/)")
    parser.add_argument("--strict-auth", action="store_true", help="accept only the seeded principals and users")
    parser.add_argument("--tls-host", action="append", default=[], metavar="NAME",
                        help="another host name or address the server certificate must cover (repeatable), "
                             "e.g. the service name clients use in docker-compose")
    parser.add_argument("--browser-http-port", type=int, metavar="PORT",
                        help="also serve Entra ID's sign-in and sign-out pages (nothing else) over plain HTTP on "
                             "this loopback port and announce them there in discovery, so a browser needs no "
                             "trust in the private CA; 0 picks a free port")
    parser.add_argument("--azurite", metavar="URL",
                        help="Azurite's blob endpoint (https://host:port): staging storage accounts are reported and "
                             "build logs written there (default: neither)")
    parser.add_argument("--azurite-accounts", type=int, default=POOL_SIZE, metavar="N",
                        help=f"size of Azurite's staging account pool (default {POOL_SIZE}; Azurite must be started "
                             "with the same, see emulator/storage/azurite.py)")
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if args.time_scale <= 0:
        parser.error("--time-scale must be positive")
    if args.browser_http_port is not None and not _loopback(args.host):
        # Browsers trust plain HTTP only on loopback, and only there is nobody in between.
        parser.error("--browser-http-port needs a loopback --host (127.0.0.1, ::1 or localhost)")

    if args.data_dir:
        args.data_dir.mkdir(parents=True, exist_ok=True)
        tls = ensure_tls_files(args.data_dir, (*DEFAULT_HOSTS, *args.tls_host))
        store = Store(args.data_dir / "state.sqlite3")
    else:
        tls = ephemeral_tls_files()
        store = Store()
    extra = {}
    if args.azurite:
        if args.azurite_accounts < 1:
            parser.error("--azurite-accounts must be at least 1")
        extra = {"azurite": args.azurite, "azurite_accounts": args.azurite_accounts, "ca_path": str(tls.ca_cert)}
        if args.data_dir:
            # Azurite's certificate and account list, for an Azurite started from these files
            # (docker-compose mounts the emulator's data volume); local helpers make their own.
            host = urllib.parse.urlsplit(args.azurite).hostname or "127.0.0.1"
            prepare_files(args.data_dir, args.data_dir / "azurite", host, args.azurite_accounts)
    config = Config(strict_auth=args.strict_auth, time_scale=args.time_scale, seed_path=args.seed, extra=extra)
    app = build_app(store=store, clock=Clock(args.time_scale), config=config)
    app.services["storage"].start()
    server = EmulatorServer(app, args.host, args.port, tls)
    host = f"[{args.host}]" if ":" in args.host else args.host
    browser = None
    if args.browser_http_port is not None:
        browser = EmulatorServer(app, args.host, args.browser_http_port, tls=None)
        config.entra_browser_url = f"http://{host}:{browser.port}"
        serve_in_thread(browser)

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    if browser is not None:
        # Before the "listening" line, which callers wait for: then both lines are there.
        print(f"Entra ID sign-in pages for browsers on {config.entra_browser_url} (plain HTTP, loopback only)",
              flush=True)
    print(f"Azure emulator listening on https://{host}:{server.port} (CA: {tls.ca_cert})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        if browser is not None:
            browser.shutdown()
            browser.server_close()
        app.services["storage"].stop()
        server.server_close()
        store.close()
    return 0


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


if __name__ == "__main__":
    sys.exit(main())
