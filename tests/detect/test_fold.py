"""One event, one alert: a function-code scan's side effects are its steps, a refused
command is an attempt, and a real write during a scan stays its own alert."""

from __future__ import annotations

import numpy as np

from otconduit.detect.config import DetectConfig
from otconduit.detect.findings import Evidence, Finding
from otconduit.detect.rules import Severity
from otconduit.detect.run import resolve

S = 1_000_000_000
A, B = "10.0.0.66", "10.0.0.10"


def _op(rule: str, t: int, status: str, op: str, sev: Severity | None = None) -> Finding:
    return Finding(rule, t, t, 1, A, B, "modbus", op, None, 502, sev, status=status,
                   ts=np.array([t], np.int64), evidence=[Evidence([t // S], t, {})])  # fmt: skip


def _scan(t0: int, t1: int) -> Finding:
    return Finding("function-code-scan", t0, t1, 120, A, B, "modbus", dst_port=502,
                   note="120 function codes")  # fmt: skip


def test_scan_side_effects_fold_into_the_scan() -> None:
    found = [
        _scan(100 * S, 110 * S),
        _op("program-download", 105 * S, "exception", "PROGRAM_484", Severity.CRITICAL),
        _op("firmware-change", 106 * S, "exception", "FIRMWARE_REPLACEMENT"),
        _op("malformed-pdu", 107 * S, "malformed", "WRITE_MULTIPLE_COILS"),
        _op("process-write", 107 * S, "malformed", "WRITE_MULTIPLE_COILS"),
        Finding("exception-storm", 100 * S, 110 * S, 114, A, B, "modbus", dst_port=502),
        _op("process-write", 60 * S, "ok", "WRITE_SINGLE_COIL"),  # the rogue write, earlier
        _op("process-write", 108 * S, "ok", "WRITE_SINGLE_REGISTER"),  # a write that worked
    ]
    final, _ = resolve(found, DetectConfig(), None)
    rules = sorted(f.rule for f in final)
    assert rules == ["function-code-scan", "process-write", "process-write"], rules
    scan = next(f for f in final if f.rule == "function-code-scan")
    steps = {s["rule"] for s in scan.context["steps"]}
    assert steps == {"program-download", "firmware-change", "malformed-pdu", "process-write",
                     "exception-storm"}  # fmt: skip
    assert len(scan.evidence) >= 4
    writes = sorted(f.operation or "" for f in final if f.rule == "process-write")
    assert writes == ["WRITE_SINGLE_COIL", "WRITE_SINGLE_REGISTER"]


def test_a_refused_command_is_an_attempt() -> None:
    refused = _op("program-download", 5 * S, "exception", "PROGRAM_484", Severity.CRITICAL)
    done = _op("program-download", 6 * S, "ok", "PROGRAM_484", Severity.CRITICAL)
    final, _ = resolve([refused, done], DetectConfig(), None)
    by_status = {f.status: f for f in final}
    assert by_status["exception"].severity == Severity.MEDIUM
    assert "not carried out" in by_status["exception"].context["verdict"]
    assert by_status["ok"].severity == Severity.CRITICAL
