"""Host-header allow-list: the defence against DNS rebinding.

A web page on ``evil.example`` can make its own name resolve to 127.0.0.1 and then talk
to a console on loopback as if it were the same site; the browser still sends
``Host: evil.example``. So the console answers only to the names it is reached by:
``localhost``, loopback addresses, the address it listens on, and what ``--allowed-host``
adds (names, addresses, networks, or ``*`` for any). When it listens on every address
(``0.0.0.0`` / ``::``) any IP literal is accepted too -- a rebinding attack needs a
*name* -- but names still must be listed. Anything else gets 400."""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable
from typing import Any

from otconduit.console.errors import error_payload

IPNet = ipaddress.IPv4Network | ipaddress.IPv6Network
LOOPBACK: tuple[IPNet, ...] = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
)
WILDCARD = {"", "0.0.0.0", "::"}
_NAME = re.compile(r"[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?\.?", re.IGNORECASE)  # no port, no scheme


def host_name(value: str) -> str:
    """The name or address in a Host header: no port, no brackets, lower case."""
    value = value.strip().lower()
    if value.startswith("["):  # [v6]:port
        return value[1 : value.find("]")] if "]" in value else value
    if value.count(":") == 1:  # name:port (more colons: a bare IPv6 address)
        value = value.split(":", 1)[0]
    return value.rstrip(".")


def _ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


class HostPolicy:
    """Which Host headers this console answers to."""

    def __init__(self, bind: str, extra: Iterable[str] = ()) -> None:
        self.any = False
        self.any_ip = bind.strip() in WILDCARD
        self.names = {"localhost"}
        self.nets: list[IPNet] = list(LOOPBACK)
        for entry in (bind, *extra):
            self.add(entry)

    def add(self, entry: str) -> None:
        """A name, an address, a network (``10.1.0.0/16``) or ``*``; ValueError if none."""
        entry = entry.strip()
        if entry == "*":
            self.any = True
            return
        if entry in WILDCARD:
            return
        try:
            net = ipaddress.ip_network(entry.strip("[]"), strict=False)
        except ValueError:
            if not _NAME.fullmatch(entry):
                raise ValueError(f"not a host name, address or network: {entry!r}") from None
            self.names.add(entry.lower().rstrip("."))
            return
        self.nets.append(net)

    def allows(self, header: str | None) -> bool:
        if self.any or header is None:  # no Host at all: not a browser, nothing to rebind
            return True
        name = host_name(header)
        if name in self.names:
            return True
        ip = _ip(name)
        if ip is None:
            return False
        return self.any_ip or any(ip in net for net in self.nets)


class HostGuard:
    """ASGI middleware: 400 for a request whose Host is not allowed."""

    def __init__(self, app: Any, *, policy: HostPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), None)
            if not self.policy.allows(host):
                await _refuse(send)
                return
        await self.app(scope, receive, send)


async def _refuse(send: Any) -> None:
    body = json.dumps(
        error_payload(
            400,
            "this console does not answer to that host name (DNS rebinding protection): "
            "start it with --allowed-host NAME to add one",
            "host_not_allowed",
        )
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 400,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
