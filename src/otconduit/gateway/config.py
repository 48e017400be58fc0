"""``gateway.yaml``: devices and their tags (OT side, read-only), and where samples go
(IT side). Validated with errors that name the line; anything that would write to a
device cannot even be expressed: Modbus tags name one of the four *read* tables, OPC UA
tags are read or subscribed, S7 tags are read.

See ``examples/gateway-plant.yaml`` for the built-in plant.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from otconduit.detect.config import parse_duration
from otconduit.production.model import Production
from otconduit.yamlconf import load_model, parse_model

DataType = Literal[
    "bool", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64", "string"
]
WORDS = {
    "bool": 1, "int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "int64": 4, "uint64": 4,
    "float32": 2, "float64": 4,
}  # fmt: skip
# Modbus tables a gateway may read (FC 1-4); there is no writable table in this model.
MODBUS_TABLES = {"coil": 1, "discrete": 2, "holding": 3, "input": 4}
_PREFIX = {"co": "coil", "di": "discrete", "hr": "holding", "ir": "input"}
_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
Seconds = Annotated[float, Field(gt=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _dur(v: Any) -> Any:
    return v if v is None else parse_duration(v)


class Scale(_Strict):
    """Engineering value = raw * factor + offset, or a linear raw -> engineering range."""

    factor: float = 1.0
    offset: float = 0.0
    raw: tuple[float, float] | None = None
    eng: tuple[float, float] | None = None
    clamp: bool = False

    @model_validator(mode="after")
    def _ranges(self) -> Scale:
        if (self.raw is None) != (self.eng is None):
            raise ValueError("give both 'raw' and 'eng' ranges, or neither")
        if self.raw is not None and self.raw[0] == self.raw[1]:
            raise ValueError("'raw' range must not be empty")
        if self.raw is not None and (self.factor != 1.0 or self.offset != 0.0):
            raise ValueError("give either factor/offset or raw/eng ranges")
        return self


class Tag(_Strict):
    """One tag. ``path`` is relative to the gateway's enterprise/site: area/line/cell/tag
    (at least a tag name; segments are letters, digits, '-', '_', '.')."""

    path: str
    address: str  # modbus "hr:100" (table:offset), opcua node id, s7 "DB1.DBD4"
    type: DataType = "uint16"
    bit: int | None = Field(default=None, ge=0, le=15)  # bool from one bit of a register
    length: int = Field(default=0, ge=0, le=250)  # string: registers (2 chars each) / bytes
    byte_order: Literal["big", "little"] = "big"
    word_order: Literal["big", "little"] = "big"
    scale: Scale | None = None
    unit: str = ""
    # What the value is, for people reading it (the console): a gauge goes up and down
    # (kW, degC), a counter only grows (kWh, parts made), a state is an enumerated machine
    # state, a flag is on/off. Unset: from the type and unit (kWh is a counter, kW a gauge).
    kind: Literal["gauge", "counter", "state", "flag"] | None = None
    # A state tag's value names: a map, or "packml" (ISA-TR88 numbers; also the default).
    states: dict[int, str] | Literal["packml"] | None = None
    decimals: int | None = Field(default=None, ge=0, le=9)  # shown; default: from the scale
    deadband: float = Field(default=0.0, ge=0)
    mode: Literal["on_change", "cyclic"] = "on_change"
    interval: float | None = None  # poll group (s); default: the device's interval
    stale_after: float | None = None  # s without a good value -> stale (default 3 intervals)

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        parts = v.strip("/").split("/")
        if not 1 <= len(parts) <= 4 or not all(_SEGMENT.match(p) for p in parts):
            raise ValueError(
                f"path {v!r} must be area/line/cell/tag (1-4 segments of letters, digits, "
                "'-', '_', '.')"
            )
        return "/".join(parts)

    @field_validator("interval", "stale_after", mode="before")
    @classmethod
    def _durations(cls, v: Any) -> Any:
        return _dur(v)

    @model_validator(mode="after")
    def _shape(self) -> Tag:
        if self.type == "string" and not self.length:
            raise ValueError("a string tag needs 'length'")
        if self.bit is not None and self.type != "bool":
            raise ValueError("'bit' selects one bit of a register: use it with type bool")
        return self

    def modbus_address(self, zero_based: bool) -> tuple[str, int]:
        """(table, 0-based offset) from ``table:offset`` or a classic 5/6-digit reference."""
        text = self.address.strip().lower()
        if ":" in text:
            prefix, _, num = text.partition(":")
            table = _PREFIX.get(prefix, prefix)
            if table not in MODBUS_TABLES:
                raise ValueError(
                    f"Modbus table {prefix!r} is not readable by the gateway: use co, di, hr or "
                    "ir (coils, discrete inputs, holding or input registers)"
                )
            if not (num.isascii() and num.isdigit()):
                raise ValueError(f"Modbus address {self.address!r}: offset must be a number")
            off = int(num) - (0 if zero_based else 1)
        elif text.isascii() and text.isdigit() and len(text) in (5, 6):
            lead = {"0": "coil", "1": "discrete", "3": "input", "4": "holding"}.get(text[0])
            if lead is None:
                raise ValueError(f"Modbus reference {self.address!r} names no readable table")
            table, off = lead, int(text[1:]) - 1
        else:
            raise ValueError(
                f"Modbus address {self.address!r}: use table:offset (e.g. hr:100) or a "
                "reference such as 40101"
            )
        if not 0 <= off <= 65535:
            raise ValueError(f"Modbus address {self.address!r} is out of range")
        return table, off


class Backoff(_Strict):
    initial: Seconds = 1.0
    max: Seconds = 30.0


class SerialPort(_Strict):
    port: str
    baudrate: int = 9600
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    bytesize: Literal[7, 8] = 8


class OpcUaSecurity(_Strict):
    policy: Literal["None", "Basic256Sha256"] = "None"
    mode: Literal["None", "Sign", "SignAndEncrypt"] = "None"
    certificate: Path | None = None  # our application certificate (generated if missing)
    private_key: Path | None = None
    trust: list[Path] = Field(default_factory=list)  # trusted server certificates (or folders)
    application_uri: str | None = None  # default: the certificate's, else urn:<host>:conduit:...

    @model_validator(mode="after")
    def _consistent(self) -> OpcUaSecurity:
        if (self.policy == "None") != (self.mode == "None"):
            raise ValueError(
                "policy None goes with mode None, Basic256Sha256 with Sign/SignAndEncrypt"
            )
        if self.policy != "None" and (self.certificate is None or self.private_key is None):
            raise ValueError(
                f"policy {self.policy} needs 'certificate' and 'private_key' paths (both are "
                "generated when missing)"
            )
        return self


class Device(_Strict):
    name: str
    protocol: Literal["modbus", "modbus-rtu", "opcua", "s7"]
    host: str | None = None
    port: int | None = Field(default=None, gt=0, lt=65536)
    unit: int = Field(default=1, ge=0, le=255)
    zero_based: bool = True
    serial: SerialPort | None = None
    endpoint: str | None = None  # opcua
    security: OpcUaSecurity = Field(default_factory=lambda: OpcUaSecurity())
    username: str | None = None
    password: str | None = None
    rack: int = 0  # s7
    slot: int = 2
    interval: float = 1.0
    timeout: float = 1.0
    backoff: Backoff = Field(default_factory=lambda: Backoff())
    max_registers: int = Field(default=125, ge=1, le=125)
    max_bits: int = Field(default=2000, ge=1, le=2000)
    max_gap: int = Field(default=8, ge=0, le=100)  # unused registers a merged read may span
    tags: list[Tag]

    @field_validator("interval", "timeout", mode="before")
    @classmethod
    def _durations(cls, v: Any) -> Any:
        return _dur(v)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _SEGMENT.match(v):
            raise ValueError(f"device name {v!r}: letters, digits, '-', '_', '.'")
        return v

    @model_validator(mode="after")
    def _transport(self) -> Device:
        if self.protocol in ("modbus", "s7") and not self.host:
            raise ValueError(f"a {self.protocol} device needs 'host'")
        if self.protocol == "modbus-rtu" and self.serial is None:
            raise ValueError("a modbus-rtu device needs 'serial: {port: ...}'")
        if self.protocol == "opcua" and not self.endpoint:
            raise ValueError("an opcua device needs 'endpoint' (opc.tcp://host:4840)")
        if self.protocol in ("modbus", "modbus-rtu"):
            for i, t in enumerate(self.tags):
                try:
                    t.modbus_address(self.zero_based)
                except ValueError as exc:
                    raise ValueError(f"tags[{i}] ({t.path}): {exc}") from None
                if (
                    t.type == "bool"
                    and t.bit is None
                    and t.modbus_address(True)[0]
                    in (
                        "holding",
                        "input",
                    )
                ):
                    raise ValueError(f"tags[{i}] ({t.path}): a bool from a register needs 'bit'")
        if self.protocol == "s7":
            from otconduit.gateway.collectors.s7 import parse_address  # sans-I/O; no snap7

            for i, t in enumerate(self.tags):
                try:
                    parse_address(t)
                except ValueError as exc:
                    raise ValueError(f"tags[{i}] ({t.path}): {exc}") from None
        return self


class Tls(_Strict):
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    insecure: bool = False  # skip hostname check (lab only)


class Uns(_Strict):
    enabled: bool = True
    prefix: str = ""  # topic prefix before enterprise/site/...


class Sparkplug(_Strict):
    enabled: bool = False
    group_id: str = ""  # default: the site name
    edge_node: str = ""  # default: the gateway name

    @field_validator("group_id", "edge_node")
    @classmethod
    def _no_slash(cls, v: str) -> str:
        if any(c in v for c in "/+#"):
            raise ValueError(f"Sparkplug ids may not contain '/', '+' or '#': {v!r}")
        return v


PLAINTEXT_CREDENTIALS = (
    "a username/password without 'tls' would cross the network in clear: configure 'tls' "
    "(e.g. tls: {ca: ca.pem} and the broker's TLS port, 8883) or, on a trusted link only, "
    "set 'allow_plaintext: true'"
)


class Mqtt(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=1883, gt=0, lt=65536)
    client_id: str = ""
    username: str | None = None
    password: str | None = None
    tls: Tls | None = None
    allow_plaintext: bool = False  # send username/password without TLS (warned at start)
    keepalive: int = 30
    connect_timeout: Seconds = 5.0  # TCP + TLS + CONNACK
    reconnect: Backoff = Field(default_factory=lambda: Backoff(initial=0.5, max=15.0))
    uns: Uns = Field(default_factory=lambda: Uns())
    sparkplug: Sparkplug = Field(default_factory=lambda: Sparkplug())

    @property
    def plaintext_credentials(self) -> bool:
        """Credentials that would go to the broker unencrypted."""
        return (self.username is not None or self.password is not None) and self.tls is None

    @model_validator(mode="after")
    def _no_clear_passwords(self) -> Mqtt:
        if self.plaintext_credentials and not self.allow_plaintext:
            raise ValueError(PLAINTEXT_CREDENTIALS)
        return self


class Historian(_Strict):
    path: Path = Path("gateway.db")
    retention: Seconds | None = None  # s; older samples are deleted
    downsample_after: Seconds | None = None  # s; older samples are thinned ...
    downsample_every: Seconds = 60.0  # ... to the last one per tag per this many seconds
    maintain_every: Seconds | None = 600.0  # s between retention/downsampling runs
    # SQLite durability: normal keeps every commit across a process crash; full also
    # across power loss, at some speed.
    synchronous: Literal["normal", "full"] = "normal"

    @field_validator(
        "retention", "downsample_after", "downsample_every", "maintain_every", mode="before"
    )
    @classmethod
    def _durations(cls, v: Any) -> Any:
        return _dur(v)


class Postgres(_Strict):
    """The historian in PostgreSQL (same schema and policy as ``historian``)."""

    dsn: str  # libpq: "postgresql://user:pass@host:5432/db" or "host=... dbname=..."
    retention: Seconds | None = None
    downsample_after: Seconds | None = None
    downsample_every: Seconds = 60.0
    maintain_every: Seconds | None = 600.0

    @field_validator(
        "retention", "downsample_after", "downsample_every", "maintain_every", mode="before"
    )
    @classmethod
    def _durations(cls, v: Any) -> Any:
        return _dur(v)


class Buffer(_Strict):
    """Store-and-forward for the MQTT uplink: memory first, then a durable disk tier."""

    memory_samples: int = Field(default=100_000, ge=1)
    disk_path: Path = Path("gateway-buffer.db")
    disk_max_bytes: int = Field(default=512 << 20, ge=1 << 16)
    max_age: float = 7 * 86400.0
    replay_rate: float = Field(default=5000.0, gt=0)  # samples/s when draining

    @field_validator("max_age", mode="before")
    @classmethod
    def _durations(cls, v: Any) -> Any:
        return _dur(v)


class Sinks(_Strict):
    historian: Historian | None = Field(default_factory=lambda: Historian())
    postgres: Postgres | None = None
    mqtt: Mqtt | None = None


class GatewayConfig(_Strict):
    version: int = 1
    name: str = "gateway"
    enterprise: str
    site: str
    status_file: Path | None = None  # per-device status (JSON), for `conduit gateway status`
    # Local address the gateway's Modbus/TCP connections come from (its OT-facing interface),
    # so that zones-and-conduits policies and the monitor see one known collector.
    source_address: str | None = None
    devices: list[Device]
    sinks: Sinks = Field(default_factory=lambda: Sinks())
    buffer: Buffer = Field(default_factory=lambda: Buffer())
    # Machines' OEE and energy models and the shift plan (otconduit.production.model).
    production: Production | None = None

    @field_validator("source_address")
    @classmethod
    def _ip(cls, v: str | None) -> str | None:
        if v is not None:
            import ipaddress

            try:
                ipaddress.ip_address(v)
            except ValueError:
                raise ValueError(f"source_address {v!r} is not an IP address") from None
        return v

    @field_validator("enterprise", "site", "name")
    @classmethod
    def _seg(cls, v: str) -> str:
        if not _SEGMENT.match(v):
            raise ValueError(f"{v!r}: letters, digits, '-', '_', '.'")
        return v

    @model_validator(mode="after")
    def _unique(self) -> GatewayConfig:
        seen: set[str] = set()
        names: set[str] = set()
        for d in self.devices:
            if d.name in names:
                raise ValueError(f"device name {d.name!r} is used twice")
            names.add(d.name)
            for t in d.tags:
                full = self.full_path(t)
                if full in seen:
                    raise ValueError(f"tag path {full!r} is used twice")
                seen.add(full)
        return self

    @model_validator(mode="after")
    def _production(self) -> GatewayConfig:
        from otconduit.production.plan import resolve

        resolve(self)  # the model names tags these devices read (errors name the line)
        return self

    def full_path(self, tag: Tag) -> str:
        return f"{self.enterprise}/{self.site}/{tag.path}"


def parse_gateway(text: str, source: str = "<gateway>") -> GatewayConfig:
    return parse_model(text, source, GatewayConfig, "gateway")


def load_gateway(path: str | Path) -> GatewayConfig:
    """Read and validate a gateway file; raises ConfigError (one line) on any problem."""
    return load_model(path, GatewayConfig, "gateway")
