"""The rule catalogue: what Conduit can raise, how bad it is by default, and which
ATT&CK for ICS techniques it evidences.

Rules are data. Detectors (``classify``, ``recon``, ``abuse``, ``baseline``, policy
breaches) only name a rule id; title, category, default severity and techniques come from
here, and the runbook from the rule's category (``runbooks.yaml``). A site tunes rules in
its rules file (:mod:`otconduit.detect.config`), never in code.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from otconduit.protocols import registry
from otconduit.protocols.danger import RuleDefinition


class Severity(IntEnum):
    """Ordered so that comparisons read naturally (``sev >= Severity.HIGH``)."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        key = text.strip().upper()
        if key == "INFORMATIONAL":
            key = "INFO"
        try:
            return cls[key]
        except KeyError:
            names = ", ".join(s.label for s in cls)
            raise ValueError(f"unknown severity {text!r}: use one of {names}") from None


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    title: str
    category: str  # runbook key
    severity: Severity
    techniques: tuple[str, ...]
    description: str


CATEGORIES = (
    "controller-state",
    "program-change",
    "process-write",
    "configuration",
    "authentication",
    "reconnaissance",
    "protocol-abuse",
    "baseline-deviation",
    "policy-breach",
    "sensor-health",
    "predictive-maintenance",
)

