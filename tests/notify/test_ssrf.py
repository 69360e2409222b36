"""The SSRF guard as a table: scheme, resolved addresses, sandbox or deployed."""

from __future__ import annotations

import socket

import pytest

from notify import ssrf


def resolver(*addresses):
    def resolve(host, port, type=None):
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                for a in addresses]
    return resolve


PUBLIC = "93.184.216.34"


@pytest.mark.parametrize(("url", "addresses", "sandbox", "allowed"), [
    ("https://hooks.example.com/x", [PUBLIC], False, True),
    ("http://hooks.example.com/x", [PUBLIC], False, False),            # https only
    ("http://hooks.example.com/x", [PUBLIC], True, False),             # even in the sandbox, for public hosts
    ("https://localhost/x", ["127.0.0.1"], False, False),              # loopback
    ("http://127.0.0.1:9000/x", ["127.0.0.1"], True, True),            # the sandbox's local receivers
    ("http://127.0.0.1:9000/x", ["127.0.0.1"], False, False),
    ("https://[::1]/x", ["::1"], False, False),
    ("https://internal.example.com/", ["10.1.2.3"], False, False),     # private
    ("https://internal.example.com/", ["172.16.0.9"], False, False),
    ("https://internal.example.com/", ["192.168.1.1"], False, False),
    ("https://metadata.example.com/", ["169.254.169.254"], False, False),  # link-local (cloud metadata)
    ("https://metadata.example.com/", ["169.254.169.254"], True, False),   # not loopback: refused in the sandbox too
    ("https://mcast.example.com/", ["224.0.0.1"], False, False),       # multicast
    ("https://reserved.example.com/", ["240.0.0.1"], False, False),    # reserved
    ("https://zero.example.com/", ["0.0.0.0"], False, False),          # unspecified
    ("https://cgnat.example.com/", ["100.64.0.1"], False, False),      # shared address space
    ("https://mapped.example.com/", ["::ffff:127.0.0.1"], False, False),  # IPv4-mapped loopback
    ("https://ula.example.com/", ["fd00::1"], False, False),           # IPv6 unique local
    ("https://mixed.example.com/", [PUBLIC, "10.0.0.1"], False, False),  # any bad address refuses
    ("ftp://hooks.example.com/", [PUBLIC], False, False),
    ("https://user:pw@hooks.example.com/", [PUBLIC], False, False),
    ("https:///nohost", [PUBLIC], False, False),
])
def test_the_guard(url, addresses, sandbox, allowed):
    check = lambda: ssrf.check(url, resolve=resolver(*addresses), allow_loopback_http=sandbox)  # noqa: E731
    if allowed:
        target = check()
        assert target.address == addresses[0]
    else:
        with pytest.raises(ssrf.UnsafeURL):
            check()


def test_the_request_goes_to_the_checked_address_with_the_name_for_host_and_tls():
    target = ssrf.check("https://hooks.example.com:8443/a?b=1", resolve=resolver(PUBLIC), allow_loopback_http=False)
    assert (target.host, target.port, target.path, target.address) == ("hooks.example.com", 8443, "/a?b=1", PUBLIC)


def test_a_name_that_does_not_resolve_is_refused():
    def fails(*args, **kwargs):
        raise socket.gaierror("no such host")

    with pytest.raises(ssrf.UnsafeURL, match="does not resolve"):
        ssrf.check("https://nowhere.invalid/", resolve=fails, allow_loopback_http=False)


def test_creating_an_endpoint_applies_the_guard(world, settings):
    from notify import services

    settings.NOTIFY_ALLOW_LOOPBACK_HTTP = False
    with pytest.raises(services.NotifyError, match="refused"):
        services.endpoint_create(actor=world.bob, kind="webhook", url="http://127.0.0.1:9/x",
                                 event_types=["build.failed"], department=world.web)
