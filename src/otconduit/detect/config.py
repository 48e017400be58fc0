"""The site's rules file: turn rules on/off, override severities, allow-list known-good
activity, set the dedup window, learning period and detector thresholds.

Example (all keys optional; ``conduit rules init`` writes a commented one)::

    version: 1
    dedup_window: 1h          # same rule + endpoints within this gap -> one alert
    learning_period: 24h      # `conduit baseline learn` uses the first 24 h of data
    rules:
      poll-period-drift: {enabled: false}
      process-write: {severity: info}
    allow:
      - rule: process-write   # omitted: any rule
        src: 10.1.20.10       # IP or CIDR
        dst: 10.1.10.0/24
        function: WRITE_SINGLE_REGISTER
        window: {weekday: [sunday], start: "02:00", end: "06:00", timezone: UTC}
        comment: HMI recipe download on Sunday mornings
"""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from otconduit.detect.rules import RULES, Severity
from otconduit.policy.model import MaintenanceWindow
from otconduit.yamlconf import load_model

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(v: Any) -> float:
    """``90``, ``"90s"``, ``"15m"``, ``"1h"``, ``"7d"`` -> seconds."""
    if isinstance(v, int | float) and not isinstance(v, bool):
        return float(v)
    if isinstance(v, str):
        m = _DURATION.match(v)
        if m:
            return float(m.group(1)) * _UNIT[m.group(2)]
    raise ValueError(f"{v!r} is not a duration: use seconds or e.g. 30s, 15m, 1h, 7d")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RuleSetting(_Strict):
    enabled: bool = True
    severity: Severity | None = None

    @field_validator("severity", mode="before")
    @classmethod
    def _sev(cls, v: Any) -> Any:
        return Severity.parse(v) if isinstance(v, str) else v


class Window(_Strict):
    weekday: list[str] | str = "daily"
    start: str = "00:00"
    end: str = "24:00"
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {v!r} (use an IANA name such as UTC)") from None
        return v

    def compiled(self) -> MaintenanceWindow:
        return MaintenanceWindow.model_validate(
            {"name": "allow", "weekday": self.weekday, "start": self.start, "end": self.end}
        )

    def contains_ns(self, ts_ns: int) -> bool:
        when = datetime.fromtimestamp(ts_ns / 1e9, UTC).astimezone(ZoneInfo(self.timezone))
        return self.compiled().contains(when)


def _net(v: str) -> str:
    try:
        ipaddress.ip_network(v, strict=False)
    except ValueError:
        raise ValueError(f"{v!r} is not an IP address or CIDR") from None
    return v


class AllowEntry(_Strict):
    rule: str | None = None
    src: str | None = None
    dst: str | None = None
    protocol: str | None = None
    function: str | None = None
    window: Window | None = None
    comment: str = ""

    @field_validator("rule")
    @classmethod
    def _rule(cls, v: str | None) -> str | None:
        if v is not None and v not in RULES:
            raise ValueError(f"unknown rule {v!r} (see `conduit rules list`)")
        return v

    @field_validator("src", "dst")
    @classmethod
    def _addr(cls, v: str | None) -> str | None:
        return None if v is None else _net(v)

    def matches(
        self,
        rule: str,
        src: str | None,
        dst: str | None,
        protocol: str | None,
        function: str | None,
    ) -> bool:
        """Everything but the time window (checked per operation by the caller)."""
        if self.rule is not None and rule != self.rule:
            return False
        if self.protocol is not None and protocol != self.protocol:
            return False
        if self.function is not None and (function or "").upper() != self.function.upper():
            return False
        for want, got in ((self.src, src), (self.dst, dst)):
            if want is None:
                continue
            if got is None:
                return False
            try:
                if ipaddress.ip_address(got) not in ipaddress.ip_network(want, strict=False):
                    return False
            except ValueError:
                return False
        return True


class Thresholds(_Strict):
    """Detector thresholds; defaults suit a plant of PLCs polled by a few masters."""

    fc_scan_min_functions: int = Field(default=8, ge=2)
    fc_scan_min_unsupported: int = Field(default=4, ge=1)
    sweep_min_addresses: int = Field(default=32, ge=4)
    sweep_max_reads_per_address: float = Field(default=3.0, gt=0)
    identity_sweep_min_hosts: int = Field(default=3, ge=2)
    identity_sweep_window_s: float = Field(default=300.0, gt=0)  # ... first asked within this
    browse_sweep_min_nodes: int = Field(default=100, ge=10)  # distinct nodes browsed ...
    browse_sweep_window_s: float = Field(default=60.0, gt=0)  # ... within this
    port_sweep_min_ports: int = Field(default=10, ge=3)
    port_sweep_min_hosts: int = Field(default=10, ge=3)
    exception_storm_min: int = Field(default=20, ge=1)
    exception_storm_ratio: float = Field(default=0.5, gt=0, le=1)
    drift_min_samples: int = Field(default=10, ge=3)
    drift_tolerance: float = Field(default=0.25, gt=0)  # relative change of the median period


class DetectConfig(_Strict):
    version: int = 1
    dedup_window: float = 3600.0
    learning_period: float | None = None
    rules: dict[str, RuleSetting] = Field(default_factory=dict)
    allow: list[AllowEntry] = Field(default_factory=list)
    thresholds: Thresholds = Field(default_factory=lambda: Thresholds())

    @field_validator("dedup_window", "learning_period", mode="before")
    @classmethod
    def _dur(cls, v: Any) -> Any:
        return None if v is None else parse_duration(v)

    @field_validator("rules")
    @classmethod
    def _known(cls, v: dict[str, RuleSetting]) -> dict[str, RuleSetting]:
        for name in v:
            if name not in RULES:
                raise ValueError(f"unknown rule {name!r} (see `conduit rules list`)")
        return v

    def enabled(self, rule_id: str) -> bool:
        s = self.rules.get(rule_id)
        return s.enabled if s else True

    def severity_override(self, rule_id: str) -> Severity | None:
        s = self.rules.get(rule_id)
        return s.severity if s else None


def load_config(path: str | Path | None) -> DetectConfig:
    """The rules file at ``path``, or the defaults when None."""
    if path is None:
        return DetectConfig()
    return load_model(path, DetectConfig, "rules")
