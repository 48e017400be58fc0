"""Conformance with Zeek's CISA ICSNPP BACnet parser on its own test capture.

The three logs of the baseline, row by row in log order (the baseline masks times, so
order is what places a row): ``bacnet.log`` (one row per APDU: addresses, BVLC function,
PDU type, service, invoke id, error/reject/abort result), ``bacnet_discovery.log``
(Who-Is ranges, I-Am device instance and vendor name) and ``bacnet_property.log``
(ReadProperty requests and ACKs: object, instance, property, array index, value).

Our side is built from operations only: a confirmed service gives its request row and
its reply row (at their frames), an unconfirmed service one row. Zeek writes vendor
names without their commas (its set separator) and values with C's ``%f``.
"""

from __future__ import annotations

from typing import Any

import pytest

from otconduit.model import Operation, OpStatus
from otconduit.protocols.bacnet import enums as E
from tests.conftest import needs_shared
from tests.protocols import bacnet_helpers as B
from tests.zeeklog import read_zeek_log

pytestmark = needs_shared
BASELINE = B.ICSNPP / "zeek-baseline"
ZEEK_BVLC = {
    name: E.ZEEK_BVLC_NAMES[code]
    for code, name in E.BVLC_NAMES.items()
    if code in E.ZEEK_BVLC_NAMES
}
Row = tuple[Any, ...]


@pytest.fixture(scope="module")
def ops() -> list[Operation]:
    events, _ = B.decode_capture(B.ICSNPP / "bacnet_example.pcap")
    return [e for e in events if isinstance(e, Operation)]


def _zeek(log: str, fields: list[str]) -> list[Row]:
    return [tuple(r[f] for f in fields) for r in read_zeek_log(BASELINE / log)]


def _in_frame_order(rows: list[tuple[int, Row]]) -> list[Row]:
    return [row for _, row in sorted(rows, key=lambda fr: fr[0])]


def _value(v: Any) -> str | None:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:f}"
    return None if v is None else str(v)


def test_bacnet_log(ops: list[Operation]) -> None:
    zeek = _zeek(
        "bacnet.log",
        [
            "source_h",
            "destination_h",
            "bvlc_function",
            "pdu_type",
            "pdu_service",
            "invoke_id",
            "result_code",
        ],
    )
    rows: list[tuple[int, Row]] = []
    for op in ops:
        d = op.detail
        invoke = None if op.transaction_id is None else str(op.transaction_id)
        if op.request_frame is not None:
            rows.append(
                (
                    op.request_frame,
                    (
                        op.src_ip,
                        op.dst_ip,
                        ZEEK_BVLC[d["bvlc"]],
                        d["pdu_type"],
                        op.function,
                        invoke,
                        None,
                    ),
                )
            )
        if op.response_frame is not None:
            refused = d["response_pdu_type"] in ("ERROR_PDU", "REJECT_PDU", "ABORT_PDU")
            rows.append(
                (
                    op.response_frame,
                    (
                        op.dst_ip,
                        op.src_ip,
                        ZEEK_BVLC[d["response_bvlc"]],
                        d["response_pdu_type"],
                        op.function,
                        invoke,
                        op.exception if refused else None,
                    ),
                )
            )
    ours = _in_frame_order(rows)
    assert len(zeek) == 3257
    assert ours == zeek


def test_bacnet_discovery_log(ops: list[Operation]) -> None:
    zeek = _zeek(
        "bacnet_discovery.log",
        [
            "source_h",
            "destination_h",
            "pdu_service",
            "object_type",
            "instance_number",
            "vendor",
            "range",
            "object_name",
        ],
    )
    rows: list[tuple[int, Row]] = []
    for op in ops:
        if op.function not in ("who_is", "i_am", "who_has", "i_have"):
            continue
        d = op.detail
        assert op.request_frame is not None
        named = op.function != "who_is"
        rows.append(
            (
                op.request_frame,
                (
                    op.src_ip,
                    op.dst_ip,
                    op.function.replace("_", "-"),
                    d.get("object_type") if named else None,
                    str(d["instance"]) if named and "instance" in d else None,
                    d["vendor"].replace(",", "") if "vendor" in d else None,
                    d.get("range"),
                    d.get("object_name"),
                ),
            )
        )
    assert len(zeek) == 217
    assert _in_frame_order(rows) == zeek


def test_bacnet_property_log(ops: list[Operation]) -> None:
    zeek = _zeek(
        "bacnet_property.log",
        [
            "source_h",
            "destination_h",
            "invoke_id",
            "pdu_service",
            "object_type",
            "instance_number",
            "property",
            "array_index",
            "value",
        ],
    )
    rows: list[tuple[int, Row]] = []
    for op in ops:
        if op.function != "read_property":
            continue
        d = op.detail
        index = None if "array_index" not in d else str(d["array_index"])
        where = (d["object_type"], str(d["instance"]), d["property"], index)
        assert op.request_frame is not None
        rows.append(
            (
                op.request_frame,
                (
                    op.src_ip,
                    op.dst_ip,
                    str(op.transaction_id),
                    "read-property-request",
                    *where,
                    None,
                ),
            )
        )
        if op.response_frame is not None:
            rows.append(
                (
                    op.response_frame,
                    (
                        op.dst_ip,
                        op.src_ip,
                        str(op.transaction_id),
                        "read-property-ack",
                        *where,
                        _value(d.get("value")),
                    ),
                )
            )
    assert len(zeek) == 2800
    assert _in_frame_order(rows) == zeek


def test_password_guessing_is_refused_and_flagged(ops: list[Operation]) -> None:
    """The capture's ReinitializeDevice requests carry a wrong BVLC length (17 for
    datagrams of 21 to 25 octets): decoded in full, as Zeek does, and flagged; the
    length slip is a framing note, so each keeps the device's answer (90 refused for
    the password, 30 carried out) instead of being called malformed."""
    reinit = [o for o in ops if o.function == "reinitialize_device"]
    assert len(reinit) == 120
    assert sum(o.exception == "password-failure" for o in reinit) == 90
    assert sum(o.status is OpStatus.OK for o in reinit) == 30
    assert all(o.detail["password_given"] and o.detail["state"] for o in reinit)
    assert all("BVLC length 17" in o.detail["framing_note"] for o in reinit)
    assert not any("malformed_reason" in o.detail for o in reinit)
