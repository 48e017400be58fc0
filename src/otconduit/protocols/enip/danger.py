"""Dangerous CIP requests: the decoder marks them in ``detail["dangerous"]`` (see
:func:`.classify.dangerous_kind` for the table); this maps each kind to a rule. Program
operations are told apart by the File object's (0x37, Vol 1 §5-42) upload and download
services, and on Logix program structure by read versus write services."""

from __future__ import annotations

import struct

from otconduit.protocols.danger import DangerRule, Example, Hit, OpView

_BY_KIND = {
    "firmware": "firmware-change",
    "reset": "device-restart",
    "start": "controller-start",
    "stop": "controller-stop",
    "mode_change": "mode-change",
    "drive_control": "drive-control",
    "ip_address_change": "network-config-change",
    "time_set": "time-set",
}
_FILE_OBJECT = 0x37
_FILE_UPLOAD = frozenset({0x4B, 0x4D, 0x4F})  # initiate upload, partial read, upload transfer
_FILE_CLEAR = 0x51
# Generic CIP reads (Get Attribute*, Logix Read Tag/Fragmented, Get Instance Attr List).
_READ_SERVICES = frozenset({0x01, 0x03, 0x0E, 0x4B, 0x4C, 0x4F, 0x52, 0x55})


def _program(op: OpView) -> Hit:
    service = op["function_code"] & 0x7F
    class_id = op["detail"].get("class_id")
    if class_id == _FILE_OBJECT:
        if service in _FILE_UPLOAD:
            return Hit("program-upload", note="File object upload")
        if service == _FILE_CLEAR:
            return Hit("program-modify", note="File object cleared")
        return Hit("program-download", note="File object download")
    if service in _READ_SERVICES:
        return Hit("program-upload", note=f"read of program object class 0x{class_id or 0:02x}")
    return Hit("program-download", note=f"write to program object class 0x{class_id or 0:02x}")


def classify(op: OpView) -> list[Hit]:
    """Rules a CIP (or EtherNet/IP encapsulation) request triggers."""
    detail = op["detail"]
    kind = detail.get("dangerous")
    if kind == "program":
        return [_program(op)]
    if kind in _BY_KIND:
        note = op["function"]
        if kind == "reset" and "reset_type" in detail:
            note += f" (reset type {detail['reset_type']})"
        return [Hit(_BY_KIND[kind], note=note)]
    if op["operation"] == "write":
        return [Hit("process-write", note=op["function"])]
    return []


# -- examples: SendRRData (Vol 2 §2-4.7) carrying one unconnected CIP request ------------
def _path(cls: int, inst: int, attr: int | None = None) -> bytes:
    """8-bit logical class / instance / attribute segments (Vol 1 §C-1.4.3)."""
    return bytes([0x20, cls, 0x24, inst] + ([0x30, attr] if attr is not None else []))


def _request(
    service: int, cls: int, inst: int, attr: int | None = None, data: bytes = b""
) -> Example:
    epath = _path(cls, inst, attr)
    cip = bytes([service, len(epath) // 2]) + epath + data
    # CPF: null address item, unconnected data item (Vol 2 §2-6)
    cpf = struct.pack("<HHHHH", 2, 0, 0, 0xB2, len(cip)) + cip
    body = struct.pack("<IH", 0, 10) + cpf
    head = struct.pack("<HHII8sI", 0x6F, len(body), 0x11223344, 0, b"example!", 0)
    return Example(messages=((0, head + body),))


_SET_SINGLE, _SET_ALL = 0x10, 0x02

RULES = (
    DangerRule(
        rule="firmware-change",
        trigger="any service but a Get on the Firmware update object (0xA1)",
        examples=(_request(_SET_SINGLE, 0xA1, 1, 1, b"\x01"),),
    ),
    DangerRule(
        rule="program-upload",
        trigger="File object upload services; reads of Logix program structure",
        examples=(_request(0x4B, 0x37, 0xC8, None, b"\x00\x00"), _request(0x4C, 0x6D, 1)),
    ),
    DangerRule(
        rule="program-download",
        trigger="File object download services; writes to Logix program structure",
        examples=(_request(0x4C, 0x37, 0xC8, None, b"\x00\x00"), _request(0x4D, 0x68, 1)),
    ),
    DangerRule(
        rule="program-modify",
        trigger="File object Clear File (0x51)",
        examples=(_request(0x51, 0x37, 0xC8),),
    ),
    DangerRule(
        rule="device-restart",
        trigger="Reset (0x05) on any object (Identity: reset type in the note)",
        examples=(_request(0x05, 0x01, 1, None, b"\x01"),),
    ),
    DangerRule(
        rule="controller-start", trigger="Start (0x06)", examples=(_request(0x06, 0x8E, 1),)
    ),
    DangerRule(rule="controller-stop", trigger="Stop (0x07)", examples=(_request(0x07, 0x8E, 1),)),
    DangerRule(
        rule="mode-change",
        trigger="Set services on the Logix controller object (0x8E)",
        examples=(_request(_SET_SINGLE, 0x8E, 1, 1, b"\x06\x00"),),
    ),
    DangerRule(
        rule="drive-control",
        trigger="Set services on a drive's Control Supervisor (0x29)",
        examples=(_request(_SET_SINGLE, 0x29, 1, 3, b"\x01"),),
    ),
    DangerRule(
        rule="network-config-change",
        trigger="TCP/IP Interface (0xF5) Set Attributes All or attributes 3, 5, 6",
        examples=(_request(_SET_SINGLE, 0xF5, 1, 3, b"\x02\x00\x00\x00"),),
    ),
    DangerRule(
        rule="time-set",
        trigger="Set services on Time Sync (0x43) or Logix WallClockTime (0x8B)",
        examples=(_request(_SET_SINGLE, 0x43, 1, 1, b"\x00"),),
    ),
    DangerRule(
        rule="process-write",
        trigger="any other write-class request (Set, Write Tag, ...)",
        examples=(
            _request(_SET_SINGLE, 0x04, 100, 3, b"\x01\x02"),
            _request(_SET_ALL, 0x04, 101, None, b"\x00"),
        ),
    ),
)
