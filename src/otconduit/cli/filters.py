"""Filter options checked before a listing runs. A typo (``--class wirte``) used to give
an empty table and exit 0, which reads as "nothing happened"; here it is one line naming
the valid values and the closest one, exit 2. Every listing command parses its filters
through this module, so they all accept the same spellings: values in any case,
protocol aliases, an address or a CIDR network, ISO 8601 or relative times."""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta

from otconduit.cli.output import fail
from otconduit.protocols import registry

# Protocol filter -> the stored names it covers, from the protocol registry. EtherNet/IP
# connections are stored as ``enip`` and the CIP operations inside them as ``cip``: one
# filter finds both.
PROTOCOLS: dict[str, tuple[str, ...]] = {**registry.filters(), "unknown": ("unknown",)}
PROTOCOL_ALIASES: dict[str, str] = dict(registry.aliases())
# Roles the inventory infers (more may appear in a store: those are accepted too).
ROLES = (
    "plc", "gateway", "meter", "io", "hmi_scada", "scada_historian", "engineering_workstation",
)  # fmt: skip
ROLE_ALIASES = {
    "hmi": "hmi_scada",
    "scada": "hmi_scada",
    "historian": "scada_historian",
    "ews": "engineering_workstation",
    "engineering": "engineering_workstation",
    "remote_io": "io",
    "remote-io": "io",
    "energy_meter": "meter",
}
MAX_LISTED = 40  # valid values named in one error line (function names can be hundreds)


def unknown(
    noun: str, option: str, value: str, valid: Iterable[str], pool: Iterable[str] = ()
) -> str:
    """The one-line error for a value that is not among ``valid`` (the closest of
    ``valid`` and ``pool`` -- e.g. aliases -- suggested)."""
    # Sets are listed alphabetically; sequences (severities) in their own order.
    if isinstance(valid, set | frozenset):
        names = sorted(valid, key=str.casefold)
    else:
        names = list(dict.fromkeys(valid))
    keys = {n.casefold(): n for n in [*names, *pool]}
    close = difflib.get_close_matches(value.strip().casefold(), list(keys), n=1, cutoff=0.6)
    hint = f": did you mean {keys[close[0]]!r}?" if close else ":"
    shown = ", ".join(names[:MAX_LISTED]) or "none in this database"
    more = f" and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else ""
    return f"unknown {noun} {value!r} ({option}){hint} valid: {shown}{more}"


def pick(
    option: str,
    value: str | None,
    valid: Iterable[str],
    *,
    noun: str,
    aliases: Mapping[str, str] | None = None,
) -> str | None:
    """``value`` as spelled in ``valid`` (any case; ``aliases`` map other spellings to a
    valid value), or exit 2 naming the valid values."""
    if value is None:
        return None
    aliases = aliases or {}
    valid = set(map(str, valid)) if isinstance(valid, set | frozenset) else list(map(str, valid))
    table = {v.casefold(): v for v in valid}
    table.update({k.casefold(): v for k, v in aliases.items()})
    found = table.get(value.strip().casefold())
    if found is None:
        shown = [v for v in valid if v.casefold() not in aliases]
        listed = set(shown) if isinstance(valid, set | frozenset) else shown
        raise fail(unknown(noun, option, value, listed, pool=aliases.keys()))
    return found


def protocol(option: str, value: str | None, seen: Iterable[str] = ()) -> tuple[str, ...] | None:
    """The stored protocol names a ``--protocol`` value stands for (``s7`` -> s7comm,
    ``cip`` -> enip and cip). Names the store holds are valid too."""
    name = pick(option, value, {*PROTOCOLS, *seen}, noun="protocol", aliases=PROTOCOL_ALIASES)
    if name is None:
        return None
    return PROTOCOLS.get(name, (name,))


def role(option: str, value: str | None, seen: Iterable[str] = ()) -> str | None:
    return pick(option, value, {*ROLES, *seen}, noun="role", aliases=ROLE_ALIASES)


