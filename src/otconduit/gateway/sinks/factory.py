"""The sinks a gateway config asks for, each stack imported only when used."""

from __future__ import annotations

from typing import Any

from otconduit.gateway.config import GatewayConfig


def sinks_for(cfg: GatewayConfig) -> list[Any]:
    """Historian (SQLite and/or PostgreSQL), then MQTT (UNS and/or Sparkplug B)."""
    out: list[Any] = []
    if cfg.sinks.historian is not None or cfg.sinks.postgres is not None:
        from otconduit.gateway.historian import historian_sinks

        out += historian_sinks(cfg)
    if cfg.sinks.mqtt is not None:
        from otconduit.gateway.sinks.mqtt import mqtt_sinks

        out += mqtt_sinks(cfg)
    return out
