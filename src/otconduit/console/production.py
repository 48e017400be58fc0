"""Machine data from the gateway's historian, for the Production page and for incidents.

The console reads the historian (``otconduit.gateway.historian``, SQLite file or
PostgreSQL DSN) read-only, one short-lived connection per call (the historian's rule:
one thread owns an instance). Tag paths are ISA-95: ``enterprise/site/area/line/cell/tag``;
a *line* is the first four parts, a *machine* the fifth. With the gateway's config
(``--gateway``) each tag is also tied to the device it is read from, so a machine fault
lands on the same asset as a network alert about that device.

Machine events, for incidents: a tag whose quality leaves ``good`` (the device stopped
answering, or answered with an error), a ``faulted`` tag turning true, a non-zero
``fault_code``, and every change of a ``state`` or ``running`` tag. Without a historian
(or with an empty one) everything here says so honestly: ``available: false``.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

from otconduit.console.tagview import TagInfo, describe, state_name
from otconduit.detect.rules import Severity

STATE_TAGS = ("state", "running")
FAULT_TAGS = ("faulted", "fault", "fault_code", "estop_ok")
LOOKBACK_NS = 24 * 3600 * 10**9  # machine events: the last day before the newest sample
TIMELINE_NS = 3600 * 10**9  # state timelines: the last hour
MAX_ROWS = 20_000  # per tag and query
UNAVAILABLE = (
    "no gateway data: historian unavailable (cannot read the historian; the console's log "
    "has the details)"
)
log = logging.getLogger("otconduit.console")
_URI_PASSWORD = re.compile(r"(://[^:/@\s]*:)([^@\s/]*)(?=@|$)")  # scheme://user:PASSWORD@host
_KV_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def scrub(text: str, dsn: str = "") -> str:
    """``text`` without the password of ``dsn`` nor anything that looks like one."""
    for pattern in (_URI_PASSWORD, _KV_PASSWORD):
        for m in pattern.finditer(dsn):
            if len(m.group(2).strip("'")) >= 3:
                text = text.replace(m.group(2).strip("'"), "***")
        text = pattern.sub(r"\1***", text)
    return text


class Production:
    """Reads one historian; ``target`` None means the console has no gateway data."""

    def __init__(
        self,
        target: str | Path | None,
        devices: dict[str, str] | None = None,
        info: dict[str, TagInfo] | None = None,
    ) -> None:
        self.target = target
        self.devices = devices or {}  # tag path -> device address
        self.info = info or {}  # tag path -> what the gateway config says about it
        self._lock = threading.Lock()
        self._events: tuple[tuple[Any, ...], list[dict[str, Any]]] | None = None

    @classmethod
    def from_gateway(cls, config: Path, historian: str | Path | None = None) -> Production:
        """Tag -> device map (and, unless given, the historian) from a gateway config."""
        from otconduit.gateway.config import load_gateway

        cfg = load_gateway(config)
        devices = {
            cfg.full_path(t): d.host or d.endpoint or d.name for d in cfg.devices for t in d.tags
        }
        info = {cfg.full_path(t): TagInfo.from_config(t) for d in cfg.devices for t in d.tags}
        if historian is None:
            if cfg.sinks.postgres is not None:
                historian = cfg.sinks.postgres.dsn
            elif cfg.sinks.historian is not None:
                historian = cfg.sinks.historian.path
        return cls(historian, devices, info)

    # -- reading -------------------------------------------------------------------
    def _open(self) -> Any:
        from otconduit.gateway.historian import open_store

        assert self.target is not None
        return open_store(str(self.target), readonly=True)

    def _tags(self) -> tuple[list[dict[str, Any]] | None, str | None]:
        """(tags, None) or (None, why not)."""
        if self.target is None:
            return None, (
                "no gateway data yet: start the console with --historian FILE or "
                "--gateway CONFIG to show machine states, counters and energy"
            )
        from otconduit.gateway.historian import HistorianError, tags

        try:
            store = self._open()
        except (HistorianError, OSError) as exc:
            return None, self._unavailable(exc)
        try:
            rows = tags(store)
        except HistorianError as exc:
            return None, self._unavailable(exc)
        finally:
            store.close()
        if not any(r["samples"] for r in rows):
            return None, "no gateway data yet: the historian holds no samples"
        return rows, None

    def _unavailable(self, exc: Exception) -> str:
        """Log why (scrubbed: driver errors may quote the DSN) and tell clients only that
        the historian is unavailable: connection strings and driver text stay here."""
        log.warning(
            "historian unavailable: %s: %s", type(exc).__name__, scrub(str(exc), str(self.target))
        )
        return UNAVAILABLE

    def _history(
        self, store: Any, path: str, start: int | None, end: int | None = None
    ) -> list[dict[str, Any]]:
        from otconduit.gateway.historian import history

        return list(history(store, path, start, end, MAX_ROWS))

    def status(self, site: str | None = None) -> dict[str, Any]:
        """Lines and machines; ``site`` keeps one site's (the ISA-95 site segment). Lines
        carry their site; ``sites`` lists every site in the historian, ``multi_site`` says
        whether the page groups by site (one site: the page as it always was)."""
        rows, why = self._tags()
        if rows is None:
            return {"available": False, "message": why, "lines": []}
        sites = sorted({site_of(r["path"]) for r in rows})
        if site:
            rows = [r for r in rows if site_of(r["path"]) == site]
        lines: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        for r in rows:
            parts = r["path"].split("/")
            line = "/".join(parts[:4]) if len(parts) > 4 else "/".join(parts[:-1])
            machine = parts[4] if len(parts) > 5 else "-"
            name = parts[-1]
            m = lines[line].setdefault(
                machine,
                {"machine": machine, "device": None, "state": None, "faulted": None,
                 "counters": [], "energy": [], "tags": [], "timeline": [],
                 "site": site_of(r["path"]), "machine_path": f"{line}/{machine}"},
            )  # fmt: skip
            m["device"] = m["device"] or self.devices.get(r["path"])
            tag = {
                "path": r["path"],
                "name": name,
                "value": r["value"],
                "unit": r["unit"],
                "quality": r["quality"],
                "last_ts": r["last_ts"],
                "samples": r["samples"],
                **describe(self.info.get(r["path"]), name, r["unit"] or "", r["value"]),
            }
            m["tags"].append(tag)
            low = name.lower()
            is_state = tag["kind"] == "state" or low in STATE_TAGS
            if is_state and (m["state"] is None or tag["kind"] == "state"):
                m["state"] = {"tag": name, "value": r["value"], "quality": r["quality"],
                              "name": tag.get("state_name"), "display": tag["display"],
                              "path": r["path"]}  # fmt: skip
            if low in ("faulted", "fault"):
                m["faulted"] = bool(r["value"]) if r["value"] is not None else None
            if tag["kind"] == "counter":
                m["counters"].append(tag)
            if tag["energy"]:
                m["energy"].append(tag)
        store = self._open()
        try:
            newest = max((s.last[0] for s in store.summaries() if s.last is not None), default=0)
            for machines in lines.values():
                for m in machines.values():
                    st = m["state"]
                    if st is None:
                        continue
                    segments = _segments(self._history(store, st["path"], newest - TIMELINE_NS))
                    info = self.info.get(st["path"])
                    for seg in segments:
                        seg["name"] = state_name(info, seg["value"])
                    m["timeline"] = segments
        finally:
            store.close()
        multi = len(sites) > 1
        where = f" in {len(sites)} sites" if multi and not site else ""
        if site:
            where = f" of site {site}" if site in sites else f": no site {site} in the historian"
        return {
            "available": True,
            "message": f"{len(rows)} tags on {len(lines)} lines{where} from the gateway historian",
            "lines": [
                {
                    "line": name,
                    "site": site_of(name + "/-"),
                    "machines": sorted(ms.values(), key=lambda m: m["machine"]),
                }
                for name, ms in sorted(lines.items(), key=lambda kv: (site_of(kv[0] + "/-"), kv[0]))
            ],
            "sites": sites,
            "site": site,
            "multi_site": multi,
        }

    def device_tags(self, address: str) -> list[dict[str, Any]]:
        """Latest value of every tag read from the device at ``address`` (needs the
        gateway config, which ties tags to devices)."""
        paths = {p for p, host in self.devices.items() if host == address}
        if not paths:
            return []
        rows, _ = self._tags()
        out = []
        for r in rows or []:
            if r["path"] in paths:
                name = r["path"].rsplit("/", 1)[-1]
                out.append({**r, **describe(self.info.get(r["path"]), name, r["unit"] or "",
                                            r["value"])})  # fmt: skip
        return out

    def signature(self) -> tuple[Any, ...]:
        """Changes when the historian gets new samples (part of the incidents cache key)."""
        if self.target is None:
            return ()
        try:
            store = self._open()
        except Exception:
            return ("unreadable",)
        try:
            sums = store.summaries()
        except Exception:
            return ("unreadable",)
        finally:
            store.close()
        return (
            sum(s.samples for s in sums),
            max((s.last[0] for s in sums if s.last is not None), default=0),
        )

    def machine_events(self) -> list[dict[str, Any]]:
        """Machine events for incidents (see the module doc), cached per signature."""
        if self.target is None:
            return []
        sig = self.signature()
        with self._lock:
            if self._events is not None and self._events[0] == sig:
                return self._events[1]
        events = self._scan()
        with self._lock:
            self._events = (sig, events)
        return events

    def _scan(self) -> list[dict[str, Any]]:
        from otconduit.gateway.historian import HistorianError

        try:
            store = self._open()
        except (HistorianError, OSError):
            return []
        out: list[dict[str, Any]] = []
        try:
            sums = store.summaries()
            newest = max((s.last[0] for s in sums if s.last is not None), default=0)
            for s in sums:
                if not s.samples:
                    continue
                out += self._tag_events(s.path, self._history(store, s.path, newest - LOOKBACK_NS))
        except HistorianError:
            return out
        finally:
            store.close()
        return out

    def _state(self, path: str, value: Any) -> str:
        """A state value as people name it (``RUNNING (1)``), or the bare value."""
        if isinstance(value, bool):
            return str(value).lower()
        return _state_label(state_name(self.info.get(path), value), value)

    def _tag_events(self, path: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        parts = path.split("/")
        name = parts[-1].lower()
        machine = parts[4] if len(parts) > 5 else parts[-2] if len(parts) > 1 else path
        line = "/".join(parts[:4]) if len(parts) > 4 else None
        asset = self.devices.get(path)
        info = self.info.get(path)
        site = site_of(path)
        out = []
        prev_q, prev_v = "good", None
        for i, r in enumerate(rows):
            q, v = r["quality"], r["value"]
            base = {"ts": r["ts_ns"], "asset": asset, "cell": None, "tag": path, "line": line,
                    "machine": machine, "site": site, "value": v, "quality": q}  # fmt: skip
            if q != "good" and prev_q == "good":
                why = f": {r['reason']}" if r.get("reason") else ""
                out.append({**base, "title": f"{machine}: tag {parts[-1]} {q}{why}",
                            "severity": int(Severity.MEDIUM), "event": "tag-fault"})  # fmt: skip
            elif q == "good" and v is not None and i > 0 and v != prev_v:
                if name in ("faulted", "fault") and v:
                    out.append({**base, "title": f"{machine}: fault", "event": "fault",
                                "severity": int(Severity.HIGH)})  # fmt: skip
                elif name == "fault_code" and v:
                    out.append({**base, "title": f"{machine}: fault code {v}", "event": "fault",
                                "severity": int(Severity.HIGH)})  # fmt: skip
                elif name == "estop_ok" and not v:
                    out.append({**base, "title": f"{machine}: emergency stop", "event": "fault",
                                "severity": int(Severity.HIGH)})  # fmt: skip
                elif name in STATE_TAGS or (info is not None and info.kind == "state"):
                    title = f"{machine}: {parts[-1]} {self._state(path, prev_v)} -> "
                    title += self._state(path, v)
                    out.append({**base, "title": title, "event": "state-change",
                                "severity": int(Severity.LOW)})  # fmt: skip
            prev_q = q
            if q == "good":
                prev_v = v
        return out


def site_of(path: str) -> str:
    """The ISA-95 site segment of a tag path (``enterprise/site/...``), ``-`` if none."""
    parts = path.split("/")
    return parts[1] if len(parts) > 2 and parts[1] else "-"


def _state_label(name: str | None, value: Any) -> str:
    return f"{name} ({value})" if name else str(value)


def _segments(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Consecutive samples with the same value (and quality) as one segment."""
    out: list[dict[str, Any]] = []
    for r in rows:
        key = (r["value"], r["quality"])
        if out and (out[-1]["value"], out[-1]["quality"]) == key:
            out[-1]["to"] = r["ts"]
            continue
        if out:
            out[-1]["to"] = r["ts"]
        out.append({"from": r["ts"], "to": r["ts"], "value": r["value"], "quality": r["quality"]})
    return out
