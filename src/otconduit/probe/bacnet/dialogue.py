"""The BACnet identification dialogue: three ReadProperty requests of the Device object
(vendor-name, model-name, firmware-revision), one datagram each, one at a time; when the
device does not take the wildcard instance, a unicast Who-Is for its instance first."""

from __future__ import annotations

from otconduit.probe.bacnet.codec import (
    OBJECT_DEVICE,
    PROPERTIES,
    WILDCARD_INSTANCE,
    BacnetError,
    parse_answer,
    read_property,
    who_is,
)
from otconduit.probe.base import (
    ANSWERED,
    IDENTIFIED,
    REFUSED,
    Dialogue,
    Message,
    Outcome,
    ProbeError,
)

# BACnet property -> the inventory's attribute names (as the other protocols use them).
ATTRIBUTES = {"vendor-name": "vendor", "model-name": "model", "firmware-revision": "firmware"}
UNKNOWN_OBJECT = (1, 31)  # error class object, error code unknown-object (§21)


class BacnetProbe(Dialogue):
    protocol = "bacnet"
    title = "BACnet/IP"
    transport = "udp"
    default_port = 47808

    def __init__(self, ip: str, port: int) -> None:
        super().__init__(ip, port)
        self._names = list(PROPERTIES)
        self._step = 0
        self._invoke = 0
        self._instance = WILDCARD_INSTANCE
        self._asked_who_is = False
        self._claims: list[tuple[str, str]] = []
        self._errors: list[str] = []

    def _message(self, i: int, invoke: int, instance: int = WILDCARD_INSTANCE) -> Message:
        name = self._names[i]
        which = "4194303 (wildcard: this device)" if instance == WILDCARD_INSTANCE else instance
        return Message(
            read_property(invoke, PROPERTIES[name], OBJECT_DEVICE, instance),
            f"BACnet ReadProperty device,{which} {name}, invoke id {invoke}",
        )

    def _next(self) -> Message:
        self._invoke = self._invoke % 255 + 1
        return self._message(self._step, self._invoke, self._instance)

    def plan(self) -> list[Message]:
        out = [self._message(i, i + 1) for i in range(len(self._names))]
        out.append(
            Message(
                who_is(),
                "BACnet Who-Is (unconfirmed, no range) to this device alone",
                note="only if the device refuses the wildcard instance (unknown-object); "
                "the three ReadProperty requests are then repeated with the instance of its "
                "I-Am",
            )
        )
        return out

    def first(self) -> Message:
        return self._next()

    def answer(self, data: bytes) -> Message | None:
        try:
            ans = parse_answer(data)
        except BacnetError as exc:
            raise ProbeError(str(exc)) from None
        if ans.kind == "i_am":
            if not self._asked_who_is or not isinstance(ans.value, int):
                raise ProbeError("I-Am that was not asked for")
            self._instance = ans.value
            self._claims.append(("bacnet_device_instance", str(ans.value)))
            if ans.vendor_id is not None:
                self._claims.append(("vendor_id", str(ans.vendor_id)))
            self._step = 0
            return self._next()
        if ans.invoke_id != self._invoke:
            raise ProbeError(f"answer to invoke id {ans.invoke_id}, expected {self._invoke}")
        name = self._names[self._step]
        if (
            ans.kind == "error"
            and (ans.error_class, ans.error_code) == UNKNOWN_OBJECT
            and self._instance == WILDCARD_INSTANCE
            and not self._asked_who_is
        ):
            self._asked_who_is = True
            return Message(who_is(), "BACnet Who-Is (unconfirmed, no range) to this device")
        if ans.kind == "ack" and ans.value not in (None, ""):
            self._claims.append((ATTRIBUTES[name], str(ans.value)))
        elif ans.kind != "ack":
            self._errors.append(f"{name}: {ans.kind} ({ans.error})")
            if ans.kind in ("reject", "abort"):
                return None  # the device will not take this service: stop asking
        self._step += 1
        return self._next() if self._step < len(self._names) else None

    def outcome(self) -> Outcome:
        if self._claims:
            detail = "ReadProperty" + (f"; {'; '.join(self._errors)}" if self._errors else "")
            return Outcome(IDENTIFIED, detail, list(self._claims))
        if self._errors:
            return Outcome(REFUSED, "; ".join(self._errors))
        return Outcome(ANSWERED, "no identity properties")
