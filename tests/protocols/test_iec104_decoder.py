"""The IEC 104 connection decoder: activation matching, U-format exchanges, monitor
information, sequence numbers, identity, recognition, dangerous operations, and the
same events however the stream is cut."""

from __future__ import annotations

import random

import pytest

from otconduit.detect.attack import attack_table
from otconduit.detect.rules import CATEGORIES, RULES
from otconduit.model import IdentityClaim, OpClass, Operation, OpStatus
from otconduit.protocols.base import DecoderEvent
from otconduit.protocols.danger import SEVERITIES
from otconduit.protocols.events import Malformed
from otconduit.protocols.iec104 import (
    DANGEROUS,
    SPEC,
    Iec104ConnectionDecoder,
    dangerous,
    iec104_verdict,
)
from otconduit.protocols.iec104.danger import DEFINES, classify
from tests.protocols import iec104_helpers as H
from tests.protocols.iec104_helpers import asdu, i_frame, s_frame

C2S, S2C = 0, 1


def ops(events: list[DecoderEvent]) -> list[Operation]:
    return [e for e in events if isinstance(e, Operation)]


def malformed(events: list[DecoderEvent]) -> list[Malformed]:
    return [e for e in events if isinstance(e, Malformed)]


def sc(cot: int, sco: int, *, negative: bool = False, ioa: int = 4500) -> bytes:
    return asdu(45, cot, [(ioa, bytes([sco]))], negative=negative)


