"""BACnet service data decoded once per distinct body (``services.decode``'s memo) gives
exactly what decoding every body gives, and no two operations share a list or dict."""

from __future__ import annotations

from pathlib import Path

import pytest

from otconduit.model import Operation
from otconduit.protocols.bacnet import services
from tests.protocols import bacnet_helpers as B

CAPTURES = [p for p in (B.ICSNPP / "bacnet_example.pcap", B.ITI / "bacnet_test.pcap") if p.exists()]


def _events(pcap: Path, times: int = 3) -> list[object]:
    """The capture decoded ``times`` over (the memo is warm after the first)."""
    out: list[object] = []
    for _ in range(times):
        events, _ = B.decode_capture(pcap)
        out += events
    return out


@pytest.mark.skipif(not CAPTURES, reason="../shared corpus is absent (BACnet captures)")
@pytest.mark.parametrize("pcap", CAPTURES, ids=lambda p: p.name)
def test_memo_gives_what_decoding_every_body_gives(
    pcap: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    services._MEMO.clear()
    calls = 0
    real = services._decode

    def counted(*args: object) -> object:
        nonlocal calls
        calls += 1
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(services, "_decode", counted)
    with_memo = _events(pcap)
    assert 0 < calls < len(with_memo)  # bodies repeat: the memo answered some
    monkeypatch.setattr(services, "MEMO_BODY", -1)  # every body decoded
    assert _events(pcap) == with_memo


def test_a_remembered_detail_is_a_copy_of_its_own() -> None:
    services._MEMO.clear()
    body = B.ctx_obj(0, 2, 7) + B.ctx(1, 85) + B.opening(3) + B.app_real(1.5) + B.closing(3)
    table = services.COMPLEX_ACKS
    first, problem = services.decode(table, 12, body)  # ReadProperty-ACK
    assert problem is None and first["instance"] == 7
    first["instance"] = -1
    for value in first.values():
        if isinstance(value, list | dict):
            value.clear()
    again, _ = services.decode(table, 12, body)
    assert again["instance"] == 7
    assert again == services._decode(table, 12, body)[0]
    assert again is not services.decode(table, 12, body)[0]


def test_the_memo_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    services._MEMO.clear()
    monkeypatch.setattr(services, "MEMO_ENTRIES", 10)
    for instance in range(25):
        services.decode(services.CONFIRMED_REQUESTS, 12, B.ctx_obj(0, 0, instance) + B.ctx(1, 85))
    assert 0 < len(services._MEMO) <= 10


def test_operations_of_a_warm_memo_share_nothing() -> None:
    if not CAPTURES:
        pytest.skip("../shared corpus is absent (BACnet captures)")
    ops = [e for e in _events(CAPTURES[0], 2) if isinstance(e, Operation)]
    seen: dict[int, int] = {}
    for i, op in enumerate(ops):
        for value in (op.detail or {}).values():
            if isinstance(value, list | dict) and value:
                assert seen.setdefault(id(value), i) == i, "two operations share a value"
