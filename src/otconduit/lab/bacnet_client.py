"""BACnet/IP clients of the lab (bacpypes3): the BMS workstation's polling role and the
requests the attack scenario sends.

Every client is a bacpypes3 application of its own (a Device object is what the stack
needs to speak) bound to its host's address on port 47809 (see
``addresses.BACNET_CLIENT_PORT``). bacpypes3 raises its ``Error``/``RejectPDU``/
``AbortPDU`` for a negative answer and ``TimeoutError`` when none comes.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bacpypes3.apdu import (
    DeviceCommunicationControlRequest,
    ErrorRejectAbortNack,
    ReinitializeDeviceRequest,
    SubscribeCOVRequest,
)
from bacpypes3.app import Application
from bacpypes3.pdu import Address
from bacpypes3.primitivedata import Real

from otconduit.lab import addresses as A
from otconduit.lab.devices_bacnet import (
    DEVICE_INSTANCE,
    DEVICE_PROPERTIES,
    HEATING_VALVE,
    SUPPLY_FAN,
    ZONE_SETPOINT,
    ZONE_TEMPERATURE,
    bacnet_address,
    device_objects,
)
from otconduit.lab.runtime import NETWORK_ERRORS, PlantRuntime

BMS_PERIOD = 5.0  # plant s between the BMS workstation's polls
COV_LIFETIME = 300  # s (device clock) a subscription lasts; renewed every 150 plant s
# Error, Reject and Abort answers (bacpypes3 derives them from BaseException).
BACNET_ERRORS: tuple[type[BaseException], ...] = (*NETWORK_ERRORS, ErrorRejectAbortNack)


def client_app(ip: str, instance: int, name: str) -> Any:
    """A bacpypes3 application on ``ip``:47809 (needs a running event loop)."""
    objects = device_objects(instance, name, bacnet_address(ip, A.BACNET_CLIENT_PORT))
    return Application.from_object_list(objects)


def controller_address(at: str = "") -> Any:
    """The building controller's BACnet address (``at``: another controller's IP)."""
    return Address(f"{at or A.BUILDING_CONTROLLER.ip}:{A.BACNET.port}")


def objid(pair: tuple[str, int]) -> str:
    return f"{pair[0]},{pair[1]}"


async def who_is(app: Any, timeout: float = 2.0, at: str = "") -> bool:
    """Directed Who-Is for the controller's instance; True if it answered I-Am."""
    found = await asyncio.wait_for(
        app.who_is(DEVICE_INSTANCE, DEVICE_INSTANCE, controller_address(at)), timeout
    )
    return bool(found)


async def read_identity(app: Any, at: str = "") -> dict[str, Any]:
    """ReadPropertyMultiple of the Device object's identity properties."""
    dev = f"device,{DEVICE_INSTANCE}"
    rows = await app.read_property_multiple(controller_address(at), [dev, list(DEVICE_PROPERTIES)])
    return {str(prop): value for _obj, prop, _index, value in rows}


async def read_points(app: Any, at: str = "") -> list[Any]:
    """ReadPropertyMultiple of every point's present value (what a BMS graphic shows)."""
    points = (ZONE_TEMPERATURE, ZONE_SETPOINT, SUPPLY_FAN, HEATING_VALVE)
    spec: list[Any] = []
    for p in points:
        spec += [objid(p), ["present-value"]]
    rows = await app.read_property_multiple(controller_address(at), spec)
    return [value for *_k, value in rows]


async def subscribe_cov(
    app: Any, process_id: int, lifetime: int = COV_LIFETIME, at: str = ""
) -> None:
    """SubscribeCOV to the zone temperature, unconfirmed notifications."""
    req = SubscribeCOVRequest(
        subscriberProcessIdentifier=process_id,
        monitoredObjectIdentifier=objid(ZONE_TEMPERATURE),
        issueConfirmedNotifications=False,
        lifetime=lifetime,
        destination=controller_address(at),
    )
    await app.request(req)


async def write_setpoint(app: Any, value: float, priority: int, at: str = "") -> None:
    await app.write_property(
        controller_address(at), objid(ZONE_SETPOINT), "present-value", Real(value), None, priority
    )


async def reinitialize(app: Any, state: str, at: str = "") -> None:
    await app.request(
        ReinitializeDeviceRequest(
            reinitializedStateOfDevice=state, destination=controller_address(at)
        )
    )


async def communication_control(
    app: Any, enable_disable: str, minutes: int | None, at: str = ""
) -> None:
    req = DeviceCommunicationControlRequest(
        enableDisable=enable_disable, destination=controller_address(at)
    )
    if minutes is not None:
        req.timeDuration = minutes
    await app.request(req)


class BmsWorkstation:
    """Building management workstation: identifies the controller once (directed Who-Is,
    device properties), subscribes to the zone temperature's changes of value, and polls
    every point's present value."""

    def __init__(self, rt: PlantRuntime) -> None:
        self.rt = rt
        self.app: Any = None
        self.identified = False
        self.subscribed_at: float | None = None

    def close(self) -> None:
        if self.app is not None:
            self.app.close()
            self.app = None

    async def poll(self) -> None:
        if self.app is None:
            self.app = client_app(A.BMS.ip, 3530, "BMS-WS-1")
        if not self.identified:
            await who_is(self.app)
            await read_identity(self.app)
            self.identified = True
            self.rt.requests["bms"] += 2
        now = self.rt.clock.plant_now()
        if self.subscribed_at is None or now - self.subscribed_at >= COV_LIFETIME / 2:
            await subscribe_cov(self.app, 1)
            self.subscribed_at = now
            self.rt.requests["bms"] += 1
        await read_points(self.app)
        self.rt.requests["bms"] += 1

    async def run(self) -> None:
        try:
            await self.rt.cycle("bms", BMS_PERIOD, self._guarded, offset=0.7)
        finally:
            self.close()

    async def _guarded(self) -> None:
        try:
            await self.poll()
        except ErrorRejectAbortNack:  # a negative answer: count it, poll again next cycle
            self.rt.errors["bms"] += 1