class TestActivations:
    def test_select_then_execute_with_termination(self) -> None:
        events = H.decode(
            [
                (C2S, H.STARTDT_ACT),
                (S2C, H.STARTDT_CON),
                (C2S, i_frame(0, 0, sc(6, 0x81))),
                (S2C, i_frame(0, 1, sc(7, 0x81))),
                (C2S, i_frame(1, 1, sc(6, 0x01))),
                (S2C, i_frame(1, 2, sc(7, 0x01))),
                (S2C, i_frame(2, 2, sc(10, 0x01))),
            ]
        )
        start, select, execute = ops(events)
        assert (start.function, start.function_code, start.operation) == (
            "STARTDT",
            0x107,
            OpClass.SESSION,
        )
        assert (start.request_frame, start.response_frame, start.status) == (1, 2, OpStatus.OK)
        assert (select.function, select.operation, select.detail["select"]) == (
            "C_SC_NA_1",
            OpClass.CONTROL,
            True,
        )
        assert (select.request_frame, select.response_frame) == (3, 4)
        assert "terminated" not in select.detail and select.values == (1,)
        assert execute.detail["select"] is False and execute.detail["terminated"] is True
        assert (
            execute.request_frame,
            execute.response_frame,
            execute.detail["termination_frame"],
        ) == (5, 6, 7)
        assert (execute.unit, execute.address, execute.transaction_id) == (1, 4500, 1)
        assert (execute.src_ip, execute.dst_ip, execute.latency_ns) == (
            "10.0.0.1",
            "10.0.0.2",
            1_000_000_000,
        )
        assert execute.detail["confirmation"] == "positive" and execute.detail["state"] == "on"

    def test_negative_and_refused(self) -> None:
        events = H.decode(
            [
                (C2S, i_frame(0, 0, asdu(46, 6, [(15000, b"\x82")]))),
                (S2C, i_frame(0, 1, asdu(46, 7, [(15000, b"\x82")], negative=True))),
                (C2S, i_frame(1, 1, sc(6, 0x01, ioa=9))),
                (S2C, i_frame(1, 2, sc(47, 0x01, ioa=9, negative=True))),
                (C2S, i_frame(2, 2, asdu(50, 6, [(7, b"\x00\x00\xa0\x41\x00")]))),
                (S2C, i_frame(2, 3, asdu(50, 44, [(7, b"\x00\x00\xa0\x41\x00")], negative=True))),
            ]
        )
        dc, unknown_ioa, unknown_type = ops(events)
        assert (dc.status, dc.exception, dc.detail["confirmation"]) == (
            OpStatus.EXCEPTION,
            "negative_confirmation",
            "negative",
        )
        assert (unknown_ioa.exception, unknown_ioa.exception_code) == ("unknown_ioa", 47)
        assert (unknown_type.exception, unknown_type.exception_code) == ("unknown_type", 44)
        assert 44 in SPEC.unsupported_codes

    def test_interrogation_counts_its_answers(self) -> None:
        events = H.decode(
            [
                (C2S, i_frame(0, 0, asdu(100, 6, [(0, b"\x14")], ca=0xFFFF))),
                (S2C, i_frame(0, 1, asdu(100, 7, [(0, b"\x14")], ca=0xFFFF))),
                (S2C, i_frame(1, 1, asdu(1, 20, [(1, b"\x01"), (0, b"\x00")], sq=True, ca=7))),
                (S2C, i_frame(2, 1, asdu(13, 20, [(1300, b"\x00\x00\x80\x3f\x00")], ca=7))),
                (S2C, i_frame(3, 1, asdu(100, 10, [(0, b"\x14")], ca=0xFFFF))),
            ]
        )
        sp, me, gi = ops(events)
        assert (sp.function, sp.operation, sp.values, sp.quantity) == (
            "M_SP_NA_1",
            OpClass.READ,
            (1, 0),
            2,
        )
        assert (sp.src_ip, sp.dst_ip, sp.detail["direction"]) == ("10.0.0.1", "10.0.0.2", "monitor")
        assert sp.detail["points"] == [{"ioa": 1, "value": 1}, {"ioa": 2, "value": 0}]
        assert me.detail["points"][0]["value"] == 1.0 and me.values is None
        assert (gi.function, gi.operation, gi.detail["scope"]) == (
            "C_IC_NA_1",
            OpClass.READ,
            "station",
        )
        assert (gi.detail["answers"], gi.detail["answer_objects"], gi.detail["terminated"]) == (
            2,
            3,
            True,
        )
        claims = [e for e in events if isinstance(e, IdentityClaim)]
        assert [(c.ip, c.attribute, c.value) for c in claims] == [
            ("10.0.0.2", "iec104_common_address", "7")
        ]

    def test_read_command_is_answered_by_its_object(self) -> None:
        events = H.decode(
            [
                (C2S, i_frame(0, 0, asdu(102, 5, [(1300, b"")]))),
                (C2S, i_frame(1, 0, asdu(102, 6, [(1300, b"")]))),
                (S2C, i_frame(0, 2, asdu(13, 5, [(1300, b"\x00\x00\x20\x41\x00")]))),
            ]
        )
        read_req_cot5, read = ops(events)
        assert read_req_cot5.detail["cot"] == "request"  # not an activation: its own op
        assert read.function == "C_RD_NA_1" and read.response_frame == 3
        assert read.detail["response_points"] == [{"ioa": 1300, "value": 10.0}]

    def test_clock_sync_and_reset_end_at_confirmation(self) -> None:
        tag = H.cp56(2025, 3, 1, 12, 0, 0)
        events = H.decode(
            [
                (C2S, i_frame(0, 0, asdu(103, 6, [(0, tag)]))),
                (S2C, i_frame(0, 1, asdu(103, 7, [(0, tag)]))),
                (C2S, i_frame(1, 1, asdu(105, 6, [(0, b"\x01")]))),
                (S2C, i_frame(1, 2, asdu(105, 7, [(0, b"\x01")]))),
            ]
        )
        cs, rp = ops(events)
        assert (cs.operation, cs.detail["time"], cs.response_frame) == (
            OpClass.WRITE,
            "2025-03-01 12:00:00.000",
            2,
        )
        assert (rp.operation, rp.detail["reset"], rp.response_frame) == (
            OpClass.CONTROL,
            "general_reset",
            4,
        )
        assert "terminated" not in cs.detail and "terminated" not in rp.detail

    def test_unanswered_superseded_expired_and_orphans(self) -> None:
        dec = Iec104ConnectionDecoder(H.ENDPOINTS)
        dec.feed(C2S, i_frame(0, 0, sc(6, 0x01)), 1, 0)
        dec.feed(C2S, i_frame(1, 0, sc(6, 0x01)), 2, 1_000_000_000)  # same key again
        first = ops(dec.events())
        assert [(o.request_frame, o.status, o.detail.get("superseded")) for o in first] == [
            (1, OpStatus.NO_RESPONSE, True)
        ]
        dec.feed(S2C, i_frame(0, 2, sc(7, 0x01)), 3, 2_000_000_000)
        dec.feed(S2C, i_frame(1, 2, sc(10, 0x01, ioa=77)), 4, 3_000_000_000)  # orphan term
        dec.feed(S2C, H.TESTFR_ACT, 5, 70_000_000_000)  # the execute waited too long
        later = ops(dec.events())
        assert [
            (o.request_frame, o.response_frame, o.detail.get("orphan_response")) for o in later
        ] == [
            (None, 4, True),
            (2, 3, None),
        ]
        assert later[1].detail["terminated"] is False and later[1].status is OpStatus.OK
        (testfr,) = ops(dec.finish())
        assert (testfr.function, testfr.status, testfr.src_ip) == (
            "TESTFR",
            OpStatus.NO_RESPONSE,
            "10.0.0.2",
        )

    def test_u_format_exchanges(self) -> None:
        events = H.decode(
            [
                (C2S, H.TESTFR_ACT),
                (S2C, H.TESTFR_CON),
                (C2S, H.STOPDT_ACT),
                (S2C, H.STOPDT_CON),
                (S2C, H.STARTDT_CON),
            ]
        )
        assert [(o.function, o.operation, o.status, o.detail) for o in ops(events)] == [
            ("TESTFR", OpClass.DIAGNOSTIC, OpStatus.OK, {}),
            ("STOPDT", OpClass.SESSION, OpStatus.OK, {}),
            ("STARTDT", OpClass.SESSION, OpStatus.OK, {"orphan_response": True}),
        ]


