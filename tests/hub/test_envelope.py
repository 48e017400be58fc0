"""The uplink envelope: what the edge encodes the hub decodes unchanged, and every kind
of bad message is refused with its reason -- nothing else ever comes out."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otconduit.uplink.envelope import MAX_BYTES, Envelope, Refused, decode, encode, topic_for

ASSET = {
    "ip": "10.0.0.5",
    "vlan": -1,
    "mac": "00:11:22:33:44:55",
    "name": None,
    "vendor": "Schneider",
    "model": None,
    "roles": "plc",
    "protocols": "modbus/server",
    "first_seen": 1_700_000_000_000_000_000,
    "last_seen": 1_700_000_060_000_000_000,
    "packets_sent": 10,
    "packets_received": 12,
}


def _env(**kw: Any) -> Envelope:
    base: dict[str, Any] = dict(
        site="plant-a", seq=7, sent_at="2026-12-07T08:00:00.000Z", kind="assets", rows=(ASSET,)
    )
    base.update(kw)
    return Envelope(**base)


def _doc(**kw: Any) -> bytes:
    doc = json.loads(encode(_env()))
    doc.update(kw)
    return json.dumps(doc).encode()


def test_round_trip() -> None:
    env = _env()
    got = decode(env.topic, encode(env))
    assert got == env
    assert env.topic == "conduit/v1/plant-a/assets"


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        ("conduit/v1/plant-a/assets", b"x" * (MAX_BYTES + 1), "oversized"),
        ("conduit/v1/plant-a/assets", b"{not json", "malformed"),
        ("conduit/v1/plant-a/assets", b"\xff\xfe", "malformed"),
        ("conduit/v1/plant-a/assets", b"[1, 2]", "malformed"),
        ("conduit/v1/plant-a/assets", b"[" * 150_000 + b"]" * 150_000, "oversized"),
        ("conduit/v1/plant-a/assets", b"[" * 50_000 + b"]" * 50_000, "malformed"),
        ("conduit/v1/plant-a/assets", _doc(v=2), "malformed"),
        ("conduit/v1/plant-a/assets", _doc(site="plant-b"), "site_mismatch"),
        ("conduit/v1/plant-a/assets", _doc(kind="alerts"), "malformed"),
        ("conduit/v1/plant-a/assets", _doc(seq=0), "malformed"),
        ("conduit/v1/plant-a/assets", _doc(seq=True), "malformed"),
        ("conduit/v1/plant-a/assets", _doc(seq=1 << 63), "malformed"),
        ("conduit/v1/plant-a/assets", _doc(sent_at="yesterday"), "malformed"),
        ("conduit/v1/plant-a/assets", _doc(sent_at="2026-12-07T08:00:00"), "malformed"),
        ("conduit/v1/plant-a/assets", _doc(rows={"a": 1}), "malformed"),
        ("conduit/v1/plant-a/assets", _doc(rows=[1]), "malformed"),
        ("conduit/v1/plant-a/assets", _doc(rows=[{**ASSET, "vlan": "1"}]), "malformed"),
        ("conduit/v1/plant-a/assets", _doc(rows=[{**ASSET, "vlan": False}]), "malformed"),
        ("conduit/v1/plant-a/assets", _doc(rows=[{**ASSET, "vlan": 1 << 64}]), "malformed"),
        ("conduit/v1/plant-a/assets", _doc(rows=[{**ASSET, "extra": 1}]), "malformed"),
        (
            "conduit/v1/plant-a/assets",
            _doc(rows=[{k: v for k, v in ASSET.items() if k != "ip"}]),
            "malformed",
        ),
        ("conduit/v1/plant-a/assets", _doc(rows=[{**ASSET, "ip": "x" * 20000}]), "malformed"),
        (
            "conduit/v1/plant-a/health",
            b'{"v":1,"site":"plant-a","seq":1,"sent_at":"2026-12-07T08:00:00Z","kind":"health","rows":[{"sensor":"s","lag_s":NaN}]}',
            "malformed",
        ),
        (
            "conduit/v1/plant-a/alerts",
            b'{"v":1,"site":"plant-a","seq":1,"sent_at":"2026-12-07T08:00:00Z","kind":"alerts","rows":[{"alert_id":1,"rule":"r","title":"t","category":"c","severity":1,"summary":"s","first_seen":1,"last_seen":2,"count":1,"status":"deleted","change_seq":1}]}',
            "malformed",
        ),
        ("conduit/v1/plant-a", _doc(), "topic"),
        ("conduit/v2/plant-a/assets", _doc(), "topic"),
        ("conduit/v1/plant a/assets", _doc(), "topic"),
        ("conduit/v1/plant-a/secrets", _doc(), "topic"),
        ("conduit/v1/plant-a/assets/x", _doc(), "topic"),
    ],
)
def test_refusals(topic: str, payload: bytes, reason: str) -> None:
    with pytest.raises(Refused) as info:
        decode(topic, payload)
    assert info.value.reason == reason


def test_site_in_topic_must_match_envelope_even_when_both_valid() -> None:
    """A site's credentials let it publish only under its own topic (the broker's ACL);
    an envelope naming another site inside its own topic is refused too."""
    forged = encode(_env(site="plant-b"))
    with pytest.raises(Refused, match="site_mismatch"):
        decode(topic_for("plant-a", "assets"), forged)


VALID = encode(_env())


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_fuzz_only_envelope_or_refused(data: st.DataObject) -> None:
    """Mutated valid messages: the only outcomes are an envelope or Refused."""
    raw = bytearray(VALID)
    for _ in range(data.draw(st.integers(1, 8))):
        op = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        i = data.draw(st.integers(0, max(0, len(raw) - 1)))
        if op == "flip" and raw:
            raw[i] = data.draw(st.integers(0, 255))
        elif op == "cut":
            del raw[i : i + data.draw(st.integers(1, 10))]
        else:
            raw[i:i] = data.draw(st.binary(min_size=1, max_size=6))
    try:
        env = decode("conduit/v1/plant-a/assets", bytes(raw))
    except Refused as exc:
        assert exc.reason in ("malformed", "site_mismatch", "oversized")
    else:
        assert env.site == "plant-a" and env.kind == "assets"


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
        lambda c: st.lists(c) | st.dictionaries(st.text(), c),
        max_leaves=20,
    )
)
def test_fuzz_any_json_rows(rows: Any) -> None:
    payload = json.dumps(
        {
            "v": 1,
            "site": "s",
            "seq": 1,
            "sent_at": "2026-12-07T08:00:00Z",
            "kind": "alerts",
            "rows": rows,
        }
    ).encode()
    try:
        decode("conduit/v1/s/alerts", payload)
    except Refused as exc:
        assert exc.reason == "malformed"
