"""Gateway config -> where each tag lives on the wire, and how its bytes read.

A tag is found by the device it is read from (host, port, Modbus unit id), the table or
S7 area it sits in, and its address range: a Modbus tag covers ``register_count`` 16-bit
registers (or one coil) from its 0-based offset; an S7 tag covers its bytes from its byte
offset in a DB or in the M, I or Q area. Only what the monitor can see written is worth
indexing, but reads are indexed too: they tell what a register held before a write.

Devices are matched by the ``host`` written in the config, so it must be the address the
device has on the wire (a host name is not resolved: the monitor never asks DNS).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from otconduit.gateway.codec import decode_registers, engineering, register_count
from otconduit.gateway.config import GatewayConfig, Tag, load_gateway
from otconduit.gateway.model import Value

MODBUS_PORT = 502
S7_PORT = 102
FLOAT_DECIMALS = 2  # a float tag with neither a scale nor declared decimals


@dataclass(frozen=True, slots=True)
class MappedTag:
    """One gateway tag and where it sits: ``space`` is the Modbus table (coil, discrete,
    holding, input) or the S7 area (``DB5``, ``M``, ``I``, ``Q``); ``start``/``size`` are
    registers or coils (Modbus) or bytes (S7)."""

    path: str  # full ISA-95 path
    device: str  # the device's name in the config
    protocol: str  # modbus | s7
    host: str
    port: int
    unit: int | None  # Modbus unit id; None for S7
    space: str
    start: int
    size: int
    bit: int | None
    tag: Tag
    s7: Any = None  # otconduit.gateway.collectors.s7.S7Address for S7 tags

    @property
    def end(self) -> int:
        return self.start + self.size

    @property
    def short(self) -> str:
        """``cell/tag``: how people name it on the line (``conveyor/speed_setpoint``)."""
        return "/".join(self.path.split("/")[-2:])

    @property
    def unit_text(self) -> str:
        return self.tag.unit

    @property
    def decimals(self) -> int:
        """Decimals the value is shown with: declared, else from the scale step (0.1 ->
        1), else 0 for integers and 2 for floats."""
        t = self.tag
        if t.decimals is not None:
            return t.decimals
        s = t.scale
        if s is not None:
            if s.raw is not None and s.eng is not None:
                step = abs((s.eng[1] - s.eng[0]) / (s.raw[1] - s.raw[0]))
            else:
                step = abs(s.factor)
            return _step_decimals(step)
        if t.type.startswith(("int", "uint")) or t.type == "bool":
            return 0
        return FLOAT_DECIMALS

    @property
    def state_names(self) -> dict[int, str] | None:
        """The tag's own state names (a map in the config), if it has them."""
        return self.tag.states if isinstance(self.tag.states, dict) else None

    def decode_words(self, words: list[int]) -> Value:
        """Engineering value of a Modbus register tag from its registers (the tag's word
        and byte order, bit selection and scaling)."""
        return engineering(decode_registers(words, self.tag), self.tag)

    def decode_s7(self, data: bytes) -> Value:
        """Engineering value of an S7 tag from its bytes (big-endian, as the PLC holds it)."""
        from otconduit.gateway.collectors.s7 import decode

        return engineering(decode(data, self.s7, self.tag), self.tag)


def _step_decimals(step: float) -> int:
    if step <= 0 or step >= 1:
        return 0
    exponent = Decimal(repr(step)).normalize().as_tuple().exponent
    exact = -exponent if isinstance(exponent, int) else 6
    return max(0, min(6, exact, math.ceil(-math.log10(step)) + 1))


Key = tuple[str, str, int, int | None, str]  # protocol, host, port, unit, space


class TagMap:
    """Tags by device and address space; :meth:`overlapping` finds those a range touches."""

    def __init__(self, tags: Iterable[MappedTag]) -> None:
        self.tags = list(tags)
        self._by: dict[Key, list[MappedTag]] = {}
        for t in self.tags:
            self._by.setdefault((t.protocol, t.host, t.port, t.unit, t.space), []).append(t)
        for lst in self._by.values():
            lst.sort(key=lambda t: (t.start, t.bit or 0))
        self.hosts = {t.host for t in self.tags}
        self.by_path = {t.path: t for t in self.tags}

    def __len__(self) -> int:
        return len(self.tags)

    @classmethod
    def from_config(cls, cfg: GatewayConfig) -> TagMap:
        out: list[MappedTag] = []
        for d in cfg.devices:
            if d.protocol == "modbus" and d.host:
                for t in d.tags:
                    table, offset = t.modbus_address(d.zero_based)
                    size = 1 if table in ("coil", "discrete") else register_count(t)
                    out.append(
                        MappedTag(
                            path=cfg.full_path(t), device=d.name, protocol="modbus",
                            host=d.host, port=d.port or MODBUS_PORT, unit=d.unit,
                            space=table, start=offset, size=size,
                            bit=t.bit, tag=t,
                        )
                    )  # fmt: skip
            elif d.protocol == "s7" and d.host:
                from otconduit.gateway.collectors.s7 import parse_address

                for t in d.tags:
                    a = parse_address(t)
                    space = f"DB{a.db}" if a.area == "DB" else a.area
                    out.append(
                        MappedTag(
                            path=cfg.full_path(t), device=d.name, protocol="s7", host=d.host,
                            port=d.port or S7_PORT, unit=None, space=space, start=a.offset,
                            size=a.size, bit=a.bit, tag=t, s7=a,
                        )
                    )  # fmt: skip
            # OPC UA and Modbus RTU tags have no address the monitor can see on TCP.
        return cls(out)

    @classmethod
    def load(cls, path: str | Path) -> tuple[GatewayConfig, TagMap]:
        """Read a gateway config (ConfigError, one line, on any problem)."""
        cfg = load_gateway(path)
        return cfg, cls.from_config(cfg)

    def overlapping(
        self, protocol: str, host: str, port: int, unit: int | None, space: str, lo: int, hi: int
    ) -> list[MappedTag]:
        """Tags of that device and space with any part in ``[lo, hi)``."""
        found = self._by.get((protocol, host, port, unit, space))
        if not found:
            return []
        return [t for t in found if t.start < hi and lo < t.end]

    def device_name(self, host: str) -> str | None:
        return next((t.device for t in self.tags if t.host == host), None)


def historian_target(cfg: GatewayConfig, given: str | Path | None = None) -> str | None:
    """The historian to read previous values and trends from: ``given`` (a file or a
    DSN), else the config's PostgreSQL sink, else its SQLite file when it exists."""
    if given is not None:
        return str(given)
    if cfg.sinks.postgres is not None:
        return cfg.sinks.postgres.dsn
    if cfg.sinks.historian is not None and Path(cfg.sinks.historian.path).exists():
        return str(cfg.sinks.historian.path)
    return None
