"""A clean hour of the built-in plant raises nothing above informational.

The plant (real pymodbus, python-snap7 and asyncua stacks on loopback) runs its normal
scenario at 100x for 36 s, i.e. one plant hour; the capture's timestamps are then
stretched 100x so that every poll keeps its plant period. Analysed with the plant's
policy, every alert must be informational. Learned as a baseline, the same traffic an
hour later shows no deviation, and the same traffic polled 1.5x slower shows
polling-period drift and nothing else.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from otconduit.analysis.run import analyze_file
from otconduit.detect import baseline
from otconduit.detect.alerts import list_alerts
from otconduit.detect.config import DetectConfig
from otconduit.detect.run import detect_capture
from otconduit.lab.sniffer import capture_unavailable_reason
from otconduit.policy import load_policy
from otconduit.policy.check import evaluate_and_store
from otconduit.store import Store
from tests.conftest import REPO
from tests.pcaptime import stretch

pytestmark = pytest.mark.skipif(
    capture_unavailable_reason() is not None or os.geteuid() != 0,
    reason=f"the plant needs root and loopback capture ({capture_unavailable_reason()})",
)
CONDUIT = Path(sys.executable).with_name("conduit")
SPEED = 100
BASELINE_RULES = {"new-asset", "new-conversation", "new-function", "new-address-range"}


@pytest.fixture(scope="module")
def hour(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("hour")
    raw = tmp / "raw.pcap"
    proc = subprocess.run(
        [str(CONDUIT), "lab", "--scenario", "normal", "--duration", str(3600 // SPEED),
         "--speed", str(SPEED), "--seed", "5", "--pcap", str(raw)],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    hour_pcap, next_pcap, slow_pcap = tmp / "hour.pcap", tmp / "next.pcap", tmp / "slow.pcap"
    stretch(raw, hour_pcap, SPEED)
    stretch(raw, next_pcap, SPEED, shift_s=3600)  # the same behaviour, an hour later
    stretch(raw, slow_pcap, SPEED * 1.5, shift_s=7200)
    policy = load_policy(REPO / "examples" / "plant-policy.yaml")
    out: dict[str, Any] = {}
    with Store(tmp / "policy.db") as store:
        res = analyze_file(store, hour_pcap)
        assert res.capture_id is not None and res.operations > 1000
        evaluate_and_store(store, policy)
        detect_capture(store, res.capture_id, DetectConfig(), policy)
        out["with_policy"] = list_alerts(store)
    with Store(tmp / "baseline.db") as store:
        res = analyze_file(store, hour_pcap)
        assert res.capture_id is not None
        limited = baseline.learn(store, DetectConfig(learning_period=1800))
        assert limited.until_ts is not None
        cfg = DetectConfig()
        b = baseline.learn(store, cfg)
        baseline.save(store, b)
        nxt = analyze_file(store, next_pcap)
        assert nxt.capture_id is not None
        detect_capture(store, nxt.capture_id, cfg, None, b)
        out["next_hour"] = list_alerts(store)
        slow = analyze_file(store, slow_pcap)
        assert slow.capture_id is not None
        detect_capture(store, slow.capture_id, cfg, None, b)
        out["slow"] = [
            a for a in list_alerts(store) if a["id"] not in {x["id"] for x in out["next_hour"]}
        ]
        out["baseline"] = b
        out["limited"] = limited
    return out


def test_clean_hour_raises_nothing_above_info(hour: dict[str, Any]) -> None:
    alerts = hour["with_policy"]
    assert alerts, "the hour has routine writes; they must be recorded (as info)"
    loud = [(a["rule"], a["severity"], a["summary"]) for a in alerts if a["severity"] != "info"]
    assert not loud, loud


def test_same_behaviour_an_hour_later_is_no_deviation(hour: dict[str, Any]) -> None:
    b = hour["baseline"]
    assert b.polls and b.conversations and b.until_ts is None
    deviations = [
        (a["rule"], a["summary"])
        for a in hour["next_hour"]
        if a["rule"] in BASELINE_RULES | {"poll-period-drift"}
    ]
    assert not deviations, deviations


def test_learning_period_limits_what_is_learned(hour: dict[str, Any]) -> None:
    limited, full = hour["limited"], hour["baseline"]
    assert limited.until_ts is not None
    # Half an hour of polling teaches the same cyclic polls with half the samples.
    assert set(limited.polls) <= set(full.polls)
    shared = set(limited.polls) & set(full.polls)
    assert shared and all(limited.polls[k][2] < full.polls[k][2] for k in shared)


def test_slower_polling_is_period_drift(hour: dict[str, Any]) -> None:
    drift = [a for a in hour["slow"] if a["rule"] == "poll-period-drift"]
    assert drift, [a["rule"] for a in hour["slow"]]
    # Same hosts, same functions: only the period changed.
    assert not [a for a in hour["slow"] if a["rule"] in BASELINE_RULES]
