"""The listeners: a threaded stdlib HTTP/1.1 server that hands each request to the App.

HTTPS with the local CA, or plain HTTP when given no TLS files (only for the loopback listener
that serves Entra ID's browser pages, see emulator/entra/routes.py).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

from emulator.core.http import Drop, Request
from emulator.core.tls import TlsFiles, server_context

if TYPE_CHECKING:
    from emulator.core.pipeline import App

log = logging.getLogger("emulator")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDKs' connection pools expect
    server_version = "GoldsmithAzureEmulator/1.0"
    sys_version = ""
    timeout = 120  # seconds a silent keep-alive connection may hold a thread

    def _serve(self) -> None:
        app: App = self.server.app  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        host = self.headers.get("Host") or f"{self.server.server_address[0]}:{self.server.server_address[1]}"
        request = Request.build(self.command, self.path, self.headers, body, f"{self.server.scheme}://{host}")
        try:
            response = app.handle(request)
        except Drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        payload, content_type = response.encode()
        self.send_response(response.status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = do_HEAD = _serve

    def log_message(self, format: str, *args) -> None:
        log.debug("%s %s", self.address_string(), format % args)


class EmulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, app: App, host: str, port: int, tls: TlsFiles | None):
        self.app = app
        self._context = server_context(tls) if tls is not None else None
        self.scheme = "https" if self._context is not None else "http"
        super().__init__((host, port), _Handler)

    def get_request(self):
        sock, address = super().get_request()
        # Headers and body leave in separate writes; without TCP_NODELAY, Nagle's algorithm and
        # the client's delayed ACK hold each response back about 40 ms.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._context is None:
            return sock, address
        # The handshake is deferred to the first read, in the request's own thread, so a slow
        # or broken client cannot stall the accept loop.
        return self._context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address

    @property
    def port(self) -> int:
        return self.server_address[1]


def serve_in_thread(server: EmulatorServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, name="emulator-http", daemon=True)
    thread.start()
    return thread