class TestSequenceNumbers:
    def test_gaps_and_acknowledgements(self) -> None:
        dec = Iec104ConnectionDecoder(H.ENDPOINTS)
        spont = asdu(1, 3, [(1, b"\x01")])
        for frame, (d, data) in enumerate(
            [
                (S2C, i_frame(10, 0, spont)),
                (S2C, i_frame(11, 0, spont)),
                (S2C, i_frame(15, 0, spont)),  # 12..14 missing
                (C2S, s_frame(16)),
                (C2S, s_frame(40)),  # acknowledges APDUs never sent
            ],
            1,
        ):
            dec.feed(d, data, frame, frame)
        result = ops(dec.events() + dec.finish())
        assert [o.detail.get("ns_gap") for o in result] == [None, None, 3]
        assert [o.transaction_id for o in result] == [10, 11, 15]
        assert (dec.sequence_gaps, dec.missing_apdus, dec.ack_errors) == (1, 3, 1)

    def test_a_capture_gap_forgets_the_expected_numbers(self) -> None:
        dec = Iec104ConnectionDecoder(H.ENDPOINTS)
        spont = asdu(1, 3, [(1, b"\x01")])
        dec.feed(S2C, i_frame(1, 0, spont), 1, 1)
        dec.gap(S2C, 100, 2, 2)
        dec.feed(S2C, i_frame(9, 0, spont), 3, 3)
        assert dec.sequence_gaps == 0
        assert all("ns_gap" not in o.detail for o in ops(dec.events() + dec.finish()))


class TestMalformed:
    def test_asdu_problems_make_malformed_operations(self) -> None:
        bad = asdu(13, 3, [(1, b"\x00" * 5)])[:-2]
        events = H.decode([(S2C, i_frame(0, 0, bad)), (S2C, bytes([0x68, 4, 0x0F, 0, 0, 0]))])
        (op,) = ops(events)
        assert op.status is OpStatus.MALFORMED and "M_ME_NC_1" in op.detail["malformed_reason"]
        reasons = [m.reason for m in malformed(events)]
        assert reasons[0].startswith("ASDU M_ME_NC_1: 6 octets")
        assert reasons[1].startswith("APCI: U-format control octet 0x0f")


