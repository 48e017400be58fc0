"""Drive a real pymodbus server with every function code and record it.

The resulting capture plus manifest is the ground truth the monitor is tested against:
the manifest lists, in wire order, each request that was sent and the outcome that was
observed by the client (normal response or exception code). Where the pymodbus client has
no method for a request, a hand-built ADU is sent over a plain socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pymodbus import ExceptionResponse, ModbusDeviceIdentification
from pymodbus.client import ModbusTcpClient
from pymodbus.constants import ExcCodes
from pymodbus.datastore import ModbusServerContext
from pymodbus.pdu import ModbusPDU
from pymodbus.pdu.file_message import FileRecord
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from otconduit.lab.sniffer import LoopbackCapture

IDENTITY: dict[str, str] = {
    "VendorName": "Conduit Lab",
    "ProductCode": "CL-PLC-1",
    "MajorMinorRevision": "1.2.3",
    "VendorUrl": "https://conduit.invalid/lab",
    "ProductName": "Conduit Lab PLC",
    "ModelName": "Conveyor PLC",
    "UserApplicationName": "conveyor-line-1",
}
PRIVATE_OBJECT = (0x80, "lab-private-0x80")
UNITS = (1, 2, 17, 247)
N_BITS = 64
N_REGS = 100
UNSUPPORTED_FC = 0x41


def holding_value(unit: int, addr: int) -> int:
    """Recognisable holding-register content: unit 17, address 3 -> 1703."""
    return unit * 100 + addr


def input_value(unit: int, addr: int) -> int:
    """Recognisable input-register content: unit 17, address 3 -> 41703."""
    return 40000 + unit * 100 + addr


def coil_value(addr: int) -> bool:
    return addr % 3 == 0


def discrete_value(addr: int) -> bool:
    return addr % 2 == 1


def lab_identity() -> ModbusDeviceIdentification:
    ident = ModbusDeviceIdentification(info_name=dict(IDENTITY))
    ident[PRIVATE_OBJECT[0]] = PRIVATE_OBJECT[1]
    return ident


def lab_devices(units: tuple[int, ...] = UNITS) -> list[SimDevice]:
    """One device per unit id with separate coil/DI/HR/IR blocks (classic PLC layout)."""
    devices = []
    for unit in units:
        blocks = (
            [SimData(0, values=[coil_value(a) for a in range(N_BITS)], datatype=DataType.BITS)],
            [SimData(0, values=[discrete_value(a) for a in range(N_BITS)], datatype=DataType.BITS)],
            [
                SimData(
                    0,
                    values=[holding_value(unit, a) for a in range(N_REGS)],
                    datatype=DataType.REGISTERS,
                )
            ],
            [
                SimData(
                    0,
                    values=[input_value(unit, a) for a in range(N_REGS)],
                    datatype=DataType.REGISTERS,
                )
            ],
        )
        devices.append(SimDevice(id=unit, simdata=blocks, identity=lab_identity()))
    return devices


class UnsupportedFunctionRequest(ModbusPDU):
    """Server-side handler that answers FC 0x41 with a proper ILLEGAL FUNCTION exception.

    Without it pymodbus answers unknown codes with function code 0x80, which is not what a
    real device sends (0x80 | fc).
    """

    function_code = UNSUPPORTED_FC
    rtu_frame_size = 4

    async def datastore_update(self, context: ModbusServerContext, device_id: int) -> ModbusPDU:
        _ = context, device_id
        return ExceptionResponse(self.function_code, ExcCodes.ILLEGAL_FUNCTION)


class LabModbusServer:
    """A pymodbus TCP server running in its own event-loop thread."""

    def __init__(self, host: str, port: int, units: tuple[int, ...] = UNITS) -> None:
        self.host = host
        self.port = port
        self.units = units
        self._loop = asyncio.new_event_loop()
        self._server: ModbusTcpServer | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._start())
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()

    async def _start(self) -> None:
        self._server = ModbusTcpServer(
            lab_devices(self.units),
            identity=lab_identity(),
            address=(self.host, self.port),
            custom_pdu=[UnsupportedFunctionRequest],
        )
        await self._server.serve_forever(background=True)

    def __enter__(self) -> LabModbusServer:
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise RuntimeError(f"modbus server failed: {self._error}") from self._error
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            fut = asyncio.run_coroutine_threadsafe(self._server.shutdown(), self._loop)
            with contextlib.suppress(Exception):
                fut.result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()


class ScriptedTcpServer:
    """Plain TCP server replaying fixed request/response scripts (non-Modbus traffic).

    Connection ``i`` is served with ``scripts[i]``: read exactly the request bytes, answer
    with the response bytes, so the segments are deterministic.
    """

    def __init__(self, host: str, port: int, scripts: list[list[tuple[bytes, bytes]]]) -> None:
        self.scripts = scripts
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self._sock.listen(4)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self.error: BaseException | None = None

    def _serve(self) -> None:
        try:
            for script in self.scripts:
                conn, _ = self._sock.accept()
                with conn:
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    for request, response in script:
                        if _recv_exact(conn, len(request)) != request:
                            raise RuntimeError("scripted server got unexpected bytes")
                        conn.sendall(response)
                    conn.recv(1)  # wait for the client to close first
        except BaseException as exc:
            self.error = exc

    def __enter__(self) -> ScriptedTcpServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._thread.join(timeout=5)
        self._sock.close()
        if self.error is not None:
            raise RuntimeError(f"scripted server failed: {self.error}") from self.error


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"peer closed after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


@dataclass
class Op:
    """One request of the exercise and the outcome we expect for it."""

    name: str
    fc: int
    unit: int
    call: Callable[[ModbusTcpClient], ModbusPDU] | None = None
    raw_pdu: bytes = b""
    sub: int | None = None
    address: int | None = None
    quantity: int | None = None
    exception: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    values: list[int] | None = None  # what a write puts on the device, as the monitor logs it

    def record(self, conn: str, client: str, tid: int, result: Any) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "name": self.name,
            "conn": conn,
            "client": client,
            "tid": tid,
            "unit": self.unit,
            "fc": self.fc,
            "sub": self.sub,
            "address": self.address,
            "quantity": self.quantity,
            "status": "ok" if self.exception is None else "exception",
            "exception_code": self.exception,
            "response_fc": self.fc if self.exception is None else self.fc | 0x80,
        }
        if self.extra:
            entry["extra"] = self.extra
        if self.values is not None:
            entry["values"] = self.values
        if result is not None:
            entry["result"] = result
        return entry


def _read(name: str, fc: int, unit: int, address: int, count: int, exc: int | None = None) -> Op:
    methods = {
        1: ModbusTcpClient.read_coils,
        2: ModbusTcpClient.read_discrete_inputs,
        3: ModbusTcpClient.read_holding_registers,
        4: ModbusTcpClient.read_input_registers,
    }
    method = methods[fc]
    return Op(
        name,
        fc,
        unit,
        lambda c: method(c, address, count=count, device_id=unit),
        address=address,
        quantity=count,
        exception=exc,
    )


def _diag(name: str, sub: int, unit: int, method: str, *args: Any) -> Op:
    return Op(
        name,
        8,
        unit,
        lambda c: getattr(c, method)(*args, device_id=unit),
        sub=sub,
    )


def _devid(name: str, unit: int, code: int, obj: int, exc: int | None = None) -> Op:
    """FC 43 / MEI 14 read device identification (code 1-3 streams, 4 one object)."""
    return Op(
        name,
        43,
        unit,
        lambda c: c.read_device_information(read_code=code, object_id=obj, device_id=unit),
        sub=14,
        exception=exc,
        extra={"read_code": code, "object_id": obj},
    )


def client_ops() -> list[Op]:
    """Requests sent through the pymodbus client, in order."""
    coils = [True, False, True, True, False, False, True, False, True, True]
    return [
        _read("read_coils", 1, 1, 0, 16),
        _read("read_discrete_inputs", 2, 2, 0, 16),
        _read("read_holding_registers", 3, 1, 0, 10),
        _read("read_holding_registers_u17", 3, 17, 0, 10),
        _read("read_input_registers", 4, 1, 0, 8),
        _read("read_input_registers_u247", 4, 247, 10, 4),
        Op(
            "write_coil",
            5,
            1,
            lambda c: c.write_coil(3, True, device_id=1),
            address=3,
            quantity=1,
            values=[1],
        ),
        Op(
            "write_register",
            6,
            1,
            lambda c: c.write_register(5, 0xBEEF, device_id=1),
            address=5,
            quantity=1,
            values=[0xBEEF],
        ),
        Op("read_exception_status", 7, 1, lambda c: c.read_exception_status(device_id=1)),
        _diag("diag_return_query_data", 0x00, 1, "diag_query_data", b"\xa5\x5a"),
        _diag("diag_restart_communications", 0x01, 1, "diag_restart_communication", False),
        _diag("diag_return_diagnostic_register", 0x02, 1, "diag_read_diagnostic_register"),
        _diag("diag_change_ascii_delimiter", 0x03, 1, "diag_change_ascii_input_delimeter"),
        _diag("diag_clear_counters", 0x0A, 1, "diag_clear_counters"),
        _diag("diag_bus_message_count", 0x0B, 1, "diag_read_bus_message_count"),
        _diag("diag_bus_comm_error_count", 0x0C, 1, "diag_read_bus_comm_error_count"),
        _diag("diag_bus_exception_error_count", 0x0D, 1, "diag_read_bus_exception_error_count"),
        _diag("diag_server_message_count", 0x0E, 2, "diag_read_device_message_count"),
        _diag("diag_server_no_response_count", 0x0F, 2, "diag_read_device_no_response_count"),
        _diag("diag_server_nak_count", 0x10, 2, "diag_read_device_nak_count"),
        _diag("diag_server_busy_count", 0x11, 2, "diag_read_device_busy_count"),
        _diag("diag_bus_char_overrun_count", 0x12, 2, "diag_read_bus_char_overrun_count"),
        _diag("diag_iop_overrun_count", 0x13, 2, "diag_read_iop_overrun_count"),
        _diag("diag_clear_overrun_counter", 0x14, 2, "diag_clear_overrun_counter"),
        _diag("diag_get_clear_modbus_plus", 0x15, 2, "diag_getclear_modbus_response"),
        Op("get_comm_event_counter", 11, 1, lambda c: c.diag_get_comm_event_counter(device_id=1)),
        Op("get_comm_event_log", 12, 1, lambda c: c.diag_get_comm_event_log(device_id=1)),
        Op(
            "write_multiple_coils",
            15,
            1,
            lambda c: c.write_coils(0, coils, device_id=1),
            address=0,
            quantity=len(coils),
            values=[int(b) for b in coils],
        ),
        Op(
            "write_multiple_registers",
            16,
            17,
            lambda c: c.write_registers(10, [111, 222, 333], device_id=17),
            address=10,
            quantity=3,
            values=[111, 222, 333],
        ),
        Op("report_server_id", 17, 1, lambda c: c.report_device_id(device_id=1)),
        Op(
            "read_file_record",
            20,
            1,
            # pymodbus takes record_length in bytes: 8 bytes -> 4 registers on the wire.
            lambda c: c.read_file_record(
                [FileRecord(file_number=4, record_number=1, record_length=8)], device_id=1
            ),
            extra={"file": 4, "record": 1, "length": 4},
        ),
        Op(
            "write_file_record",
            21,
            1,
            lambda c: c.write_file_record(
                [FileRecord(file_number=4, record_number=1, record_data=b"\x00\x01\x00\x02")],
                device_id=1,
            ),
            extra={"file": 4, "record": 1, "length": 2},
        ),
        Op(
            "mask_write_register",
            22,
            1,
            lambda c: c.mask_write_register(
                address=5, and_mask=0xF0F0, or_mask=0x0101, device_id=1
            ),
            address=5,
            quantity=1,
            extra={"and_mask": 0xF0F0, "or_mask": 0x0101},
            values=[0xF0F0, 0x0101],
        ),
        Op(
            "read_write_multiple_registers",
            23,
            2,
            lambda c: c.readwrite_registers(
                read_address=0, read_count=4, write_address=20, values=[7, 8], device_id=2
            ),
            address=0,
            quantity=4,
            extra={"write_address": 20, "write_quantity": 2},
            values=[7, 8],
        ),
        Op(
            "read_fifo_queue",
            24,
            1,
            lambda c: c.read_fifo_queue(address=1, device_id=1),
            address=1,
        ),
        _devid("read_device_identification_basic", 1, 1, 0),
        _devid("read_device_identification_regular", 1, 2, 0),
        _devid("read_device_identification_extended", 1, 3, 0),
        _devid("read_device_identification_specific", 17, 4, 5),
        # Exceptions.
        _read("read_holding_registers_beyond", 3, 1, N_REGS, 10, int(ExcCodes.ILLEGAL_ADDRESS)),
        _read("read_coils_beyond", 1, 2, N_BITS + 8, 8, int(ExcCodes.ILLEGAL_ADDRESS)),
        _read("read_input_registers_beyond", 4, 17, N_REGS - 2, 5, int(ExcCodes.ILLEGAL_ADDRESS)),
        Op(
            "write_register_beyond",
            6,
            1,
            lambda c: c.write_register(N_REGS + 400, 1, device_id=1),
            address=N_REGS + 400,
            quantity=1,
            exception=int(ExcCodes.ILLEGAL_ADDRESS),
        ),
        _devid("read_device_identification_bad_object", 1, 4, 0x20, int(ExcCodes.ILLEGAL_ADDRESS)),
        # pymodbus maps an unknown unit to a KeyError -> SERVER DEVICE FAILURE (0x04).
        _read("read_unknown_unit", 3, 99, 0, 2, int(ExcCodes.DEVICE_FAILURE)),
        # Back to normal after the exceptions.
        _read("read_holding_registers_after_errors", 3, 2, 50, 5),
    ]


def raw_ops() -> list[Op]:
    """Requests the client cannot express, sent as hand-built ADUs."""
    return [
        Op(
            "unsupported_function_0x41",
            UNSUPPORTED_FC,
            1,
            raw_pdu=bytes([UNSUPPORTED_FC, 0x00, 0x00, 0x00, 0x01]),
            exception=int(ExcCodes.ILLEGAL_FUNCTION),
        ),
        Op(
            "canopen_general_reference",
            43,
            1,
            raw_pdu=bytes([0x2B, 0x0D, 0x00, 0x00]),
            sub=13,
            exception=int(ExcCodes.ILLEGAL_FUNCTION),
        ),
        Op(
            "read_device_identification_bad_code",
            43,
            2,
            raw_pdu=bytes([0x2B, 0x0E, 0x05, 0x00]),
            sub=14,
            exception=int(ExcCodes.ILLEGAL_VALUE),
            extra={"read_code": 5, "object_id": 0},
        ),
        Op(
            "raw_read_holding_registers",
            3,
            247,
            raw_pdu=struct.pack(">BHH", 3, 20, 6),
            address=20,
            quantity=6,
        ),
    ]


def listen_only_ops() -> list[Op]:
    """Force-listen-only goes last, alone on its own connection and unit."""
    return [
        Op(
            "diag_force_listen_only",
            8,
            2,
            raw_pdu=bytes([0x08, 0x00, 0x04, 0x00, 0x00]),
            sub=0x04,
            # pymodbus still answers (echo without data); real devices stay silent.
            extra={"note": "pymodbus answers with 08 0004 and no data"},
        ),
    ]


def _result_of(resp: ModbusPDU, op: Op) -> Any:
    if op.exception is not None:
        return None
    if op.fc in (1, 2):
        return [int(b) for b in list(resp.bits)[: op.quantity or 0]]
    if op.fc in (3, 4, 23):
        return list(resp.registers)
    if op.fc == 43:
        info = getattr(resp, "information", {})
        return {str(k): v.decode() if isinstance(v, bytes) else v for k, v in info.items()}
    return None


def _check(resp: ModbusPDU, op: Op) -> None:
    if op.exception is None:
        if resp.isError():
            raise RuntimeError(f"{op.name}: unexpected exception {resp}")
    elif not resp.isError() or resp.exception_code != op.exception:
        raise RuntimeError(f"{op.name}: expected exception {op.exception}, got {resp}")


def _run_client_ops(host: str, port: int, client_host: str, ops: list[Op]) -> list[dict[str, Any]]:
    client = ModbusTcpClient(host, port=port, source_address=(client_host, 0), timeout=2, retries=0)
    if not client.connect():
        raise RuntimeError(f"cannot connect to modbus server {host}:{port}")
    entries = []
    try:
        assert client.socket is not None
        client.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        cname = "{}:{}".format(*client.socket.getsockname())
        for op in ops:
            assert op.call is not None
            resp = op.call(client)
            _check(resp, op)
            entries.append(op.record("client", cname, resp.transaction_id, _result_of(resp, op)))
    finally:
        client.close()
    return entries


def _run_raw_ops(
    host: str, port: int, client_host: str, ops: list[Op], conn: str, first_tid: int
) -> list[dict[str, Any]]:
    entries = []
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((client_host, 0))
        sock.settimeout(2)
        sock.connect((host, port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        cname = "{}:{}".format(*sock.getsockname())
        for tid, op in enumerate(ops, start=first_tid):
            sock.sendall(struct.pack(">HHHB", tid, 0, len(op.raw_pdu) + 1, op.unit) + op.raw_pdu)
            head = _recv_exact(sock, 7)
            rtid, proto, length, unit = struct.unpack(">HHHB", head)
            pdu = _recv_exact(sock, length - 1)
            if (rtid, proto, unit) != (tid, 0, op.unit):
                raise RuntimeError(f"{op.name}: bad MBAP in response {head.hex()}")
            if op.exception is None and pdu[0] != op.fc:
                raise RuntimeError(f"{op.name}: unexpected response {pdu.hex()}")
            if op.exception is not None and pdu[:2] != bytes([op.fc | 0x80, op.exception]):
                raise RuntimeError(f"{op.name}: expected exception, got {pdu.hex()}")
            result = list(struct.unpack(f">{pdu[1] // 2}H", pdu[2:])) if op.fc == 3 else None
            entries.append(op.record(conn, cname, tid, result))
    return entries


@contextlib.contextmanager
def _quiet_pymodbus() -> Iterator[None]:
    """The deliberate errors make pymodbus log tracebacks; they are expected here."""
    logger = logging.getLogger("pymodbus")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _client_addr(host: str, last_octet: int) -> str:
    a, b, c, _ = host.split(".")
    return f"{a}.{b}.{c}.{last_octet}"


def run_exercise(
    pcap_path: str | Path,
    host: str = "127.0.5.10",
    port: int = 5020,
    *,
    backend: str = "auto",
) -> dict[str, Any]:
    """Exercise every function code against a lab server while capturing it.

    Three client connections are used, from ``x.y.z.100`` (pymodbus client), ``.101``
    (hand-built ADUs) and ``.102`` (force listen only, last). Returns the manifest.
    """
    clients = [_client_addr(host, n) for n in (100, 101, 102)]
    with (
        _quiet_pymodbus(),
        LabModbusServer(host, port),
        LoopbackCapture(pcap_path, {host}, {port}, backend=backend) as cap,
    ):
        requests = _run_client_ops(host, port, clients[0], client_ops())
        requests += _run_raw_ops(host, port, clients[1], raw_ops(), "raw", 0x1000)
        requests += _run_raw_ops(host, port, clients[2], listen_only_ops(), "listen_only", 0x2000)
    return {
        "kind": "modbus_all_functions",
        "pcap": Path(pcap_path).name,
        "server": {"host": host, "port": port},
        "clients": clients,
        "capture": {"backend": cap.backend, "packets": cap.packets, "dropped": cap.dropped},
        "identity": dict(IDENTITY, **{f"0x{PRIVATE_OBJECT[0]:02X}": PRIVATE_OBJECT[1]}),
        "units": list(UNITS),
        "datastore": {
            "coils": N_BITS,
            "discrete_inputs": N_BITS,
            "holding_registers": N_REGS,
            "input_registers": N_REGS,
            "holding_value": "unit*100 + address",
            "input_value": "40000 + unit*100 + address",
        },
        "function_codes": sorted({r["fc"] for r in requests}),
        "requests": requests,
    }


def _http_script(host: str) -> list[tuple[bytes, bytes]]:
    body = b"conveyor: running\n"
    get = f"GET /status HTTP/1.1\r\nHost: {host}\r\nUser-Agent: conduit-lab\r\n\r\n".encode()
    resp = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    post_body = b'{"speed": 42}'
    post = (
        f"POST /api/setpoint HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(post_body)}\r\n\r\n"
    ).encode() + post_body
    return [(get, resp), (post, b"HTTP/1.1 204 No Content\r\n\r\n")]


def _random_script(seed: int = 502) -> list[tuple[bytes, bytes]]:
    """Random payloads that cannot be mistaken for MBAP (protocol id bytes are never 0)."""
    rng = random.Random(seed)

    def blob(n: int) -> bytes:
        data = bytearray(rng.randbytes(n))
        data[2] |= 0x80
        return bytes(data)

    return [(blob(rng.randint(8, 300)), blob(rng.randint(8, 300))) for _ in range(4)]


def nonstandard_modbus_ops() -> list[Op]:
    return [
        _read("read_holding_registers", 3, 1, 0, 10),
        _read("read_input_registers", 4, 2, 5, 5),
        _read("read_coils", 1, 1, 0, 8),
        _read("read_discrete_inputs", 2, 17, 8, 8),
        Op(
            "write_register",
            6,
            1,
            lambda c: c.write_register(7, 1234, device_id=1),
            address=7,
            quantity=1,
        ),
        Op(
            "write_multiple_registers",
            16,
            1,
            lambda c: c.write_registers(30, [1, 2, 3, 4], device_id=1),
            address=30,
            quantity=4,
        ),
        _devid("read_device_identification_basic", 1, 1, 0),
        _read("read_holding_registers_beyond", 3, 1, N_REGS + 10, 2, int(ExcCodes.ILLEGAL_ADDRESS)),
    ]


def _run_scripts(
    host: str, port: int, client_host: str, scripts: list[list[tuple[bytes, bytes]]]
) -> list[str]:
    clients = []
    for script in scripts:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((client_host, 0))
            sock.settimeout(2)
            sock.connect((host, port))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            clients.append("{}:{}".format(*sock.getsockname()))
            for request, response in script:
                sock.sendall(request)
                if _recv_exact(sock, len(response)) != response:
                    raise RuntimeError("scripted exchange returned unexpected bytes")
    return clients


def run_nonstandard_exercise(
    pcap_path: str | Path,
    other_host: str = "127.0.6.20",
    other_port: int = 502,
    modbus_host: str = "127.0.6.21",
    modbus_port: int = 1502,
    *,
    backend: str = "auto",
) -> dict[str, Any]:
    """Non-Modbus traffic on port 502 and Modbus on a non-standard port, in one capture.

    Tests by-content protocol detection: the port alone must not decide.
    """
    if other_port < 1024 and os.geteuid() != 0:
        raise PermissionError(f"binding port {other_port} needs root")
    scripts = {"http": _http_script(other_host), "random": _random_script()}
    other_client = _client_addr(other_host, 100)
    modbus_client = _client_addr(modbus_host, 100)
    with (
        _quiet_pymodbus(),
        LabModbusServer(modbus_host, modbus_port),
        ScriptedTcpServer(other_host, other_port, list(scripts.values())),
        LoopbackCapture(
            pcap_path, {other_host, modbus_host}, {other_port, modbus_port}, backend=backend
        ) as cap,
    ):
        script_clients = _run_scripts(other_host, other_port, other_client, list(scripts.values()))
        requests = _run_client_ops(
            modbus_host, modbus_port, modbus_client, nonstandard_modbus_ops()
        )
    flows: list[dict[str, Any]] = []
    for (name, script), client in zip(scripts.items(), script_clients, strict=True):
        flows.append(
            {
                "name": name,
                "modbus": False,
                "server": {"host": other_host, "port": other_port},
                "client": client,
                "c2s_bytes": sum(len(q) for q, _ in script),
                "s2c_bytes": sum(len(r) for _, r in script),
                "exchanges": len(script),
            }
        )
    flows.append(
        {
            "name": "modbus_nonstandard_port",
            "modbus": True,
            "server": {"host": modbus_host, "port": modbus_port},
            "client": requests[0]["client"],
            "requests": requests,
        }
    )
    return {
        "kind": "modbus_nonstandard",
        "pcap": Path(pcap_path).name,
        "capture": {"backend": cap.backend, "packets": cap.packets, "dropped": cap.dropped},
        "flows": flows,
    }
