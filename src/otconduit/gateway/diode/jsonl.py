"""Tag samples and diode events as JSON objects (one per line on the CLI), and a
JSON-lines :class:`~otconduit.gateway.sinks.Sink` for the receiver.

Sample keys: ``path, value, quality, unit, ts`` (ISO 8601 UTC of the time of record),
``source_ts_ns, recv_ts_ns, reason, historical, seq``. The same shape is read back by
``conduit diode send``: only ``path`` is required there; ``ts`` (ISO 8601 or ns) is
taken as the source timestamp when neither ``*_ts_ns`` key is given.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import IO, Any

from otconduit.gateway.diode.decoder import Event, Samples
from otconduit.gateway.model import Quality, TagSample


def iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat().replace("+00:00", "Z")


def sample_to_dict(s: TagSample) -> dict[str, Any]:
    return {
        "path": s.path,
        "value": s.value,
        "quality": str(s.quality),
        "unit": s.unit,
        "ts": iso(s.ts_ns),
        "source_ts_ns": s.source_ts_ns,
        "recv_ts_ns": s.recv_ts_ns,
        "reason": s.reason,
        "historical": s.historical,
        "seq": s.seq,
    }


def _ns(v: Any, key: str) -> int | None:
    if v is None:
        return None
    if isinstance(v, bool):
        raise ValueError(f"{key}: not a time")
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return int(v)
    if isinstance(v, str):
        try:
            dt = datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{key}: {v!r} is not ISO 8601") from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return int(dt.timestamp() * 1_000_000) * 1000
    raise ValueError(f"{key}: not a time")


def sample_from_dict(d: Any, *, seq: int = 0, now_ns: int | None = None) -> TagSample:
    """A sample from one decoded JSON object; raises ValueError naming the bad key."""
    if not isinstance(d, dict):
        raise ValueError("a sample is a JSON object")
    path = d.get("path")
    if not isinstance(path, str) or not path:
        raise ValueError("'path' (text) is required")
    value = d.get("value")
    if value is not None and not isinstance(value, bool | int | float | str):
        raise ValueError("'value' must be a number, boolean, text or null")
    try:
        quality = Quality(d.get("quality", "good"))
    except ValueError:
        raise ValueError("'quality' must be good, bad or stale") from None
    has_ns = "source_ts_ns" in d or "recv_ts_ns" in d
    source = _ns(d.get("source_ts_ns"), "source_ts_ns") if has_ns else _ns(d.get("ts"), "ts")
    recv = _ns(d.get("recv_ts_ns"), "recv_ts_ns")
    s_seq = d.get("seq", seq)
    if not isinstance(s_seq, int) or isinstance(s_seq, bool) or s_seq < 0:
        raise ValueError("'seq' must be a non-negative integer")
    return TagSample(
        path=path,
        value=value,
        quality=quality,
        recv_ts_ns=recv if recv is not None else (now_ns or time.time_ns()),
        unit=str(d.get("unit", "")),
        source_ts_ns=source,
        reason=str(d.get("reason", "")),
        historical=bool(d.get("historical", False)),
        seq=s_seq,
    )


def event_to_dict(e: Event) -> dict[str, Any]:
    """A non-sample event as a flat object: ``{"event": "gap", ...}``."""
    if isinstance(e, Samples):
        return {"event": "samples", "session": e.session, "seq": e.seq, "count": len(e.samples)}
    name = {
        "Gap": "gap",
        "Rejected": "rejected",
        "SessionStarted": "session",
        "SessionEnded": "session_end",
        "LinkUp": "link_up",
        "LinkDown": "link_down",
        "SenderDropped": "sender_dropped",
    }[type(e).__name__]
    out: dict[str, Any] = {"event": name, "ts": iso(time.time_ns()), **asdict(e)}
    if name == "gap":
        out["count"] = out["last"] - out["first"] + 1
    return out


class JsonLinesSink:
    """Writes each sample as one JSON line to a text stream (stdout or an open file)."""

    def __init__(self, stream: IO[str], *, name: str = "jsonl") -> None:
        self.name = name
        self._stream = stream
        self._written = 0

    async def start(self) -> None:
        return None

    async def write(self, samples: Sequence[TagSample]) -> None:
        self._stream.write("".join(json.dumps(sample_to_dict(s)) + "\n" for s in samples))
        self._stream.flush()
        self._written += len(samples)

    async def close(self) -> None:
        self._stream.flush()

    def status(self) -> dict[str, Any]:
        return {"written": self._written}
