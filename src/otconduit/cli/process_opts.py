"""``--gateway FILE`` and ``--historian DB`` for the monitor's commands: writes shown as the
plant's tags (:mod:`otconduit.process`). Shared by analyze, detect, operations and sense."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from otconduit.cli.output import fail

GatewayOpt = Annotated[
    Path | None,
    typer.Option(
        "--gateway",
        help="Gateway config: writes to addresses its tags map are shown as those tags "
        "(conveyor/speed_setpoint := 40.0 m/min (was 25.0)).",
    ),
]
HistorianOpt = Annotated[
    str | None,
    typer.Option(
        "--historian",
        help="Gateway historian (file or PostgreSQL DSN) for the values before a write "
        "(default: the gateway config's).",
    ),
]


@dataclass(slots=True)
class ProcessContext:
    """The tag map of one gateway config and the historian to ask about old values."""

    tagmap: Any  # otconduit.process.TagMap
    history: Any  # otconduit.process.history.HistorianLookup
    source: Path

    def annotator(self) -> Any:
        from otconduit.process import ProcessAnnotator

        return ProcessAnnotator(self.tagmap, self.history)

    def close(self) -> None:
        self.history.close()


def load_process(gateway: Path | None, historian: str | None = None) -> ProcessContext | None:
    """The process context for ``--gateway`` (None without it); a bad config is one line
    naming the file and line, exit 2."""
    if gateway is None:
        if historian is not None:
            raise fail("--historian needs --gateway: the config says which tag is where")
        return None
    from otconduit.process.history import HistorianLookup
    from otconduit.process.tagmap import TagMap, historian_target
    from otconduit.yamlconf import ConfigError

    try:
        cfg, tagmap = TagMap.load(gateway)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    return ProcessContext(tagmap, HistorianLookup(historian_target(cfg, historian)), gateway)


def annotate_alerts(store: Any, ctx: ProcessContext | None) -> list[int]:
    """Give the store's alerts about writes to mapped devices their ``process``."""
    if ctx is None:
        return []
    from otconduit.process.alerts import annotate_alerts as run

    return run(store, ctx.tagmap, ctx.history)


class LiveAnnotation:
    """For the sensor: after each detection tick, the alerts changed since the last pass
    get their ``process`` (before they are exported)."""

    def __init__(self, ctx: ProcessContext) -> None:
        self.ctx = ctx
        self.seen: int | None = None

    def __call__(self, store: Any) -> None:
        from otconduit.process.alerts import annotate_alerts as run
        from otconduit.process.alerts import last_change

        top = last_change(store)
        run(store, self.ctx.tagmap, self.ctx.history, since_change=self.seen)
        self.seen = top


def with_process(
    ops: Iterator[dict[str, Any]], ctx: ProcessContext | None, store: Any = None
) -> Iterator[dict[str, Any]]:
    """Operations with ``process`` (unchanged without ``--gateway``). A filtered listing
    may leave out the reads that show a write's old value: with ``store``, such a write
    is looked up against its device's own operations before it."""
    if ctx is None:
        return ops
    from otconduit.process import annotate_operations
    from otconduit.process.alerts import process_of_writes

    def run() -> Iterator[dict[str, Any]]:
        for op in annotate_operations(ops, ctx.annotator()):
            entries = op["process"]
            if store is not None and entries and any(e["previous"] is None for e in entries):
                again = process_of_writes(store, [op], ctx.tagmap, ctx.history)
                if again:
                    op["process"] = again
            yield op

    return run()


def print_process_alerts(store: Any, out: Console, limit: int = 10) -> None:
    """The analyze summary's lines: alerts whose writes changed plant tags, in tag terms."""
    from otconduit.detect.alerts import list_alerts
    from otconduit.process import process_text

    rows = [a for a in list_alerts(store) if a["process"]]
    if not rows:
        return
    out.print(f"writes to plant tags ({len(rows)} alerts - conduit alert show ID):",
              highlight=False, markup=False)  # fmt: skip
    for a in rows[:limit]:
        out.print(
            f"  #{a['id']} {a['severity']} {a['src_ip']} -> {a['dst_ip']}: "
            + process_text(a["process"]),
            highlight=False, markup=False,
        )  # fmt: skip
    if len(rows) > limit:
        out.print(f"  ... {len(rows) - limit} more", highlight=False, markup=False)
