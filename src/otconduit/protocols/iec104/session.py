"""IEC 104 exchanges of one connection: U-format functions matched act to con, and
activations (commands, interrogations, clock synchronisation, reset, parameters)
matched to their confirmation and termination (101 §7.2.3, 104 §5.3).

An activation (cause 6) or deactivation (cause 8) waits under (direction, act/deact,
type id, common address, first information object address). From the other side:

- activation confirmation (7): positive or negative (P/N bit). Negative, select
  (S/E = 1), and activations that never terminate (read, clock synchronisation, test,
  reset process, delay acquisition, parameters) complete here;
- activation termination (10) completes the others (execute commands, interrogations);
- deactivation confirmation (9) completes a deactivation;
- unknown type / cause / common address / IOA (44..47) completes as refused;
- C_RD_NA_1 is answered by the monitor object it names with cause "request" (5).

Interrogation answers (causes 20..41) for a pending C_IC/C_CI of the same common address
(or the broadcast address 65535) are counted on it and still reported on their own.
A second activation with the same key completes the first as superseded; activations
and U-format acts waiting longer than :data:`REPLY_WAIT_NS` of capture time complete
when the next APDU of the connection arrives; at most :data:`MAX_PENDING` wait.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Final

from otconduit.protocols.iec104 import types as T
from otconduit.protocols.iec104.apci import Apdu
from otconduit.protocols.iec104.asdu import Asdu

MAX_PENDING: Final = 256
REPLY_WAIT_NS: Final = 60_000_000_000
BROADCAST_CA: Final = 0xFFFF


@dataclass(slots=True)
class Message:
    """One I-format APDU and its ASDU."""

    direction: int
    apdu: Apdu
    asdu: Asdu
    ns_gap: int | None = None  # I-format APDUs missing before this one (N(S) jump)
    problems: list[str] = field(default_factory=list)

    @property
    def frame(self) -> int:
        return self.apdu.frame

    @property
    def ts_ns(self) -> int:
        return self.apdu.ts_ns

    @property
    def ioa(self) -> int:
        return self.asdu.objects[0].ioa if self.asdu.objects else 0

    @property
    def select(self) -> bool:
        return bool(self.asdu.objects and self.asdu.objects[0].fields.get("select"))


@dataclass(slots=True)
class Command:
    """An activation or deactivation and what answered it (either end may be missing)."""

    request: Message | None
    deactivation: bool = False
    confirmation: Message | None = None
    termination: Message | None = None
    answers: int = 0  # interrogation: answering ASDUs
    answer_objects: int = 0
    superseded: bool = False
    expired: bool = False

    @property
    def first(self) -> Message:
        first = self.request or self.confirmation or self.termination
        assert first is not None
        return first


@dataclass(slots=True)
class UExchange:
    """A U-format act and its con."""

    function: int  # the act's function bits (0x04 STARTDT, 0x10 STOPDT, 0x40 TESTFR)
    act: Apdu | None
    act_direction: int
    con: Apdu | None = None
    expired: bool = False


PendingKey = tuple[int, bool, int, int, int]


class Iec104Session:
    """Matching state of one connection. Counters: ``orphans`` (answers without an
    activation), ``superseded``, ``u_orphans``."""

    def __init__(self) -> None:
        self._pending: OrderedDict[PendingKey, Command] = OrderedDict()
        self._u: OrderedDict[tuple[int, int], UExchange] = OrderedDict()
        self.orphans = 0
        self.superseded = 0
        self.u_orphans = 0

    @property
    def outstanding(self) -> int:
        return len(self._pending) + len(self._u)

    @property
    def idle(self) -> bool:
        return not self._pending and not self._u

    def expire(self, now_ns: int) -> tuple[list[Command], list[UExchange]]:
        cmds: list[Command] = []
        while self._pending:
            key, cmd = next(iter(self._pending.items()))
            last = cmd.confirmation or cmd.first
            if now_ns - last.ts_ns <= REPLY_WAIT_NS:
                break
            del self._pending[key]
            cmd.expired = True
            cmds.append(cmd)
        us: list[UExchange] = []
        while self._u:
            ukey, ux = next(iter(self._u.items()))
            assert ux.act is not None
            if now_ns - ux.act.ts_ns <= REPLY_WAIT_NS:
                break
            del self._u[ukey]
            ux.expired = True
            us.append(ux)
        return cmds, us

    # -- U format ----------------------------------------------------------------------
    def u_format(self, direction: int, apdu: Apdu) -> list[UExchange]:
        bits = apdu.u_function
        if bits is None or bits not in (0x04, 0x08, 0x10, 0x20, 0x40, 0x80):
            return []
        if bits in (0x04, 0x10, 0x40):  # act
            done = []
            old = self._u.pop((direction, bits), None)
            if old is not None:
                done.append(old)
            self._u[(direction, bits)] = UExchange(bits, apdu, direction)
            return done
        act_bits = bits >> 1
        ux = self._u.pop((1 - direction, act_bits), None)
        if ux is None:
            self.u_orphans += 1
            return [UExchange(act_bits, None, 1 - direction, con=apdu)]
        ux.con = apdu
        return [ux]

    # -- I format ----------------------------------------------------------------------
    def message(self, msg: Message) -> tuple[list[Command], bool]:
        """Match an ASDU: (commands it completes, whether it belongs to one of them
        rather than being an operation of its own)."""
        asdu = msg.asdu
        t, cot = asdu.type_id, asdu.cot
        if t in T.ACTIVATED and cot in (T.ACTIVATION, T.DEACTIVATION):
            return self._activation(msg, deactivation=cot == T.DEACTIVATION), True
        if t in T.ACTIVATED and (
            cot in (T.ACTIVATION_CON, T.DEACTIVATION_CON, T.ACTIVATION_TERM)
            or cot in T.UNKNOWN_CAUSES
        ):
            return self._answer(msg), True
        if t in T.MONITOR and cot == T.REQUEST:
            cmd = self._find(1 - msg.direction, False, T.READ_COMMAND, asdu, msg.ioa)
            if cmd is not None:
                cmd.confirmation = msg
                return [self._pop(cmd)], True
        if t in T.MONITOR and 20 <= cot <= 41:
            kind = T.INTERROGATION if cot <= 36 else T.COUNTER_INTERROGATION
            cmd = self._find(1 - msg.direction, False, kind, asdu, 0)
            if cmd is not None:
                cmd.answers += 1
                cmd.answer_objects += len(asdu.objects)
        return [], False

    def _activation(self, msg: Message, *, deactivation: bool) -> list[Command]:
        a = msg.asdu
        key = (msg.direction, deactivation, a.type_id, a.common_address, msg.ioa)
        done = []
        old = self._pending.pop(key, None)
        if old is not None:
            old.superseded = True
            self.superseded += 1
            done.append(old)
        self._pending[key] = Command(msg, deactivation=deactivation)
        while len(self._pending) > MAX_PENDING:
            done.append(self._pending.popitem(last=False)[1])
        return done

    def _find(self, direction: int, deact: bool, t: int, a: Asdu, ioa: int) -> Command | None:
        for ca in (a.common_address, BROADCAST_CA):
            cmd = self._pending.get((direction, deact, t, ca, ioa))
            if cmd is not None:
                return cmd
        return None

    def _pop(self, cmd: Command) -> Command:
        for key, value in self._pending.items():
            if value is cmd:
                del self._pending[key]
                break
        return cmd

    def _answer(self, msg: Message) -> list[Command]:
        a = msg.asdu
        cot = a.cot
        back = 1 - msg.direction
        cmd = self._find(back, cot == T.DEACTIVATION_CON, a.type_id, a, msg.ioa)
        if cmd is None and cot in T.UNKNOWN_CAUSES:
            cmd = self._find(back, True, a.type_id, a, msg.ioa)
        if cmd is None:
            self.orphans += 1
            if cot == T.ACTIVATION_TERM:
                return [Command(None, termination=msg)]
            return [Command(None, deactivation=cot == T.DEACTIVATION_CON, confirmation=msg)]
        if cot == T.ACTIVATION_TERM:
            cmd.termination = msg
            return [self._pop(cmd)]
        cmd.confirmation = msg
        req = cmd.request
        assert req is not None
        ends = (
            a.negative
            or cot != T.ACTIVATION_CON
            or a.type_id in T.ENDS_AT_CONFIRMATION
            or req.select
        )
        return [self._pop(cmd)] if ends else []

    def flush(self) -> tuple[list[Command], list[UExchange]]:
        cmds = list(self._pending.values())
        us = list(self._u.values())
        self._pending.clear()
        self._u.clear()
        return cmds, us
