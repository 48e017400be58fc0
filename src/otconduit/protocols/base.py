"""The contract between the analysis engine and every protocol decoder.

A protocol package provides a :class:`ProtocolSpec`: how to recognise the protocol from
the first bytes of a connection, and a factory for a :class:`ConnectionDecoder` that turns
both directions of one connection (TCP) or flow (UDP) into protocol-neutral events:
:class:`~otconduit.model.Operation` (one per request/response transaction),
:class:`~otconduit.model.IdentityClaim` (what a device says about itself) and
:class:`~otconduit.protocols.events.Malformed` (what could not be decoded, and why).

Decoders are sans-I/O: bytes in, events out, no sockets, files, clocks or databases.

The spec is also everything the rest of Conduit knows about the protocol: names and
aliases (CLI filters, policies), well-known services (firewall rules, port sweeps, which
side serves), whether it carries control in clear text (policy), which operations are
dangerous (detection, :mod:`otconduit.protocols.danger`), which requests walk a server's
address space (browse sweeps) and its compiled fast lane.
Those tables are derived from :mod:`otconduit.protocols.registry`, so adding a protocol
is one folder and one line there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, Self

from otconduit.model import IdentityClaim, OpClass, Operation
from otconduit.protocols.danger import Classifier, DangerRule, OpView, RuleDefinition
from otconduit.protocols.events import Malformed

DecoderEvent = Operation | IdentityClaim | Malformed

CLIENT_TO_SERVER = 0
SERVER_TO_CLIENT = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoints:
    """Who is client and who is server of the connection a decoder works on."""

    transport: str  # "tcp" or "udp"
    client_ip: str
    client_port: int
    server_ip: str
    server_port: int

    def addresses(self, direction: int) -> dict[str, Any]:
        """``src_ip``/``src_port``/``dst_ip``/``dst_port`` of a message sent in ``direction``."""
        if direction == CLIENT_TO_SERVER:
            return {"src_ip": self.client_ip, "src_port": self.client_port,
                    "dst_ip": self.server_ip, "dst_port": self.server_port}  # fmt: skip
        return {"src_ip": self.server_ip, "src_port": self.server_port,
                "dst_ip": self.client_ip, "dst_port": self.client_port}  # fmt: skip


class ConnectionDecoder(Protocol):
    """Both directions of one connection of one protocol.

    ``direction`` is :data:`CLIENT_TO_SERVER` or :data:`SERVER_TO_CLIENT`. For TCP,
    ``feed`` receives reassembled stream bytes (any segmentation; ``frame``/``ts_ns`` say
    which capture frame delivered them) and ``gap`` announces bytes lost by the capture.
    For UDP each ``feed`` call is one whole datagram and ``gap`` is never called.
    """

    def feed(self, direction: int, data: bytes, frame: int, ts_ns: int) -> None: ...

    def gap(self, direction: int, nbytes: int, frame: int, ts_ns: int) -> None: ...

    def events(self) -> list[DecoderEvent]:
        """Events completed so far (each returned once)."""
        ...

    def finish(self) -> list[DecoderEvent]:
        """The connection ended: flush what is pending (e.g. requests never answered)."""
        ...


@dataclass(frozen=True, slots=True)
class Pending:
    """Stream bytes of one direction as a decoder would have been fed them: a whole
    message in flight, or the start of one."""

    direction: int
    data: bytes
    frame: int
    ts_ns: int


class Resumable(Protocol):
    """A TCP decoder whose connection a compiled fast path may carry for a while.

    The fast path takes over a connection only at a quiet moment (:meth:`quiescent`),
    with the state :meth:`export_state` hands it (what it needs to know to decode the
    next messages exactly as this decoder would: learned pairings, requests in flight,
    which the decoder then forgets). It gives the connection back with :meth:`resume`:
    the state it changed, and the bytes it holds (messages in flight, unfinished ones),
    which the decoder takes as if it had been fed them; it then stands exactly where it
    would stand had it seen every byte itself.
    """

    def quiescent(self) -> bool:
        """At a message boundary both ways, with nothing buffered or held that the fast
        path could not carry."""
        ...

    def export_state(self) -> Any:
        """What a fast path needs to carry on (protocol-specific)."""
        ...

    def resume(self, state: Any, pending: Sequence[Pending]) -> None:
        """Take back the connection: ``state`` as the fast path left it (None: nothing
        changed), then ``pending`` in order."""
        ...

    def fork(self) -> Self:
        """A decoder in this one's learned state with nothing in flight, to decode a
        sample transaction on without touching this one."""
        ...


Verdict = Callable[[bytes, bytes, bool], "bool | None"]
"""``verdict(client_bytes, server_bytes, on_known_port)``: the first bytes seen in each
direction (TCP: up to 512 bytes of the stream; UDP: the first datagram). True: this
protocol. False: certainly not. None: not enough data yet."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Variant:
    """Another name a protocol's decoder stores on operations and conversations: CIP
    inside EtherNet/IP, S7comm-plus over the S7 stack's TPKT/COTP."""

    name: str
    aliases: tuple[str, ...] = ()  # spellings people type for it
    cleartext_control: bool = False  # control in clear text (no integrity protection)
    own_filter: bool = False  # a protocol filter of its own; else the protocol's finds it


