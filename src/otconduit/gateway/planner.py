"""Modbus read planning: as few requests as the device allows.

Tags of one table and poll interval are sorted by address and merged into one request
while the merged span stays within the per-request maximum (125 registers / 2000 bits,
Modbus Application Protocol §6.1-6.4, or less if the device says so) and the unused
registers between two tags stay within ``max_gap``. A device that refuses a merged read
with exception 2 (illegal data address, e.g. a hole in its register map) gets that block
split into one request per tag, and the plan remembers it; a tag that is refused on its
own is reported BAD instead of being retried every cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from otconduit.gateway.codec import register_count
from otconduit.gateway.config import Device, Tag

BIT_TABLES = frozenset({"coil", "discrete"})


@dataclass(slots=True)
class Read:
    table: str
    start: int
    count: int
    tags: list[tuple[Tag, int]] = field(default_factory=list)  # (tag, offset in the read)

    @property
    def function_code(self) -> int:
        return {"coil": 1, "discrete": 2, "holding": 3, "input": 4}[self.table]


def _width(tag: Tag, table: str) -> int:
    return 1 if table in BIT_TABLES else register_count(tag)


def plan(
    device: Device,
    tags: list[Tag],
    singles: frozenset[str] = frozenset(),
) -> list[Read]:
    """Requests for ``tags`` (one poll group); tags in ``singles`` get a request each."""
    by_table: dict[str, list[tuple[int, Tag]]] = {}
    for t in tags:
        table, off = t.modbus_address(device.zero_based)
        by_table.setdefault(table, []).append((off, t))
    reads: list[Read] = []
    for table in sorted(by_table):
        limit = device.max_bits if table in BIT_TABLES else device.max_registers
        cur: Read | None = None
        for off, t in sorted(by_table[table], key=lambda x: (x[0], x[1].path)):
            width = _width(t, table)
            if t.path in singles:
                reads.append(Read(table, off, width, [(t, 0)]))
                continue
            end = off + width
            if (
                cur is not None
                and off - (cur.start + cur.count) <= device.max_gap
                and max(end, cur.start + cur.count) - cur.start <= limit
            ):
                cur.count = max(end, cur.start + cur.count) - cur.start
                cur.tags.append((t, off - cur.start))
                continue
            cur = Read(table, off, width, [(t, 0)])
            reads.append(cur)
    return reads
