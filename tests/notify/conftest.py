"""Fixtures for notifications: a real SMTP server (aiosmtpd) and real HTTP receivers on
loopback, personas with e-mail addresses, and `drain()` to run fan-out and deliveries in this
process (the RQ jobs' own steps, without waiting for a worker)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from django.utils import timezone

from notify import delivery
from notify.models import Delivery, OutboxEvent
from tests import factories


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append({"to": envelope.rcpt_tos, "message": message})
        return "250 OK"


@pytest.fixture
def smtp(settings) -> Iterator[_Inbox]:
    """A real SMTP server on loopback; Django's SMTP backend pointed at it."""
    inbox = _Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    try:
        yield inbox
    finally:
        controller.stop()


@dataclass
class Receiver:
    url: str
    requests: list = field(default_factory=list)
    statuses: list = field(default_factory=list)  # answers to give, in order; 200 once empty

    def bodies(self) -> list[dict]:
        return [json.loads(request["body"]) for request in self.requests]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver: plain http on 127.0.0.1 (allowed in the sandbox only)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    found = Receiver(url=f"http://127.0.0.1:{server.server_port}/hook")
    server.found = found
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield found
    finally:
        server.shutdown()
        server.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keeps the connection open, as real receivers do
    disable_nagle_algorithm = True

    def do_POST(self):
        found: Receiver = self.server.found
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        found.requests.append({"path": self.path, "headers": dict(self.headers), "body": body,
                               "client_port": self.client_address[1]})
        status = found.statuses.pop(0) if found.statuses else 200
        answer = b'{"ok": true}' if status < 300 else b"receiver says no"
        self.send_response(status)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


@pytest.fixture(autouse=True)
def notify_settings(settings):
    settings.NOTIFY_ALLOW_LOOPBACK_HTTP = True
    settings.NOTIFY_BASE_URL = "http://testserver"
    settings.NOTIFY_DIGEST_THRESHOLD = 5
    settings.NOTIFY_RETRY_BASE_SECONDS = 30


@dataclass
class World:
    web: object
    data: object
    alice: object
    bob: object
    carol: object
    dave: object
    gold_version: object
    web_layer_version: object
    data_layer_version: object


@pytest.fixture
def world(web, data_dept, alice, bob, carol, dave) -> World:
    for user in (alice, bob, carol, dave):
        user.email = f"{user.username}@example.com"
        user.save()
    gold_version = factories.make_gold_version(factories.make_gold_image("ubuntu", actor=alice), actor=alice)
    web_layer = factories.make_layer(web, gold_version.gold_image, "nginx", actor=bob)
    data_layer = factories.make_layer(data_dept, gold_version.gold_image, "spark", actor=carol)
    found = World(web, data_dept, alice, bob, carol, dave, gold_version,
                  factories.make_layer_version(web_layer, actor=bob),
                  factories.make_layer_version(data_layer, actor=carol))
    OutboxEvent.objects.all().delete()  # each test starts from an empty outbox
    return found


def drain(rounds: int = 5) -> None:
    """Fan out every event and send every due delivery, as the jobs would."""
    for _ in range(rounds):
        for event_id in OutboxEvent.objects.filter(fanned_out_at__isnull=True).values_list("pk", flat=True):
            delivery.fanout(event_id)
        due = Delivery.objects.filter(status=Delivery.Status.PENDING).exclude(next_attempt_at__gt=timezone.now())
        ids = list(due.values_list("pk", flat=True))
        if not ids:
            return
        for delivery_id in ids:
            delivery.send(delivery_id)


def make_due(*, status=Delivery.Status.PENDING) -> None:
    """Skip the backoff wait: every waiting delivery is due now."""
    Delivery.objects.filter(status=status).update(next_attempt_at=timezone.now())
