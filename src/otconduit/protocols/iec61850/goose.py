"""GOOSE (IEC 61850-8-1 §18 and Annex A), Ethernet type 0x88B8: frame decoding and the
per-control-block sequence watch.

Frame (IEC 61850-8-1 Annex C): APPID (2), Length (2, from APPID to the end of the APDU),
Reserved 1 (2; bit 15 is the simulation "S" bit of edition 2), Reserved 2 (2), then
goosePdu [APPLICATION 1] IMPLICIT SEQUENCE { gocbRef [0], timeAllowedtoLive [1], datSet
[2], goID [3] OPTIONAL, t [4] UtcTime, stNum [5], sqNum [6], simulation (edition 1:
test) [7] DEFAULT FALSE, confRev [8], ndsCom [9] DEFAULT FALSE, numDatSetEntries [10],
allData [11] SEQUENCE OF Data, security [12] OPTIONAL }.

A publisher repeats its message (sqNum + 1 each time) and on a change of any dataset
value sends a new state (stNum + 1, sqNum back to 0) in a fast burst
(IEC 61850-7-2 §18.2.3.5, §18.2.3.6). Subscribers act on the highest stNum they see,
which is what a GOOSE injection abuses: :class:`GooseMonitor` reports per control block
the first message, every state change, and these abuse signals (each an Operation):

- ``replay``: an (stNum, sqNum) seen before, or going backwards;
- ``stnum-jump``: stNum grew by more than one (states skipped: an injected high stNum,
  or a lost burst);
- ``sqnum-reset``: sqNum back to 0 without a new stNum;
- ``stnum-reset``: stNum back to 1 (a publisher restart, or someone else);
- ``second-publisher``: the control block from another MAC address;
- ``confrev-changed``, ``simulation-set``: configuration revision changed, test or
  simulation flag switched on;
- ``time-backwards``: a new state stamped earlier than the previous one.

Retransmissions are counted per control block, not reported one by one. A frame that
differs from its block's last message only in the contents of sqNum, stNum, t and
timeAllowedtoLive (the cyclic traffic a mirror port is full of) is read from that
message as a template (:mod:`.goose_template`) instead of being decoded: a plain
retransmission is counted on the spot, anything else (a replay, a sqNum reset, a new
state) goes through the same watch with the same message ``parse_goose`` would give. A
new state whose dataset keeps its shape (only the contents of its elements differ) is
built from the template as well, its values decoded element by element. A
value change without a new stNum is not an anomaly here: the corpus' ABB IEDs do it at
sqNum 2 (18 times in ``Sample_File_GOOSE.pcap``); it is decoded and watched like any
message. An identical frame within :data:`DUPLICATE_NS` of the last (mirror-port
duplicates) is counted apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from otconduit.model import IdentityClaim, OpClass, Operation, OpStatus
from otconduit.protocols.base import DecoderEvent
from otconduit.protocols.events import Malformed
from otconduit.protocols.iec61850 import ber
from otconduit.protocols.iec61850.ber import APPLICATION, CONTEXT, BerError
from otconduit.protocols.iec61850.goose_template import Template, template

ETHERTYPE_GOOSE: Final = 0x88B8
ETHERTYPE_GSE_MANAGEMENT: Final = 0x88B9
PROTOCOL: Final = "goose"
SOURCE: Final = "goose"
HEADER: Final = 8
DUPLICATE_NS: Final = 100_000  # identical frame within 100 µs: a capture duplicate
MAX_U32: Final = 0xFFFFFFFF
MALFORMED_DATA: Final = 256
MAX_OP_VALUES: Final = 64
MAX_TEMPLATES: Final = 8  # control blocks tried per (source MAC, APPID) before decoding

PUBLISH: Final = "publish"
STATE_CHANGE: Final = "state-change"
RETRANSMISSION: Final = "retransmission"
FUNCTION_CODES: Final = {PUBLISH: 0, STATE_CHANGE: 1, RETRANSMISSION: 2, "gse-management": 3}
ANOMALIES: Final = (
    "replay",
    "stnum-jump",
    "sqnum-reset",
    "stnum-reset",
    "second-publisher",
    "confrev-changed",
    "simulation-set",
    "time-backwards",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class GoosePdu:
    """One decoded GOOSE message; ``values`` are decoded from ``all_data`` on demand."""

    appid: int
    length: int
    simulated_bit: bool  # Reserved 1 bit 15 (edition 2 "S" bit)
    reserved1: int
    reserved2: int
    gocb_ref: str
    time_allowed_to_live: int | None
    dat_set: str | None
    go_id: str | None
    t: bytes | None  # raw UtcTime
    st_num: int
    sq_num: int
    simulation: bool
    conf_rev: int | None
    nds_com: bool
    num_dat_set_entries: int | None
    all_data: bytes  # the allData SEQUENCE (identifier, length and contents)
    data_count: int
    security: bool
    sq_span: tuple[int, int]  # where sqNum's contents lie in the frame's payload
    problem: str | None = None

    @property
    def time(self) -> str | None:
        try:
            return ber.utc_time(self.t) if self.t is not None else None
        except (BerError, ValueError, OverflowError):
            return None

    def values(self) -> tuple[list[Any], str | None]:
        """The allData values (and a problem, when they do not decode)."""
        if not self.all_data:
            return [], None
        try:
            top = ber.read_tlv(self.all_data, 0, len(self.all_data))
            return ber.data_list(self.all_data, top), None
        except (BerError, ValueError, OverflowError) as exc:
            return [], f"allData: {exc}"


def parse_goose(payload: bytes) -> GoosePdu | str:
    """Decode the bytes after the EtherType (any Ethernet padding after Length is
    ignored); a reason string when the frame is not a decodable GOOSE message."""
    decoded = _decode(payload)
    return decoded if isinstance(decoded, str) else decoded.pdu


def _decode(payload: bytes) -> Template | str:
    """``parse_goose``, with the message's bytes and variable spans as a template."""
    if len(payload) < HEADER + 2:
        return f"GOOSE frame of {len(payload)} bytes"
    appid = (payload[0] << 8) | payload[1]
    length = (payload[2] << 8) | payload[3]
    if length < HEADER + 2 or length > len(payload):
        return f"GOOSE length {length} with {len(payload)} bytes in the frame"
    reserved1 = (payload[4] << 8) | payload[5]
    reserved2 = (payload[6] << 8) | payload[7]
    data = payload[:length]
    try:
        top = ber.read_tlv(data, HEADER, length)
        if top.cls != APPLICATION or top.tag != 1 or not top.constructed:
            return f"not a goosePdu (identifier 0x{data[HEADER]:02x})"
        fields = {t.tag: t for t in ber.children(data, top) if t.cls == CONTEXT}
        for tag, name in ((0, "gocbRef"), (5, "stNum"), (6, "sqNum")):
            if tag not in fields:
                return f"goosePdu without {name}"
        problem = None
        if top.end != length:
            problem = f"{length - top.end} bytes after the goosePdu"
        missing = [n for t, n in _REQUIRED if t not in fields]
        if missing:
            problem = "goosePdu without " + ", ".join(missing)
        all_data = fields.get(11)
        pdu = GoosePdu(
            appid=appid,
            length=length,
            simulated_bit=bool(reserved1 & 0x8000),
            reserved1=reserved1,
            reserved2=reserved2,
            gocb_ref=ber.text(data, fields[0]),
            time_allowed_to_live=_int(data, fields.get(1)),
            dat_set=ber.text(data, fields[2]) if 2 in fields else None,
            go_id=ber.text(data, fields[3]) if 3 in fields else None,
            t=data[fields[4].start : fields[4].end] if 4 in fields else None,
            st_num=ber.unsigned(data, fields[5]),
            sq_num=ber.unsigned(data, fields[6]),
            simulation=ber.boolean(data, fields[7]) if 7 in fields else False,
            conf_rev=_int(data, fields.get(8)),
            nds_com=ber.boolean(data, fields[9]) if 9 in fields else False,
            num_dat_set_entries=_int(data, fields.get(10)),
            all_data=data[all_data.offset : all_data.end] if all_data else b"",
            data_count=ber.count(data, all_data) if all_data else 0,
            security=12 in fields,
            sq_span=(fields[6].start, fields[6].end),
            problem=problem,
        )
        return template(payload, pdu, fields)
    except BerError as exc:
        return f"goosePdu: {exc}"


