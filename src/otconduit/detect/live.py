"""Detection on a sensor's growing capture, within a second or two of the packets.

Re-running every detector over a capture that grows for days would cost more each
time. Operation detectors (dangerous commands, scans, storms) run over an *epoch*: the
chunks written since the epoch began, re-detected at every tick (detection of a capture
replaces its own earlier contribution, so repeating it never double-counts) until the
epoch closes and the next begins. Detectors over the capture's state (port sweeps over
conversations, decode problems, policy breaches) cover the whole capture under a key
of their own. Alerts from neighbouring epochs join as alerts of neighbouring captures
do, within the dedup window.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from otconduit.detect import abuse, baseline, recon
from otconduit.detect.alerts import StoreReport, store_findings
from otconduit.detect.config import DetectConfig
from otconduit.detect.run import policy_findings, resolve
from otconduit.detect.scan import scan_capture
from otconduit.policy.model import Policy
from otconduit.store import captures
from otconduit.store.sqlite import Store

EPOCH_S = 30.0  # wall-clock length of an epoch
EPOCH_MAX_CHUNKS = 4000  # or fewer, when traffic writes many chunks
POLICY_EVERY_S = 10.0  # the policy check reads the whole store: not at every tick
STATE_EVERY_S = 1.0
# Port sweeps are looked for among conversations first seen within a window of packet
# time; windows partition the conversations, so none is counted twice.
SWEEP_WINDOW_NS = 300 * 10**9


@dataclass(slots=True)
class TickReport:
    operations: int
    new_alerts: int
    updated_alerts: int


class LiveDetector:
    def __init__(
        self,
        store: Store,
        capture_id: int,
        sha256: str,
        path: str,
        *,
        epoch_first_chunk: int,
        config: DetectConfig | None = None,
        policy: Policy | None = None,
        base: baseline.Baseline | None = None,
        sweep_window: int | None = None,
        live_capture_id: int | None = None,
    ) -> None:
        self.store = store
        self.capture_id = capture_id
        self.sha = sha256
        self.path = path
        self.config = config or DetectConfig()
        self.policy = policy
        self.base = base
        self.epoch_after = epoch_first_chunk  # the epoch holds chunks after this id
        self._epoch_began = time.monotonic()
        self._policy_at = 0.0
        self._seen_chunk = epoch_first_chunk
        self._state_due = 0.0
        self._window = sweep_window  # packet time the current sweep window began
        self.live_capture_id = live_capture_id  # connections still open (sensor)

    @property
    def sweep_window(self) -> int | None:
        return self._window

    def tick(self, last_chunk: int, *, final: bool = False) -> TickReport:
        """Detect what the epoch holds up to ``last_chunk`` (the last checkpoint's);
        ``final``: the last tick of a run, every detector runs."""
        new = updated = ops = 0
        if final:
            self._state_due = 0.0
            self._seen_chunk = min(self._seen_chunk, last_chunk - 1)
        if last_chunk > self._seen_chunk or final:
            self._seen_chunk = last_chunk
            rep, ops = self._epoch()
            new += rep.new_alerts
            updated += rep.updated_alerts
            if time.monotonic() >= self._state_due:
                t = time.monotonic()
                rep = self._state()
                new += rep.new_alerts
                updated += rep.updated_alerts
                # Over conversations that a scan can make a million of: never more
                # than a tenth of the time, and at most once a second.
                spent = time.monotonic() - t
                self._state_due = time.monotonic() + max(STATE_EVERY_S, 10 * spent)
        if (
            time.monotonic() - self._epoch_began >= EPOCH_S
            or last_chunk - self.epoch_after >= EPOCH_MAX_CHUNKS
        ):
            self.epoch_after = self._seen_chunk
            self._epoch_began = time.monotonic()
        return TickReport(ops, new, updated)

    def _epoch(self) -> tuple[StoreReport, int]:
        th = self.config.thresholds
        scan = scan_capture(
            self.store, self.capture_id, after_chunk=self.epoch_after, polls=self.base is not None
        )
        found = list(scan.findings)
        found += recon.function_scans(scan, th)
        found += recon.address_sweeps(scan, th)
        found += recon.browse_sweeps(scan, th)
        found += recon.identity_sweeps(scan, th)
        found += abuse.exception_storms(scan, th)
        if self.base is not None:
            found += baseline.deviations(self.store, self.capture_id, scan, self.base, self.config)
        final, suppressed = resolve(found, self.config, self.policy)
        key = f"{self.sha}#e{self.epoch_after}"
        rep = store_findings(self.store, key, self.path, final, self.config.dedup_window)
        rep.suppressed = suppressed
        return rep, scan.operations

    def _state(self) -> StoreReport:
        """Port sweeps over the conversations first seen in the current sweep window
        (packet time; windows partition conversations, so none is counted twice),
        decode problems and the policy over the capture."""
        th = self.config.thresholds
        new = 0
        cap = captures.info(self.store, self.capture_id)
        first, last = (cap.first_ts, cap.last_ts) if cap else (None, None)
        if first is not None and self._window is None:
            self._window = int(first)
        elif (
            last is not None and self._window is not None and last - self._window > SWEEP_WINDOW_NS
        ):
            # Close this window with a last look, then start the next.
            closing = store_findings(
                self.store, f"{self.sha}#sweeps{self._window}", self.path,
                resolve(recon.port_sweeps(self.store, self.capture_id, th, self._window,
                                  self.live_capture_id),
                        self.config, self.policy)[0],
                self.config.dedup_window,
            )  # fmt: skip
            new += closing.new_alerts
            self._window = int(last)
        if self._window is not None:
            sweeps = recon.port_sweeps(
                self.store, self.capture_id, th, self._window, self.live_capture_id
            )
            final, _ = resolve(sweeps, self.config, self.policy)
            new += store_findings(self.store, f"{self.sha}#sweeps{self._window}", self.path,
                                  final, self.config.dedup_window).new_alerts  # fmt: skip
        found = []
        found += abuse.problem_findings(self.store, self.capture_id, self.path)
        if self.policy is not None and time.monotonic() - self._policy_at >= POLICY_EVERY_S:
            from otconduit.policy.check import evaluate_and_store

            self._policy_at = time.monotonic()
            evaluate_and_store(self.store, self.policy)
        found += policy_findings(self.store, self.capture_id, self.policy)
        final, _ = resolve(found, self.config, self.policy)
        rep = store_findings(self.store, f"{self.sha}#state", self.path, final,
                             self.config.dedup_window)  # fmt: skip
        rep.new_alerts += new
        return rep