@dataclass(frozen=True, slots=True)
class Service:
    """A well-known (transport, port) the protocol is served on, for firewall rules and
    port sweeps. ``name`` (default: the protocol's) tells apart services of one protocol
    (EtherNet/IP implicit I/O on UDP 2222 is ``enip-io``)."""

    transport: str
    port: int
    name: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class FastLane:
    """The protocol's lane on the compiled fast path, named rather than imported: the
    protocol package stays free of numba and of the analysis code."""

    lane: str  # "package.module:Class"
    # Modules of the protocol package the lane's kernels compile in (tables read at
    # compile time): their source is part of the compiled-kernel cache key.
    kernel_sources: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Browse:
    """Requests by which a client walks a server's address space (OPC UA Browse,
    BrowseNext, TranslateBrowsePathsToNodeIds), for browse-sweep detection: the functions
    (as operations store them) that do, and what one such request walks."""

    functions: frozenset[str]
    # (items the request names, e.g. node ids; how many more it walks without naming
    # them: items beyond those the detail lists, continuation pages)
    items: Callable[[OpView], tuple[list[str], int]]


@dataclass(frozen=True, slots=True)
class ProtocolSpec:
    """How the engine finds and decodes one protocol, and what the rest of Conduit knows
    about it (every field after ``title`` is optional for a protocol still in progress)."""

    name: str  # "modbus", "dnp3", "s7comm", "enip", ...: the stored connection protocol
    transports: frozenset[str]
    ports: frozenset[int]  # well-known server ports: a prior for recognition, not a rule
    verdict: Verdict  # content identification
    factory: Callable[[Endpoints], ConnectionDecoder]
    title: str = ""  # for people: "Modbus/TCP"; defaults to the name
    aliases: tuple[str, ...] = ()  # spellings people type for ``name``
    variants: tuple[Variant, ...] = ()
    # Firewall/port-sweep services; empty: every transport on every port.
    services: tuple[Service, ...] = ()
    cleartext_control: bool = False  # carries control in clear text (policy: SL 3+ zones)
    layers: tuple[str, ...] = ()  # lower layers of its stack a decode problem may name
    operation_classes: frozenset[OpClass] = frozenset()  # what its operations may be
    identity_sources: frozenset[str] = frozenset()  # ``IdentityClaim.source`` values
    # Exception codes by which a device says it does not support a function (a scan).
    unsupported_codes: frozenset[int] = frozenset()
    # Identity-class functions a device sends about itself (BACnet I-Am): an
    # announcement, never a request for another device's identity (identity sweeps).
    announcements: frozenset[str] = frozenset()
    # Identity functions a client asks while opening a session (OPC UA GetEndpoints before
    # CreateSession): part of connecting, a sweep only where no session follows.
    setup_identity: frozenset[str] = frozenset()
    classify: Classifier | None = None  # dangerous operations (see ``danger``)
    detail_keys: frozenset[str] = frozenset()  # the ``detail`` keys ``classify`` reads
    rules: tuple[DangerRule, ...] = ()  # every rule ``classify`` raises, with examples
    defines: tuple[RuleDefinition, ...] = ()  # catalogue rules of its own
    fast_lane: FastLane | None = None
    browse: Browse | None = None  # address-space walks (browse-sweep detection)
    # Asked only when a connection ends (or fills its probe) with ``verdict`` still
    # undecided: True claims it (S7 on TPKT/COTP that never showed S7 or MMS data).
    settle: Verdict | None = None

    @property
    def label(self) -> str:
        return self.title or self.name

    @property
    def names(self) -> tuple[str, ...]:
        """Every protocol name its decoder stores: its own, then its variants'."""
        return (self.name, *(v.name for v in self.variants))

    @property
    def well_known(self) -> tuple[Service, ...]:
        """Its services, named (an empty ``services`` means every transport x port)."""
        if self.services:
            return tuple(Service(s.transport, s.port, s.name or self.name) for s in self.services)
        return tuple(
            Service(t, p, self.name) for t in sorted(self.transports) for p in sorted(self.ports)
        )
