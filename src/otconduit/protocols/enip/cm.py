"""Connection Manager services: Unconnected Send, Forward Open, Large Forward Open and
Forward Close (Vol 1 §3-5.5 of "The CIP Networks Library, Volume 1", ODVA).

These services open and close the CIP connections that connected messaging
(SendUnitData) and implicit I/O (UDP 2222) then refer to by connection id, and route
unconnected requests to other devices and modules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from otconduit.protocols.enip._wire import Reader, Truncated
from otconduit.protocols.enip.epath import EPath, parse_epath

CONNECTION_TYPES: Final = ("Null", "Multicast", "Point to Point", "Reserved")
PRIORITIES: Final = ("Low", "High", "Scheduled", "Urgent")
TRIGGERS: Final = ("Cyclic", "Change of State", "Application Object")


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionParams:
    """Network connection parameters (Vol 1 §3-5.5.1.1): WORD for Forward Open, DWORD
    for Large Forward Open (same fields, wider size)."""

    redundant_owner: bool
    connection_type: str
    priority: str
    variable: bool
    size: int

    @staticmethod
    def decode(value: int, *, large: bool) -> ConnectionParams:
        if large:  # bit 31 owner, 30..29 type, 27..26 priority, 25 fixed/variable, 15..0 size
            return ConnectionParams(
                redundant_owner=bool(value >> 31 & 1),
                connection_type=CONNECTION_TYPES[value >> 29 & 3],
                priority=PRIORITIES[value >> 26 & 3],
                variable=bool(value >> 25 & 1),
                size=value & 0xFFFF,
            )
        # bit 15 owner, 14..13 type, 11..10 priority, 9 fixed/variable, 8..0 size
        return ConnectionParams(
            redundant_owner=bool(value >> 15 & 1),
            connection_type=CONNECTION_TYPES[value >> 13 & 3],
            priority=PRIORITIES[value >> 10 & 3],
            variable=bool(value >> 9 & 1),
            size=value & 0x1FF,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ForwardOpenRequest:
    """Vol 1 §3-5.5.2, Table 3-5.16 (Forward Open) and Table 3-5.17 (Large Forward Open):
    priority/tick BYTE, timeout ticks USINT, O->T connection id UDINT, T->O connection id
    UDINT, connection serial UINT, originator vendor id UINT, originator serial UDINT,
    timeout multiplier USINT, 3 reserved, O->T RPI UDINT (µs), O->T parameters, T->O RPI
    UDINT, T->O parameters, transport type/trigger BYTE, path size USINT (words), path."""

    large: bool
    ot_connection_id: int
    to_connection_id: int
    connection_serial: int
    originator_vendor: int
    originator_serial: int
    timeout_multiplier: int
    ot_rpi_us: int
    ot_params: ConnectionParams
    to_rpi_us: int
    to_params: ConnectionParams
    transport_class: int
    trigger: str
    server: bool
    path: EPath

    def detail(self) -> dict[str, Any]:
        return {
            "ot_connection_id": self.ot_connection_id,
            "to_connection_id": self.to_connection_id,
            "connection_serial": self.connection_serial,
            "originator_vendor": self.originator_vendor,
            "originator_serial": self.originator_serial,
            "timeout_multiplier": self.timeout_multiplier,
            "ot_rpi_us": self.ot_rpi_us,
            "to_rpi_us": self.to_rpi_us,
            "ot_size": self.ot_params.size,
            "to_size": self.to_params.size,
            "ot_connection_type": self.ot_params.connection_type,
            "to_connection_type": self.to_params.connection_type,
            "ot_priority": self.ot_params.priority,
            "to_priority": self.to_params.priority,
            "transport_class": self.transport_class,
            "trigger": self.trigger,
            "connection_path": self.path.describe(),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class ForwardOpenReply:
    """Success (Vol 1 Table 3-5.19): O->T id UDINT, T->O id UDINT, connection serial UINT,
    originator vendor UINT, originator serial UDINT, O->T API UDINT, T->O API UDINT,
    application reply size USINT (words), reserved, reply. Failure (Table 3-5.20):
    connection serial, vendor, originator serial, remaining path size USINT, reserved;
    the ids and APIs are then None."""

    ot_connection_id: int | None
    to_connection_id: int | None
    connection_serial: int
    originator_vendor: int
    originator_serial: int
    ot_api_us: int | None
    to_api_us: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ForwardClose:
    """Request (Vol 1 Table 3-5.21): priority/tick, timeout ticks, connection serial UINT,
    originator vendor UINT, originator serial UDINT, path size USINT, reserved, path.
    Reply (Tables 3-5.22/23) starts with the same serial/vendor/originator serial."""

    connection_serial: int
    originator_vendor: int
    originator_serial: int
    path: EPath | None


@dataclass(frozen=True, slots=True, kw_only=True)
class UnconnectedSend:
    """Vol 1 §3-5.5.4, Table 3-5.26: priority/tick BYTE, timeout ticks USINT, message size
    UINT, message, pad (when the size is odd), route path size USINT (words), reserved,
    route path (padded EPATH)."""

    timeout_ticks: int
    message: bytes
    route: EPath


def _path(r: Reader, words: int) -> EPath:
    return parse_epath(r.take(2 * words, "connection path"))


def parse_forward_open(data: bytes, *, large: bool) -> tuple[ForwardOpenRequest | None, str | None]:
    r = Reader(data)
    try:
        r.u8("priority/tick")
        r.u8("timeout ticks")
        ot_id, to_id = r.u32("O->T id"), r.u32("T->O id")
        serial, vendor, orig_serial = r.u16(), r.u16(), r.u32()
        multiplier = r.u8("timeout multiplier")
        r.take(3, "reserved")
        read_params = r.u32 if large else r.u16
        ot_rpi, ot_params = r.u32("O->T RPI"), read_params("O->T parameters")
        to_rpi, to_params = r.u32("T->O RPI"), read_params("T->O parameters")
        transport = r.u8("transport type/trigger")
        path = _path(r, r.u8("connection path size"))
    except Truncated as exc:
        return None, str(exc)
    trigger = transport >> 4 & 0x07
    request = ForwardOpenRequest(
        large=large,
        ot_connection_id=ot_id,
        to_connection_id=to_id,
        connection_serial=serial,
        originator_vendor=vendor,
        originator_serial=orig_serial,
        timeout_multiplier=multiplier,
        ot_rpi_us=ot_rpi,
        ot_params=ConnectionParams.decode(ot_params, large=large),
        to_rpi_us=to_rpi,
        to_params=ConnectionParams.decode(to_params, large=large),
        transport_class=transport & 0x0F,
        trigger=TRIGGERS[trigger] if trigger < len(TRIGGERS) else f"Reserved ({trigger})",
        server=bool(transport & 0x80),
        path=path,
    )
    problem = path.problem and f"connection path: {path.problem}"
    if r.remaining:
        problem = f"{r.remaining} bytes after the connection path"
    return request, problem


def parse_forward_open_reply(data: bytes, *, success: bool) -> ForwardOpenReply | None:
    r = Reader(data)
    try:
        if success:
            ot_id, to_id = r.u32(), r.u32()
            serial, vendor, orig_serial = r.u16(), r.u16(), r.u32()
            ot_api, to_api = r.u32(), r.u32()
            return ForwardOpenReply(
                ot_connection_id=ot_id,
                to_connection_id=to_id,
                connection_serial=serial,
                originator_vendor=vendor,
                originator_serial=orig_serial,
                ot_api_us=ot_api,
                to_api_us=to_api,
            )
        serial, vendor, orig_serial = r.u16(), r.u16(), r.u32()
    except Truncated:
        return None
    return ForwardOpenReply(
        ot_connection_id=None,
        to_connection_id=None,
        connection_serial=serial,
        originator_vendor=vendor,
        originator_serial=orig_serial,
        ot_api_us=None,
        to_api_us=None,
    )


def parse_forward_close(data: bytes, *, request: bool) -> ForwardClose | None:
    r = Reader(data)
    try:
        if request:
            r.u8("priority/tick")
            r.u8("timeout ticks")
        serial, vendor, orig_serial = r.u16(), r.u16(), r.u32()
        path = None
        if request:
            words = r.u8("connection path size")
            r.u8("reserved")
            path = _path(r, words)
    except Truncated:
        return None
    return ForwardClose(
        connection_serial=serial,
        originator_vendor=vendor,
        originator_serial=orig_serial,
        path=path,
    )


def parse_unconnected_send(data: bytes) -> tuple[UnconnectedSend | None, str | None]:
    r = Reader(data)
    try:
        r.u8("priority/tick")
        ticks = r.u8("timeout ticks")
        size = r.u16("message request size")
        message = r.take(size, "embedded message")
        if size % 2:
            r.u8("pad")
        words = r.u8("route path size")
        r.u8("reserved")
        route = parse_epath(r.take(2 * words, "route path"))
    except Truncated as exc:
        return None, str(exc)
    problem = f"route path: {route.problem}" if route.problem else None
    return UnconnectedSend(timeout_ticks=ticks, message=message, route=route), problem
