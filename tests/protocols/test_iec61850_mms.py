"""The MMS decoder on hand-built conversations (encoders in :mod:`iec61850_helpers`,
written from ISO 9506-2, X.225/X.226/X.227 and RFC 1006): association with identity and
password, services and their details, errors and rejects, pairing, recognition next to
S7comm, the rules' examples, and the same events however the bytes are cut."""

from __future__ import annotations

import json
import random

import pytest

from otconduit.model import IdentityClaim, OpClass, Operation, OpStatus
from otconduit.protocols.base import DecoderEvent
from otconduit.protocols.events import Malformed
from otconduit.protocols.iec61850 import SPEC, MmsDecoder, parse_mms, unwrap, verdict
from otconduit.protocols.iec61850 import danger as D
from otconduit.protocols.iec61850 import services as S
from tests.streams import flows

from . import iec61850_helpers as H

Msg = tuple[int, bytes]


def run(messages: list[Msg], pieces: str = "whole", seed: int = 0) -> list[DecoderEvent]:
    dec = MmsDecoder(H.ENDPOINTS)
    rng = random.Random(seed)
    out: list[DecoderEvent] = []
    for frame, (d, data) in enumerate(messages, 1):
        if pieces == "bytes":
            chunks = [data[i : i + 1] for i in range(len(data))]
        elif pieces == "random":
            cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, 4)))
            chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
        else:
            chunks = [data]
        for c in chunks:
            dec.feed(d, c, frame, frame * 1000)
        out += dec.events()
    return out + dec.finish()


def ops(events: list[DecoderEvent]) -> list[Operation]:
    return [e for e in events if isinstance(e, Operation)]


def association(password: str | None = None) -> list[Msg]:
    req = H.dt(H.session_connect(H.cp_type(H.aarq(H.initiate_request(), password=password))))
    resp = H.dt(H.session_connect(H.cp_type(H.aare(H.initiate_response())), si=14))
    return [(0, H.cr()), (1, H.cc()), (0, req), (1, resp)]


def data(mms: bytes) -> bytes:
    return H.dt(H.session_data(mms))


CONVERSATION: list[Msg] = [
    *association(),
    (0, data(H.confirmed_request(1, H.prim(2, b"")))),
    (1, data(H.confirmed_response(1, H.identify_response("ACME Relays", "R-650", "7.20")))),
    (
        0,
        data(
            H.confirmed_request(2, H.read_request(H.domain_name("IED1LD0", "MMXU1$MX$TotW$mag$f")))
        ),
    ),
    (
        1,
        data(
            H.confirmed_response(2, H.read_response(H.prim(7, b"\x08" + bytes.fromhex("42c80000"))))
        ),
    ),
    (
        0,
        data(
            H.confirmed_request(
                3,
                H.write_request(
                    [H.domain_name("IED1LD0", "CSWI1$CO$Pos$Oper")], [H.ctx(2, H.prim(3, b"\xff"))]
                ),
            )
        ),
    ),
    (1, data(H.confirmed_response(3, H.write_response(H.prim(1, b""))))),
    (0, data(H.confirmed_request(4, H.ctx(76, H.file_name("COMTRADE/a.cfg"))))),
    (1, data(H.confirmed_error(4, 11, 7))),
    (
        0,
        data(
            H.confirmed_request(
                5, H.ctx(1, H.ctx(0, H.prim(0, b"\x09")) + H.ctx(1, H.prim(0, b"")))
            )
        ),
    ),
    (1, data(H.reject(5, 1, 1))),
    (
        1,
        data(
            H.ctx(
                3,
                H.ctx(
                    0,
                    H.ctx(1, H.prim(0, b"RPT1"))
                    + H.ctx(0, H.prim(10, b"RPT1") + H.prim(5, b"\x07")),
                ),
            )
        ),
    ),
    (0, data(H.CONCLUDE_REQUEST)),
    (1, data(H.CONCLUDE_RESPONSE)),
]


