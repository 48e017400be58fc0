"""The press cell's S7 CPU: python-snap7's pure-Python S7 server on 127.0.10.20:102.

The server owns the data blocks as bytearrays. The process loop writes the status fields
into DB1 and reads back the fields a client may change (stroke-rate setpoint, recipe DB2),
and follows the CPU's RUN/STOP state, so an S7 "PLC STOP" really stops the press.
"""

from __future__ import annotations

import logging
import struct

from snap7.server import Server
from snap7.type import SrvArea

from otconduit.lab.register_maps import PRESS_DB_SIZES, PRESS_MAP, S7Field

CPU_STOP = 4
CPU_RUN = 8


class S7Device:
    """python-snap7 server bound to one loopback address, with the press data blocks."""

    def __init__(self, name: str, ip: str, port: int = 102) -> None:
        self.name = name
        self.ip = ip
        self.port = port
        self.dbs = {n: bytearray(size) for n, size in PRESS_DB_SIZES.items()}
        self._server: Server | None = None
        self._last_written: dict[str, float] = {}
        logging.getLogger("snap7").setLevel(logging.WARNING)

    def start(self) -> None:
        server = Server(log=False)
        for number, buf in self.dbs.items():
            server.register_area(SrvArea.DB, number, buf)
        server.start_to(self.ip, self.port)
        self._server = server

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    @property
    def cpu_running(self) -> bool:
        if self._server is None:
            return False
        return int(self._server.cpu_state) == CPU_RUN

    def set_cpu_running(self, run: bool) -> None:
        if self._server is not None:
            self._server.set_cpu_status(CPU_RUN if run else CPU_STOP)

    def _get(self, f: S7Field) -> float:
        buf = self.dbs[f.db]
        return float(struct.unpack_from(f.fmt, buf, f.offset)[0])

    def _put(self, f: S7Field, value: float) -> None:
        raw: float | int = float(value) if f.type == "REAL" else round(value)
        if f.type == "WORD":
            raw = int(raw) & 0xFFFF
        struct.pack_into(f.fmt, self.dbs[f.db], f.offset, raw)

    def _locked(self, db: int) -> bool:
        if self._server is None:
            return False
        self._server.lock_area(SrvArea.DB, db)
        return True

    def _unlock(self, db: int) -> None:
        if self._server is not None:
            self._server.unlock_area(SrvArea.DB, db)

    def load(self, values: dict[str, float], *, include_rw: bool = False) -> None:
        """Write process values into the DBs; read-write fields only when ``include_rw``."""
        for db in self.dbs:
            locked = self._locked(db)
            try:
                for f in PRESS_MAP:
                    if f.db != db or f.name not in values:
                        continue
                    if f.access == "RW" and not include_rw:
                        continue
                    self._put(f, values[f.name])
                    if f.access == "RW":
                        self._last_written[f.name] = self._get(f)
            finally:
                if locked:
                    self._unlock(db)

    def changed_setpoints(self) -> dict[str, float]:
        """Read-write fields whose value a client changed since the last look."""
        out: dict[str, float] = {}
        for f in PRESS_MAP:
            if f.access != "RW":
                continue
            value = self._get(f)
            if self._last_written.get(f.name) != value:
                out[f.name] = value
                self._last_written[f.name] = value
        return out

    def read(self, name: str) -> float:
        for f in PRESS_MAP:
            if f.name == name:
                return self._get(f)
        raise KeyError(name)