def conversation() -> list[tuple[int, bytes, int]]:
    """(direction, bytes, frame): commands, interrogation, monitor data, garbage, U/S."""
    ts = H.cp56(2024, 5, 5, 5, 5, 5)
    return [
        (C2S, H.STARTDT_ACT, 1),
        (S2C, H.STARTDT_CON + i_frame(0, 0, asdu(70, 4, [(0, b"\x00")])), 2),
        (C2S, b"\x00\x17" + i_frame(0, 1, asdu(100, 6, [(0, b"\x14")])), 3),
        (
            S2C,
            i_frame(1, 1, asdu(100, 7, [(0, b"\x14")]))
            + i_frame(2, 1, asdu(3, 20, [(5, b"\x02")])),
            4,
        ),
        (S2C, i_frame(3, 1, asdu(100, 10, [(0, b"\x14")])), 5),
        (C2S, s_frame(4) + i_frame(1, 4, asdu(58, 6, [(77, b"\x81" + ts)])), 6),
        (S2C, i_frame(4, 2, asdu(58, 7, [(77, b"\x81" + ts)])) + b"\x68\x02junk", 7),
        (C2S, i_frame(2, 5, asdu(58, 6, [(77, b"\x01" + ts)])), 8),
        (S2C, i_frame(5, 3, asdu(58, 7, [(77, b"\x01" + ts)])), 9),
        (S2C, i_frame(6, 3, asdu(58, 10, [(77, b"\x01" + ts)])), 10),
        (S2C, i_frame(9, 3, asdu(36, 3, [(1300, b"\x00\x00\xc0\x3f\x00" + ts)])), 11),
        (C2S, H.TESTFR_ACT + H.STOPDT_ACT, 12),
        (S2C, H.TESTFR_CON, 13),
    ]


def feed_split(
    split: str, seed: int = 0, tail: bytes = b""
) -> tuple[list[DecoderEvent], list[DecoderEvent]]:
    """(events before finish, events of finish) with the bytes cut as ``split`` says."""
    rng = random.Random(seed)
    dec = Iec104ConnectionDecoder(H.ENDPOINTS)
    out: list[DecoderEvent] = []
    packets = conversation() + ([(C2S, tail, 14)] if tail else [])
    for d, data, frame in packets:
        if split == "whole":
            pieces = [data]
        elif split == "bytes":
            pieces = [data[i : i + 1] for i in range(len(data))]
        else:
            cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(1, 6))))
            pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
        for piece in pieces:
            dec.feed(d, piece, frame, frame * 1000)
            out += dec.events()
    return out, dec.finish()


class TestSegmentation:
    def test_conversation(self) -> None:
        before, end = feed_split("whole")
        result = ops(before + end)
        assert [(o.function, o.status) for o in result] == [
            ("STARTDT", OpStatus.OK),
            ("M_EI_NA_1", OpStatus.OK),
            ("M_DP_NA_1", OpStatus.OK),
            ("C_IC_NA_1", OpStatus.OK),
            ("C_SC_TA_1", OpStatus.OK),
            ("C_SC_TA_1", OpStatus.OK),
            ("M_ME_TF_1", OpStatus.OK),
            ("TESTFR", OpStatus.OK),
            ("STOPDT", OpStatus.NO_RESPONSE),
        ]
        assert result[3].detail["answers"] == 1
        assert result[5].detail["terminated"] is True
        assert result[6].detail["ns_gap"] == 2
        assert result[6].detail["points"][0]["time"] == "2024-05-05 05:05:00.005"
        assert [m.frame for m in malformed(before + end)] == [3, 7]

    @pytest.mark.parametrize("split", ["bytes", "random"])
    def test_same_events_however_split(self, split: str) -> None:
        expected = feed_split("whole")
        for seed in range(8 if split == "random" else 1):
            assert feed_split(split, seed) == expected

    @pytest.mark.parametrize("tail", [H.TESTFR_ACT[:3], i_frame(3, 7, sc(6, 1))[:9], b"\x68"])
    def test_trailing_bytes_change_nothing_before_the_end(self, tail: bytes) -> None:
        before, end = feed_split("whole")
        longer_before, longer_end = feed_split("whole", tail=tail)
        assert longer_before == before
        (extra,) = malformed(longer_end)
        assert extra.reason.startswith("truncated message at end of stream") and extra.frame == 14
        assert [e for e in longer_end if not isinstance(e, Malformed)] == [
            e for e in end if not isinstance(e, Malformed)
        ]


