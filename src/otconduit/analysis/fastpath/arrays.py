"""The named bundles of arrays the kernels take (numba compiles named tuples into
structs: one argument instead of a score of positional ones, fields by name).

- :class:`Block` — one block of packets: the capture bytes, per-packet times and the
  header columns ``kernels.headers.parse_headers`` fills (``ok`` = 1 where a lane may
  take the packet), and ``done`` (1 once the packet was taken by a lane or the engine).
- :class:`Slots` — one lane's connections: the flow table (``tk1``, ``tk2``, ``tv``),
  the server ports it listens on, the slot rows (``st``), kept messages (``qm``, ``raw``)
  and the carries of unfinished messages; for connections the kernel opens itself, a
  new slot's row (``init``), the protocol's own ports and the well-known industrial ones,
  and the free slots and table room the lane lends the pass (``freelist``, ``ctl``).
- :class:`Shapes` — the lane's shape index and the scratch buffer shapes are built in.
- :class:`Out` — what a pass produces: transaction rows (``xo``) with their list holes
  (``lh``, ``lv``), counters, the slots it gave back, the transactions it had no
  template for (``miss``, their messages in ``mb``), the connections it opened and the
  decode problems it reports (``probs``).
"""

from __future__ import annotations

from collections import namedtuple

Block = namedtuple(
    "Block",
    "buf ts first_frame ok src dst sport dport vlan seq ack flags poff plen iplen smac dmac done",
)
HEADER_COLUMNS = (
    ("ok", "uint8"),
    ("src", "int64"),
    ("dst", "int64"),
    ("sport", "int64"),
    ("dport", "int64"),
    ("vlan", "int64"),
    ("seq", "int64"),
    ("ack", "int64"),
    ("flags", "int64"),
    ("poff", "int64"),
    ("plen", "int64"),
    ("iplen", "int64"),
    ("smac", "int64"),
    ("dmac", "int64"),
)
Slots = namedtuple(
    "Slots", "tk1 tk2 tv ports st qm raw carry init born_ports known_ports freelist bufs ctl"
)
Shapes = namedtuple("Shapes", "th tinfo tnorm norm")
Out = namedtuple("Out", "xo lh lv cnt slowed miss mb born probs")
