"""TPKT (RFC 1006) and COTP (ISO 8073) framing of one direction."""

from __future__ import annotations

import pytest

from otconduit.protocols.events import NEED_DATA, Malformed
from otconduit.protocols.s7 import CotpConnect, CotpData, CotpDisconnect, CotpOther, TpktStream
from otconduit.protocols.s7.tpkt import plausible_tpkt

from .s7_helpers import cc, cr, dr, dt, segmented, tpkt


def drain(stream: TpktStream) -> list[object]:
    return list(stream.events())


def test_single_dt_is_one_tsdu() -> None:
    s = TpktStream()
    s.feed(dt(b"\x32abc"), 7, 70)
    [ev] = drain(s)
    assert isinstance(ev, CotpData)
    assert (ev.payload, ev.tpdus, ev.frame, ev.ts_ns, ev.offset) == (b"\x32abc", 1, 7, 70, 0)
    assert s.next_event() is NEED_DATA


def test_segmented_dt_joins_up_to_eot() -> None:
    payload = bytes(range(200))
    s = TpktStream()
    wire = segmented(payload, 64)  # 4 DTs, EOT only on the last
    s.feed(wire[:80], 1, 10)  # the first DT (71 bytes) and part of the second
    assert drain(s) == []
    s.feed(wire[80:], 2, 20)
    [ev] = drain(s)
    assert isinstance(ev, CotpData)
    assert ev.payload == payload and ev.tpdus == 4
    assert (ev.first_frame, ev.frame) == (1, 2)


def test_empty_dt_without_eot_is_a_harmless_prefix() -> None:
    # S7-1200 HMIs send 03 00 00 07 02 f0 00 before each request (corpus s7-1200-hmi).
    s = TpktStream()
    s.feed(bytes.fromhex("0300000702f000") + dt(b"\x72\x01"), 1, 1)
    [ev] = drain(s)
    assert isinstance(ev, CotpData) and ev.payload == b"\x72\x01" and ev.tpdus == 2


def test_connection_request_parameters() -> None:
    s = TpktStream()
    s.feed(cr(b"\x01\x00", b"\x01\x02") + cc() + dr(0x80), 3, 30)
    req, conf, disc = drain(s)
    assert isinstance(req, CotpConnect) and req.code == 0xE0
    assert (req.calling_tsap, req.called_tsap, req.tpdu_size) == (b"\x01\x00", b"\x01\x02", 1024)
    assert req.src_ref == 1
    assert isinstance(conf, CotpConnect) and conf.code == 0xD0
    assert isinstance(disc, CotpDisconnect) and disc.reason == 0x80


def test_other_tpdus_are_reported_not_dropped() -> None:
    s = TpktStream()
    s.feed(tpkt(bytes([4, 0x60, 0, 1, 0])), 1, 1)  # AK: LI 4, code 0x6x, dst-ref, nr
    [ev] = drain(s)
    assert isinstance(ev, CotpOther) and ev.code == 0x60


def test_bad_tpkt_header_resyncs_on_next_plausible_header() -> None:
    s = TpktStream()
    junk = b"\x01\x02\x03\x04\x03\x00\x00"  # contains a 03 00 that is not a header
    s.feed(junk + dt(b"\x32x"), 5, 50)
    skipped, ev = drain(s)
    assert isinstance(skipped, Malformed)
    assert skipped.data == junk and skipped.offset == 0 and "invalid TPKT header" in skipped.reason
    assert isinstance(ev, CotpData) and ev.payload == b"\x32x" and ev.offset == len(junk)
    assert s.resyncs == 1 and s.bytes_skipped == len(junk)


def test_bad_cotp_inside_good_tpkt_costs_one_packet() -> None:
    s = TpktStream()
    bad = tpkt(bytes([9, 0xF0, 0x80]))  # LI 9 exceeds the packet
    s.feed(bad + dt(b"\x32"), 1, 1)
    first, second = drain(s)
    assert isinstance(first, Malformed) and "length indicator" in first.reason
    assert first.data == bad
    assert isinstance(second, CotpData)


def test_unknown_tpdu_code_is_malformed() -> None:
    s = TpktStream()
    s.feed(tpkt(bytes([2, 0x30, 0x80])), 1, 1)
    [ev] = drain(s)
    assert isinstance(ev, Malformed) and "unknown COTP TPDU code" in ev.reason


def test_gap_reports_partial_tsdu_and_packet_then_resyncs() -> None:
    s = TpktStream()
    wire = segmented(b"A" * 40, 20)
    s.feed(wire[: len(wire) - 5], 1, 1)  # first DT whole, second cut
    assert drain(s) == []
    s.gap(100, 2, 2)
    s.feed(b"zz" + dt(b"\x32ok"), 3, 3)
    events = drain(s)
    reasons = [e.reason for e in events if isinstance(e, Malformed)]
    assert any("TSDU without EOT before gap" in r for r in reasons)
    assert any("truncated TPKT packet before gap" in r for r in reasons)
    assert any("after a gap" in r for r in reasons)
    data = [e for e in events if isinstance(e, CotpData)]
    assert len(data) == 1 and data[0].payload == b"\x32ok"
    assert data[0].offset == len(wire) - 5 + 100 + 2


def test_end_reports_truncated_packet() -> None:
    s = TpktStream()
    s.feed(dt(b"\x32abc")[:-1], 1, 1)
    s.end()
    [ev] = drain(s)
    assert isinstance(ev, Malformed) and "truncated TPKT packet at end of stream" in ev.reason
    with pytest.raises(RuntimeError):
        s.feed(b"x", 2, 2)


def test_oversized_tsdu_is_dropped_up_to_eot() -> None:
    s = TpktStream(max_tsdu=100)
    s.feed(segmented(b"B" * 300, 80) + dt(b"\x32next"), 1, 1)
    events = drain(s)
    assert isinstance(events[0], Malformed) and "exceeds 100 bytes" in events[0].reason
    assert [e.payload for e in events if isinstance(e, CotpData)] == [b"\x32next"]
    assert s.buffered == 0


def test_garbage_is_reported_in_bounded_runs() -> None:
    s = TpktStream(skip_limit=64)
    s.feed(b"\xff" * 1000, 1, 1)
    events = drain(s)
    assert all(isinstance(e, Malformed) and len(e.data) <= 64 for e in events)
    assert s.buffered < 64
    assert sum(len(e.data) for e in events if isinstance(e, Malformed)) + s.buffered == 1000


def test_plausible_header_rules() -> None:
    good = dt(b"\x32")
    assert plausible_tpkt(good, 0)
    assert not plausible_tpkt(good[:5], 0)  # needs 6 bytes
    assert not plausible_tpkt(b"\x03\x00\x00\x06\x02\xf0", 0)  # length below 7
    assert not plausible_tpkt(b"\x03\x00\x00\x07\x05\xf0\x80", 0)  # LI beyond the packet
    assert not plausible_tpkt(b"\x03\x00\x00\x07\x02\x30\x80", 0)  # no such TPDU code
    assert not plausible_tpkt(b"\x04\x00\x00\x07\x02\xf0\x80", 0)  # TPKT version 4
