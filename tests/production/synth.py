"""A synthetic plant history written straight into a historian file: known time spans,
counts and energy, so the expected KPIs can be worked out by hand."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from otconduit.gateway.historian.sqlite import SQLiteHistorian
from otconduit.gateway.model import Quality, TagSample

NS = 1_000_000_000
PREFIX = "acme/plant1/area/line1"
T0 = 1_772_431_200  # 2026-03-02T06:00:00Z, a Monday: the synthetic day's early shift


def gateway_yaml(production: dict[str, Any] | None, **tag_overrides: Any) -> str:
    """A gateway config with one Modbus device holding the tags the tests use."""
    tags: list[dict[str, Any]] = [
        {"path": "area/line1/press/state", "address": "hr:0", "mode": "cyclic", "interval": 1.0},
        {"path": "area/line1/press/good", "address": "hr:1", "type": "uint16"},
        {"path": "area/line1/press/scrap", "address": "hr:2", "type": "uint16"},
        {"path": "area/line1/press/total", "address": "hr:3", "type": "uint32"},
        {"path": "area/line1/press/power", "address": "hr:5", "unit": "kW", "mode": "cyclic"},
        {"path": "area/line1/meter/kwh", "address": "hr:6", "type": "uint32", "unit": "kWh"},
        {"path": "area/line1/meter/power", "address": "hr:8", "unit": "W"},
        {"path": "area/line1/oven/state", "address": "hr:9", "mode": "cyclic"},
        {"path": "area/line1/oven/good", "address": "hr:10"},
        {"path": "area/line1/oven/scrap", "address": "hr:11"},
    ]
    for t in tags:
        t.update(tag_overrides.get("/".join(t["path"].split("/")[2:]), {}))
    doc: dict[str, Any] = {
        "enterprise": "acme",
        "site": "plant1",
        "devices": [{"name": "plc", "protocol": "modbus", "host": "127.0.0.1", "tags": tags}],
        "sinks": {"historian": {"path": "gateway.db"}},
    }
    if production is not None:
        doc["production"] = production
    return yaml.safe_dump(doc, sort_keys=False)


def write(db: Path, samples: Iterable[tuple[str, float, Any, Quality]]) -> None:
    """Samples (tag below line1, e.g. ``press/state``; seconds since T0; value; quality)
    into a historian file."""
    store = SQLiteHistorian(db)
    try:
        batch = [
            TagSample(f"{PREFIX}/{tag}", value, q, round((T0 + t) * NS))
            for tag, t, value, q in samples
        ]
        store.write(batch)
        store.flush()
    finally:
        store.close()
