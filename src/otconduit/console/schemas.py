"""Request and response models of the REST API (they make its OpenAPI schema).

Row shapes follow the CLI's JSON output (README), with a few console additions
(``id``, ``zone``, ``level``, ``verdict``); keys are only ever added."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class SessionInfo(BaseModel):
    user: str
    role: str
    csrf_token: str
    expires_at: int


class StatusChange(BaseModel):
    comment: str = Field(default="", max_length=2000)


class BulkChange(BaseModel):
    ids: list[int] = Field(min_length=1, max_length=500, description="alert ids")
    action: str = Field("ack", pattern="^(ack|close|reopen)$")
    comment: str = Field(default="", max_length=2000)


class BulkResult(BaseModel):
    status: str = Field(description="the status the alerts were moved to")
    changed: list[int]
    refused: list[dict[str, Any]] = Field(description="{id, reason} of alerts left as they were")


class NewUser(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    role: str = Field(pattern="^(viewer|analyst|admin)$")
    password: str = Field(
        min_length=12,
        max_length=1024,
        description="at least 12 characters, not a common password, not the user name",
    )


class Claim(BaseModel):
    attribute: str
    value: str
    source: str
    confidence: float


class Asset(BaseModel):
    id: int
    ip: str
    name: str | None = Field(
        None, description="policy host name, device name, else the best network host name"
    )
    mac: str | None
    vlan: int | None
    vendor: str | None
    mac_vendor: str | None
    roles: list[str]
    protocols: list[str]
    identity: dict[str, Claim]
    identity_claims: list[Claim]
    first_seen: str | None
    last_seen: str | None
    packets_sent: int
    packets_received: int
    model: str | None = Field(None, description="model/product from the best identity claim")
    order_number: str | None = Field(None, description="order/catalog number when stated")
    firmware: str | None = Field(None, description="firmware/revision from the best claim")
    os: str | None = Field(None, description="operating system the host states (IT side)")
    conflicts: list[dict[str, Any]] = Field(
        default_factory=list, description="identity claims that contradict each other"
    )
    confirmed: bool = Field(
        description="false: only ever seen as a scan target (no traffic of its own, no answer "
        "with application data)"
    )
    zone: str | None
    level: float | None
    level_source: str


class Page(BaseModel):
    total: int
    offset: int
    limit: int


class AssetPage(Page):
    items: list[Asset]


class Conversation(BaseModel):
    id: int
    transport: str
    client_ip: str
    server_ip: str
    server_port: int
    vlan: int | None
    protocol: str
    connections: int
    packets_c2s: int
    packets_s2c: int
    bytes_c2s: int
    bytes_s2c: int
    first_seen: str | None
    last_seen: str | None
    functions: dict[str, int]
    violations: list[str]
    verdict: str


class ConversationPage(Page):
    items: list[Conversation]


class OperationPage(BaseModel):
    items: list[dict[str, Any]]
    next: str | None = Field(description="cursor of the next (older) page; null at the end")
    total: int | None = Field(description="matching operations, when known without decoding")


class AlertSummary(BaseModel):
    id: int
    rule: str
    title: str
    category: str
    severity: str
    status: str
    techniques: list[str]
    src_ip: str | None
    dst_ip: str | None
    src_name: str | None = None
    dst_name: str | None = None
    protocol: str | None
    operation: str | None
    summary: str
    count: int
    first_seen: str | None
    last_seen: str | None
    updated_at: str


class AlertPage(Page):
    items: list[AlertSummary]


class TechniqueRef(BaseModel):
    id: str
    name: str
    url: str
    tactics: list[str]


class AlertDetail(BaseModel):
    id: int
    rule: str
    title: str
    category: str
    severity: str
    status: str
    techniques: list[str]
    technique_refs: list[TechniqueRef]
    src_ip: str | None
    dst_ip: str | None
    src_name: str | None = None
    dst_name: str | None = None
    protocol: str | None
    operation: str | None
    summary: str
    context: dict[str, Any]
    count: int
    first_seen: str | None
    last_seen: str | None
    updated_at: str
    evidence: list[dict[str, Any]]
    has_evidence: bool
    operations: list[dict[str, Any]]
    findings: list[dict[str, Any]]
    runbook: dict[str, Any] | None
    rule_description: str | None
    history: list[dict[str, Any]]
    process: list[dict[str, Any]] = Field(
        default_factory=list,
        description="with a gateway config: tags the alert's writes changed "
        "({path, value, unit, previous, previous_from, device, ts, text})",
    )
    trends: list[dict[str, Any]] = Field(
        default_factory=list, description="each written tag's historian samples around the write"
    )
    machine_timeline: list[dict[str, Any]] = Field(
        default_factory=list,
        description="the alert and the machine events on its device that followed it",
    )


class Violation(BaseModel):
    id: int
    policy: str
    rule: str
    src_ip: str | None
    dst_ip: str | None
    src_name: str | None = None
    dst_name: str | None = None
    src_zone: str | None
    dst_zone: str | None
    protocol: str | None
    operation: str | None
    conduit: str | None
    reason: str
    count: int
    first_seen: str | None
    last_seen: str | None
    capture: str | None
    frame: int | None
    checked_at: str
    targets: int = Field(1, description="hosts covered: > 1 for a sweep (dst_ip is then null)")


class ViolationPage(Page):
    items: list[Violation]


class AssetDetail(BaseModel):
    asset: Asset
    conversations: list[Conversation]
    conversations_total: int
    conversations_offset: int = 0
    operations: OperationPage
    alerts: list[AlertSummary] = Field(description="severity first, then newest")
    alerts_total: int
    alerts_offset: int = 0
    violations: list[Violation]
    violations_total: int = 0
    violations_offset: int = 0
    limit: int = Field(25, description="rows per list; page on with the *_offset parameters")
    tags: list[dict[str, Any]] = Field(description="gateway tags read from this device")
    incidents: list[dict[str, Any]]


class MapData(BaseModel):
    mode: str = Field(description="assets, or zones when there are too many assets to draw")
    policy: str | None
    focus: str | None
    assets: int
    hidden_unconfirmed: int = Field(description="scan-target-only hosts left off the map")
    filtered_out: int = Field(0, description="assets no kept conversation touches")
    subnets: int = Field(0, description="subnet nodes folding a crowded zone")
    filters: dict[str, Any] = Field(default_factory=dict)
    nodes: list[dict[str, Any]]
    edges: list[dict[str, Any]]


class Incident(BaseModel):
    id: str = Field(description="INC-<number>; draft-<n> for a window other than the console's")
    number: int | None = Field(None, description="sequential, in the order incidents began")
    status: str | None = Field(None, description="open, investigating or resolved")
    owner: str | None = Field(None, description="the console user working on it")
    severity: str
    first_seen: str | None
    last_seen: str | None
    assets: list[str] = Field(description="devices the events are about or come from")
    machines: list[str] = Field(default_factory=list, description="machines without a device")
    cells: list[str]
    alerts: int
    machine_events: int
    open: bool = Field(description="an alert in it is still open")
    causal: list[dict[str, Any]] = Field(
        default_factory=list,
        description="a command alert and a machine event on its device that followed it",
    )
    timeline: list[dict[str, Any]]


class IncidentDetail(Incident):
    history: list[dict[str, Any]] = Field(description="owner/status changes: who, when, old, new")


class IncidentChange(BaseModel):
    owner: str | None = Field(None, max_length=64, description="a console user; empty: nobody")
    status: str | None = Field(None, pattern="^(open|investigating|resolved)$")
    comment: str = Field(default="", max_length=2000)


class IncidentPage(Page):
    window_s: float
    items: list[Incident]


class Overview(BaseModel):
    assets: dict[str, Any]
    conversations: int
    operations: int
    captures: dict[str, Any]
    alerts: dict[str, Any]
    violations: dict[str, int]
    policy: str | None
    production: dict[str, Any]
    newest_alerts: list[dict[str, Any]]
    sensors: list[dict[str, Any]] = []
    change: int


class Production(BaseModel):
    available: bool
    message: str
    lines: list[dict[str, Any]]
    sites: list[str] = Field(default=[], description="ISA-95 sites in the historian")
    site: str | None = Field(default=None, description="the site filter, if any")
    multi_site: bool = Field(default=False, description="machines of several sites")


class AuditEntry(BaseModel):
    id: int
    at: str
    user: str | None
    action: str
    target: str | None
    outcome: str
    detail: dict[str, Any]
    client: str | None


class AuditPage(Page):
    items: list[AuditEntry]


class PolicyCheck(BaseModel):
    policy: str
    file: str
    sha256: str
    previous_sha256: str | None
    changed: bool = Field(description="the file differs from the version loaded before")
    violations: int
    by_rule: dict[str, int]


class UserInfo(BaseModel):
    id: int
    name: str
    role: str
    disabled: bool
    created_at: str
    updated_at: str
