"""Machine data from the gateway (tag samples, machine states, faults), for the
Production page and for incidents.

The gateway's historian is not part of Conduit yet, so this module says so honestly:
:func:`status` reports ``available: false`` and :func:`machine_events` returns nothing.
When ``otconduit.gateway.historian`` lands, this is the one place that reads it.
"""

from __future__ import annotations

import importlib.util
from typing import Any


def historian_available() -> bool:
    try:
        return importlib.util.find_spec("otconduit.gateway.historian") is not None
    except ModuleNotFoundError:
        return False


def status() -> dict[str, Any]:
    where = (
        "the gateway historian is installed, but the console does not read it yet"
        if historian_available()
        else "the gateway's historian is not installed"
    )
    return {
        "available": False,
        "message": f"no gateway data yet ({where}): no machine states, counters or energy "
        "readings to show",
        "lines": [],
    }


def machine_events(
    since_ns: int | None = None, until_ns: int | None = None
) -> list[dict[str, Any]]:
    """Machine events (state changes, tag faults) as incident timeline entries:
    ``{"ts": ns, "asset": ip | None, "cell": zone | None, "title", "severity", ...}``."""
    return []
