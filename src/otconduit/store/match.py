"""Matching stored values against filter values that are not one literal: an address
filter may be a CIDR network, a protocol filter may stand for several stored names
(EtherNet/IP operations are filed under ``enip`` and ``cip``), and a time filter is a
range. Kept apart from the queries so every listing reads filters the same way (and
writes times the same way: :func:`iso`)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

IpTest = Callable[[str | None], bool]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def is_network(spec: str) -> bool:
    """True for a CIDR filter (``10.0.0.0/24``) rather than one address."""
    return "/" in spec


def ip_matcher(spec: str) -> IpTest:
    """A test for stored address strings: equality for one address, membership for a
    network (each distinct address parsed once: a listing meets the same few many times)."""
    if not is_network(spec):
        return lambda ip: ip == spec
    net = ipaddress.ip_network(spec, strict=False)
    seen: dict[str, bool] = {}

    def test(ip: str | None) -> bool:
        if ip is None:
            return False
        hit = seen.get(ip)
        if hit is None:
            try:
                hit = ipaddress.ip_address(ip) in net
            except ValueError:
                hit = False
            seen[ip] = hit
        return hit

    return test


def names(protocol: str | tuple[str, ...] | None) -> tuple[str, ...] | None:
    """A protocol filter as the tuple of stored names it covers."""
    if protocol is None or isinstance(protocol, tuple):
        return protocol
    return (protocol,)


def iso(ts_ns: int | None) -> str | None:
    """Nanosecond epoch -> ISO 8601 UTC with microseconds (what scripts parse easily)."""
    if ts_ns is None:
        return None
    dt = datetime.fromtimestamp(ts_ns // 1_000_000_000, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{(ts_ns % 1_000_000_000) // 1000:06d}Z"


def iso_ns(text: str | None) -> int | None:
    """An ISO 8601 time as the store writes it (``...Z``) -> nanoseconds since the epoch."""
    if not text:
        return None
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return (dt - _EPOCH) // timedelta(microseconds=1) * 1000


def overlaps(first_ns: int | None, last_ns: int | None, start: int | None, end: int | None) -> bool:
    """Whether activity from ``first_ns`` to ``last_ns`` falls in ``[start, end)``; activity
    without times is in no bounded range."""
    if start is None and end is None:
        return True
    if first_ns is None or last_ns is None:
        return False
    return (start is None or last_ns >= start) and (end is None or first_ns < end)
