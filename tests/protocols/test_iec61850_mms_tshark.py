"""Agreement with tshark (Wireshark's COTP, SES, PRES, ACSE and MMS dissectors) on every
MMS capture of the shared corpus, frame by frame: the MMS PDU kind, the confirmed
service, the invoke id, and the names a request carries (variables, program
invocations, domains).

One known difference: a bare MMS PDU (no session/presentation layers) of two bytes,
the primitive conclude-RequestPDU ``8b 00``, is not taken by Wireshark's MMS heuristic
on COTP; we decode it. The test checks that these are the only frames we add.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from otconduit.model import Operation
from otconduit.protocols.events import Malformed
from otconduit.protocols.iec61850 import factory
from otconduit.protocols.iec61850 import services as S
from tests.streams import decode_flows, flows
from tests.tsharkutil import tshark_fields

from .iec61850_helpers import MMS_CAPTURES, PORT

pytestmark = [
    pytest.mark.tshark,
    pytest.mark.shared,
    pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed"),
    pytest.mark.skipif(not MMS_CAPTURES, reason="../shared corpus is absent"),
]

KIND_FIELDS = [
    "mms.confirmed_RequestPDU_element",
    "mms.confirmed_ResponsePDU_element",
    "mms.confirmed_ErrorPDU_element",
    "mms.unconfirmed_PDU_element",
    "mms.rejectPDU_element",
    "mms.cancel_RequestPDU",
    "mms.cancel_ResponsePDU",
    "mms.cancel_ErrorPDU_element",
    "mms.initiate_RequestPDU_element",
    "mms.initiate_ResponsePDU_element",
    "mms.initiate_ErrorPDU_element",
    "mms.conclude_RequestPDU_element",
    "mms.conclude_ResponsePDU_element",
    "mms.conclude_ErrorPDU_element",
]
FIELDS = [
    "frame.number",
    "tcp.srcport",
    "mms.confirmedServiceRequest",
    "mms.confirmedServiceResponse",
    "mms.invokeID",
    "mms.vmd_specific",
    "mms.domainId",
    "mms.itemId",
    "mms.programInvocationName",
    "mms.deleteProgramInvocation",
    "mms.getDomainAttributes",
    "mms.domainName",
    *KIND_FIELDS,
]
Row = tuple[int, int | None, int | None, tuple[str, ...]]


def theirs(capture: Path) -> dict[int, Row]:
    """Per frame: (PDU kind, service, invoke id, names)."""
    out: dict[int, Row] = {}
    for r in tshark_fields(capture, FIELDS, "mms"):
        row = dict(zip(FIELDS, r, strict=True))
        kind = next(i for i, f in enumerate(KIND_FIELDS) if row[f])
        service = row["mms.confirmedServiceRequest"] or row["mms.confirmedServiceResponse"]
        invoke = row["mms.invokeID"]
        names = list(row["mms.vmd_specific"])
        names += [f"{d}/{i}" for d, i in zip(row["mms.domainId"], row["mms.itemId"], strict=True)]
        for f in (
            "mms.programInvocationName",
            "mms.deleteProgramInvocation",
            "mms.getDomainAttributes",
            "mms.domainName",
        ):
            names += row[f]
        out[int(row["frame.number"][0])] = (
            kind,
            int(service[0]) if service else None,
            int(invoke[0]) if invoke else None,
            tuple(names),
        )
    return out


def ours(capture: Path) -> tuple[dict[int, Row], list[Malformed]]:
    events = decode_flows(capture, {PORT}, factory)
    out: dict[int, Row] = {}
    for op in events:
        if not isinstance(op, Operation):
            continue
        d = op.detail
        names = tuple(
            n
            for key in ("variables", "program_invocation", "domain", "semaphore")
            for n in (d[key] if isinstance(d.get(key), list) else [d[key]] if key in d else [])
        )
        if op.request_frame is not None and "pdu" in d:
            kind = _kind(d["pdu"])
            service = op.function_code if kind in (S.CONFIRMED_REQUEST,) else None
            out[op.request_frame] = (kind, service, op.transaction_id if kind < 8 else None, names)
        if op.response_frame is not None and "response_pdu" in d:
            kind = _kind(d["response_pdu"])
            service = d.get("response_service") if kind == S.CONFIRMED_RESPONSE else None
            out[op.response_frame] = (kind, service, op.transaction_id if kind < 8 else None, ())
    return out, [e for e in events if isinstance(e, Malformed)]


def _kind(name: str) -> int:
    return next(k for k, v in S.PDU_NAMES.items() if v == name)


def _tsdu_at(capture: Path, frame: int) -> bytes:
    for flow in flows(capture, {PORT}):
        for _, data, _, f, _ in flow.chunks:
            if f == frame and data is not None:
                return data
    raise AssertionError(frame)


@pytest.mark.parametrize("capture", MMS_CAPTURES, ids=lambda p: p.name)
def test_pdus_per_frame_agree_with_tshark(capture: Path) -> None:
    expected = theirs(capture)
    mine, _ = ours(capture)
    assert expected, "tshark found no MMS"
    extra = {f: v for f, v in mine.items() if f not in expected}
    for frame, (kind, *_rest) in extra.items():
        assert kind == S.CONCLUDE_REQUEST and _tsdu_at(capture, frame).endswith(b"\x8b\x00")
    common = {f: v for f, v in mine.items() if f in expected}
    # tshark reports names only of requests; our responses carry none.
    assert common == expected


@pytest.mark.parametrize("capture", MMS_CAPTURES, ids=lambda p: p.name)
def test_what_tshark_cannot_read_is_reported(capture: Path) -> None:
    """Where tshark flags a malformed packet or a TPKT it cannot frame (the captures'
    broken session ACCEPT, their garbled server TPKTs), we report Malformed; where it
    flags nothing, neither do we."""
    _, malformed = ours(capture)
    flagged = tshark_fields(capture, ["frame.number"], "_ws.malformed || (tpkt && !cotp)")
    assert bool(malformed) == bool(flagged)
