"""The hub applies each message once, whole or not at all, and refuses (and records)
everything it must not apply -- on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otconduit.hub.ingest import Ingest, Outcome
from otconduit.store import Store
from otconduit.store import hub as hub_q
from otconduit.uplink.envelope import KINDS, Envelope, encode

NOW = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
SENT = "2026-12-07T07:59:59.500Z"


def _alert(alert_id: int, change: int, status: str = "open", count: int = 1) -> dict[str, Any]:
    return {
        "alert_id": alert_id,
        "rule": "modbus-write",
        "title": "Write",
        "category": "c",
        "severity": 3,
        "techniques": '["T0855"]',
        "src_ip": "10.0.0.1",
        "dst_ip": "10.0.0.2",
        "protocol": "modbus",
        "operation": "WRITE",
        "summary": "a write",
        "first_seen": 1,
        "last_seen": 2,
        "count": count,
        "status": status,
        "change_seq": change,
    }


def _op(minute: int, n: int) -> dict[str, Any]:
    return {
        "transport": "tcp",
        "client_ip": "10.0.0.1",
        "server_ip": "10.0.0.2",
        "server_port": 502,
        "vlan": -1,
        "protocol": "modbus",
        "minute": minute,
        "operations": n,
    }


def _msg(
    site: str, seq: int, kind: str, rows: list[dict[str, Any]], sent: str = SENT
) -> tuple[str, bytes]:
    env = Envelope(site=site, seq=seq, sent_at=sent, kind=kind, rows=tuple(rows))
    return env.topic, encode(env)


def _ingest(store: Store, sites: frozenset[str] | None = frozenset({"a", "b"})) -> Ingest:
    return Ingest(store, sites, clock=lambda: NOW)


def test_applied_once_replays_dropped(hub_db: str) -> None:
    with Store(hub_db) as store:
        ing = _ingest(store)
        m1 = _msg("a", 1, "op_minutes", [_op(60, 5), _op(120, 7)])
        m2 = _msg("a", 2, "op_minutes", [_op(60, 1)])
        for topic, body in (m1, m2, m1, m2, m1):
            ing.handle(topic, body)
        assert ing.counts[Outcome.APPLIED] == 2 and ing.counts[Outcome.DUPLICATE] == 3
        got = dict(store.conn.execute("SELECT minute, operations FROM hub_op_minutes").fetchall())
        assert got == {60: 1, 120: 7}  # totals: the newest statement per minute
        (site,) = hub_q.sites(store)
        assert (site["messages"], site["duplicates"], site["last_seq"]) == (2, 3, 2)
        assert site["delay_ms"] == 500


def test_missing_counts_ids_below_the_highest_that_never_came(hub_db: str) -> None:
    with Store(hub_db) as store:
        ing = _ingest(store)
        ing.handle(*_msg("a", 1, "op_minutes", [_op(60, 1)]))
        ing.handle(*_msg("a", 4, "op_minutes", [_op(60, 2)]))  # 2 and 3 not (yet) here
        (site,) = hub_q.sites(store)
        assert (site["messages"], site["last_seq"], site["missing"]) == (2, 4, 2)
        ing.handle(*_msg("a", 3, "op_minutes", [_op(60, 3)]))
        ing.handle(*_msg("a", 2, "op_minutes", [_op(60, 4)]))
        (site,) = hub_q.sites(store)
        assert site["missing"] == 0


def test_alert_lifecycle_newest_state_wins_whatever_the_order(hub_db: str) -> None:
    with Store(hub_db) as store:
        ing = _ingest(store)
        ing.handle(*_msg("a", 1, "alerts", [_alert(1, 1)]))
        ing.handle(*_msg("a", 3, "alerts", [_alert(1, 5, "closed", 4)]))
        ing.handle(*_msg("a", 2, "alerts", [_alert(1, 3, "acknowledged", 2)]))  # late
        ing.handle(*_msg("b", 1, "alerts", [_alert(1, 1)]))  # same id, other site
        rows = {(r["site"], r["alert_id"]): r for r in hub_q.alert_page(store, None, 10)}
        assert rows[("a", 1)]["status"] == "closed" and rows[("a", 1)]["count"] == 4
        assert rows[("b", 1)]["status"] == "open"
        assert [r["site"] for r in hub_q.alert_page(store, "b", 10)] == ["b"]


def test_state_kinds_upsert(hub_db: str) -> None:
    asset = {
        "ip": "10.0.0.2",
        "vlan": -1,
        "mac": None,
        "name": None,
        "vendor": None,
        "model": None,
        "roles": None,
        "protocols": None,
        "first_seen": 1,
        "last_seen": 2,
        "packets_sent": 1,
        "packets_received": 1,
    }
    with Store(hub_db) as store:
        ing = _ingest(store)
        ing.handle(*_msg("a", 1, "assets", [asset]))
        ing.handle(*_msg("a", 2, "assets", [{**asset, "vendor": "Siemens", "packets_sent": 9}]))
        ing.handle(*_msg("b", 1, "assets", [asset]))
        rows = hub_q.asset_page(store, "a", 10)
        assert len(rows) == 1 and rows[0]["vendor"] == "Siemens" and rows[0]["packets_sent"] == 9
        assert hub_q.counts(store)["assets"] == 2
        ing.handle(*_msg("a", 3, "health", [{"sensor": "iface:eth1", "backlog": 12, "drops": 3}]))
        site = next(s for s in hub_q.sites(store) if s["site"] == "a")
        assert (site["backlog"], site["drops"], site["sensors"]) == (12, 3, ["iface:eth1"])


@pytest.mark.parametrize(
    ("topic", "body", "reason"),
    [
        (*_msg("ghost", 1, "assets", []), "unknown_site"),
        (
            "conduit/v1/a/assets",
            encode(Envelope(site="b", seq=1, sent_at=SENT, kind="assets", rows=())),
            "site_mismatch",
        ),
        (*_msg("a", 1, "assets", [], sent=(NOW + timedelta(hours=2)).isoformat()), "skew"),
        ("conduit/v1/a/assets", b"\x00" * 10, "malformed"),
        ("conduit/v1/a/assets", b"{" * 300_000, "oversized"),
        ("conduit/v1/a", b"{}", "topic"),
    ],
)
def test_refused_reported_never_applied(hub_db: str, topic: str, body: bytes, reason: str) -> None:
    with Store(hub_db) as store:
        ing = _ingest(store)
        assert ing.handle(topic, body) is Outcome.REFUSED
        assert ing.counts[f"refused_{reason}"] == 1
        assert hub_q.reject_counts(store) == {reason: 1}
        assert hub_q.counts(store)["messages"] == 0
        assert not hub_q.has_hub_rows(store)


def test_old_messages_after_an_outage_are_not_skew(hub_db: str) -> None:
    """A message sent hours ago (queued during an outage) is late, not skewed."""
    with Store(hub_db) as store:
        ing = _ingest(store)
        old = (NOW - timedelta(hours=5)).isoformat()
        assert ing.handle(*_msg("a", 1, "op_minutes", [_op(0, 1)], sent=old)) is Outcome.APPLIED
        assert hub_q.sites(store)[0]["delay_ms"] == 5 * 3600 * 1000


def test_one_transaction_per_message(tmp_path: Any) -> None:
    """A database error half-way through a message's rows leaves nothing of it (not even
    its id, so the broker's redelivery applies it later)."""
    db = tmp_path / "hub.db"
    with Store(db) as store:
        store.conn.execute(
            "CREATE TRIGGER no_minute_666 BEFORE INSERT ON hub_op_minutes "
            "WHEN NEW.minute = 666 BEGIN SELECT RAISE(ABORT, 'disk on fire'); END"
        )
        ing = _ingest(store)
        topic, body = _msg("a", 1, "op_minutes", [_op(60, 1), _op(666, 1)])
        with pytest.raises(Exception, match="disk on fire"):
            ing.handle(topic, body)
        assert hub_q.counts(store) == dict.fromkeys(
            ("assets", "conversations", "alerts", "operations", "violations", "messages"), 0
        )
        store.conn.execute("DROP TRIGGER no_minute_666")
        assert ing.handle(topic, body) is Outcome.APPLIED
        assert hub_q.counts(store)["operations"] == 2