_REQUIRED: Final = (
    (1, "timeAllowedtoLive"),
    (2, "datSet"),
    (4, "t"),
    (8, "confRev"),
    (10, "numDatSetEntries"),
    (11, "allData"),
)


def _int(data: bytes, tlv: ber.Tlv | None) -> int | None:
    return None if tlv is None else ber.integer(data, tlv)


def _next(n: int) -> tuple[int, ...]:
    """Successors of a counter: n + 1, and 0 or 1 after the 32-bit maximum
    (IEC 61850-8-1 lets both stNum and sqNum roll over)."""
    return (n + 1,) if n < MAX_U32 else (0, 1)


@dataclass(slots=True)
class GooseStream:
    """What one control block (APPID, gocbRef) has sent so far."""

    appid: int
    gocb_ref: str
    src_mac: str
    dst_mac: str
    vlan: int | None
    st_num: int
    sq_num: int
    conf_rev: int | None
    simulation: bool
    t: bytes | None
    first_frame: int
    first_ts: int
    last_ts: int
    last_payload: bytes
    sq_span: tuple[int, int]
    template: Template  # the last decoded message (see :mod:`.goose_template`)
    frames: int = 1
    state_changes: int = 0
    retransmissions: int = 0
    duplicates: int = 0
    sq_gaps: int = 0  # messages missed within a state (lost or not captured)
    anomalies: dict[str, int] = field(default_factory=dict)
    macs: set[str] = field(default_factory=set)


