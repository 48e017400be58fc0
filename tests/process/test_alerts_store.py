"""Stored alerts given their ``process``: idempotent, a change of the alert only when the
entries change (a SIEM export sends the enriched alert once), and the sensor's pass that
only looks at alerts changed since its last one."""

from __future__ import annotations

from pathlib import Path

from otconduit.cli.process_opts import LiveAnnotation, load_process
from otconduit.detect.alerts import list_alerts
from otconduit.process.alerts import annotate_alerts
from otconduit.process.history import HistorianLookup
from otconduit.process.tagmap import TagMap
from otconduit.store import Store
from tests.process.synthplant import ATTACKER, HMI, make_plant


def _changes(store: Store) -> dict[int, int]:
    return {a["id"]: a["change"] for a in list_alerts(store)}


def test_annotate_is_idempotent_and_bumps_changes_once(tmp_path: Path) -> None:
    plant = make_plant(tmp_path)
    _, tagmap = TagMap.load(plant.config)
    with Store(plant.db) as store, HistorianLookup(plant.historian) as history:
        before = _changes(store)
        changed = annotate_alerts(store, tagmap, history)
        after = _changes(store)
        assert sorted(changed) == sorted(before)  # both alerts are writes to the conveyor
        assert all(after[i] > before[i] for i in changed)
        assert annotate_alerts(store, tagmap, history) == []  # nothing new: nothing written
        assert _changes(store) == after
        by_src = {a["src_ip"]: a for a in list_alerts(store)}
    assert by_src[ATTACKER]["process"][0]["previous_from"] == "historian"
    assert by_src[HMI]["process"][0]["path"].endswith("conveyor/run_command")


def test_without_the_historian_previous_comes_from_the_polls(tmp_path: Path) -> None:
    plant = make_plant(tmp_path)
    _, tagmap = TagMap.load(plant.config)
    with Store(plant.db) as store:
        annotate_alerts(store, tagmap, None)
        rogue = next(a for a in list_alerts(store) if a["src_ip"] == ATTACKER)
    [e] = rogue["process"]
    assert e["previous"] == 25.0 and e["previous_from"] == "operations"


def test_the_sensors_pass_looks_only_at_changed_alerts(tmp_path: Path) -> None:
    plant = make_plant(tmp_path)
    ctx = load_process(plant.config)
    assert ctx is not None
    live = LiveAnnotation(ctx)
    with Store(plant.db) as store:
        live(store)
        first = _changes(store)
        assert all(a["process"] for a in list_alerts(store))
        live(store)  # the alerts it changed are seen again, and left as they are
        assert _changes(store) == first
        assert live.seen is not None
    ctx.close()
