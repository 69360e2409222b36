"""Where a webhook may point (the SSRF guard).

A deployed portal posts only to https URLs whose host resolves to public addresses: private,
loopback, link-local, multicast, reserved, unspecified and shared (CGNAT) ranges are refused,
for every address the name resolves to. Sending connects to the address checked here (the
request carries the name for Host and TLS), so a name that re-resolves elsewhere between the
check and the request (DNS rebinding) cannot redirect it. In the sandbox (settings
NOTIFY_ALLOW_LOOPBACK_HTTP: DEBUG or the Azure sandbox) plain http to loopback is allowed too,
so receivers can be tried on one machine; nothing else changes there.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings


class UnsafeURL(ValueError):
    """The URL may not be used as a webhook; the message says why."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # the name, for Host and TLS
    port: int
    path: str  # path and query
    address: str  # the checked IP address to connect to


def _forbidden(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    for name in ("is_loopback", "is_private", "is_link_local", "is_multicast", "is_reserved", "is_unspecified"):
        if getattr(address, name):
            return name.removeprefix("is_").replace("_", "-")
    if isinstance(address, ipaddress.IPv4Address) and address in ipaddress.ip_network("100.64.0.0/10"):
        return "shared"
    if not address.is_global:
        return "not global"
    return ""


def check(url: str, *, resolve=socket.getaddrinfo, allow_loopback_http: bool | None = None) -> Target:
    """The URL's target when it is allowed; raises UnsafeURL otherwise.

    `resolve` is getaddrinfo's signature (tests pass a table); allow_loopback_http defaults to
    settings.NOTIFY_ALLOW_LOOPBACK_HTTP.
    """
    sandbox = settings.NOTIFY_ALLOW_LOOPBACK_HTTP if allow_loopback_http is None else allow_loopback_http
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeURL(f"not a URL: {exc}") from None
    if parts.scheme not in ("https", "http"):
        raise UnsafeURL("the URL must start with https://")
    if parts.username or parts.password:
        raise UnsafeURL("the URL may not carry a user name or password")
    host = parts.hostname or ""
    if not host:
        raise UnsafeURL("the URL has no host")
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        infos = resolve(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise UnsafeURL(f"{host} does not resolve ({exc})") from None
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    if not addresses:
        raise UnsafeURL(f"{host} does not resolve")
    loopback = all(address.is_loopback for address in addresses)
    if parts.scheme == "http" and not (sandbox and loopback):
        raise UnsafeURL("the URL must start with https://" + (" (http is allowed for loopback in the sandbox only)"
                                                              if loopback else ""))
    if not (sandbox and loopback):
        for address in addresses:
            reason = _forbidden(address)
            if reason:
                raise UnsafeURL(f"{host} resolves to {address}, a {reason} address: webhooks may only reach "
                                "public addresses")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, host, port, path, str(addresses[0]))