def test_a_whole_conversation() -> None:
    events = run(CONVERSATION)
    assert not [e for e in events if isinstance(e, Malformed)]
    by_fn = {o.function: o for o in ops(events)}
    init = by_fn["initiate"]
    assert init.status is OpStatus.OK and init.operation is OpClass.SESSION
    assert init.detail["application_context"] == "1.0.9506.2.3"
    assert init.detail["acse"] == "AARQ" and init.detail["response_acse"] == "AARE"
    assert init.detail["result"] == "accepted" and init.detail["version"] == 1
    ident = by_fn["identify"]
    assert (ident.src_ip, ident.dst_ip) == ("10.0.0.1", "10.0.0.2")
    assert ident.detail["vendor"] == "ACME Relays" and ident.operation is OpClass.IDENTITY
    claims = {(c.ip, c.attribute, c.value) for c in events if isinstance(c, IdentityClaim)}
    assert claims == {
        ("10.0.0.2", "vendor", "ACME Relays"),
        ("10.0.0.2", "model", "R-650"),
        ("10.0.0.2", "revision", "7.20"),
    }
    read = by_fn["read"]
    assert read.detail["variables"] == ["IED1LD0/MMXU1$MX$TotW$mag$f"]
    assert read.detail["values"] == [100.0] and read.latency_ns == 1000
    write = by_fn["write"]
    assert write.operation is OpClass.CONTROL
    assert write.detail["control_variables"] == ["IED1LD0/CSWI1$CO$Pos$Oper"]
    assert write.detail["values"] == [[True]] and write.status is OpStatus.OK
    delete = by_fn["fileDelete"]
    assert delete.detail["file"] == "COMTRADE/a.cfg" and delete.status is OpStatus.EXCEPTION
    assert delete.exception == "file: file-non-existent" and delete.exception_code == (11 << 8) | 7
    names = by_fn["getNameList"]
    assert names.exception == "reject confirmed-requestPDU: unrecognized-service"
    assert names.exception_code == S.UNRECOGNIZED_SERVICE
    assert names.detail["object_class"] == "domain"
    report = by_fn["informationReport"]
    assert report.detail["unsolicited"] and report.detail["from_server"]
    assert report.detail["variable_list"] == "RPT1" and report.detail["values"] == ["RPT1", 7]
    assert report.src_ip == "10.0.0.2"
    assert by_fn["conclude"].status is OpStatus.OK
    json.dumps([o.detail for o in ops(events)])  # details are storable


@pytest.mark.parametrize("pieces", ["bytes", "random"])
def test_same_events_however_the_bytes_are_cut(pieces: str) -> None:
    whole = run(CONVERSATION)
    for seed in range(3):
        assert run(CONVERSATION, pieces, seed) == whole


def test_a_response_delivered_before_its_request_still_pairs() -> None:
    """TCP reassembly may release the server's side first after a hole."""
    req = (0, data(H.confirmed_request(9, H.read_request(H.prim(0, b"x")))))
    resp = (1, data(H.confirmed_response(9, H.read_response(H.prim(5, b"\x01")))))
    dec = MmsDecoder(H.ENDPOINTS)
    dec.feed(resp[0], resp[1], 2, 2000)
    dec.feed(req[0], req[1], 1, 1000)
    (op,) = ops(dec.finish())
    assert (op.request_frame, op.response_frame, op.status) == (1, 2, OpStatus.OK)


def test_unanswered_and_orphans() -> None:
    events = run(
        [
            (0, data(H.confirmed_request(1, H.read_request(H.prim(0, b"x"))))),
            (1, data(H.confirmed_response(7, H.read_response()))),
        ]
    )
    statuses = sorted((o.status, bool(o.detail.get("orphan_response"))) for o in ops(events))
    assert statuses == [(OpStatus.NO_RESPONSE, False), (OpStatus.OK, True)]


def test_password_association_is_flagged_and_the_password_not_kept() -> None:
    events = run(association("hunter2"))
    (op,) = ops(events)
    assert op.detail["authentication"] == "password" and op.detail["mechanism"] == "2.2.3.1"
    assert "hunter2" not in json.dumps(op.detail)
    view = {"protocol": op.protocol, "function": op.function, "detail": op.detail}
    assert [h.rule for h in SPEC.classify(view)] == ["auth-operation"]  # type: ignore[misc]


def test_rejected_association() -> None:
    req = H.dt(H.session_connect(H.cp_type(H.aarq(H.initiate_request()))))
    resp = H.dt(H.session_connect(H.cp_type(H.aare(H.initiate_response(), result=1)), si=14))
    (op,) = ops(run([(0, req), (1, resp)]))
    assert op.status is OpStatus.EXCEPTION and op.exception == "association rejected-permanent"


def test_bare_mms_without_osi_layers() -> None:
    """Some stacks and tools put MMS straight into COTP data."""
    events = run(
        [
            (0, H.dt(H.initiate_request())),
            (1, H.dt(H.initiate_response())),
            (0, H.dt(H.confirmed_request(1, H.ctx(40, H.prim(0, b"P1"))))),
            (1, H.dt(H.confirmed_response(1, H.prim(40, b"")))),
        ]
    )
    fns = [(o.function, o.status, o.detail.get("spdu")) for o in ops(events)]
    assert fns == [("initiate", OpStatus.OK, None), ("start", OpStatus.OK, None)]
    assert ops(events)[1].detail["program_invocation"] == "P1"


