"""Modbus/TCP devices of the plant: pymodbus servers whose tables mirror the process model.

Each device keeps a raw register image (coils, discrete inputs, holding and input
registers). The process loop refreshes the image from the model; pymodbus' per-access
``action`` hook copies the image into the server's memory before every request is served
and forwards client writes to the model, so a write from any client acts on the process
exactly as it would on a real controller.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pymodbus import ExceptionResponse, ModbusDeviceIdentification
from pymodbus.constants import ExcCodes
from pymodbus.datastore import ModbusServerContext
from pymodbus.pdu import ModbusPDU
from pymodbus.pdu.device import ModbusControlBlock
from pymodbus.pdu.mei_message import ReadDeviceInformationRequest
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice
from pymodbus.simulator.simutils import SimUtils

from otconduit.lab.register_maps import Register, Table, table_size

UNIT_ID = 1
_FC_TABLE: dict[int, Table] = {1: "coil", 5: "coil", 15: "coil", 2: "discrete", 4: "input"}
_FC_TABLE.update({fc: "holding" for fc in (3, 6, 16, 22, 23)})
# Function codes pymodbus decodes itself; every other code gets a proper ILLEGAL FUNCTION.
_PYMODBUS_FCS = frozenset({1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 15, 16, 17, 20, 21, 22, 23, 24, 43})

WriteHook = Callable[[str, float], None]


class RegisterImage:
    """Raw tables of one Modbus device, addressed from 0, described by a register map."""

    def __init__(self, regmap: tuple[Register, ...]) -> None:
        self.regmap = regmap
        self.coils = [False] * table_size(regmap, "coil")
        self.discretes = [False] * table_size(regmap, "discrete")
        self.holding = [0] * table_size(regmap, "holding")
        self.inputs = [0] * table_size(regmap, "input")
        self.on_write: WriteHook | None = None

    def table(self, table: Table) -> list[Any]:
        tables: dict[str, list[Any]] = {
            "coil": self.coils,
            "discrete": self.discretes,
            "holding": self.holding,
            "input": self.inputs,
        }
        return tables[table]

    def load(self, values: dict[str, float], tables: frozenset[Table] | None = None) -> None:
        """Encode engineering values into the raw tables (only ``tables`` if given)."""
        for reg in self.regmap:
            if reg.name not in values or (tables is not None and reg.table not in tables):
                continue
            words = reg.encode(values[reg.name])
            tab = self.table(reg.table)
            if reg.table in ("coil", "discrete"):
                tab[reg.address] = bool(words[0])
            else:
                tab[reg.address : reg.address + reg.width] = words

    def write(self, table: Table, address: int, values: list[Any]) -> None:
        """Apply a client write, then tell the process about each register it touched."""
        tab = self.table(table)
        end = min(address + len(values), len(tab))
        for i in range(address, end):
            tab[i] = bool(values[i - address]) if table == "coil" else int(values[i - address])
        if self.on_write is None:
            return
        for reg in self.regmap:
            if reg.table == table and reg.address < end and reg.address + reg.width > address:
                words = [int(w) for w in tab[reg.address : reg.address + reg.width]]
                self.on_write(reg.name, reg.decode(words))


def identity(vendor: str, product: str, model: str, revision: str, app: str) -> Any:
    """Device identification objects served by function 43/14."""
    return ModbusDeviceIdentification(
        info_name={
            "VendorName": vendor,
            "ProductCode": product,
            "MajorMinorRevision": revision,
            "VendorUrl": "https://conduit.invalid/lab",
            "ProductName": product,
            "ModelName": model,
            "UserApplicationName": app,
        }
    )


# pymodbus keeps the device identification (FC 43/14) in one process-wide control block,
# so every server in the plant would answer with the identity set last. Each server's
# identity is looked up by its context instead and swapped in for the (synchronous)
# duration of the answer.
_IDENTITIES: dict[int, ModbusDeviceIdentification] = {}
_standard_devid = ReadDeviceInformationRequest.datastore_update


async def _devid_per_server(
    self: ReadDeviceInformationRequest, context: ModbusServerContext, device_id: int
) -> ModbusPDU:
    ident = _IDENTITIES.get(id(context))
    mcb = ModbusControlBlock()
    saved = mcb._identity
    if ident is not None:
        mcb._identity = ident
    try:
        return await _standard_devid(self, context, device_id)
    finally:
        mcb._identity = saved


ReadDeviceInformationRequest.datastore_update = _devid_per_server  # type: ignore[method-assign]


def _unsupported_pdus() -> list[type[ModbusPDU]]:
    """One request class per unknown function code, answering 0x80|fc / ILLEGAL FUNCTION."""

    async def update(self: ModbusPDU, context: ModbusServerContext, device_id: int) -> ModbusPDU:
        _ = context, device_id
        return ExceptionResponse(self.function_code, ExcCodes.ILLEGAL_FUNCTION)

    classes: list[type[ModbusPDU]] = []
    for fc in range(1, 128):
        if fc in _PYMODBUS_FCS:
            continue
        attrs = {"function_code": fc, "rtu_frame_size": 4, "datastore_update": update}
        classes.append(type(f"UnsupportedFc{fc}", (ModbusPDU,), attrs))
    return classes


class ModbusDevice:
    """One pymodbus TCP server on its own loopback address, serving a ``RegisterImage``."""

    def __init__(self, name: str, ip: str, port: int, image: RegisterImage, ident: Any) -> None:
        self.name = name
        self.ip = ip
        self.port = port
        self.image = image
        self.ident = ident
        self.requests = 0
        self._server: ModbusTcpServer | None = None

    async def _action(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        _ = start_address, count
        table = _FC_TABLE.get(function_code)
        if table is None:
            return None
        if set_values is not None:
            self.image.write(table, address, list(set_values))
            return None
        self.requests += 1
        src = self.image.table(table)
        if table in ("coil", "discrete"):
            bits = [bool(b) for b in src]
            bits += [False] * (-len(bits) % 16)
            packed = SimUtils.bitsToRegisters(bits)
        else:
            packed = [int(w) for w in src]
        registers[: len(packed)] = packed
        return None

    def _simdevice(self) -> SimDevice:
        img = self.image

        def bits(n: int) -> list[SimData]:
            return [SimData(0, values=[False] * n, datatype=DataType.BITS)]

        def regs(n: int) -> list[SimData]:
            return [SimData(0, values=[0] * n, datatype=DataType.REGISTERS)]

        return SimDevice(
            id=UNIT_ID,
            simdata=(
                bits(len(img.coils)),
                bits(len(img.discretes)),
                regs(len(img.holding)),
                regs(len(img.inputs)),
            ),
            identity=self.ident,
            action=self._action,
        )

    async def start(self) -> None:
        self._server = ModbusTcpServer(
            [self._simdevice()],
            identity=self.ident,
            address=(self.ip, self.port),
            custom_pdu=_unsupported_pdus(),
        )
        _IDENTITIES[id(self._server.context)] = self.ident
        await self._server.serve_forever(background=True)

    async def stop(self) -> None:
        if self._server is not None:
            _IDENTITIES.pop(id(self._server.context), None)
            await self._server.shutdown()
            self._server = None
