"""Which URLs a webhook may point at: http(s), and (unless private targets are allowed)
a host whose every address is public, so a subscription cannot reach into the network
Rallypoint runs in (SSRF). The name is resolved and each address checked; the check is
repeated before each delivery, so a name re-pointed later is refused then."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit


class BadTarget(ValueError):
    """The URL may not receive webhooks; the message says why."""


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


async def check_target(url: str, *, allow_private: bool) -> None:
    """Raise `BadTarget` unless `url` may receive webhooks."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadTarget("url must be an http or https URL with a host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise BadTarget("url has an invalid port") from None
    if allow_private:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            parts.hostname, port, type=socket.SOCK_STREAM
        )
    except (OSError, UnicodeError):
        raise BadTarget(f"url host {parts.hostname!r} does not resolve") from None
    addresses = {str(info[4][0]) for info in infos}
    if not addresses or not all(_is_public(a) for a in addresses):
        raise BadTarget(
            f"url host {parts.hostname!r} is a loopback, private or link-local address "
            "(set RALLYPOINT_ALLOW_PRIVATE_WEBHOOKS=true to allow it)"
        )