def test_garbage_is_reported_not_raised() -> None:
    events = run(
        [(0, H.dt(b"\x0d\x05\x01\x02")), (0, H.dt(b"\xa0\x05\x02\x01")), (1, H.dt(b"\x99\x00"))]
    )
    assert len([e for e in events if isinstance(e, Malformed)]) == 3
    assert not ops(events)


def test_parsers_report_instead_of_raising() -> None:
    assert isinstance(parse_mms(b""), str)
    assert isinstance(parse_mms(b"\xa0\x80\x00\x00"), str)  # indefinite length
    assert isinstance(unwrap(b"\x0e\x89\x05"), str)
    pdu = parse_mms(H.confirmed_request(1, H.ctx(5, b"\x30\x00")))
    assert not isinstance(pdu, str) and pdu.problem and pdu.service == 5


def test_recognised_apart_from_s7() -> None:
    s7_setup = H.dt(bytes.fromhex("32010000000000080000f0000001000101e0"))
    assert verdict(H.cr() + H.dt(H.session_data(H.CONCLUDE_REQUEST)), b"") is True
    assert verdict(H.cr() + H.dt(H.initiate_request()), b"") is True
    assert verdict(H.cr() + s7_setup, b"") is False
    assert verdict(H.cr(), H.cc()) is None
    assert verdict(b"GET / HTTP/1.1\r\n", b"HTTP/1.1 200 OK\r\n") is False


@pytest.mark.parametrize("rule", SPEC.rules, ids=lambda r: r.rule)
def test_every_rule_is_raised_by_its_examples(rule: D.DangerRule) -> None:
    for example in rule.examples:
        events = run(list(example.messages))
        raised = {
            h.rule
            for o in ops(events)
            for h in D.classify(
                json.loads(
                    json.dumps(
                        {
                            "protocol": o.protocol,
                            "function": o.function,
                            "operation": str(o.operation),
                            "function_code": o.function_code,
                            "detail": o.detail,
                        }
                    )
                )
            )
        }
        assert rule.rule in raised, (rule.rule, [o.function for o in ops(events)])


def test_control_select_is_low() -> None:
    write = H.write_request([H.domain_name("IED1LD0", "XCBR1$CO$Pos$SBOw")], [H.prim(3, b"\xff")])
    (op,) = ops(run([(0, data(H.confirmed_request(1, write)))]))
    (hit,) = D.classify({"protocol": "mms", "function": op.function, "detail": op.detail})
    assert (hit.rule, hit.severity) == ("direct-operate", "low")


@pytest.mark.shared
@pytest.mark.skipif(not H.MMS_CAPTURES, reason="../shared corpus is absent")
@pytest.mark.parametrize("capture", H.MMS_CAPTURES, ids=lambda p: p.name)
def test_corpus_split_invariance_and_trailing_bytes(capture: object) -> None:
    """Real connections give the same events whole, one byte at a time and in random
    pieces; half of a next message changes nothing before the end."""
    for flow in flows(capture, {H.PORT}):  # type: ignore[arg-type]
        msgs = [(d, b) for d, b, *_ in flow.chunks if b]
        whole = run(msgs)
        assert run(msgs, "bytes") == whole
        assert run(msgs, "random", 7) == whole
        dec = MmsDecoder(H.ENDPOINTS)
        before: list[DecoderEvent] = []
        for frame, (d, b) in enumerate(msgs, 1):
            dec.feed(d, b, frame, frame * 1000)
            before += dec.events()
        dec.feed(msgs[0][0], msgs[0][1][: len(msgs[0][1]) // 2], 999, 999_000)
        assert dec.events() == []
        assert before == whole[: len(before)]


def test_rules_match_the_catalogue_shape() -> None:
    from otconduit.detect.attack import attack_table
    from otconduit.detect.rules import RULES

    known = attack_table().techniques
    for rule in (*D.RULES, *D.FRAME_RULES):
        techniques = (
            RULES[rule.rule].techniques
            if rule.rule in RULES
            else next(d.techniques for d in D.DEFINES if d.id == rule.rule)
        )
        assert techniques and all(t in known for t in techniques), rule.rule
    assert set(D.DETAIL_KEYS) == set(SPEC.detail_keys)