def test_health_json_is_stored_as_sent(hub_db: str) -> None:
    with Store(hub_db) as store:
        ing = _ingest(store, None)  # no --sites: whoever the broker let in
        ing.handle(*_msg("z", 1, "health", [{"sensor": "s", "lag_s": 1.5, "detail": "x"}]))
        (raw,) = store.conn.execute("SELECT health FROM hub_sites").fetchone()
        assert json.loads(raw) == [{"sensor": "s", "lag_s": 1.5, "detail": "x"}]


_NASTY = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(
        ["\x00", "a\x00b", "\ud800", "\udfff x", "\u2028", "'; DROP TABLE hub_sites;--"]
    ),
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    kind=st.sampled_from(
        ["assets", "conversations", "alerts", "violations", "op_minutes", "health"]
    ),
    fields=st.dictionaries(st.sampled_from(sorted({f for k in KINDS.values() for f in k})), _NASTY),
    topic_site=st.sampled_from(["a", "b", "ghost", "a\x00", "\ud800"]),
)
def test_fuzz_hub_never_crashes_nor_half_applies(
    tmp_path_factory: pytest.TempPathFactory, kind: str, fields: dict[str, Any], topic_site: str
) -> None:
    """Whatever a site sends, the outcome is applied, duplicate or refused-and-recorded:
    nothing raises, and a refused message leaves no row behind."""
    db = tmp_path_factory.mktemp("fuzz") / "hub.db"
    payload = json.dumps(
        {"v": 1, "site": "a", "seq": 1, "sent_at": SENT, "kind": kind, "rows": [fields]}
    ).encode()
    with Store(db) as store:
        ing = _ingest(store)
        out = ing.handle(f"conduit/v1/{topic_site}/{kind}", payload)
        c = hub_q.counts(store)
        if out is Outcome.REFUSED:
            assert c["messages"] == 0 and sum(c.values()) == 0
            assert sum(hub_q.reject_counts(store).values()) == 1
        else:
            assert c["messages"] == 1


