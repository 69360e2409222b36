"""Webhooks over https, the only scheme a deployed portal allows: a real TLS receiver on
loopback whose certificate the emulator's local CA issued (emulator/core/tls.py), trusted
through NOTIFY_CA_BUNDLE. The certificate is checked against the URL's host, never skipped."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer

import pytest

from emulator.core.tls import TlsFiles, issue_certificate, server_context
from notify import delivery, services, signing
from notify.models import Delivery
from tests.notify.conftest import Receiver, _Handler, drain
from tests.notify.test_webhooks import fail_build


class _TlsServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # a refused handshake is what some tests want; the client side reports it


def https_receiver(ca_folder, cert_folder, hosts: tuple[str, ...]) -> tuple[_TlsServer, Receiver]:
    cert, key = cert_folder / "receiver.pem", cert_folder / "receiver-key.pem"
    issue_certificate(ca_folder, hosts, cert, key)
    server = _TlsServer(("127.0.0.1", 0), _Handler)
    server.socket = server_context(TlsFiles(ca_folder / "ca.pem", cert, key)).wrap_socket(server.socket,
                                                                                         server_side=True)
    server.found = Receiver(url=f"https://127.0.0.1:{server.server_port}/hook")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.found


@pytest.fixture
def ca_folder(tmp_path):
    return tmp_path / "ca"


@pytest.fixture
def tls_receiver(ca_folder, tmp_path) -> Iterator[Receiver]:
    """An https receiver on 127.0.0.1 with a certificate for 127.0.0.1 from the local CA."""
    server, found = https_receiver(ca_folder, tmp_path, ("127.0.0.1",))
    try:
        yield found
    finally:
        server.shutdown()
        server.server_close()


def https_webhook(world, receiver):
    return services.endpoint_create(actor=world.bob, kind="webhook", url=receiver.url, event_types=["build.failed"],
                                    department=world.web)


def test_an_https_webhook_is_delivered_when_its_ca_is_in_the_bundle(world, tls_receiver, ca_folder, settings):
    settings.NOTIFY_CA_BUNDLE = str(ca_folder / "ca.pem")
    endpoint, secret = https_webhook(world, tls_receiver)
    build = fail_build(world)
    drain()
    (request,) = tls_receiver.requests
    assert tls_receiver.url.startswith(f"https://{request['headers']['Host']}/")
    assert signing.verify(secret, request["headers"]["X-Goldsmith-Signature"], request["body"])
    assert tls_receiver.bodies()[0]["build"]["id"] == str(build.uuid)
    row = Delivery.objects.get(endpoint=endpoint)
    assert (row.status, row.status_code, row.error) == (Delivery.Status.DELIVERED, 200, "")


def test_a_receiver_the_bundle_does_not_vouch_for_is_not_sent_anything(world, tls_receiver, settings):
    settings.NOTIFY_CA_BUNDLE = ""  # the public CAs (certifi): the local CA is not among them
    endpoint, _ = https_webhook(world, tls_receiver)
    fail_build(world)
    drain()
    assert tls_receiver.requests == []
    row = Delivery.objects.get(endpoint=endpoint)
    assert row.status == Delivery.Status.PENDING  # retried later: the receiver may fix its certificate
    assert "CERTIFICATE_VERIFY_FAILED" in row.error
    assert row.next_attempt_at is not None


def test_a_certificate_for_another_host_is_refused(world, ca_folder, tmp_path, settings):
    settings.NOTIFY_CA_BUNDLE = str(ca_folder / "ca.pem")
    server, receiver = https_receiver(ca_folder, tmp_path, ("localhost",))  # the URL says 127.0.0.1
    try:
        endpoint, _ = https_webhook(world, receiver)
        fail_build(world)
        drain()
    finally:
        server.shutdown()
        server.server_close()
    assert receiver.requests == []
    row = Delivery.objects.get(endpoint=endpoint)
    assert row.status == Delivery.Status.PENDING
    assert "hostname '127.0.0.1' doesn't match 'localhost'" in row.error


def test_post_speaks_tls_to_the_checked_address(tls_receiver, ca_folder, settings):
    settings.NOTIFY_CA_BUNDLE = str(ca_folder / "ca.pem")
    outcome = delivery.post(tls_receiver.url, b'{"ping": 1}', {"X-Test": "1"})
    assert outcome.ok and outcome.status_code == 200
    assert tls_receiver.requests[0]["body"] == b'{"ping": 1}'
