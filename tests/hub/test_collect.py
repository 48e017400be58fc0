"""The edge side: a site's store (filled by the real analysis and detection of the
project's own captures) becomes uplink messages that, applied at a hub, reproduce the
site's counts; only changes are sent again; sequence numbers survive a restart."""

from __future__ import annotations

import json
from pathlib import Path

from otconduit.analysis.run import analyze_file
from otconduit.detect.alerts import list_alerts, set_status
from otconduit.detect.run import detect_capture
from otconduit.hub.ingest import Ingest, Outcome
from otconduit.store import Store, hub_outbox
from otconduit.store import hub as hub_q
from otconduit.uplink.collect import Collector
from otconduit.uplink.envelope import decode, topic_for
from tests.conftest import DATA

CAPTURES = ["modbus_all_functions.pcap", "enip_cpppo.pcap", "modbus_vlan.pcap"]


def _site(db: Path, captures: list[str]) -> None:
    with Store(db) as store:
        for name in captures:
            res = analyze_file(store, DATA / name)
            assert res.capture_id is not None
            detect_capture(store, res.capture_id)


def _apply(hub: Store, site: str, msgs: list[tuple[int, str, str]]) -> list[Outcome]:
    ing = Ingest(hub, frozenset({site}))
    return [ing.handle(topic_for(site, kind), body.encode()) for _seq, kind, body in msgs]


def test_site_store_reproduced_at_hub(tmp_path: Path) -> None:
    db = tmp_path / "site.db"
    _site(db, CAPTURES)
    with Store(db) as site, Store(tmp_path / "hub.db") as hub:
        msgs = Collector(site, "plant-a").collect({"backlog": 0})
        kinds = {k for _, k, _ in msgs}
        assert {"assets", "conversations", "alerts", "op_minutes", "health"} <= kinds
        assert [s for s, _, _ in msgs] == list(range(1, len(msgs) + 1))
        for _, kind, body in msgs:  # every message is what the hub accepts
            assert decode(topic_for("plant-a", kind), body.encode()).kind == kind
        assert set(_apply(hub, "plant-a", msgs)) == {Outcome.APPLIED}
        want = hub_outbox.totals(site)
        got = hub_q.counts(hub, "plant-a")
        assert want["operations"] > 0 and want["alerts"] > 0
        for k in ("assets", "conversations", "alerts", "operations", "violations"):
            assert got[k] == want[k], k


def test_only_changes_are_sent_again(tmp_path: Path) -> None:
    db = tmp_path / "site.db"
    _site(db, CAPTURES[:1])
    with Store(db) as site, Store(tmp_path / "hub.db") as hub:
        col = Collector(site, "plant-a")
        first = col.collect()
        _apply(hub, "plant-a", first)
        assert col.collect() == []  # nothing changed: nothing sent
        alert = list_alerts(site)[0]
        set_status(site, alert["id"], "acknowledged", "alice")
        again = col.collect()
        assert [k for _, k, _ in again] == ["alerts"]
        rows = json.loads(again[0][2])["rows"]
        assert [(r["alert_id"], r["status"]) for r in rows] == [(alert["id"], "acknowledged")]
        _apply(hub, "plant-a", again)
        got = {r["alert_id"]: r["status"] for r in hub_q.alert_page(hub, "plant-a", 100)}
        assert got[alert["id"]] == "acknowledged"
        # a new capture: its assets, conversations, operations and alerts, nothing twice
        res = analyze_file(site, DATA / CAPTURES[1])
        assert res.capture_id is not None
        detect_capture(site, res.capture_id)
        _apply(hub, "plant-a", col.collect())
        want, have = hub_outbox.totals(site), hub_q.counts(hub, "plant-a")
        assert all(have[k] == want[k] for k in want), (have, want)


def test_sequence_and_outbox_survive_a_restart(tmp_path: Path) -> None:
    """Built messages stay in the outbox (same ids) until released; the sequence goes on
    after a restart, never reusing an id."""
    db = tmp_path / "site.db"
    _site(db, CAPTURES[:1])
    with Store(db) as site:
        msgs = Collector(site, "plant-a").collect()
    with Store(db) as site:  # "restart"
        assert hub_outbox.outbox(site, "plant-a") == msgs
        hub_outbox.release(site, "plant-a", msgs[-1][0] - 1)
        assert hub_outbox.outbox(site, "plant-a") == msgs[-1:]
        more = Collector(site, "plant-a").collect({"backlog": 3})
        assert [s for s, _, _ in more] == [msgs[-1][0] + 1]
        # two sites in one store (a lab) keep separate sequences and cursors
        other = Collector(site, "plant-b").collect()
        assert other[0][0] == 1 and len(other) >= len(msgs)
