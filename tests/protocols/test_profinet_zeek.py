"""Conformance with Zeek's CISA ICSNPP PROFINET IO-CM parser on its own test captures.

The baselines' ``profinet_io_cm.log`` has one row per connectionless DCE/RPC PDU, in
capture order (the baseline drops ``ts`` and ``uid``; its columns are the log record's
fields after them, see icsnpp-profinet-io-cm ``analyzer/types.zeek``). Two checks, row by
row:

- every DCE/RPC datagram of the capture, decoded by :func:`parse_rpc`, gives the row's
  header fields (packet type, flags, data representation, serials, the three UUIDs as
  their wire bytes, boot time, interface version, sequence and operation numbers, hints,
  body length, fragment number, authentication protocol);
- the operations (:class:`ProfinetDecoder`, pairing across UDP flows by activity and
  sequence number) account for every Request and Response row: the first fragment of
  each call's request and response at its addresses, with the call's operation name and
  fragment counts; pings and their "no call" answers likewise.

Zeek splits the 32-bit interface version as major = high 16 bits, minor = low 16 bits.
"""

from __future__ import annotations

import struct
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from otconduit.model import Operation
from otconduit.protocols.profinet import blocks, rpc
from otconduit.protocols.profinet.rpc import wire_uuid

from .profinet_helpers import ICSNPP_CASES, Datagram, decode_capture, packets

pytestmark = [
    pytest.mark.shared,
    pytest.mark.skipif(not ICSNPP_CASES, reason="../shared/corpus/icsnpp/profinet is absent"),
]

FIELDS = [
    "id.orig_h",
    "id.orig_p",
    "id.resp_h",
    "id.resp_p",
    "source_h",
    "source_p",
    "destination_h",
    "destination_p",
    "proto",
    "rpc_version",
    "packet_type",
    "reserved_for_impl_1",
    "last_fragment",
    "fragment",
    "no_fragment_requested",
    "maybe",
    "idempotent",
    "broadcast",
    "reserved_for_impl_2",
    "cancel_was_pending_at_call_end",
    "integer_encoding",
    "character_encoding",
    "floating_point_encoding",
    "serial_high",
    "object_uuid",
    "interface_uuid",
    "activity_uuid",
    "server_boot_time",
    "interface_vers_major",
    "interface_vers_minor",
    "sequence_num",
    "operation_num",
    "interface_hint",
    "activity_hint",
    "len_of_body",
    "fragment_num",
    "auth_protocol",
    "serial_low",
    "vers_fack",
    "window_size",
    "max_tsdu",
    "max_frag_size",
    "serial_number",
    "sel_ack_len",
    "array_of_sel_ack",
]
HEADER_FIELDS = FIELDS[4:]
FLOAT_NAMES = {0: "IEEE", 1: "VAX", 2: "CRAY", 3: "IBM"}
FACK_VERSIONS = {0: "Initial version", 1: "Default version"}


def zeek_rows(case: Path) -> list[dict[str, str | None]]:
    """The baseline rows. It has no ``#fields`` header (so not :mod:`tests.zeeklog`):
    the names are the log record's."""
    log = case / "zeek-baseline" / "profinet_io_cm.log"
    lines = [ln for ln in log.read_text().splitlines() if ln and not ln.startswith("#")]
    rows = []
    for line in lines:
        values = line.split("\t")
        assert len(values) == len(FIELDS), line
        rows.append({k: (None if v == "-" else v) for k, v in zip(FIELDS, values, strict=True)})
    return rows


def _bool(v: int) -> str:
    return "T" if v else "F"


def header_row(d: Datagram) -> dict[str, str | None]:
    """A datagram's header as Zeek prints it."""
    h = rpc.parse_rpc(d.payload)
    assert not isinstance(h, str), h
    little = h.little_endian
    f1, f2 = h.flags1, h.flags2
    row: dict[str, str | None] = {
        "source_h": d.src_ip,
        "source_p": str(d.src_port),
        "destination_h": d.dst_ip,
        "destination_p": str(d.dst_port),
        "proto": "udp",
        "rpc_version": "4",
        "packet_type": h.ptype_name,
        "reserved_for_impl_1": _bool(f1 & 0x01),
        "last_fragment": _bool(f1 & 0x02),
        "fragment": _bool(f1 & 0x04),
        "no_fragment_requested": _bool(f1 & 0x08),
        "maybe": _bool(f1 & 0x10),
        "idempotent": _bool(f1 & 0x20),
        "broadcast": _bool(f1 & 0x40),
        "reserved_for_impl_2": _bool(f1 & 0x80),
        "cancel_was_pending_at_call_end": _bool(f2 & 0x02),
        "integer_encoding": "Little Endian" if little else "Big Endian",
        "character_encoding": "EBCDIC" if h.drep[0] & 0x0F else "ASCII",
        "floating_point_encoding": FLOAT_NAMES.get(h.drep[1], "unknown"),
        "serial_high": str(h.serial >> 8),
        "object_uuid": wire_uuid(h.object_uuid, little),
        "interface_uuid": wire_uuid(h.interface_uuid, little),
        "activity_uuid": wire_uuid(h.activity_uuid, little),
        "server_boot_time": str(h.server_boot),
        "interface_vers_major": str(h.interface_version >> 16),
        "interface_vers_minor": str(h.interface_version & 0xFFFF),
        "sequence_num": str(h.sequence),
        "operation_num": blocks.OPNUMS.get(h.opnum, "unknown"),
        "interface_hint": str(h.interface_hint),
        "activity_hint": str(h.activity_hint),
        "len_of_body": str(h.body_length),
        "fragment_num": str(h.fragment_num),
        "auth_protocol": str(h.auth_proto),
        "serial_low": str(h.serial & 0xFF),
    }
    fack: dict[str, str | None] = dict.fromkeys(FIELDS[38:])
    if h.ptype == rpc.FACK and len(h.body) >= 16:
        # Fack body (C706 §12.5.3.4): version, pad, window size, max TSDU, max fragment
        # size, serial number, selective-ack length and words.
        o = "<" if little else ">"
        ver, _pad, window, tsdu, frag, serial, sel = struct.unpack_from(o + "BBHIIHH", h.body)
        acks = struct.unpack_from(o + f"{sel}I", h.body, 16) if len(h.body) >= 16 + 4 * sel else ()
        fack = {
            "vers_fack": FACK_VERSIONS.get(ver, "unknown"),
            "window_size": str(window),
            "max_tsdu": str(tsdu),
            "max_frag_size": str(frag),
            "serial_number": str(serial),
            "sel_ack_len": str(sel),
            "array_of_sel_ack": ",".join(map(str, acks)) or "(empty)",
        }
    row.update(fack)
    return row


