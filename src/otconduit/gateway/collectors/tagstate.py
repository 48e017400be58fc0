"""What a collector reports, independent of the protocol: the last value and quality of
each tag, on-change reporting beyond the deadband or cyclic reporting, and staleness.

A tag turns STALE once the device has told nothing about it (no good value, no error)
for ``stale_after`` (default three intervals) - for a tag it never told anything about,
counted from the first failed attempt to reach it (a slow first connect is not an
outage) - and is reported STALE once, with its last value, until the device answers
again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from otconduit.gateway.codec import changed
from otconduit.gateway.collectors import Emit
from otconduit.gateway.config import Device, GatewayConfig, Tag
from otconduit.gateway.model import Quality, TagSample, Value

log = logging.getLogger(__name__)


class _Last(NamedTuple):  # a tuple: built once per reading, so it must be cheap
    value: Value
    quality: Quality
    source_ts_ns: int | None
    reason: str


def interval_of(tag: Tag, device: Device) -> float:
    return tag.interval or device.interval


def stale_limit(tag: Tag, device: Device) -> float:
    return tag.stale_after or 3 * interval_of(tag, device)


class TagState:
    """Reporting state of one device's tags; ``stats`` is the collector's status dict
    (``samples`` is counted here)."""

    def __init__(
        self, device: Device, cfg: GatewayConfig, emit: Emit, stats: dict[str, Any]
    ) -> None:
        self.device = device
        self.cfg = cfg
        self._emit = emit
        self.stats = stats
        self.tags = {t.path: t for t in device.tags}
        self.paths = {t.path: cfg.full_path(t) for t in device.tags}
        self.cyclic = {t.path for t in device.tags if t.mode == "cyclic"}
        # The last reading per tag (a reported TagSample serves as its own record).
        self.last: dict[str, _Last | TagSample] = {}
        self.last_seen: dict[str, int] = {}
        self.down_since: int | None = None  # first failure to reach the device
        self.stale: set[str] = set()

    def offer(
        self,
        tag: Tag,
        value: Value,
        quality: Quality,
        reason: str = "",
        *,
        source_ts_ns: int | None = None,
        now: int | None = None,
        report: bool | None = None,
    ) -> TagSample | None:
        """Record a new reading; return the sample to emit, or None when it is not worth
        reporting. By default cyclic tags always report and on-change tags report a
        change of quality or a value beyond the deadband (from the last value reported);
        ``report=True`` forces a report, ``report=False`` only caches the reading for a
        later :meth:`repeat`."""
        now = now if now is not None else time.time_ns()
        if quality is not Quality.STALE:
            self.last_seen[tag.path] = now
            self.stale.discard(tag.path)
        old = self.last.get(tag.path)
        self.last[tag.path] = _Last(value, quality, source_ts_ns, reason)
        if report is False:  # cached only: a later repeat() reports it
            return None
        if report is None and not (
            tag.mode == "cyclic"
            or old is None
            or old.quality is not quality
            or (
                (old.value is not None or value is not None)
                and changed(old.value, value, tag.deadband)
            )
        ):
            assert old is not None  # the last *reported* value stays the deadband reference
            self.last[tag.path] = old
            return None
        return TagSample(
            path=self.paths[tag.path],
            value=value,
            quality=quality,
            recv_ts_ns=now,
            unit=tag.unit,
            source_ts_ns=source_ts_ns,
            reason=reason,
        )

    def good(self, readings: Iterable[tuple[Tag, Value]], now: int) -> list[TagSample]:
        """:meth:`offer` for a block of good readings taken at ``now`` (one response):
        the same reporting rules in one tight loop, since it runs for every sample."""
        out: list[TagSample] = []
        last, seen, paths, cyclic, stale = (
            self.last,
            self.last_seen,
            self.paths,
            self.cyclic,
            self.stale,
        )
        good = Quality.GOOD
        for tag, value in readings:
            p = tag.path
            seen[p] = now
            if stale:
                stale.discard(p)
            if p not in cyclic:
                old = last.get(p)
                if (
                    old is not None
                    and old.quality is good
                    and (
                        (old.value is None and value is None)
                        or not changed(old.value, value, tag.deadband)
                    )
                ):
                    continue  # the last reported value stays the deadband reference
            sample = TagSample(paths[p], value, good, now, tag.unit)
            last[p] = sample
            out.append(sample)
        return out

    def repeat(self, tag: Tag, now: int | None = None) -> TagSample | None:
        """The tag's current value again (cyclic reporting between device updates)."""
        last = self.last.get(tag.path)
        if last is None or tag.path in self.stale:
            return None
        return TagSample(
            path=self.paths[tag.path],
            value=last.value,
            quality=last.quality,
            recv_ts_ns=now if now is not None else time.time_ns(),
            unit=tag.unit,
            source_ts_ns=last.source_ts_ns,
            reason=last.reason,
        )

    def refresh(self, now: int | None = None) -> None:
        """The device is known to be alive and its values current (a subscription with
        nothing to say): the tags it has reported stay fresh."""
        now = now if now is not None else time.time_ns()
        for path in self.last:
            if path not in self.stale:
                self.last_seen[path] = now

    def unreachable(self, now: int | None = None) -> None:
        """An attempt to reach the device failed (starts the clock for unseen tags)."""
        if self.down_since is None:
            self.down_since = now if now is not None else time.time_ns()

    def due_stale(self, reason: str, now: int | None = None) -> list[TagSample]:
        """STALE samples for tags that just passed their staleness limit."""
        now = now if now is not None else time.time_ns()
        out: list[TagSample] = []
        for path, tag in self.tags.items():
            if path in self.stale:
                continue
            seen = self.last_seen.get(path, self.down_since)
            if seen is None or now - seen <= stale_limit(tag, self.device) * 1e9:
                continue
            self.stale.add(path)
            old = self.last.get(path)
            value = old.value if old is not None else None
            self.last[path] = _Last(value, Quality.STALE, None, reason)
            out.append(
                TagSample(
                    path=self.paths[path],
                    value=value,
                    quality=Quality.STALE,
                    recv_ts_ns=now,
                    unit=tag.unit,
                    reason=reason,
                )
            )
        return out

    def emit(self, samples: Sequence[TagSample | None]) -> None:
        """Hand samples to the runtime; a failing sink never ends the collector."""
        batch = [s for s in samples if s is not None]
        if not batch:
            return
        self.stats["samples"] += len(batch)
        try:
            self._emit(batch)
        except Exception:
            self.stats["emit_errors"] = self.stats.get("emit_errors", 0) + 1
            log.exception("device %s: emitting %d samples failed", self.device.name, len(batch))
