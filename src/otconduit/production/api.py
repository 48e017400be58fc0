"""The production package's API for code (the console, a script)::

    from otconduit.production.api import (
        load_plan, oee_report, open_reader, sustainability_report,
    )

    cfg, plan = load_plan("gateway.yaml")            # ConfigError: one line, file:line
    with open_reader(cfg.sinks.historian) as reader:  # or a file path or DSN; read-only
        rows = oee_report(plan, reader, start_ns, end_ns, by="shift").rows
        report = sustainability_report(plan, reader, start_ns, end_ns, grid_factor=0.4)

Times are nanoseconds since the epoch (None: the data's first/last sample); rows are
plain dicts with the columns of ``conduit oee`` / ``conduit energy``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from otconduit.production.energy import energy_report, sustainability_report
from otconduit.production.oee import oee_report
from otconduit.production.plan import ProductionPlan, resolve
from otconduit.production.report import GROUPINGS, ProductionError, Report
from otconduit.production.source import HistorianReader


def load_plan(path: str | Path) -> tuple[Any, ProductionPlan]:
    """(gateway config, production plan) from a gateway YAML file. Raises ConfigError
    (one line naming the file and line) for a bad file, and for one without a
    ``production`` section."""
    from otconduit.gateway.config import load_gateway
    from otconduit.yamlconf import ConfigError

    cfg = load_gateway(path)
    plan = resolve(cfg)
    if plan is None:
        raise ConfigError(
            f"{path}: no 'production' section: add the machines' OEE and energy models "
            "(see examples/gateway-plant.yaml)"
        )
    return cfg, plan


@contextlib.contextmanager
def open_reader(target: Any) -> Iterator[HistorianReader]:
    """A read-only historian reader for a file path, a DSN or a config's sink section."""
    from otconduit.gateway.historian import open_store

    store = open_store(target, readonly=True)
    try:
        yield HistorianReader(store)
    finally:
        store.close()


__all__ = [
    "GROUPINGS",
    "HistorianReader",
    "ProductionError",
    "ProductionPlan",
    "Report",
    "energy_report",
    "load_plan",
    "oee_report",
    "open_reader",
    "sustainability_report",
]