def test_a_batch_commits_whole_or_not_at_all(tmp_path: Any) -> None:
    """Group commit keeps every message all-or-nothing: a database error in the middle
    of a batch leaves none of it (none is acknowledged; the broker sends all again)."""
    with Store(tmp_path / "hub.db") as store:
        store.conn.execute(
            "CREATE TRIGGER no_minute_666 BEFORE INSERT ON hub_op_minutes "
            "WHEN NEW.minute = 666 BEGIN SELECT RAISE(ABORT, 'disk on fire'); END"
        )
        ing = _ingest(store)
        batch = [
            _msg("a", 1, "op_minutes", [_op(60, 1)]),
            ("conduit/v1/a/assets", b"not json"),
            _msg("a", 2, "op_minutes", [_op(666, 1)]),
            _msg("b", 1, "op_minutes", [_op(60, 1)]),
        ]
        with pytest.raises(Exception, match="disk on fire"):
            ing.handle_many(batch)
        assert hub_q.counts(store)["messages"] == 0 and hub_q.reject_counts(store) == {}
        assert not ing.counts
        store.conn.execute("DROP TRIGGER no_minute_666")
        outs = ing.handle_many([*batch, batch[0]])
        assert [o.value for o in outs] == ["applied", "refused", "applied", "applied", "duplicate"]
        assert hub_q.counts(store)["messages"] == 3


def test_a_flood_of_refusals_is_counted_but_not_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A site sending bad messages forever cannot grow the hub database: every refusal
    is counted, only the most recent rows are kept."""
    monkeypatch.setattr(hub_q, "REJECTS_KEPT", 50)
    monkeypatch.setattr(hub_q, "PRUNE_EVERY", 10)
    with Store(tmp_path / "hub.db") as store:
        for i in range(500):
            hub_q.reject(
                store,
                at=f"2026-12-07T08:{i // 60:02d}:{i % 60:02d}Z",
                site="plant-a",
                topic="conduit/v1/plant-a/alerts",
                reason="malformed",
                detail=f"bad {i}",
            )
        kept = store.conn.execute("SELECT count(*) FROM hub_rejects").fetchone()[0]
        assert hub_q.reject_counts(store) == {"malformed": 500}
        assert 50 <= kept <= 60
        assert hub_q.rejects(store, limit=1)[0]["detail"] == "bad 499"


def test_retention_on_a_hub_prunes_minutes_and_old_message_ids(hub_db: str) -> None:
    from otconduit.store.retention import DAY_NS, prune_hub

    def at(days: float) -> datetime:
        return NOW - timedelta(days=days)

    def iso(t: datetime) -> str:
        return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    now_ns = int(NOW.timestamp()) * 1_000_000_000
    old_minute = int(at(100).timestamp()) // 60 * 60
    new_minute = int(at(1).timestamp()) // 60 * 60
    with Store(hub_db) as store:
        for seq, days in ((1, 30), (2, 30), (3, 3)):
            ing = Ingest(store, frozenset({"a"}), clock=lambda d=days: at(d))  # type: ignore[misc]
            rows = [_op(old_minute, 4), _op(new_minute, seq)]
            assert ing.handle(*_msg("a", seq, "op_minutes", rows, sent=iso(at(days)))).value == (
                "applied"
            )
        kept = prune_hub(store, 90 * DAY_NS, now_ns)  # ids younger than the 90-day cut stay
        assert (kept.minutes, kept.message_ids) == (1, 0)
        assert hub_q.counts(store, "a")["operations"] == 3  # the newest statement, kept
        cut = prune_hub(store, 2 * DAY_NS, now_ns)  # ids older than 8 days go, never younger
        assert (cut.minutes, cut.message_ids) == (0, 2)
        (site,) = hub_q.sites(store)
        assert (site["messages"], site["last_seq"], site["missing"]) == (3, 3, 0)
        seqs = [r[0] for r in store.conn.execute("SELECT seq FROM hub_messages ORDER BY seq")]
        assert seqs == [3]
        with pytest.raises(ValueError):
            prune_hub(store, DAY_NS // 2, now_ns)
    # the command says what went on a hub's database (nothing left to prune now)
    from tests.store.test_backends import run

    res = run("store", "retention", "--keep", "36500d", "--db", hub_db, "-f", "json")
    assert res.exit_code == 0, res.output
    (row,) = json.loads(res.output)
    assert (row["site_minutes"], row["message_ids"]) == (0, 0)