class GooseMonitor:
    """Frame-oriented GOOSE decoder for a whole capture (all publishers)."""

    def __init__(self) -> None:
        self.streams: dict[tuple[int, str], GooseStream] = {}
        # (source MAC, APPID bytes) -> the streams it sent, latest first: the templates a
        # frame is tried against before it is decoded.
        self._recent: dict[tuple[str, bytes], list[GooseStream]] = {}
        self.frames = 0
        self.gse_management = 0
        self.templated = 0  # frames taken from a template, without the BER walk
        self.relaid = 0  # ... new values in a known dataset shape, without the walk
        self._out: list[DecoderEvent] = []
        self._claimed: set[tuple[str, str, str]] = set()

    def feed_frame(
        self,
        ethertype: int,
        src_mac: str,
        dst_mac: str,
        payload: bytes,
        frame: int,
        ts_ns: int,
        vlan: int | None = None,
    ) -> None:
        """One Ethernet frame: ``payload`` is what follows the (innermost) EtherType."""
        if ethertype == ETHERTYPE_GSE_MANAGEMENT:
            self.gse_management += 1
            return
        if ethertype != ETHERTYPE_GOOSE:
            return
        self.frames += 1
        # A repetition differs from the last message of its control block only in sqNum
        # (and t, timeAllowedtoLive; stNum for a new state with the same values): its
        # message is the template's with those read in place (see .goose_template).
        for s in self._recent.get((src_mac, payload[:2]), ()):
            tpl = s.template
            if not tpl.matches(payload):
                continue
            self.templated += 1
            if payload == s.last_payload and ts_ns - s.last_ts <= DUPLICATE_NS:
                s.duplicates += 1
                return
            st, sq = tpl.st_sq(payload)
            if st == s.st_num and sq in _next(s.sq_num) and src_mac == s.src_mac:
                # what _follow does with a plain retransmission, without the message
                s.frames += 1
                s.retransmissions += 1
                s.sq_num, s.last_ts, s.last_payload = sq, ts_ns, payload
                return
            self._follow(
                s, tpl.pdu_for(payload), tpl, src_mac, dst_mac, payload, frame, ts_ns, vlan
            )
            return
        # A new state with other values in the same dataset shape: built from the
        # template too, its values decoded element by element (see .goose_template).
        decoded: Template | str | None = None
        for s in self._recent.get((src_mac, payload[:2]), ()):
            decoded = s.template.relayout(payload)
            if decoded is not None:
                self.relaid += 1
                break
        if decoded is None:
            decoded = _decode(payload)
        if isinstance(decoded, str):
            self._out.append(
                Malformed(
                    reason=decoded,
                    offset=0,
                    frame=frame,
                    ts_ns=ts_ns,
                    data=payload[:MALFORMED_DATA],
                )
            )
            return
        pdu = decoded.pdu
        key = (pdu.appid, pdu.gocb_ref)
        stream = self.streams.get(key)
        if stream is None:
            self._new_stream(key, decoded, src_mac, dst_mac, frame, ts_ns, vlan)
            return
        if payload == stream.last_payload and ts_ns - stream.last_ts <= DUPLICATE_NS:
            stream.duplicates += 1
            return
        self._follow(stream, pdu, decoded, src_mac, dst_mac, payload, frame, ts_ns, vlan)

    def events(self) -> list[DecoderEvent]:
        out, self._out = self._out, []
        return out

    def finish(self) -> list[DecoderEvent]:
        return self.events()

    # --- internals --------------------------------------------------------------------
    def _remember(self, s: GooseStream, src_mac: str, payload: bytes) -> None:
        """``s`` is the stream ``src_mac`` last sent with this APPID: tried first."""
        streams = self._recent.setdefault((src_mac, payload[:2]), [])
        if streams and streams[0] is s:
            return
        if s in streams:
            streams.remove(s)
        streams.insert(0, s)
        del streams[MAX_TEMPLATES:]

    def _new_stream(
        self,
        key: tuple[int, str],
        tpl: Template,
        src_mac: str,
        dst_mac: str,
        frame: int,
        ts_ns: int,
        vlan: int | None,
    ) -> None:
        pdu, payload = tpl.pdu, tpl.payload
        stream = GooseStream(
            appid=pdu.appid,
            gocb_ref=pdu.gocb_ref,
            src_mac=src_mac,
            dst_mac=dst_mac,
            vlan=vlan,
            st_num=pdu.st_num,
            sq_num=pdu.sq_num,
            conf_rev=pdu.conf_rev,
            simulation=pdu.simulation or pdu.simulated_bit,
            t=pdu.t,
            first_frame=frame,
            first_ts=ts_ns,
            last_ts=ts_ns,
            last_payload=payload,
            sq_span=pdu.sq_span,
            template=tpl,
        )
        stream.macs.add(src_mac)
        self._remember(stream, src_mac, payload)
        self.streams[key] = stream
        anomalies = ["simulation-set"] if stream.simulation else []
        self._emit(PUBLISH, stream, pdu, None, anomalies, src_mac, dst_mac, frame, ts_ns, vlan)
        ld = pdu.gocb_ref.split("/", 1)[0]
        if ld and (src_mac, "iec61850_ld", ld) not in self._claimed:
            self._claimed.add((src_mac, "iec61850_ld", ld))
            self._out.append(
                IdentityClaim(
                    ip=src_mac,
                    attribute="iec61850_ld",
                    value=ld,
                    source=SOURCE,
                    confidence=0.6,
                    ts_ns=ts_ns,
                )
            )

    def _follow(
        self,
        s: GooseStream,
        pdu: GoosePdu,
        tpl: Template,
        src_mac: str,
        dst_mac: str,
        payload: bytes,
        frame: int,
        ts_ns: int,
        vlan: int | None,
    ) -> None:
        """Compare a message with its control block's last one (see the module doc);
        ``tpl`` is the template ``pdu`` came from (its own when just decoded)."""
        s.frames += 1
        anomalies: list[str] = []
        if src_mac not in s.macs:
            anomalies.append("second-publisher")
            s.macs.add(src_mac)
        elif src_mac != s.src_mac:
            anomalies.append("second-publisher")
        if pdu.conf_rev != s.conf_rev:
            anomalies.append("confrev-changed")
        flagged = pdu.simulation or pdu.simulated_bit
        if flagged and not s.simulation:
            anomalies.append("simulation-set")
        st, sq = pdu.st_num, pdu.sq_num
        state_change = False
        if st == s.st_num:
            if sq in _next(s.sq_num):
                s.retransmissions += 1
            elif sq == s.sq_num:
                anomalies.append("replay")
            elif sq == 0:
                anomalies.append("sqnum-reset")
            elif sq < s.sq_num:
                anomalies.append("replay")
            else:
                s.sq_gaps += sq - s.sq_num - 1
                s.retransmissions += 1
        elif st in _next(s.st_num):
            state_change = True
        elif st in (0, 1) and s.st_num > 1:
            anomalies.append("stnum-reset")
            state_change = True
        elif st > s.st_num:
            anomalies.append("stnum-jump")
            state_change = True
        else:
            anomalies.append("replay")
        if (
            state_change
            and pdu.t is not None
            and s.t is not None
            and ber.utc_time_ns(pdu.t) < ber.utc_time_ns(s.t)
        ):
            anomalies.append("time-backwards")
        previous = (s.st_num, s.sq_num)
        s.st_num, s.sq_num = st, sq
        s.conf_rev, s.simulation = pdu.conf_rev, flagged
        s.last_ts, s.last_payload, s.sq_span = ts_ns, payload, pdu.sq_span
        s.template = tpl
        s.src_mac = src_mac
        self._remember(s, src_mac, payload)
        if state_change:
            s.state_changes += 1
            s.t = pdu.t
        for a in anomalies:
            s.anomalies[a] = s.anomalies.get(a, 0) + 1
        if state_change or anomalies:
            function = STATE_CHANGE if state_change else RETRANSMISSION
            self._emit(function, s, pdu, previous, anomalies, src_mac, dst_mac, frame, ts_ns, vlan)

    def _emit(
        self,
        function: str,
        s: GooseStream,
        pdu: GoosePdu,
        previous: tuple[int, int] | None,
        anomalies: list[str],
        src_mac: str,
        dst_mac: str,
        frame: int,
        ts_ns: int,
        vlan: int | None,
    ) -> None:
        values, problem = s.template.values()
        detail: dict[str, Any] = {
            "layer": "ethernet",
            "src_mac": src_mac,
            "dst_mac": dst_mac,
            "appid": pdu.appid,
            "gocb_ref": pdu.gocb_ref,
            "dat_set": pdu.dat_set,
            "go_id": pdu.go_id,
            "time_allowed_to_live": pdu.time_allowed_to_live,
            "t": s.template.time(pdu),
            "st_num": pdu.st_num,
            "sq_num": pdu.sq_num,
            "simulation": pdu.simulation,
            "simulated_bit": pdu.simulated_bit,
            "conf_rev": pdu.conf_rev,
            "nds_com": pdu.nds_com,
            "num_dat_set_entries": pdu.num_dat_set_entries,
            "values": values,
        }
        if vlan is not None:
            detail["vlan"] = vlan
        if previous is not None:
            detail["previous_st_num"], detail["previous_sq_num"] = previous
            detail["frames_since_first"] = s.frames
        if anomalies:
            detail["anomalies"] = anomalies
        problems = [p for p in (pdu.problem, problem) if p]
        if pdu.num_dat_set_entries is not None and pdu.num_dat_set_entries != pdu.data_count:
            problems.append(
                f"numDatSetEntries {pdu.num_dat_set_entries} with {pdu.data_count} values"
            )
        if pdu.security:
            detail["security"] = True
        if problems:
            detail["problems"] = problems
        ints = (
            tuple(int(v) for v in values)
            if 0 < len(values) <= MAX_OP_VALUES and all(isinstance(v, int) for v in values)
            else None
        )
        self._out.append(
            Operation(
                ts_ns=ts_ns,
                protocol=PROTOCOL,
                src_ip=src_mac,
                src_port=0,
                dst_ip=dst_mac,
                dst_port=0,
                operation=OpClass.WRITE,
                function=function,
                function_code=FUNCTION_CODES[function],
                unit=pdu.appid,
                quantity=pdu.data_count,
                values=ints,
                status=OpStatus.MALFORMED if problems else OpStatus.OK,
                request_frame=frame,
                transaction_id=pdu.st_num,
                detail=detail,
            )
        )
