"""``conduit sense``: capture (or follow a ring), analyse continuously, detect, report.

The loop: read whatever the ring holds now, feed it to the live analysis, and at every
tick (half a second) write a checkpoint, run live detection, copy new alerts' packets
out of the ring, export to the SIEM and update the sensor's health. Everything a
checkpoint writes is in one transaction with the ring cursor, so a restart, however
the last run ended, resumes exactly there.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from otconduit.capture.follow import Cursor, RingFollower, _natural, split_block
from otconduit.capture.reader import CaptureError, open_capture
from otconduit.detect.findings import Finding
from otconduit.detect.rules import Severity
from otconduit.sensor.engine import CaptureEngine, CaptureEngineError, ring_prefix
from otconduit.store import sensing
from otconduit.store.sqlite import Store

TICK_S = 0.5
MAX_TICK_S = 5.0
TRIM_EVERY_S = 30.0  # hand freed heap back to the system this often
# A restart replays this much packet time before its cursor, so that requests in
# flight at the crash meet their answers (their state was lost with the process).
REPLAY_NS = 30 * 10**9
WARMUP_WAIT_S = 30.0
IDLE_SLEEP_S = 0.05
STEADY_AFTER_S = 60.0  # an engine running this long has recovered
MIN_FREE_BYTES = 64 << 20  # below this on the ring's disk, the sensor says so


class SensorError(Exception):
    """A sensor that cannot start (ring folder, interface, permission); one line."""


@dataclass(slots=True)
class SenseOptions:
    db: Path
    interface: str | None = None
    follow: Path | None = None
    bpf: str | None = None
    ring_dir: Path | None = None
    ring_size_mb: int = 1024
    ring_files: int = 16
    duration: float | None = None
    tool: str | None = None
    rules: Path | None = None
    policy: Path | None = None
    syslog: tuple[str, int, str] | None = None
    export_format: str = "jsonl"
    export_file: Path | None = None
    tick_s: float = TICK_S
    names: list[tuple[str, str]] = field(default_factory=list)  # (ip, name) from --gateway
    max_connections: int = 50_000
    # Called with the store after a tick that raised or changed alerts, before they are
    # exported: --gateway puts them in process terms (otconduit.process.alerts).
    on_alerts: Callable[[Store], None] | None = None


@dataclass(slots=True)
class Health:
    state: str = "starting"
    interface: str | None = None
    started_at: str = ""
    packets: int = 0
    bytes: int = 0
    drops_kernel: int = 0
    drops_capture: int = 0
    lag_s: float = 0.0
    ring_dir: str = ""
    ring_bytes: int = 0
    oldest_packet: str | None = None
    files_done: int = 0
    files_lost: int = 0
    engine: str | None = None
    engine_restarts: int = 0
    engine_events: list[str] = field(default_factory=list)
    open_connections: int = 0
    evicted_connections: int = 0
    alerts_raised: int = 0
    evidence_packets: int = 0
    problems: list[str] = field(default_factory=list)
    epoch_after: int = 0
    replay: dict[str, Any] | None = None
    sweep_window: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}


def ring_folder(opts: SenseOptions) -> Path:
    if opts.follow is not None:
        return opts.follow.resolve()
    if opts.ring_dir is not None:
        return opts.ring_dir.resolve()
    return Path(str(opts.db.resolve()) + ".ring")


def check_ring(folder: Path, *, create: bool) -> None:
    """One-line errors for a ring folder we cannot use."""
    if create:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SensorError(f"cannot create ring folder {folder}: {exc.strerror}") from None
        if not os.access(folder, os.W_OK | os.X_OK):
            raise SensorError(f"ring folder {folder} is not writable")
    elif not folder.is_dir():
        raise SensorError(f"ring folder {folder} does not exist (or is not a folder)")
    elif not os.access(folder, os.R_OK | os.X_OK):
        raise SensorError(f"ring folder {folder} is not readable")


class Sensor:
    def __init__(self, store: Store, opts: SenseOptions) -> None:
        self.store = store
        self.opts = opts
        self.folder = ring_folder(opts)
        self.name = f"iface:{opts.interface}" if opts.interface else f"ring:{self.folder}"
        self.stop_requested = False
        self.engine: CaptureEngine | None = None
        self.health = Health(interface=opts.interface, ring_dir=str(self.folder))
        self._evidence_rowid = 0
        self._oldest: tuple[str, str | None] | None = None
        self._caught_up_at = time.monotonic()
        self._drops_reported = 0
        self._trim_at = 0.0
        self._disk_low = False
        self.on_tick: Callable[[Sensor], None] | None = None  # tests and the demo watch
        self.on_start: Callable[[Sensor], None] | None = None  # capture is running

    # -- set-up ----------------------------------------------------------------------
    def _prepare(self) -> None:
        opts = self.opts
        check_ring(self.folder, create=opts.follow is None)
        if opts.interface is not None:
            self.engine = CaptureEngine(
                opts.interface,
                self.folder,
                bpf=opts.bpf,
                ring_size_mb=opts.ring_size_mb,
                ring_files=opts.ring_files,
                tool=opts.tool,
            )

    def request_stop(self, *_: object) -> None:
        self.stop_requested = True

    def run(self) -> Health:
        """Run until stopped (SIGTERM, SIGINT, ``duration``); returns the final health.

        The handlers come first: a stop asked for while the sensor starts (a warm-up
        after a restart can take a while) is honoured once it is up, as a clean stop."""
        old = {}
        if threading.current_thread() is threading.main_thread():
            old = {s: signal.signal(s, self.request_stop) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            return self._run()
        finally:
            for s, handler in old.items():
                signal.signal(s, handler)

    def _run(self) -> Health:
        from otconduit.analysis.live import LiveAnalysis
        from otconduit.detect import baseline
        from otconduit.detect.config import load_config
        from otconduit.detect.live import LiveDetector

        self._prepare()
        config = load_config(self.opts.rules) if self.opts.rules else None
        policy = None
        if self.opts.policy is not None:
            from otconduit.policy import load_policy

            policy = load_policy(self.opts.policy)
        row = sensing.open_sensor(self.store, self.name, self.opts.interface, str(self.folder))
        self.row = row
        prefix = ring_prefix() if self.opts.interface else ""
        start = Cursor(**row.cursor) if row.cursor else None
        replay = None
        if row.resumed and row.health.get("replay") is not None:
            replay = Cursor(**row.health["replay"])
        try:
            follower = RingFollower(self.folder, prefix=prefix, start=replay or start)
        except CaptureError as exc:
            raise SensorError(str(exc)) from None
        self.follower = follower
        live = LiveAnalysis(self.store, row.capture_id)
        live.names = dict(self.opts.names)
        live.set_cap(self.opts.max_connections)
        # Where a later restart would replay from: the oldest point whose state matters.
        first = replay or start or Cursor()
        self._replays: deque[tuple[int, dict[str, Any]]] = deque([(-1, asdict(first))])
        if row.resumed:
            self._warm_up(follower, live, start, sensing.seed_of(self.store, row))
        self.live = live
        epoch = int(row.health.get("epoch_after", row.last_chunk)) if row.resumed else 0
        detector = LiveDetector(
            self.store, row.capture_id, row.sha256, self.name, epoch_first_chunk=epoch,
            config=config, policy=policy, base=baseline.load(self.store),
            sweep_window=row.health.get("sweep_window") if row.resumed else None,
            live_capture_id=row.live_capture_id,
        )  # fmt: skip
        h = self.health
        h.started_at = sensing.now_iso()
        if row.resumed:
            for k in ("packets", "bytes", "drops_kernel", "drops_capture", "alerts_raised"):
                setattr(h, k, int(row.health.get(k, 0)))
        self._drops_reported = h.drops_kernel + h.drops_capture
        try:
            if self.engine is not None:
                try:
                    self.engine.start()
                except CaptureEngineError as exc:
                    sensing.set_state(self.store, row.id, "failed", {"error": str(exc)})
                    raise SensorError(str(exc)) from None
                h.engine = self.engine.state.tool
            h.state = "running"
            if self.on_start is not None:
                self.on_start(self)
            self._loop(follower, live, detector)
            h.state = "stopped"
        except BaseException:
            h.state = "failed"
            live.close()
            sensing.set_state(self.store, row.id, "failed", h.as_dict())
            raise
        finally:
            if self.engine is not None:
                self.engine.stop()
            follower.close()
        return h

    # -- the loop --------------------------------------------------------------------
    def _loop(self, follower: RingFollower, live: Any, detector: Any) -> None:
        h = self.health
        t0 = time.monotonic()
        next_tick = t0 + self.opts.tick_s
        engine_ok_since = t0
        while not self.stop_requested:
            if self.opts.duration is not None and time.monotonic() - t0 >= self.opts.duration:
                break
            got = self._read(follower, live, until=next_tick)
            if self.engine is not None:
                event = self.engine.poll()
                if event is not None:
                    h.engine_events = ([*h.engine_events, event])[-10:]
                    engine_ok_since = time.monotonic()
                    if "exited" in event:
                        self._engine_alert(event)
                elif time.monotonic() - engine_ok_since > STEADY_AFTER_S:
                    self.engine.steady()
            now = time.monotonic()
            if now >= next_tick:
                self._tick(live, detector, follower)
                # A checkpoint that takes long (a scan's many connections) spaces the
                # next: reading the ring must not fall behind for the sake of it.
                spent = time.monotonic() - now
                next_tick = time.monotonic() + min(max(self.opts.tick_s, 4 * spent), MAX_TICK_S)
            elif not got:
                time.sleep(IDLE_SLEEP_S)
        # A clean stop: the engine closes its file, we read the rest of the ring.
        if self.engine is not None:
            self.engine.stop()
        self._drain(follower, live, detector)
        self._tick(live, detector, follower, final=True)
        sensing.finish_sensor(self.store, self.row)
        sensing.set_state(self.store, self.row.id, "stopped", self.health.as_dict())

    def _read(self, follower: RingFollower, live: Any, *, until: float) -> int:
        got = 0
        for block in follower.poll():
            live.feed(block)
            got += len(block)
            self.health.bytes += int(block.wirelens.sum())
            if time.monotonic() >= until:
                break
        else:
            self._caught_up_at = time.monotonic()
        return got

    def _drain(self, follower: RingFollower, live: Any, detector: Any) -> None:
        """Read everything the ring holds, the file being written included, with
        checkpoints on the way (a backlog is read as fast as it goes, not all at once)."""
        follower.stopping = True
        while self._read(follower, live, until=time.monotonic() + self.opts.tick_s):
            self._tick(live, detector, follower)

    def _tick(self, live: Any, detector: Any, follower: RingFollower, final: bool = False) -> None:
        h = self.health
        delta = live.checkpoint(final=final)
        h.packets += delta.packets
        h.open_connections = int(delta.stats.get("open_connections", 0))
        h.evicted_connections = live.evicted_connections
        fs = follower.stats
        h.files_done, h.files_lost = fs.files_done, fs.files_lost
        h.problems = fs.errors[-5:]
        self._engine_counters(fs.interface_stats)
        behind = follower.waiting or (follower._open is not None and not self._is_caught_up())
        h.lag_s = round(time.monotonic() - self._caught_up_at, 3) if behind else 0.0
        self._ring_usage()
        cursor = follower.cursor
        h.epoch_after = detector.epoch_after
        h.sweep_window = detector.sweep_window
        h.replay = self._replay_point(delta.last_ts, asdict(cursor))
        sensing.checkpoint(
            self.store,
            self.row,
            delta,
            asdict(cursor),
            h.as_dict(),
        )  # fmt: skip
        rep = detector.tick(self.row.last_chunk, final=final)
        h.alerts_raised += rep.new_alerts
        self._health_alerts()
        self._copy_evidence(follower)
        if (rep.new_alerts or rep.updated_alerts) and self.opts.on_alerts is not None:
            self.opts.on_alerts(self.store)
        if rep.new_alerts or rep.updated_alerts or final:
            self._export()
        self._prune(follower)
        if time.monotonic() >= self._trim_at:
            self._trim_at = time.monotonic() + TRIM_EVERY_S
            _give_back_memory()
        if self.on_tick is not None:
            self.on_tick(self)

    def _replay_point(self, last_ts: int | None, cursor: dict[str, Any]) -> dict[str, Any]:
        """The ring position a restart replays from (to rebuild what was in flight):
        the newest checkpoint at least REPLAY_S of packet time before this one."""
        now = last_ts if last_ts is not None else 0
        self._replays.append((now, cursor))
        while len(self._replays) > 1 and self._replays[1][0] <= now - REPLAY_NS:
            self._replays.popleft()
        return self._replays[0][1]

    def _warm_up(
        self, follower: RingFollower, live: Any, start: Cursor | None, seed: dict[str, Any]
    ) -> None:
        """After a restart: replay from the replay point up to the cursor to rebuild
        state, dropping what it produces (the crashed run stored it), then go on."""
        from otconduit.analysis.live import Seed

        live.begin_warmup()
        target = start.next_frame if start is not None else 1
        deadline = time.monotonic() + WARMUP_WAIT_S
        done = False
        while not done and time.monotonic() < deadline:
            got = False
            for block in follower.poll():
                got = True
                end = block.first_frame + len(block)
                if end <= target:
                    live.feed(block)
                    if end == target:
                        done = True
                        break
                    continue
                k = max(target - block.first_frame, 0)
                if k:
                    live.feed(split_block(block, 0, k))
                live.end_warmup(Seed(**seed))
                live.feed(split_block(block, k, len(block)))
                self.health.bytes += int(block.wirelens[k:].sum())
                return
            if not got:
                if follower._open is None and not follower.waiting:
                    break
                time.sleep(IDLE_SLEEP_S)
        live.end_warmup(Seed(**seed))

    def _is_caught_up(self) -> bool:
        return time.monotonic() - self._caught_up_at < 2 * self.opts.tick_s

    # -- health ----------------------------------------------------------------------
    def _engine_counters(self, isb: dict[int, dict[str, int]]) -> None:
        h = self.health
        if self.engine is not None:
            st = self.engine.state
            h.drops_kernel = max(h.drops_kernel, st.drops_kernel)
            h.drops_capture = max(h.drops_capture, st.drops_capture)
            h.engine_restarts = st.restarts
        # Another tool's ring: its statistics blocks count what the interface and the
        # operating system dropped (pcapng has no counter for the writer's own losses).
        lost = sum(c.get("dropped_interface", 0) + c.get("dropped_os", 0) for c in isb.values())
        h.drops_kernel = max(h.drops_kernel, lost)

    def _ring_usage(self) -> None:
        h = self.health
        total = 0
        oldest: tuple[Any, ...] | None = None
        try:
            entries = list(os.scandir(self.folder))
        except OSError:
            return
        for e in entries:
            try:
                st = e.stat()
            except OSError:
                continue
            total += st.st_size
            key = (st.st_mtime_ns, _natural(e.name), e.name)
            if oldest is None or key < oldest:
                oldest = key
        h.ring_bytes = total
        if oldest is not None:
            name = oldest[2]
            if self._oldest is None or self._oldest[0] != name:
                self._oldest = (name, _first_packet_time(self.folder / name))
            h.oldest_packet = self._oldest[1]
        try:
            free = shutil.disk_usage(self.folder).free
        except OSError:
            free = MIN_FREE_BYTES
        if free < MIN_FREE_BYTES:
            note = f"ring disk nearly full: {free >> 20} MiB free in {self.folder}"
            h.problems = [*[p for p in h.problems if not p.startswith("ring disk")], note][-5:]
            if not self._disk_low:
                self._disk_low = True
                now = time.time_ns()
                self._raise(
                    Finding(
                        rule="sensor-disk-low", first_ts=now, last_ts=now, count=1, note=note,
                        severity=Severity.HIGH, context={"sensor": self.name},
                    )
                )  # fmt: skip
        elif free > 2 * MIN_FREE_BYTES:
            self._disk_low = False

    def _health_alerts(self) -> None:
        h = self.health
        lost = h.drops_kernel + h.drops_capture
        if lost > self._drops_reported:
            self._drops_reported = lost
            now = time.time_ns()
            self._raise(
                Finding(
                    rule="sensor-drops",
                    first_ts=now,
                    last_ts=now,
                    count=lost,
                    note=(
                        f"{h.drops_kernel} packets dropped by the kernel, "
                        f"{h.drops_capture} by the capture engine on {h.interface or h.ring_dir}"
                    ),
                    severity=Severity.MEDIUM,
                    context={"sensor": self.name},
                )
            )

    def _engine_alert(self, event: str) -> None:
        now = time.time_ns()
        self._raise(
            Finding(
                rule="sensor-capture-failed", first_ts=now, last_ts=now, count=1, note=event,
                severity=Severity.HIGH, context={"sensor": self.name},
            )
        )  # fmt: skip

    def _raise(self, f: Finding) -> None:
        from otconduit.detect.alerts import store_findings

        key = f"{self.row.sha256}#health:{f.rule}:{f.first_ts}"
        store_findings(self.store, key, self.name, [f], 3600.0)
        self.health.alerts_raised += 1

    def _copy_evidence(self, follower: RingFollower) -> None:
        frames, top = sensing.evidence_wanted(self.store, self.row.sha256, self._evidence_rowid)
        self._evidence_rowid = top
        if frames:
            packets = follower.packets_of(frames)
            self.health.evidence_packets += sensing.save_evidence(
                self.store, self.row.sha256, packets
            )

    def _export(self) -> None:
        opts = self.opts
        if opts.syslog is None and opts.export_file is None:
            return
        from otconduit.detect.export import ExportError, export_alerts

        sink = f"sensor-{self.name}"
        try:
            if opts.syslog is not None:
                export_alerts(self.store, sink=sink, fmt=opts.export_format, syslog=opts.syslog)  # type: ignore[arg-type]
            elif opts.export_file is not None:
                with opts.export_file.open("a", encoding="utf-8") as fh:
                    export_alerts(self.store, sink=sink, fmt=opts.export_format, out=fh)  # type: ignore[arg-type]
        except (ExportError, OSError) as exc:
            note = f"SIEM export failed (will retry): {exc}"
            self.health.problems = ([*self.health.problems, note])[-5:]

    def _prune(self, follower: RingFollower) -> None:
        """Keep our own ring within its bounds across engine restarts (each dumpcap run
        rotates only the files it wrote); never delete a file not read yet."""
        if self.engine is None:
            return
        unread = set(follower.waiting)
        if follower._open is not None:
            unread.add(follower._open.path.name)
        files = []
        for e in os.scandir(self.folder):
            if e.name.startswith(ring_prefix()):
                try:
                    st = e.stat()
                except OSError:
                    continue
                files.append((st.st_mtime_ns, _natural(e.name), e.name, st.st_size))
        files.sort()
        total = sum(f[3] for f in files)
        limit = self.opts.ring_size_mb << 20
        while files and (len(files) > self.opts.ring_files or total > limit):
            _, _, name, size = files.pop(0)
            if name in unread:
                break
            try:
                (self.folder / name).unlink()
            except OSError:
                break
            total -= size


def _first_packet_time(path: Path) -> str | None:
    try:
        with open_capture(path, block_size=1 << 16) as reader:
            for block in reader:
                if len(block):
                    from otconduit.store.views import iso

                    return iso(int(block.ts_ns[0]))
    except (CaptureError, OSError):
        return None
    return None


def _give_back_memory() -> None:
    from otconduit.analysis.run import _give_back_memory as trim

    trim()
