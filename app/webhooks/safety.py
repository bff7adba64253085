"""Which webhook targets are allowed: ``https`` (or plain ``http`` to an allow-listed host),
and never an address inside the deployment (private, loopback, link-local, reserved,
multicast) unless the operator allows it: a subscription must not turn the service into a
proxy to its own network (SSRF). Checked when a subscription is saved and before each POST
(the name may resolve elsewhere by then; what is left is the window between that check and
the connection, see docs/webhooks.md).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from app.webhooks.config import WebhookConfig


class UnsafeTarget(ValueError):
    """A target URL that the settings do not allow; the message says why."""


def check_url_form(url: str, config: WebhookConfig) -> str:
    """The host of ``url`` if its form is allowed (scheme, host, no credentials)."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        parts.port  # noqa: B018 (raises for a port out of range)
    except ValueError as exc:
        raise UnsafeTarget(f"is not a URL ({exc})") from None
    if parts.scheme not in ("https", "http") or not host:
        raise UnsafeTarget("must be an absolute https:// URL")
    if parts.scheme == "http" and host not in config.allow_http_hosts:
        raise UnsafeTarget(
            f"must use https (plain http only to hosts in SEGMENTS_WEBHOOK_ALLOW_HTTP_HOSTS; "
            f"{host!r} is not)"
        )
    if parts.username or parts.password:
        raise UnsafeTarget("must not carry credentials (the signature authenticates)")
    return host


_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _refused(address: str) -> bool:
    """Whether a target address is inside a deployment rather than on the internet: not
    globally routable (private, loopback, link-local, carrier-grade NAT 100.64.0.0/10, where
    some clouds keep their metadata service, reserved...), multicast, or an IPv6 address that
    carries such an IPv4 one (mapped, 6to4, Teredo, NAT64)."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address):
        inner = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if inner is None and ip in _NAT64:
            inner = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if inner is not None and _refused(str(inner)):
            return True
        ip = ip.ipv4_mapped or ip
    return bool(
        not ip.is_global
        or ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_multicast
        or ip.is_unspecified
    )


async def check_target(url: str, config: WebhookConfig) -> None:
    """Raise ``UnsafeTarget`` if ``url`` is not allowed (resolving its host name)."""
    host = check_url_form(url, config)
    if config.allow_private:
        return
    port = urlsplit(url).port or (80 if url.startswith("http:") else 443)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise UnsafeTarget(f"host {host!r} does not resolve ({reason})") from None
    for info in infos:
        address = str(info[4][0])
        if _refused(address):
            raise UnsafeTarget(
                f"{host!r} resolves to {address}, a private, loopback or link-local address "
                "(allowed only with SEGMENTS_WEBHOOK_ALLOW_PRIVATE=true)"
            )
