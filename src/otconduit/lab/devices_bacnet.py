"""The building controller: a bacpypes3 BACnet/IP device running AHU-1 and zone 1.

Its Device object states who it is (vendor id and name, model, firmware, application
software: what a BMS reads and the monitor must report), and it holds the points a BMS
polls and subscribes to: the zone temperature (analog-input 1), the zone setpoint
(commandable analog-value 1, relinquish default 21.0 degC), the AHU supply fan
(binary-output 1) and the AHU's heating valve (analog-output 1). A small thermal model,
advanced by the plant's process loop, moves the zone temperature towards the setpoint.

Addresses carry a /32 mask: the loopback interface has no broadcast, so nothing in the
lab is sent to a broadcast address. Who-Is goes unicast to the controller, which
answers I-Am to the asker (as bacpypes3 does for a directed Who-Is).
"""

from __future__ import annotations

import logging
from typing import Any

from bacpypes3.apdu import SimpleAckPDU
from bacpypes3.app import Application
from bacpypes3.local.analog import AnalogInputObject, AnalogOutputObject, AnalogValueObjectCmd
from bacpypes3.local.binary import BinaryOutputObject
from bacpypes3.local.device import DeviceObject
from bacpypes3.local.networkport import NetworkPortObject

from otconduit.lab import addresses as A

DEVICE_INSTANCE = 6010
VENDOR_ID = 999  # ASHRAE's "unassigned/test" range: no real maker is named
VENDOR_NAME = "Conduit Lab"
MODEL_NAME = "CL-BAC-200"
FIRMWARE = "4.2.1"
APPLICATION_VERSION = "AHU-1 program 2026.3"
DEVICE_NAME = "AHU-1 controller"
SETPOINT_DEFAULT = 21.0
ZONE_TEMPERATURE = ("analog-input", 1)
ZONE_SETPOINT = ("analog-value", 1)
SUPPLY_FAN = ("binary-output", 1)
HEATING_VALVE = ("analog-output", 1)
DEVICE_PROPERTIES = (
    "object-name",
    "vendor-name",
    "vendor-identifier",
    "model-name",
    "firmware-revision",
    "application-software-version",
)


def bacnet_address(ip: str, port: int) -> str:
    """bacpypes3 address text for one loopback endpoint (``/32``: no broadcast)."""
    return f"{ip}/32:{port}"


def device_objects(instance: int, name: str, address: str) -> list[Any]:
    """A Device and a NetworkPort object: what every bacpypes3 application needs."""
    dev = DeviceObject(
        objectIdentifier=("device", instance),
        objectName=name,
        vendorIdentifier=VENDOR_ID,
        vendorName=VENDOR_NAME,
        modelName=MODEL_NAME,
        firmwareRevision=FIRMWARE,
        applicationSoftwareVersion=APPLICATION_VERSION,
    )
    port = NetworkPortObject(address, objectIdentifier=("network-port", 1), objectName="BIP-1")
    return [dev, port]


class ControllerApp(Application):
    """bacpypes3's application plus the two device-management services a controller
    serves and bacpypes3 0.0.110 does not (it has no ReinitializeDevice handler, and its
    DeviceCommunicationControl handler answers operational-problem): ReinitializeDevice
    is acknowledged and counted (the lab does not restart), DeviceCommunicationControl
    is acknowledged and honoured for what it says about initiation: while it is not
    ``enable`` the controller sends no COV notifications. Its time limit is not kept (the
    scenario that sends it enables reporting again itself)."""

    reinitialized: list[str]
    communication: list[str]
    suppressed: int

    async def do_ReinitializeDeviceRequest(self, apdu: Any) -> None:
        self.reinitialized.append(str(apdu.reinitializedStateOfDevice))
        await self.response(SimpleAckPDU(context=apdu))

    async def do_DeviceCommunicationControlRequest(self, apdu: Any) -> None:
        self.communication.append(str(apdu.enableDisable))
        await self.response(SimpleAckPDU(context=apdu))

    def cov_notification(self, cov: Any, apdu: Any) -> None:
        """bacpypes3's hook for every COV notification it is about to send."""
        if self.communication and self.communication[-1] != "enable":
            self.suppressed += 1
            return
        super().cov_notification(cov, apdu)


class BacnetController:
    """The HVAC controller on its own address; ``tick`` advances the zone model."""

    def __init__(self, ip: str = A.BUILDING_CONTROLLER.ip, port: int = 47808) -> None:
        self.ip = ip
        self.port = port
        self.app: ControllerApp | None = None
        self.zone_temp = 19.5
        self._last_t: float | None = None
        self.zone = AnalogInputObject(
            objectIdentifier=ZONE_TEMPERATURE,
            objectName="ZN1-T",
            presentValue=self.zone_temp,
            units="degreesCelsius",
            covIncrement=0.2,
            description="Zone 1 temperature",
        )
        self.setpoint = AnalogValueObjectCmd(
            objectIdentifier=ZONE_SETPOINT,
            objectName="ZN1-SP",
            presentValue=SETPOINT_DEFAULT,
            relinquishDefault=SETPOINT_DEFAULT,
            units="degreesCelsius",
            description="Zone 1 setpoint",
        )
        self.fan = BinaryOutputObject(
            objectIdentifier=SUPPLY_FAN,
            objectName="AHU1-SF",
            presentValue="active",
            description="AHU-1 supply fan",
        )
        self.valve = AnalogOutputObject(
            objectIdentifier=HEATING_VALVE,
            objectName="AHU1-HV",
            presentValue=30.0,
            units="percent",
            description="AHU-1 heating valve",
        )
        logging.getLogger("bacpypes3").setLevel(logging.CRITICAL)

    @property
    def reinitialized(self) -> list[str]:
        return self.app.reinitialized if self.app is not None else []

    def start(self) -> None:
        """Bind the device (needs a running event loop: bacpypes3 opens its endpoint as
        a task of it)."""
        objects = device_objects(DEVICE_INSTANCE, DEVICE_NAME, bacnet_address(self.ip, self.port))
        app = ControllerApp.from_object_list(
            [*objects, self.zone, self.setpoint, self.fan, self.valve]
        )
        app.reinitialized, app.communication, app.suppressed = [], [], 0
        self.app = app

    def stop(self) -> None:
        if self.app is not None:
            self.app.close()
            self.app = None

    def tick(self, plant_t: float) -> None:
        """Move the zone temperature towards the active setpoint (first order, 10 min
        time constant while the fan runs; drift to 16 degC with the fan off)."""
        last, self._last_t = self._last_t, plant_t
        if last is None or plant_t <= last:
            return
        dt = plant_t - last
        running = str(self.fan.presentValue) == "active"  # a BinaryPV, not a str
        target = float(self.setpoint.presentValue) if running else 16.0
        self.zone_temp += (target - self.zone_temp) * min(dt / 600.0, 1.0)
        self.valve.presentValue = round(max(0.0, min(100.0, (target - self.zone_temp) * 40.0)), 1)
        self.zone.presentValue = round(self.zone_temp, 2)
