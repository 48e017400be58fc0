"""Alert lifecycle, deduplication, rules file, evidence pcap and baseline, on captures
recorded from real pymodbus stacks (tests/data) and, when present, the shared corpus."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from otconduit.analysis.run import analyze_file
from otconduit.capture.reader import open_capture
from otconduit.detect import baseline
from otconduit.detect.alerts import AlertError, get_alert, list_alerts, set_status, store_findings
from otconduit.detect.config import DetectConfig, load_config
from otconduit.detect.evidence import write_evidence
from otconduit.detect.findings import Finding
from otconduit.detect.run import detect_capture
from otconduit.store import Store
from otconduit.yamlconf import ConfigError
from tests.conftest import CORPUS, DATA, needs_shared, needs_tshark
from tests.pcaptime import stretch

ALL = DATA / "modbus_all_functions.pcap"
H = 3600 * 10**9


def _detect(store: Store, path: Path, cfg: DetectConfig | None = None) -> int:
    res = analyze_file(store, path)
    assert res.capture_id is not None
    detect_capture(store, res.capture_id, cfg, None, baseline.load(store))
    return res.capture_id


def test_redetecting_a_capture_never_doubles_and_keeps_state(db_path: Path) -> None:
    with Store(db_path) as store:
        _detect(store, ALL)
        first = {a["id"]: a["count"] for a in list_alerts(store)}
        restart = next(a for a in list_alerts(store) if a["rule"] == "comm-restart")
        set_status(store, restart["id"], "acknowledged", "ana", "calling the cell engineer")
        set_status(store, restart["id"], "closed", "ana", "planned test of the comm port")
        _detect(store, ALL)  # the same capture again
        again = {a["id"]: a["count"] for a in list_alerts(store)}
        assert again == first
        got = get_alert(store, restart["id"])
        assert got["status"] == "closed"
        assert [(h["from_status"], h["to_status"], h["user"]) for h in got["history"]] == [
            ("open", "acknowledged", "ana"),
            ("acknowledged", "closed", "ana"),
        ]
        with pytest.raises(AlertError, match="cannot become acknowledged"):
            set_status(store, restart["id"], "acknowledged", "ana")
        with pytest.raises(AlertError, match="no alert with id 999"):
            set_status(store, 999, "closed", "ana")


def test_alert_json_contract(db_path: Path) -> None:
    with Store(db_path) as store:
        _detect(store, ALL)
        a = next(a for a in list_alerts(store) if a["rule"] == "listen-only")
    keys = "id ts first_seen last_seen count rule title severity techniques src_ip dst_ip"
    for key in (keys + " protocol operation status evidence").split():
        assert key in a
    assert a["techniques"] == ["T0814", "T0804", "T0803"]
    assert a["operation"] == "DIAGNOSTICS" and a["protocol"] == "modbus"
    assert a["evidence"][0]["capture"].endswith("modbus_all_functions.pcap")


def _f(ts: int, count: int = 1) -> Finding:
    return Finding(
        rule="controller-stop", first_ts=ts, last_ts=ts, count=count, src_ip="10.0.0.1",
        dst_ip="10.0.0.2", protocol="s7comm", operation="PLC Stop",
    )  # fmt: skip


def test_dedup_window_aggregates_and_splits(db_path: Path) -> None:
    with Store(db_path) as store:
        t0 = 1_700_000_000 * 10**9
        findings = [_f(t0), _f(t0 + H // 6, 2), _f(t0 + 3 * H)]
        store_findings(store, "sha-a", "a.pcap", findings, window_s=3600)
        alerts = list_alerts(store)
    assert [(a["count"], a["rule"]) for a in alerts] == [
        (3, "controller-stop"),
        (1, "controller-stop"),
    ]
    assert alerts[0]["first_seen"] < alerts[0]["last_seen"]


def test_rules_file_disables_overrides_and_allow_lists(db_path: Path, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "version: 1\n"
        "rules:\n"
        "  comm-restart: {enabled: false}\n"
        "  listen-only: {severity: critical}\n"
        "allow:\n"
        "  - rule: process-write\n"
        "    src: 127.0.5.0/24\n"
        "    comment: the test client\n"
    )
    cfg = load_config(rules)
    with Store(db_path) as store:
        _detect(store, ALL, cfg)
        by_rule = {a["rule"]: a for a in list_alerts(store)}
    assert "comm-restart" not in by_rule and "process-write" not in by_rule
    assert by_rule["listen-only"]["severity"] == "critical"


def test_allow_list_window_splits_per_operation(db_path: Path, tmp_path: Path) -> None:
    with Store(db_path) as store:
        res = analyze_file(store, ALL)
        # An allow window that covers nothing leaves every write alerting...
        rules = tmp_path / "r.yaml"
        rules.write_text(
            "allow:\n  - rule: process-write\n    window: {weekday: daily, start: '00:00', "
            "end: '00:01', timezone: UTC}\n"
        )
        assert res.capture_id is not None
        detect_capture(store, res.capture_id, load_config(rules))
        n_all = sum(a["count"] for a in list_alerts(store) if a["rule"] == "process-write")
        # ... and a window covering the whole day allows them all.
        rules.write_text(
            "allow:\n  - rule: process-write\n    window: {weekday: daily, start: '00:00', "
            "end: '24:00', timezone: UTC}\n"
        )
        detect_capture(store, res.capture_id, load_config(rules))
        n_none = sum(a["count"] for a in list_alerts(store) if a["rule"] == "process-write")
    assert n_all == 8 and n_none == 0


def test_rules_file_errors_name_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nallow:\n  - rule: no-such-rule\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:3: .*unknown rule 'no-such-rule'"):
        load_config(bad)
    bad.write_text("dedup_window: soon\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:1: dedup_window: 'soon' is not a duration"):
        load_config(bad)


@needs_tshark
def test_evidence_pcap_holds_exactly_the_alert_frames(db_path: Path, tmp_path: Path) -> None:
    with Store(db_path) as store:
        _detect(store, ALL)
        a = next(a for a in list_alerts(store) if a["rule"] == "listen-only")
        out = tmp_path / "ev.pcap"
        rep = write_evidence(store, a["id"], out)
    frames = a["evidence"][0]["frames"]
    assert rep.packets == len(frames) >= 2
    original = {}
    with open_capture(ALL) as reader:
        for block in reader:
            for i in range(len(block)):
                original[block.first_frame + i] = block.data(i)
    with open_capture(out) as reader:
        got = [block.data(i) for block in reader for i in range(len(block))]
    assert got == [original[f] for f in frames]
    tshark = shutil.which("tshark")
    assert tshark
    fields = subprocess.run(
        [tshark, "-r", str(out), "-Y", "modbus.func_code == 8", "-T", "fields",
         "-e", "modbus.diagnostic_code"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert "4" in fields  # force listen-only, as tshark reads it


@needs_shared
def test_baseline_flags_new_hosts_functions_and_period_drift(db_path: Path, tmp_path: Path) -> None:
    learned = CORPUS / "iti" / "ModbusTCP" / "ModbusTCP.pcap"
    with Store(db_path) as store:
        analyze_file(store, learned)
        b = baseline.learn(store, DetectConfig())
        baseline.save(store, b)
        assert b.polls and b.conversations
        slow = tmp_path / "slow.pcap"
        stretch(learned, slow, 2.0)
        _detect(store, slow)
        _detect(store, DATA / "modbus_all_functions.pcap")
        rules = {a["rule"] for a in list_alerts(store)}
        drift = [a for a in list_alerts(store) if a["rule"] == "poll-period-drift"]
    assert "poll-period-drift" in rules and drift
    assert all(a["src_ip"].startswith("141.81.") for a in drift)
    # The lab capture's hosts and conversations were never seen while learning.
    assert {"new-asset", "new-conversation"} <= rules
    period = json.loads(json.dumps(drift[0]))["summary"]
    assert "learned" in period


def test_baseline_learn_needs_data(db_path: Path) -> None:
    with Store(db_path) as store:
        b = baseline.learn(store, DetectConfig())
    assert b.captures == [] and np.isnan(np.nan)