S = Severity
_RULES = (
    # -- dangerous operations --------------------------------------------------------
    Rule("controller-stop", "Controller stop command", "controller-state", S.HIGH,
         ("T0881", "T0858", "T0855", "T0826"),
         "A PLC/RTU was told to stop executing its program or application (S7 PLC Stop, "
         "CIP Stop, DNP3 Stop Application): the process it controls stops with it."),
    Rule("controller-start", "Controller start or run command", "controller-state", S.MEDIUM,
         ("T0858", "T0855"),
         "A controller was told to start or restart its program (S7 PI start, CIP Start, "
         "DNP3 Start/Initialize Application): outputs may move without an operator."),
    Rule("mode-change", "Controller operating-mode change", "controller-state", S.HIGH,
         ("T0858", "T0855"),
         "The controller's operating mode (run/program/remote) was set over the network."),
    Rule("device-restart", "Device restart or reset", "controller-state", S.HIGH,
         ("T0816", "T0855", "T0826"),
         "Cold/warm restart, CIP Reset (type 0 power cycle, 1/2 factory defaults) or an "
         "S7 memory reset: the device stops serving the process while it restarts."),
    Rule("drive-control", "Drive run/fault-reset command", "controller-state", S.MEDIUM,
         ("T0855", "T0831"),
         "A drive's control supervisor was set over the network (run, fault reset, "
         "network control)."),
    Rule("program-download", "Program or logic download", "program-change", S.HIGH,
         ("T0843", "T0889", "T0821"),
         "New logic or blocks were written to a controller (S7 download/insert block, CIP "
         "program object writes, DNP3 file writes)."),
    Rule("program-upload", "Program or logic upload", "program-change", S.MEDIUM,
         ("T0845",),
         "The controller's program was read out: engineering backup, or theft of process "
         "know-how that precedes a tailored attack."),
    Rule("program-modify", "Program memory or address space changed",
         "program-change", S.HIGH, ("T0889", "T0809"),
         "Blocks deleted, memory compressed or RAM copied to ROM (which makes a change "
         "survive a restart); or an OPC UA server's address space changed: nodes or "
         "references added or deleted, node attributes other than values written."),
    Rule("firmware-change", "Firmware update or replacement", "program-change", S.CRITICAL,
         ("T0857", "T0839", "T0800"),
         "A device's firmware was written or its firmware-update mode entered."),
    Rule("time-set", "Device clock set", "configuration", S.MEDIUM, ("T0836", "T0855"),
         "The device clock that time-stamps events and alarms was set over the network."),
    Rule("network-config-change", "Device IP address or name change", "configuration",
         S.HIGH, ("T0836", "T0855", "T0881"),
         "A device's IP configuration or host name was set over the network: it may "
         "drop off the network or be impersonated."),
    Rule("process-write", "Write to process outputs or setpoints", "process-write", S.INFO,
         ("T0855", "T0836", "T0831"),
         "Coils, registers, tags or points were written. Routine from an HMI; the "
         "context (who, which zone, when) decides how much it matters."),
    Rule("method-call", "Method called on a controller (OPC UA Call)", "controller-state",
         S.MEDIUM, ("T0871", "T0855"),
         "A client ran a method on a server: start, stop, reset, recipe load or any vendor "
         "function the server exposes (the note names object and method). What it does is "
         "the method's: check it against the machine's documentation."),
    Rule("history-modify", "Historical data changed or deleted (OPC UA HistoryUpdate)",
         "process-write", S.MEDIUM, ("T0872", "T0832"),
         "Archived values or events were inserted, replaced or deleted on a server: the "
         "record operators and investigators rely on no longer shows what happened. High "
         "when it deletes."),
    Rule("direct-operate", "Direct operate / select-before-operate on outputs",
         "process-write", S.MEDIUM, ("T0855", "T0831"),
         "DNP3 control-relay or analog-output operation (select/operate, direct operate)."),
    Rule("comm-restart", "Communications restart (Modbus diagnostics)", "controller-state",
         S.HIGH, ("T0816", "T0814"),
         "Modbus diagnostics sub-function 1 restarts the device's communications port."),
    Rule("listen-only", "Forced listen-only mode (Modbus diagnostics)", "controller-state",
         S.HIGH, ("T0814", "T0804", "T0803"),
         "Modbus diagnostics sub-function 4: the device stops answering anybody until "
         "restarted."),
    Rule("unsolicited-disabled", "Unsolicited reporting disabled (DNP3)", "configuration",
         S.MEDIUM, ("T0815", "T0804"),
         "An outstation was told to stop sending unsolicited event reports."),
    Rule("file-operation", "File operation on a controller (DNP3)", "program-change",
         S.MEDIUM, ("T0845", "T0843", "T0809"),
         "DNP3 file open/read/write/delete: configuration or logic moved on or off the "
         "outstation."),
    Rule("auth-operation", "Authentication or password operation", "authentication",
         S.MEDIUM, ("T0859", "T0812", "T0892"),
         "A login, password or key-change exchange with a controller (S7 security "
         "functions, DNP3 secure authentication)."),
    # -- reconnaissance --------------------------------------------------------------
    Rule("function-code-scan", "Function-code scan", "reconnaissance", S.HIGH,
         ("T0888", "T0846"),
         "One host tried many different function codes on a device, most of them "
         "unsupported: tools probing what the device accepts."),
    Rule("address-sweep", "Address / point sweep", "reconnaissance", S.MEDIUM,
         ("T0861", "T0888"),
         "One host walked through many addresses of a device, each read once or twice: "
         "mapping the point table, unlike the fixed set an HMI polls."),
    Rule("browse-sweep", "Address-space browse sweep (OPC UA)", "reconnaissance",
         S.MEDIUM, ("T0861", "T0888"),
         "One client browsed many distinct nodes of a server within a short window "
         "(Browse, BrowseNext, TranslateBrowsePathsToNodeIds): walking the address space "
         "to map tags and methods, unlike an HMI that reads the nodes it was configured "
         "with."),
    Rule("identity-sweep", "Device identity sweep", "reconnaissance", S.MEDIUM,
         ("T0846", "T0888"),
         "One host asked several devices who they are (Modbus 43/14 or 17, CIP List "
         "Identity, S7 SZL), or broadcast a CIP List Identity."),
    Rule("port-sweep", "TCP/UDP port sweep", "reconnaissance", S.HIGH, ("T0846", "T0840"),
         "One host opened connections to many ports of a device, or to one industrial "
         "port on many devices, mostly unanswered."),
    # -- protocol abuse --------------------------------------------------------------
    Rule("malformed-pdu", "Malformed industrial protocol PDUs", "protocol-abuse", S.MEDIUM,
         ("T0866", "T0814"),
         "PDUs that break the protocol's rules (illegal lengths, reserved codes, "
         "truncated objects): fuzzing, exploits, or a broken device."),
    Rule("exception-storm", "Exception storm", "protocol-abuse", S.MEDIUM,
         ("T0888", "T0814"),
         "Most requests on a conversation are refused by the device: probing with wrong "
         "addresses/functions, or a misconfigured poller flooding it."),
    Rule("non-protocol-on-ics-port", "Non-industrial traffic on an industrial port",
         "protocol-abuse", S.HIGH, ("T0885", "T0869"),
         "Traffic on an ICS port that is not that protocol: a tunnel, a scanner banner "
         "grab, or a service hiding behind an allowed port."),
    Rule("dnp3-bad-crc", "DNP3 link frames with bad CRCs", "protocol-abuse", S.LOW,
         ("T0814", "T0830"),
         "DNP3 link-layer CRC errors: line noise on serial bridges, or crafted frames."),
    # -- baseline deviations ---------------------------------------------------------
    Rule("new-asset", "New asset (not in baseline)", "baseline-deviation", S.MEDIUM,
         ("T0864", "T0848"),
         "A host not seen during the learning period appeared on the network."),
    Rule("new-conversation", "New conversation (not in baseline)", "baseline-deviation",
         S.MEDIUM, ("T0886", "T0848"),
         "Two hosts talked over a protocol/port they did not use during learning."),
    Rule("new-function", "New function on a known conversation", "baseline-deviation",
         S.MEDIUM, ("T0855", "T0888"),
         "A known client used a function on a device that it never used during learning."),
    Rule("new-address-range", "Addresses outside the learned range", "baseline-deviation",
         S.LOW, ("T0861", "T0836"),
         "A known function touched addresses outside those used during learning."),
    Rule("poll-period-drift", "Polling period drift", "baseline-deviation", S.LOW,
         ("T0814", "T0830"),
         "A cyclic poll runs at a different period than learned: a second master, a "
         "man-in-the-middle delaying traffic, or an overloaded device."),
    # -- policy ----------------------------------------------------------------------
    Rule("policy-breach", "Zones-and-conduits policy breach", "policy-breach", S.MEDIUM,
         ("T0886",),
         "Traffic the zones-and-conduits policy does not allow (see the violation rule "
         "in the alert's context)."),
    # -- the sensor itself -----------------------------------------------------------
    Rule("sensor-drops", "Sensor lost packets", "sensor-health", S.MEDIUM, (),
         "The capture engine or the kernel dropped packets: what was lost was never "
         "analysed, so an attack in it would go unseen. A mirror port oversubscribed, "
         "a ring too small, or a host too slow."),
    Rule("sensor-disk-low", "Sensor ring disk nearly full", "sensor-health", S.HIGH, (),
         "The disk holding the capture ring (or the database) is nearly full: the capture "
         "engine will stop writing and the sensor will go blind."),
    Rule("sensor-capture-failed", "Sensor capture engine failed", "sensor-health", S.HIGH,
         (),
         "The capture engine stopped (and is being restarted): while it is down, "
         "nothing on the mirror port is seen."),
    # -- machine condition (the historian, not the network) ------------------------------
    Rule("maintenance-anomaly", "Machine condition deviates from normal",
         "predictive-maintenance", S.MEDIUM, (),
         "A machine's condition tags (vibration, temperatures, currents) left the behaviour "
         "learnt from its own history: wear, a developing fault, or a process pushed "
         "outside its normal operation. `conduit maintenance watch` raises it."),
)  # fmt: skip


def _protocol_rule(d: RuleDefinition) -> Rule:
    """A rule a registered protocol brings (``ProtocolSpec.defines``)."""
    if d.category not in CATEGORIES:
        raise ValueError(f"rule {d.id!r}: unknown category {d.category!r}")
    return Rule(d.id, d.title, d.category, Severity.parse(d.severity), d.techniques, d.description)


def _catalogue() -> dict[str, Rule]:
    out = {r.id: r for r in _RULES}
    for d in registry.defined_rules():
        if d.id in out:
            raise ValueError(f"rule {d.id!r} is defined twice")
        out[d.id] = _protocol_rule(d)
    return out


RULES: dict[str, Rule] = _catalogue()


def rule(rule_id: str) -> Rule:
    return RULES[rule_id]
