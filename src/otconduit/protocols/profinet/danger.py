"""Dangerous PROFINET requests, in the registry's shape (:mod:`otconduit.protocols.danger`).

- DCP Set (IEC 61158-6-10 §4.3) of the IP suite, the NameOfStation or the alias name ->
  ``network-config-change``: the device drops off its AR or is impersonated (a
  controller finds its devices by name); Set Control/FactoryReset or ResetToFactory ->
  ``device-restart`` (the device loses its name, address and parameters).
- IO-CM Write record (DCE/RPC opnum 3; each sub-write of a WriteMultiple counts): to
  the physical-device records that adjust ports, MRP, IRT and interface settings
  (PDPortDataAdjust 0x802F, PDInterfaceAdjust 0x8071, PDIRData 0x802C, ...) ->
  ``network-config-change`` (medium); to I&M1-4 (0xAFF1-0xAFF4) -> ``process-write``
  (low); to a user record (0x0000-0x7FFF, device parameters) -> ``process-write``.

Suggested ATT&CK for ICS techniques are the rules' (``detect/rules.py``): T0836 Modify
Parameter, T0855 Unauthorized Command Message, T0881 Service Stop, T0816 Device
Restart/Shutdown. :data:`RULES` holds UDP examples (IO-CM); DCP examples are Ethernet
frames (:data:`FRAME_RULES`, ``Example.transport == "ethernet"``, each message a whole
frame) that the registry's harness cannot replay through a connection factory yet.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Mapping
from typing import Any, Final

from otconduit.protocols.danger import DangerRule, Example, Hit, OpView
from otconduit.protocols.profinet import blocks, dcp, rpc

DETAIL_KEYS: Final = frozenset(
    {"orphan_response", "set", "index", "indices", "new_ip", "new_name_of_station"}
)


def classify(op: OpView) -> list[Hit]:
    """Rules a PROFINET request triggers."""
    detail = op["detail"]
    if detail.get("orphan_response"):
        return []
    fn = op["function"]
    if fn == "DCP Set":
        return _dcp_set(detail)
    if fn == "Write" and detail.get("index") is not None:
        indices = [detail["index"]]
        if detail["index"] == blocks.WRITE_MULTIPLE:
            indices = list(detail.get("indices") or [])
        return _writes(indices)
    return []


def _dcp_set(detail: Mapping[str, Any]) -> list[Hit]:
    targets = list(detail.get("set") or [])
    hits: list[Hit] = []
    network = [t for t in targets if t in dcp.NETWORK_SETS]
    if network:
        what = []
        if detail.get("new_ip"):
            what.append(f"ip {detail['new_ip']}")
        if detail.get("new_name_of_station"):
            what.append(f"name {detail['new_name_of_station']}")
        hits.append(
            Hit("network-config-change", note="DCP Set " + (", ".join(what) or ", ".join(network)))
        )
    resets = [t for t in targets if t in dcp.RESET_SETS]
    if resets:
        hits.append(Hit("device-restart", note=f"DCP {resets[0].replace('_', ' ')}"))
    return hits


def _writes(indices: list[int]) -> list[Hit]:
    """One hit per rule: PDev adjust records (medium), other records (user records at
    the rule's default, I&M and the rest low)."""
    network = [i for i in indices if i in blocks.NETWORK_INDICES]
    other = [i for i in indices if i not in blocks.NETWORK_INDICES]
    hits: list[Hit] = []
    if network:
        hits.append(Hit("network-config-change", "medium", _records(network)))
    if other:
        user = any(i <= 0x7FFF for i in other)
        hits.append(Hit("process-write", None if user else "low", _records(other)))
    return hits


def _records(indices: list[int]) -> str:
    return "record " + ", ".join(f"0x{i:04x} {blocks.index_name(i)}" for i in indices[:4])


# -- examples: IO-CM Write requests (C706 §12.5.2 header, IEC 61158-6-10 §5.1 body) --------
_AR = uuid.UUID("a0b1c2d3-0001-0002-0003-000102030405")
_ACTIVITY = uuid.UUID("11111111-2222-3333-4444-555555555555")


def _write_request(index: int, data: bytes, seq: int = 1) -> bytes:
    """A big-endian DCE/RPC request (opnum 3) to the PNIO device interface carrying an
    IODWriteReqHeader for ``index`` (slot 1, subslot 1) and the record data."""
    header_body = (
        struct.pack(">H", seq)
        + _AR.bytes
        + struct.pack(">IHHHHI", 0, 1, 1, 0, index, len(data))
        + bytes(24)
    )
    block = struct.pack(">HHBB", 0x0008, 2 + len(header_body), 1, 0) + header_body
    args = block + data
    body = struct.pack(">5I", 0x4000, len(args), 0x4000, 0, len(args)) + args
    obj = uuid.UUID("dea00000-6c97-11d1-8271-00010003002a")  # device 0x0003, Siemens
    head = (
        bytes([4, 0, 0x20, 0, 0, 0, 0, 0])
        + obj.bytes
        + rpc.PNIO_DEVICE.bytes
        + _ACTIVITY.bytes
        + struct.pack(">IIIHHHHH", 0, 1, seq, 3, 0xFFFF, 0xFFFF, len(body), 0)
        + b"\x00\x00"
    )
    return head + body


def _udp(*datagrams: bytes) -> Example:
    return Example(messages=tuple((0, d) for d in datagrams), transport="udp")


# PDPortDataAdjust (block 0x0202) with an AdjustMAUType sub-block: port forced to 10BASE-T.
_PORT_ADJUST = struct.pack(">HHBB", 0x0202, 16, 1, 0) + bytes(2) + struct.pack(">IHH", 0, 1, 0x8001)
_PORT_ADJUST += struct.pack(">HHBBHH", 0x020E, 8, 1, 0, 0, 0x0005) + bytes(2)

RULES: Final = (
    DangerRule(
        rule="network-config-change",
        trigger="IO-CM Write of PDev adjust records (ports, MRP, IRT, interface; medium)",
        examples=(_udp(_write_request(0x802F, _PORT_ADJUST)),),
    ),
    DangerRule(
        rule="process-write",
        trigger="IO-CM Write of user records (parameters), I&M1-4 (low)",
        examples=(_udp(_write_request(0x0001, b"\x00\x10\x00\x20")),),
    ),
)


# -- DCP Set frames (IEC 61158-6-10 §4.3): FrameID 0xFEFD, Set request ---------------------
def dcp_set_frame(*set_blocks: bytes, xid: int = 0x1234) -> bytes:
    """A whole Ethernet frame: engineering station -> device, DCP Set request."""
    body = b"".join(b + b"\x00" * (len(b) & 1) for b in set_blocks)
    pdu = struct.pack(">HBBIHH", 0xFEFD, dcp.SET, dcp.REQUEST, xid, 0, len(body)) + body
    return bytes.fromhex("0800060a0b0c0800060d0e0f") + b"\x88\x92" + pdu


def dcp_block(option: int, suboption: int, qualifier: int, data: bytes) -> bytes:
    return struct.pack(">BBHH", option, suboption, 2 + len(data), qualifier) + data


_SET_IP = dcp_set_frame(
    dcp_block(1, 2, 1, bytes([192, 168, 0, 66, 255, 255, 255, 0, 192, 168, 0, 1]))
)
_SET_NAME = dcp_set_frame(dcp_block(2, 2, 1, b"plc-rogue"))
_FACTORY_RESET = dcp_set_frame(dcp_block(5, 6, 2, b""))

FRAME_RULES: Final = (
    DangerRule(
        rule="network-config-change",
        trigger="DCP Set IP / NameOfStation / alias",
        examples=(
            Example(messages=((0, _SET_IP),), transport="ethernet"),
            Example(messages=((0, _SET_NAME),), transport="ethernet"),
        ),
    ),
    DangerRule(
        rule="device-restart",
        trigger="DCP Set Control FactoryReset / ResetToFactory",
        examples=(Example(messages=((0, _FACTORY_RESET),), transport="ethernet"),),
    ),
)
