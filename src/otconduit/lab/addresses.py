"""The simulated plant's address plan: zones, devices and hosts as plain data.

Everything lives on loopback (127/8) so that zones and Purdue levels are real, distinct
addresses a monitor can tell apart, without touching any other network. The same plan is
written out in ``examples/plant-policy.yaml``; keep the two in step.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass


@dataclass(frozen=True)
class Zone:
    """An IEC 62443 zone: one /24 per Purdue level (3.5 is the industrial DMZ)."""

    name: str
    level: float
    cidr: str
    description: str


@dataclass(frozen=True)
class Service:
    """One listening endpoint of a node."""

    protocol: str  # modbus, s7comm, opcua, bacnet, iec104, http
    port: int
    transport: str = "tcp"


@dataclass(frozen=True)
class Node:
    """A device (a server: in the cell, the building or the substation) or a host
    (client or IT machine) of the plant.

    ``scenario`` names the scenario that brings the node to life; such nodes are absent
    from a ``normal`` run (the attacker, the rogue device).
    """

    name: str
    role: str
    ip: str
    zone: str
    level: float
    description: str
    services: tuple[Service, ...] = ()
    vendor: str = ""
    model: str = ""
    scenario: str = ""


ZONES: tuple[Zone, ...] = (
    Zone("cell-1", 1, "127.0.10.0/24", "Level 1 basic control: PLCs, remote I/O, meters"),
    Zone("supervisory", 2, "127.0.20.0/24", "Level 2 supervisory control: HMI/SCADA, EWS"),
    Zone("operations", 3, "127.0.30.0/24", "Level 3 site operations: MES"),
    Zone("idmz", 3.5, "127.0.35.0/24", "Industrial DMZ: historian mirror for the enterprise"),
    Zone("enterprise", 4, "127.0.40.0/24", "Level 4 enterprise IT: office PCs, web server"),
    Zone("building", 1, "127.0.60.0/24", "Building automation: HVAC controllers (BACnet/IP)"),
    Zone("substation", 1, "127.0.70.0/24", "Substation bay level: RTUs (IEC 60870-5-104)"),
)

MODBUS = Service("modbus", 502)
S7 = Service("s7comm", 102)
OPCUA = Service("opcua", 4840)
HTTP_PORT = 8080
HTTP = Service("http", HTTP_PORT)
BACNET = Service("bacnet", 47808, "udp")
IEC104 = Service("iec104", 2404)
# bacpypes3 (0.0.110) hands any datagram for 127.x.y.z on its own port straight back up
# its own stack instead of sending it: a BACnet client in the lab therefore sends from
# 47809, and only the devices use the standard 47808.
BACNET_CLIENT_PORT = 47809

CONVEYOR_PLC = Node(
    "conveyor-plc",
    "plc",
    "127.0.10.10",
    "cell-1",
    1,
    "Conveyor line controller (Modbus/TCP, pymodbus server)",
    (MODBUS,),
    "Conduit Lab",
    "CL-PLC-1 conveyor controller",
)
PRESS_PLC = Node(
    "press-plc",
    "plc",
    "127.0.10.20",
    "cell-1",
    1,
    "Hydraulic press cell, S7-300 class CPU (S7comm, python-snap7 server)",
    (S7,),
    "Siemens (emulated)",
    "CPU 315-2 PN/DP",
)
PACKAGING = Node(
    "packaging-machine",
    "machine",
    "127.0.10.30",
    "cell-1",
    1,
    "Case packer with a PackML state machine (OPC UA, asyncua server)",
    (OPCUA,),
    "Conduit Lab",
    "CL-PACK-6 case packer",
)
REMOTE_IO = Node(
    "remote-io",
    "remote-io",
    "127.0.10.40",
    "cell-1",
    1,
    "Remote I/O block: sensors as discrete inputs, beacons as coils (Modbus/TCP)",
    (MODBUS,),
    "Conduit Lab",
    "CL-RIO-16 remote I/O",
)
METER_1 = Node(
    "energy-meter-1",
    "meter",
    "127.0.10.50",
    "cell-1",
    1,
    "Eastron SDM630-style meter on feeder 1 (conveyor + press + base load)",
    (MODBUS,),
    "Eastron (emulated)",
    "SDM630-Modbus V2",
)
METER_2 = Node(
    "energy-meter-2",
    "meter",
    "127.0.10.51",
    "cell-1",
    1,
    "Eastron SDM630-style meter on feeder 2 (packaging + auxiliaries)",
    (MODBUS,),
    "Eastron (emulated)",
    "SDM630-Modbus V2",
)
BUILDING_CONTROLLER = Node(
    "building-controller",
    "building-controller",
    "127.0.60.10",
    "building",
    1,
    "HVAC controller for AHU-1 and zone 1 (BACnet/IP, bacpypes3 device)",
    (BACNET,),
    "Conduit Lab",
    "CL-BAC-200 building controller",
)
SUBSTATION_RTU = Node(
    "substation-rtu",
    "rtu",
    "127.0.70.10",
    "substation",
    1,
    "Feeder bay RTU of the 20 kV substation (IEC 60870-5-104 outstation, c104)",
    (IEC104,),
    "Conduit Lab",
    "CL-RTU-104 bay controller",
)
HMI = Node("hmi-scada", "hmi", "127.0.20.10", "supervisory", 2, "Operator HMI / SCADA server")
EWS = Node(
    "engineering-ws", "engineering", "127.0.20.20", "supervisory", 2, "Engineering workstation"
)
SCADA_MASTER = Node(
    "scada-master",
    "scada",
    "127.0.20.30",
    "supervisory",
    2,
    "Grid SCADA front end: IEC 104 controlling station of the substation RTU",
)
MES = Node("mes", "mes", "127.0.30.10", "operations", 3, "MES: reads production counters")
HISTORIAN = Node(
    "historian",
    "historian",
    "127.0.35.10",
    "idmz",
    3.5,
    "Process historian: pulls meters and counters; serves trends to the office over HTTP",
    (HTTP,),
)
BMS = Node(
    "bms-workstation",
    "bms",
    "127.0.35.30",
    "idmz",
    3.5,
    "Building management workstation: polls and subscribes to the HVAC controller",
)
OFFICE_PCS = tuple(
    Node(f"office-pc-{i + 1}", "office", f"127.0.40.{50 + i}", "enterprise", 4, "Office PC")
    for i in range(3)
)
IT_WEB = Node(
    "it-web", "it-server", "127.0.40.100", "enterprise", 4, "Intranet web server", (HTTP,)
)
ATTACKER = Node(
    "it-intruder",
    "attacker",
    "127.0.40.66",
    "enterprise",
    4,
    "Compromised office machine used by the attack scenarios",
    scenario="attack",
)
ROGUE = Node(
    "rogue-device",
    "rogue",
    "127.0.20.99",
    "supervisory",
    2,
    "Unknown laptop plugged into the supervisory network (polls the conveyor PLC; in "
    "bacnet-attack and iec104-command it attacks the building and the substation)",
    scenario="rogue-device",
)

# Not run by the lab: Conduit's own gateway (examples/gateway-plant.yaml) reads the cell
# from this IDMZ address when `make demo` runs it beside the plant.
GATEWAY = Node(
    "gateway", "gateway", "127.0.35.20", "idmz", 3.5, "Conduit one-way gateway (read-only)"
)
EXTERNAL: tuple[Node, ...] = (GATEWAY,)

DEVICES: tuple[Node, ...] = (
    CONVEYOR_PLC,
    PRESS_PLC,
    PACKAGING,
    REMOTE_IO,
    METER_1,
    METER_2,
    BUILDING_CONTROLLER,
    SUBSTATION_RTU,
)
HOSTS: tuple[Node, ...] = (HMI, EWS, SCADA_MASTER, MES, HISTORIAN, BMS, *OFFICE_PCS, IT_WEB)
SCENARIO_HOSTS: tuple[Node, ...] = (ATTACKER, ROGUE)
NODES: tuple[Node, ...] = DEVICES + HOSTS + SCENARIO_HOSTS

# The recon scenario sweeps the whole cell subnet: these are the ports it probes.
ICS_SCAN_PORTS: tuple[int, ...] = (80, 102, 443, 502, 2404, 4840, 20000, 44818)

# Planned maintenance window for engineering changes, in UTC (weekday 6 = Sunday).
MAINTENANCE_WINDOW = {"weekday": 6, "start": "02:00", "end": "06:00", "tz": "UTC"}


def node(name: str) -> Node:
    """Look a node up by name (KeyError if unknown)."""
    for n in NODES:
        if n.name == name:
            return n
    raise KeyError(name)


def node_by_ip(ip: str) -> Node | None:
    for n in NODES:
        if n.ip == ip:
            return n
    return None


def zone_of(ip: str) -> Zone | None:
    addr = ipaddress.IPv4Address(ip)
    for z in ZONES:
        if addr in ipaddress.IPv4Network(z.cidr):
            return z
    return None


def capture_addresses() -> set[str]:
    """Every address the plant uses: the capture filter (all on loopback)."""
    addrs = {n.ip for n in NODES}
    for a in addrs:
        if not ipaddress.IPv4Address(a).is_loopback:
            raise ValueError(f"plant address {a} is not on loopback")
    return addrs


def listening_endpoints() -> list[tuple[str, int]]:
    """(ip, port) of every TCP server the plant runs: what must be free again after a stop."""
    return [(n.ip, s.port) for n in DEVICES + HOSTS for s in n.services if s.transport == "tcp"]


def udp_endpoints() -> list[tuple[str, int]]:
    """(ip, port) of every UDP endpoint the plant binds (BACnet devices and clients)."""
    devices = [(n.ip, s.port) for n in DEVICES + HOSTS for s in n.services if s.transport == "udp"]
    return devices + [(n.ip, BACNET_CLIENT_PORT) for n in (BMS, ROGUE)]