def rpc_datagrams(case: Path) -> list[Datagram]:
    (pcap,) = [p for p in case.iterdir() if p.suffix in (".pcap", ".pcapng")]
    return [p for p in packets(pcap) if isinstance(p, Datagram) and rpc.looks_like_rpc(p.payload)]


@pytest.mark.parametrize("case", ICSNPP_CASES, ids=lambda p: p.name)
def test_every_header_row_matches(case: Path) -> None:
    rows = zeek_rows(case)
    datagrams = rpc_datagrams(case)
    assert len(datagrams) == len(rows)
    for n, (d, row) in enumerate(zip(datagrams, rows, strict=True)):
        ours = header_row(d)
        theirs = {k: row[k] for k in HEADER_FIELDS}
        assert ours == theirs, f"row {n + 1} (frame {d.frame})"


def _side_rows(op: Operation) -> list[tuple[str, tuple[Any, ...]]]:
    """The Zeek rows a call accounts for: the first fragment of its request and of its
    response, as (packet type, (source, destination, activity, sequence, operation))."""
    d = op.detail
    activity = d["activity_uuid"]
    name = blocks.OPNUMS.get(d["opnum"], "unknown")
    out = []
    if op.request_frame is not None:
        kind = "Ping" if op.function == "Ping" else "Request"
        out.append(
            (
                kind,
                (op.src_ip, op.src_port, op.dst_ip, op.dst_port, activity, op.transaction_id, name),
            )
        )
    if op.response_frame is not None:
        src_ip, src_port, dst_ip, dst_port = d.get(
            "response_endpoints", [op.dst_ip, op.dst_port, op.src_ip, op.src_port]
        )
        out.append(
            (
                d["response_type"],
                (src_ip, src_port, dst_ip, dst_port, activity, op.transaction_id, name),
            )
        )
    return out


@pytest.mark.parametrize("case", ICSNPP_CASES, ids=lambda p: p.name)
def test_every_request_and_response_row_is_an_operation(case: Path) -> None:
    (pcap,) = [p for p in case.iterdir() if p.suffix in (".pcap", ".pcapng")]
    _, events = decode_capture(pcap)
    ops = [e for e in events if isinstance(e, Operation) and "activity_uuid" in e.detail]
    theirs: Counter[tuple[str, tuple[Any, ...]]] = Counter()
    fragments: Counter[tuple[str, str, int]] = Counter()
    for row in zeek_rows(case):
        kind = row["packet_type"]
        assert kind is not None
        if kind == "Fragment Acknowledge":
            continue
        little = row["integer_encoding"] == "Little Endian"
        activity = _value_uuid(row["activity_uuid"] or "", little)
        seq = int(row["sequence_num"] or 0)
        if kind in ("Request", "Response"):
            fragments[(kind, activity, seq)] += 1
        if row["fragment_num"] != "0" and kind in ("Request", "Response"):
            continue
        theirs[
            (
                kind,
                (
                    row["source_h"],
                    int(row["source_p"] or 0),
                    row["destination_h"],
                    int(row["destination_p"] or 0),
                    activity,
                    seq,
                    row["operation_num"],
                ),
            )
        ] += 1
    ours: Counter[tuple[str, tuple[Any, ...]]] = Counter()
    our_fragments: Counter[tuple[str, str, int]] = Counter()
    for op in ops:
        ours.update(_side_rows(op))
        d = op.detail
        key = (d["activity_uuid"], op.transaction_id or 0)
        if op.request_frame is not None and "request_fragments" in d:
            our_fragments[("Request", *key)] += d["request_fragments"]
        if "response_fragments" in d:
            our_fragments[("Response", *key)] += d["response_fragments"]
    assert ours == theirs
    assert our_fragments == fragments


def _value_uuid(wire: str, little: bool) -> str:
    raw = bytes.fromhex(wire.replace("-", ""))
    return str(uuid.UUID(bytes_le=raw) if little else uuid.UUID(bytes=raw))


@pytest.mark.parametrize("case", ICSNPP_CASES, ids=lambda p: p.name)
def test_operations_are_well_formed(case: Path) -> None:
    """No decode problem on the baselines' captures, and requests answered where Zeek
    saw the answer (checked above); every Connect names its AR and IOCRs."""
    (pcap,) = [p for p in case.iterdir() if p.suffix in (".pcap", ".pcapng")]
    _, events = decode_capture(pcap)
    ops = [e for e in events if isinstance(e, Operation)]
    assert ops
    assert not [e for e in events if not isinstance(e, Operation) and hasattr(e, "reason")]
    for op in ops:
        assert "problems" not in op.detail, (op.function, op.request_frame, op.detail["problems"])
        if op.function == "Connect" and op.request_frame is not None:
            assert op.detail["ar_uuid"] and op.detail["iocrs"], op
