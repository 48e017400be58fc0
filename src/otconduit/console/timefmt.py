"""Times on the console: one format everywhere.

The store keeps two spellings of UTC (``...Z`` with microseconds for packet times,
``...+00:00`` for wall-clock times such as ``updated_at``). People read tables in the
plant's time zone, to the second, and a script wants one ISO 8601 style. So:

* HTML tables show ``YYYY-MM-DD HH:MM:SS`` in the plant zone (named once per page), with
  the full ISO value in the ``title`` and ``datetime`` attributes of a ``<time>``;
* the API answers ISO 8601 UTC ending in ``Z`` (:class:`ZuluJSONResponse`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi.responses import JSONResponse
from markupsafe import Markup, escape

TABLE_FORMAT = "%Y-%m-%d %H:%M:%S"
# A JSON string that is exactly an ISO 8601 UTC time written with an offset.
_PLUS_ZERO = re.compile(rb'"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?)\+00:00"')


class TimezoneError(ValueError):
    """An unknown time zone name."""


def plant_zone(name: str | None) -> ZoneInfo:
    """The IANA zone ``name`` (UTC when None); a wrong name fails at start, not per page."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise TimezoneError(
            f"unknown time zone {name!r}: use an IANA name like Europe/Berlin or UTC"
        ) from None


def parse(value: Any) -> datetime | None:
    """A stored time (ISO text in either UTC spelling, or epoch nanoseconds) as an aware
    datetime; None for anything else (shown as it is)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1e9, UTC)
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    m = re.match(r"^(.*T\d\d:\d\d:\d\d)\.(\d+)(.*)$", text)
    if m:  # fromisoformat takes at most microseconds on Python 3.10
        text = f"{m.group(1)}.{m.group(2)[:6].ljust(6, '0')}{m.group(3)}"
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def zulu(value: Any) -> Any:
    """ISO 8601 UTC ending in ``Z`` (what the API answers); other values unchanged."""
    if isinstance(value, str) and value.endswith("+00:00"):
        return value[:-6] + "Z"
    return value


def zulu_json(body: bytes) -> bytes:
    """Every JSON string value that is a ``+00:00`` time, rewritten to end in ``Z``."""
    return _PLUS_ZERO.sub(rb'"\1Z"', body)


class ZuluJSONResponse(JSONResponse):
    """The API's JSON: times in one style, ISO 8601 UTC with ``Z``."""

    def render(self, content: Any) -> bytes:
        return zulu_json(super().render(content))


def table_time(value: Any, zone: tzinfo) -> str:
    """``YYYY-MM-DD HH:MM:SS`` in ``zone``; unparseable values as they are."""
    dt = parse(value)
    if dt is None:
        return "" if value is None else str(value)
    return dt.astimezone(zone).strftime(TABLE_FORMAT)


def time_tag(value: Any, zone: tzinfo) -> Markup:
    """A ``<time>`` element: seconds in the plant zone, the full ISO value on hover."""
    dt = parse(value)
    if dt is None:
        return Markup("") if value is None else Markup(escape(str(value)))
    full = zulu(dt.astimezone(UTC).isoformat())
    if isinstance(value, str):
        full = zulu(value)
    shown = dt.astimezone(zone).strftime(TABLE_FORMAT)
    return Markup('<time datetime="{0}" title="{0}">{1}</time>').format(full, shown)


def zone_name(zone: tzinfo) -> str:
    """The IANA name (what the browser's ``Intl`` takes), ``UTC`` for UTC."""
    name = getattr(zone, "key", None)
    return str(name) if name else "UTC"


def zone_label(zone: tzinfo, now: datetime | None = None) -> str:
    """``Europe/Berlin (UTC+01:00)``: the name and today's offset, for the page note."""
    now = now or datetime.now(UTC)
    offset = now.astimezone(zone).strftime("%z") or "+0000"
    name = zone_name(zone)
    if name == "UTC":
        return "UTC"
    return f"{name} (UTC{offset[:3]}:{offset[3:]})"
