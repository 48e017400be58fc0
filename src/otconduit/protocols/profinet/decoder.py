"""Everything PROFINET in a capture: layer-2 frames (EtherType 0x8892: DCP, alarms, RT
cyclic and PTCP counted) and IO-CM datagrams (UDP, :mod:`.iocm`), in one object.

Frame-oriented and sans-I/O: :meth:`ProfinetDecoder.feed_frame` takes what follows the
(innermost) EtherType with the frame's MAC addresses; :meth:`feed_datagram` a UDP
payload. Operations of layer-2 services carry MAC addresses where IP addresses would be
(``src_ip``/``dst_ip``, ports 0, ``detail["layer"] == "ethernet"``); identity claims
from DCP are keyed by the device MAC, and by its IP address too when DCP states one.

DCP (:mod:`.dcp`): an Identify request is multicast and answered by every matching
device, so each answer is one Operation (request and response); a request nobody
answers within its response window (ResponseDelayFactor x 10 ms + 2 s, judged on the
time of later frames) completes unanswered. A repeat of a pending request (same source
and Xid) is counted on it. Get/Set pair by (requester, device, Xid); Hello stands alone.

Alarms (:mod:`.alarms`): an alarm notification pairs with the AlarmAck that returns its
sequence number; ERR-RTA (the alarm channel aborted) stands alone; transport ACK/NACK
PDUs are counted. RT cyclic, PTCP and fragment frames are counted per (source MAC,
FrameID) in :attr:`rt` and summarised at :meth:`finish` as one Operation per stream.

Bounds: pending DCP requests and unacknowledged alarms are each capped (oldest first
complete unanswered); RT streams are one small record per (MAC, FrameID).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Final

from otconduit.model import IdentityClaim, OpClass, Operation, OpStatus
from otconduit.protocols.base import DecoderEvent
from otconduit.protocols.events import Malformed
from otconduit.protocols.profinet import alarms, dcp, frames
from otconduit.protocols.profinet.iocm import PROTOCOL, VENDORS, IoCmDecoder

SOURCE: Final = "pn_dcp"
DCP_CONFIDENCE: Final = 0.9
DCP_GRACE_NS: Final = 2_000_000_000
DCP_MAX_WINDOW_NS: Final = 70_000_000_000
GET_SET_WINDOW_NS: Final = 10_000_000_000
MAX_PENDING: Final = 1024
MALFORMED_DATA: Final = 256
RT_CODES: Final = {"ptcp": 0x10, "fragment": 0x11, "reserved": 0x1F}
RT_FUNCTIONS: Final = {"ptcp": "PTCP", "fragment": "RT Fragment", "reserved": "RT Reserved"}


@dataclass(slots=True)
class RtStream:
    """Counters of one (source MAC, FrameID) stream of frames that are not decoded."""

    src_mac: str
    dst_mac: str
    frame_id: int
    vlan: int | None
    first_frame: int
    first_ts: int
    last_ts: int
    frames: int = 0
    bytes: int = 0
    data_status: int | None = None  # APDU DataStatus of the last cyclic frame
    provider_stopped: int = 0  # cyclic frames whose DataStatus says provider STOP

    @property
    def kind(self) -> str:
        return frames.kind(self.frame_id)


@dataclass(slots=True)
class _Pending:
    pdu: Any  # DcpPdu or RtaPdu
    src_mac: str
    dst_mac: str
    frame: int
    ts_ns: int
    vlan: int | None
    deadline: int = 0
    answers: int = 0
    repeat_frames: list[int] = field(default_factory=list)


class ProfinetDecoder:
    """Frame- and datagram-oriented PROFINET decoder for a whole capture."""

    def __init__(self) -> None:
        self.iocm = IoCmDecoder()
        self.rt: dict[tuple[str, int], RtStream] = {}
        self.dcp_counts: dict[tuple[str, int, int], int] = {}  # (src MAC, service, type)
        self.rta_counts: dict[tuple[str, str], int] = {}  # (src MAC, PDU type name)
        self._identify: OrderedDict[tuple[str, int], _Pending] = OrderedDict()
        self._get_set: OrderedDict[tuple[str, str, int], _Pending] = OrderedDict()
        self._alarms: OrderedDict[tuple[str, str, int, int], _Pending] = OrderedDict()
        self._out: list[DecoderEvent] = []
        self._claimed: set[tuple[str, str, str]] = set()
        self._finished = False

    # --- inputs ---------------------------------------------------------------------
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
        """One Ethernet frame; ``payload`` is what follows the (innermost) EtherType."""
        if ethertype != frames.ETHERTYPE_PROFINET or self._finished:
            return
        if len(payload) < 2:
            self._malformed("PROFINET frame without a FrameID", frame, ts_ns, payload)
            return
        fid = (payload[0] << 8) | payload[1]
        if fid < 0xFC00 or fid >= 0xFF00:  # cyclic data, PTCP, fragments: counted
            stream = self.rt.get((src_mac, fid))
            if stream is None:
                stream = self.rt[(src_mac, fid)] = RtStream(
                    src_mac, dst_mac, fid, vlan, frame, ts_ns, ts_ns
                )
            stream.frames += 1
            stream.bytes += len(payload)
            stream.last_ts = ts_ns
            if 0x0100 <= fid < 0xFC00 and len(payload) >= 6:
                status = payload[-2]
                stream.data_status = status
                if not status & 0x10:
                    stream.provider_stopped += 1
            return
        self._expire(ts_ns)
        if fid in frames.DCP_FRAME_IDS:
            self._dcp(fid, src_mac, dst_mac, payload[2:], frame, ts_ns, vlan)
        elif fid in (frames.ALARM_HIGH, frames.ALARM_LOW):
            self._alarm(fid, src_mac, dst_mac, payload[2:], frame, ts_ns, vlan)
        else:
            stream = self.rt.get((src_mac, fid))
            if stream is None:
                stream = self.rt[(src_mac, fid)] = RtStream(
                    src_mac, dst_mac, fid, vlan, frame, ts_ns, ts_ns
                )
            stream.frames += 1
            stream.bytes += len(payload)
            stream.last_ts = ts_ns

    def feed_datagram(
        self,
        src_ip: str,
        src_port: int,
        dst_ip: str,
        dst_port: int,
        data: bytes,
        frame: int,
        ts_ns: int,
    ) -> None:
        """One UDP datagram of PROFINET IO-CM (DCE/RPC), see :class:`IoCmDecoder`."""
        if self._finished:
            return
        self.iocm.feed_datagram(src_ip, src_port, dst_ip, dst_port, data, frame, ts_ns)
        self._out += self.iocm.events()

    # --- outputs --------------------------------------------------------------------
    def events(self) -> list[DecoderEvent]:
        out, self._out = self._out, []
        return out

    def finish(self) -> list[DecoderEvent]:
        """End of capture: pending requests complete unanswered, RT streams summarised."""
        if not self._finished:
            self._finished = True
            self._expire(None)
            self._out += self.iocm.finish()
            for stream in self.rt.values():
                self._out.append(self._rt_operation(stream))
        return self.events()

    # --- DCP ------------------------------------------------------------------------
    def _dcp(
        self,
        fid: int,
        src: str,
        dst: str,
        body: bytes,
        frame: int,
        ts_ns: int,
        vlan: int | None,
    ) -> None:
        pdu = dcp.parse_dcp(fid, body)
        if isinstance(pdu, str):
            self._malformed(pdu, frame, ts_ns, body)
            return
        key3 = (src, pdu.service_id, pdu.service_type)
        self.dcp_counts[key3] = self.dcp_counts.get(key3, 0) + 1
        msg = _Pending(pdu, src, dst, frame, ts_ns, vlan)
        if pdu.service_id == dcp.HELLO:
            self._dcp_op(None, msg, push=True)
            return
        if pdu.service_id == dcp.IDENTIFY:
            if pdu.is_request:
                pending = self._identify.get((src, pdu.xid))
                if pending is not None:
                    pending.repeat_frames.append(frame)
                    return
                window = max(pdu.response_delay, 1) * 10_000_000 + DCP_GRACE_NS
                msg.deadline = ts_ns + min(window, DCP_MAX_WINDOW_NS)
                self._remember(self._identify, (src, pdu.xid), msg)
                return
            request = self._identify.get((dst, pdu.xid))
            if request is not None:
                request.answers += 1
            self._dcp_op(request, msg)
            return
        if pdu.is_request:
            msg.deadline = ts_ns + GET_SET_WINDOW_NS
            self._remember(self._get_set, (src, dst, pdu.xid), msg)
            return
        self._dcp_op(self._get_set.pop((dst, src, pdu.xid), None), msg)

    def _remember(self, table: OrderedDict[Any, _Pending], key: Any, msg: _Pending) -> None:
        old = table.pop(key, None)
        if old is not None:
            self._unanswered(old)
        table[key] = msg
        while len(table) > MAX_PENDING:
            _, oldest = table.popitem(last=False)
            self._unanswered(oldest)

    def _expire(self, now: int | None) -> None:
        """Complete DCP requests whose window closed (all of them when ``now`` is None)
        and, at the end, alarms never acknowledged."""
        tables: tuple[OrderedDict[Any, _Pending], ...] = (self._identify, self._get_set)
        for table in tables:
            for key in [k for k, p in table.items() if now is None or p.deadline < now]:
                self._unanswered(table.pop(key))
        if now is None:
            for pending in self._alarms.values():
                self._alarm_op(pending, None)
            self._alarms.clear()

    def _unanswered(self, pending: _Pending) -> None:
        if isinstance(pending.pdu, dcp.DcpPdu):
            if not pending.answers:
                self._dcp_op(pending, None)
        else:
            self._alarm_op(pending, None)

    def _dcp_op(
        self, request: _Pending | None, response: _Pending | None, push: bool = False
    ) -> None:
        first = request if request is not None else response
        assert first is not None
        pdu: dcp.DcpPdu = first.pdu
        if request is not None:
            src, dst = request.src_mac, response.src_mac if response else request.dst_mac
        elif push:
            src, dst = first.src_mac, first.dst_mac
        else:
            src, dst = first.dst_mac, first.src_mac
        detail: dict[str, Any] = {
            "layer": "ethernet",
            "src_mac": src,
            "dst_mac": dst,
            "xid": pdu.xid,
        }
        if first.vlan is not None:
            detail["vlan"] = first.vlan
        fields: dict[str, Any] = {
            "ts_ns": first.ts_ns,
            "protocol": PROTOCOL,
            "src_ip": src,
            "src_port": 0,
            "dst_ip": dst,
            "dst_port": 0,
            "function": f"DCP {pdu.service}",
            "function_code": frames.DCP_BASE + pdu.service_id,
            "operation": _dcp_class(pdu),
            "transaction_id": pdu.xid,
            "request_frame": request.frame if request else (first.frame if push else None),
            "response_frame": response.frame if response and not push else None,
            "latency_ns": response.ts_ns - request.ts_ns if request and response else None,
            "status": OpStatus.OK,
        }
        if push:
            detail["unsolicited"] = True
            detail.update(pdu.fields)
        problems = []
        if request is not None:
            req: dcp.DcpPdu = request.pdu
            if request.repeat_frames:
                detail["repeat_frames"] = list(request.repeat_frames)
            if req.service_id == dcp.IDENTIFY:
                detail["filter"] = _filter(req)
                detail["response_delay"] = req.response_delay
            elif req.service_id == dcp.GET:
                detail["requested"] = [
                    dcp.BLOCK_NAMES.get(o, f"{o[0]}/{o[1]}") for o in req.options
                ]
            elif req.service_id == dcp.SET:
                detail["set"] = dcp.set_targets(req)
                detail.update({f"new_{k}": v for k, v in req.fields.items()})
                perm = dcp.permanent(req)
                if perm is not None:
                    detail["permanent"] = perm
                if any(t in dcp.RESET_SETS for t in detail["set"]):
                    fields["operation"] = OpClass.CONTROL
            if req.problem:
                problems.append(req.problem)
            if response is None:
                fields["status"] = OpStatus.NO_RESPONSE
        elif not push:
            detail["orphan_response"] = True
        if response is not None and not push:
            resp: dcp.DcpPdu = response.pdu
            detail.update({k: v for k, v in resp.fields.items() if k not in detail})
            if resp.problem:
                problems.append(resp.problem)
            if resp.service_type == dcp.NOT_SUPPORTED:
                fields.update(status=OpStatus.EXCEPTION, exception="request not supported")
            errors = [r for r in resp.fields.get("responses", []) if r["error"]]
            if errors:
                fields.update(
                    status=OpStatus.EXCEPTION,
                    exception=f"{errors[0]['block']}: {errors[0]['error_name']}",
                    exception_code=errors[0]["error"],
                )
        if push and pdu.problem:
            problems.append(pdu.problem)
        if problems:
            detail["problems"] = problems
            if fields["status"] is OpStatus.OK:
                fields["status"] = OpStatus.MALFORMED
        self._out.append(Operation(**fields, detail=detail))
        device = response if response is not None else (first if push else None)
        if device is not None:
            self._dcp_claims(device.src_mac, device.pdu, device.ts_ns)

    def _dcp_claims(self, mac: str, pdu: dcp.DcpPdu, ts_ns: int) -> None:
        """What a device says of itself in an Identify/Get response or a Hello."""
        f = pdu.fields
        pairs: list[tuple[str, str]] = []
        if f.get("name_of_station"):
            pairs.append(("name_of_station", f["name_of_station"]))
        if f.get("type_of_station"):
            pairs.append(("model", f["type_of_station"]))
        if "vendor_id" in f:
            pairs.append(("vendor_id", f"0x{f['vendor_id']:04x}"))
            pairs.append(("device_id", f"0x{f['device_id']:04x}"))
            if f["vendor_id"] in VENDORS:
                pairs.append(("vendor", VENDORS[f["vendor_id"]]))
        if f.get("device_role"):
            pairs.append(("device_role", ",".join(f["device_role"])))
        ip = f.get("ip")
        keys = [mac]
        if ip and ip != "0.0.0.0":
            pairs.append(("ip_address", ip))
            keys.append(ip)
        for key in keys:
            for attribute, value in pairs:
                if key != mac and attribute == "ip_address":
                    attribute, value = "mac_address", mac
                self._claim(key, attribute, value, ts_ns)

    def _claim(self, key: str, attribute: str, value: str, ts_ns: int) -> None:
        if (key, attribute, value) in self._claimed:
            return
        self._claimed.add((key, attribute, value))
        self._out.append(
            IdentityClaim(
                ip=key,
                attribute=attribute,
                value=value,
                source=SOURCE,
                confidence=DCP_CONFIDENCE,
                ts_ns=ts_ns,
            )
        )

    # --- alarms ---------------------------------------------------------------------
    def _alarm(
        self,
        fid: int,
        src: str,
        dst: str,
        body: bytes,
        frame: int,
        ts_ns: int,
        vlan: int | None,
    ) -> None:
        pdu = alarms.parse_rta(fid, body)
        if isinstance(pdu, str):
            self._malformed(pdu, frame, ts_ns, body)
            return
        key2 = (src, pdu.pdu_name)
        self.rta_counts[key2] = self.rta_counts.get(key2, 0) + 1
        msg = _Pending(pdu, src, dst, frame, ts_ns, vlan)
        if (
            pdu.pdu_type == alarms.ERR
            or pdu.problem
            or (pdu.pdu_type == alarms.DATA and not (pdu.is_notification or pdu.is_ack))
        ):
            self._alarm_op(msg, None, push=True)
        elif pdu.is_notification:
            key = (src, dst, fid, pdu.sequence or 0)
            self._remember(self._alarms, key, msg)
        elif pdu.is_ack:
            request = self._alarms.pop((dst, src, fid, pdu.sequence or 0), None)
            if request is None:
                self._alarm_op(None, msg)
            else:
                self._alarm_op(request, msg)

    def _alarm_op(
        self, request: _Pending | None, response: _Pending | None, push: bool = False
    ) -> None:
        first = request if request is not None else response
        assert first is not None
        pdu: alarms.RtaPdu = first.pdu
        src, dst = (
            (first.src_mac, first.dst_mac)
            if request is not None or push
            else (first.dst_mac, first.src_mac)
        )
        detail: dict[str, Any] = {
            "layer": "ethernet",
            "src_mac": src,
            "dst_mac": dst,
            "priority": "high" if pdu.high else "low",
            "rta_pdu": pdu.pdu_name,
            "src_endpoint": pdu.src_endpoint,
            "dst_endpoint": pdu.dst_endpoint,
            "send_seq": pdu.send_seq,
            "ack_seq": pdu.ack_seq,
        }
        if first.vlan is not None:
            detail["vlan"] = first.vlan
        fields: dict[str, Any] = {
            "ts_ns": first.ts_ns,
            "protocol": PROTOCOL,
            "src_ip": src,
            "src_port": 0,
            "dst_ip": dst,
            "dst_port": 0,
            "status": OpStatus.OK,
            "request_frame": request.frame if request else (first.frame if push else None),
            "response_frame": response.frame if response else None,
            "latency_ns": response.ts_ns - request.ts_ns if request and response else None,
        }
        if pdu.pdu_type == alarms.ERR:
            fields.update(
                function="Alarm Abort", function_code=frames.ALARM_ABORT, operation=OpClass.SESSION
            )
        else:
            fields.update(
                function=f"Alarm {pdu.alarm_name}",
                function_code=frames.ALARM_BASE + ((pdu.alarm_type or 0) & 0xFF),
                operation=OpClass.DIAGNOSTIC,
            )
        if pdu.alarm_type is not None:
            detail.update(
                alarm_type=pdu.alarm_type,
                alarm_name=pdu.alarm_name,
                api=pdu.api,
                slot=pdu.slot,
                subslot=pdu.subslot,
                sequence=pdu.sequence,
            )
            fields.update(unit=pdu.slot, address=pdu.subslot, transaction_id=pdu.sequence)
            if pdu.module_ident is not None:
                detail["module_ident"] = pdu.module_ident
                detail["submodule_ident"] = pdu.submodule_ident
        status = (
            pdu.status
            if pdu.pdu_type == alarms.ERR
            else (response.pdu.status if response else None)
        )
        if status is not None and any(status):
            fields.update(
                status=OpStatus.EXCEPTION,
                exception=alarms.status_text(status),
                exception_code=alarms.status_code(status),
            )
            detail["pnio_status"] = bytes(status).hex()
        if push:
            detail["unsolicited"] = True
        elif request is None:
            detail["orphan_response"] = True
        elif response is None:
            fields["status"] = OpStatus.NO_RESPONSE
        if pdu.problem:
            detail["problems"] = [pdu.problem]
            if fields["status"] is OpStatus.OK:
                fields["status"] = OpStatus.MALFORMED
        self._out.append(Operation(**fields, detail=detail))

    # --- RT -------------------------------------------------------------------------
    def _rt_operation(self, s: RtStream) -> Operation:
        kind = s.kind
        iocr = self.iocm.iocrs.get((s.src_mac, s.frame_id))
        if kind in frames.CYCLIC:
            function, code = "RT Cyclic", frames.RT_BASE + frames.RT_CLASSES[kind]
        else:
            function, code = RT_FUNCTIONS[kind], frames.RT_BASE + RT_CODES[kind]
        op_class = OpClass.OTHER
        if iocr is not None:
            op_class = OpClass.WRITE if iocr["iocr"] == "output" else OpClass.READ
        detail: dict[str, Any] = {
            "layer": "ethernet",
            "src_mac": s.src_mac,
            "dst_mac": s.dst_mac,
            "frame_id": s.frame_id,
            "kind": kind,
            "frames": s.frames,
            "bytes": s.bytes,
            "last_ts_ns": s.last_ts,
        }
        if s.frames > 1:
            detail["mean_interval_ns"] = (s.last_ts - s.first_ts) // (s.frames - 1)
        if s.vlan is not None:
            detail["vlan"] = s.vlan
        if s.data_status is not None:
            detail["data_status"] = s.data_status
            detail["provider_stopped_frames"] = s.provider_stopped
        if iocr is not None:
            detail.update(iocr)
        return Operation(
            ts_ns=s.first_ts,
            protocol=PROTOCOL,
            src_ip=s.src_mac,
            src_port=0,
            dst_ip=s.dst_mac,
            dst_port=0,
            operation=op_class,
            function=function,
            function_code=code,
            quantity=s.frames,
            address=s.frame_id,
            request_frame=s.first_frame,
            detail=detail,
        )

    def _malformed(self, reason: str, frame: int, ts_ns: int, data: bytes) -> None:
        self._out.append(
            Malformed(reason=reason, offset=0, frame=frame, ts_ns=ts_ns, data=data[:MALFORMED_DATA])
        )


def _dcp_class(pdu: dcp.DcpPdu) -> OpClass:
    return {
        dcp.IDENTIFY: OpClass.IDENTITY,
        dcp.HELLO: OpClass.IDENTITY,
        dcp.GET: OpClass.READ,
        dcp.SET: OpClass.WRITE,
    }.get(pdu.service_id, OpClass.OTHER)


def _filter(pdu: dcp.DcpPdu) -> str:
    """An Identify request's filter: 'all', or the blocks it filters on."""
    if any(b.name == "all" for b in pdu.blocks):
        return "all"
    f = pdu.fields
    if "name_of_station" in f:
        return f"name_of_station={f['name_of_station']}"
    return ",".join(b.name for b in pdu.blocks) or "none"