def ip(option: str, value: str | None) -> str | None:
    """One address or a CIDR network, normalised (``10.0.0.5``, ``10.0.0.0/24``)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        if "/" in text:
            net = ipaddress.ip_network(text, strict=False)
            return str(net) if net.num_addresses > 1 else str(net.network_address)
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise fail(
            f"{option} {value!r} is not an IP address or a CIDR network "
            "(e.g. 10.0.0.5 or 10.0.0.0/24)"
        ) from None


_RELATIVE = re.compile(r"^-\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d|w)?$", re.IGNORECASE)
_UNIT_S = {"": 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


def when(option: str, value: str | None, now: datetime | None = None) -> int | None:
    """A ``--from``/``--to`` value as nanoseconds since the epoch: ISO 8601 with or
    without a zone (none means UTC, as Conduit prints times), a date, ``now``, or
    relative to now (``-1h``, ``-30m``, ``-2d``, ``-90s``, ``-1w``)."""
    if value is None:
        return None
    dt = _parse_time(value.strip(), now or datetime.now(UTC))
    if dt is None:
        raise fail(
            f"{option} {value!r}: use ISO 8601 (2026-11-25T08:00:00Z, 2026-11-25 08:00, "
            "2026-11-25) or a time relative to now (-1h, -30m, -2d)"
        )
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return (dt - _EPOCH) // timedelta(microseconds=1) * 1000


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _parse_time(text: str, now: datetime) -> datetime | None:
    rel = _RELATIVE.match(text)
    try:
        if rel:
            return now - timedelta(seconds=float(rel[1]) * _UNIT_S[(rel[2] or "").lower()])
        if text.lower() == "now":
            return now
        return datetime.fromisoformat(text)
    except (ValueError, OverflowError):
        return None


def time_range(start: str | None, end: str | None) -> tuple[int | None, int | None]:
    """``--from``/``--to`` as ``[start, end)`` in nanoseconds; an empty range is an error."""
    lo, hi = when("--from", start), when("--to", end)
    if lo is not None and hi is not None and lo >= hi:
        raise fail(f"--from {start!r} is not before --to {end!r}")
    return lo, hi


def function(option: str, value: str | None, seen: Iterable[str]) -> str | None:
    """A ``--function`` value: a code (decimal or 0x hex) as a decimal string, or a name
    as the protocol spells it -- one the database holds or one of the Modbus, DNP3 and
    S7 function tables or the OPC UA services (a real function that did not occur lists
    nothing, exit 0)."""
    if value is None:
        return None
    text = value.strip()
    if re.fullmatch(r"\d+|0x[0-9a-f]+", text, re.IGNORECASE):
        return str(int(text, 0))
    from otconduit.protocols.dnp3.functions import FUNCTION_NAMES as DNP3
    from otconduit.protocols.modbus.functions import FUNCTION_NAMES as MODBUS
    from otconduit.protocols.opcua.services import SERVICES as OPCUA
    from otconduit.protocols.s7.functions import JOB_FUNCTIONS as S7

    seen = set(seen)
    tables = (*MODBUS.values(), *DNP3.values(), *S7.values(), *(s.name for s in OPCUA))
    known = {v.casefold(): v for v in (*tables, *seen)}
    found = known.get(text.casefold())
    if found is None:  # name what this database holds; the tables are long
        hint = unknown("function", option, value, seen, pool=known.values())
        raise fail(f"{hint} (in this database; or a function code)")
    return found


def capture(option: str, value: str | None, stored: list[str]) -> str | None:
    """A ``--capture`` value naming an analysed capture by path (as given or absolute)
    or by file name."""
    if value is None:
        return None
    if value in stored:
        return value
    full = os.path.abspath(value)
    if full in stored:
        return full
    name = value.rstrip("/")
    if any(p == name or p.endswith("/" + name) for p in stored):
        return value
    raise fail(unknown("capture", option, value, [os.path.basename(p) for p in stored]))