class TestRecognitionAndData:
    @pytest.mark.parametrize(
        ("client", "server", "known", "verdict"),
        [
            (H.STARTDT_ACT, b"", False, True),
            (H.TESTFR_ACT + H.TESTFR_ACT, b"", False, True),
            (b"", i_frame(0, 0, asdu(13, 3, [(1, bytes(5))])), True, True),
            (b"", i_frame(0, 0, asdu(13, 3, [(1, bytes(5))])), False, None),
            (H.STARTDT_ACT[:3], b"", True, None),
            (b"GET / HTTP/1.1\r\n", b"HTTP/1.1 200 OK\r\n", True, False),
            (b"\x68\x04\x0f\x00\x00\x00", b"\x16\x03\x01\x02\x00\x01", True, False),
            (i_frame(0, 0, bytes([25, 1, 3, 0, 1, 0, 1, 0, 0, 0])), bytes(8), True, False),
        ],
    )
    def test_verdict(self, client: bytes, server: bytes, known: bool, verdict: bool | None) -> None:
        assert iec104_verdict(client, server, known) is verdict

    def test_spec(self) -> None:
        assert SPEC.name == "iec104" and SPEC.transports == frozenset({"tcp"})
        assert SPEC.ports == frozenset({2404})
        assert isinstance(SPEC.factory(H.ENDPOINTS), Iec104ConnectionDecoder)

    def test_dangerous_entries_name_known_rules_and_techniques(self) -> None:
        table = attack_table()
        rule_ids = set(RULES) | {d.id for d in DEFINES}
        for entry in DANGEROUS:
            assert entry.techniques and all(t in table.techniques for t in entry.techniques)
            assert entry.rule in rule_ids, entry
            assert entry.severity in (None, *SEVERITIES)
        for definition in DEFINES:
            assert definition.category in CATEGORIES and definition.id.startswith("iec104-")
            assert all(t in table.techniques for t in definition.techniques)

    def test_only_activations_are_dangerous(self) -> None:
        def rules(function: str, detail: dict[str, object]) -> list[tuple[str, str | None]]:
            row = {"function": function, "detail": detail, "operation": "control"}
            return [(h.rule, h.severity) for h in classify(row)]

        assert rules("C_SC_NA_1", {"cot_code": 6, "select": False}) == [("direct-operate", None)]
        assert rules("C_SC_NA_1", {"cot_code": 6, "select": True}) == [("direct-operate", "low")]
        assert rules("C_SC_NA_1", {"cot_code": 3, "select": False}) == []  # mirrored
        assert rules("C_SC_NA_1", {"orphan_response": True}) == []
        assert rules("C_RP_NA_1", {"cot_code": 6}) == [("device-restart", None)]
        assert rules("C_CI_NA_1", {"cot_code": 6, "freeze": "freeze_and_reset"}) == [
            ("process-write", "low"),
            ("iec104-interrogation", None),
        ]
        assert rules("STOPDT", {}) == [("iec104-stop-data-transfer", None)]
        assert rules("M_ME_NC_1", {"cot_code": 3}) == []
        assert {d.key for d in dangerous("C_SE_NC_1", {"select": False})} == {"setpoint-command"}
