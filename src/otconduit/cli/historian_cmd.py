"""`conduit tags [PATTERN...]` and `conduit history TAG`: the gateway historian from the
command line. A tag path is long (enterprise/site/area/line/cell/tag) and easy to get
wrong, so an unknown one is one line naming the closest tags, never a traceback, and
tags can be picked with a glob (``'line1/*'``)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase
from typing import Annotated

import typer

from otconduit.cli import filters
from otconduit.cli.gateway_cmd import ConfigOptional, HistOpt, _historian
from otconduit.cli.output import Format, emit, err, fail, make_console

_out = make_console()
FmtOpt = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]
GLOB = frozenset("*?[")


def _tails(path: str) -> list[str]:
    """The path and every trailing part of it that starts at a segment."""
    parts = path.split("/")
    return ["/".join(parts[i:]) for i in range(len(parts))]


def matches(pattern: str, path: str) -> bool:
    """A glob matches a tag when it matches the whole path or its trailing part from any
    segment on (``line1/*`` finds ``acme/plant1/packaging/line1/conveyor/speed``); text
    without wildcards matches any tag whose path contains it. Case does not matter."""
    pat, low = pattern.casefold(), path.casefold()
    if not GLOB & set(pat):
        return pat in low
    return any(fnmatchcase(tail, pat) for tail in _tails(low))


def closest_tags(tag: str, paths: Iterable[str], n: int = 3) -> list[str]:
    """Tags a mistyped path probably meant: those it is the tail of (the prefix left
    out), else the nearest spellings of the path or of its trailing parts."""
    want = tag.strip().strip("/").casefold()
    paths = list(paths)
    tails = [p for p in paths if p.casefold().endswith("/" + want)]
    if tails:
        return tails[:n]
    by_tail: dict[str, str] = {}
    for p in paths:
        for t in _tails(p.casefold()):
            by_tail.setdefault(t, p)
    out: list[str] = []
    for hit in difflib.get_close_matches(want, list(by_tail), n=n * 3, cutoff=0.6):
        if by_tail[hit] not in out:
            out.append(by_tail[hit])
    return out[:n]


def _pattern_hint(pattern: str, paths: Sequence[str]) -> str | None:
    """The pattern with each literal segment replaced by the closest real segment, when
    that matches some tag (``lin1/*`` -> ``line1/*``)."""
    segments = {s.casefold(): s for p in paths for s in p.split("/")}
    out, changed = [], False
    for part in pattern.split("/"):
        if GLOB & set(part) or part.casefold() in segments:
            out.append(part)
            continue
        close = difflib.get_close_matches(part.casefold(), list(segments), n=1, cutoff=0.6)
        out.append(segments[close[0]] if close else part)
        changed = changed or bool(close)
    hint = "/".join(out)
    return hint if changed and any(matches(hint, p) for p in paths) else None


def tags(
    patterns: Annotated[
        list[str] | None,
        typer.Argument(help="Only tags matching these globs, e.g. 'line1/*' (any case)."),
    ] = None,
    config: ConfigOptional = None,
    historian: HistOpt = None,
    fmt: FmtOpt = Format.table,
) -> None:
    """Tags in the gateway historian with their last value, quality and sample count."""
    from otconduit.gateway.historian import HistorianError
    from otconduit.gateway.historian import tags as tag_rows

    with _historian(config, historian) as store:
        try:
            rows = tag_rows(store)
        except HistorianError as exc:
            raise fail(str(exc)) from None
    if patterns:
        paths = [r["path"] for r in rows]
        for pat in patterns:
            if not any(matches(pat, p) for p in paths):
                hint = _pattern_hint(pat, paths)
                raise fail(
                    f"no tag matches {pat!r}"
                    + (f": did you mean {hint!r}?" if hint else "")
                    + f" ({len(paths)} tags; `conduit tags` lists them)"
                )
        rows = [r for r in rows if any(matches(pat, r["path"]) for pat in patterns)]
    emit(rows, fmt, columns=list(rows[0]) if rows else ["path"], title="Tags", console=_out)


def history(
    tag: Annotated[str, typer.Argument(help="Full tag path (enterprise/site/area/line/cell/tag).")],
    config: ConfigOptional = None,
    historian: HistOpt = None,
    start: Annotated[
        str | None, typer.Option("--from", help="Start (ISO 8601 or relative, e.g. -1h).")
    ] = None,
    end: Annotated[str | None, typer.Option("--to", help="End (ISO 8601 or relative).")] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="At most this many.")] = None,
    fmt: FmtOpt = Format.csv,
) -> None:
    """Samples of one tag between --from and --to (CSV by default, or JSON)."""
    from otconduit.gateway.historian import HistorianError
    from otconduit.gateway.historian import history as history_rows

    lo, hi = filters.time_range(start, end)
    with _historian(config, historian) as store:
        try:
            rows = history_rows(store, tag, lo, hi, limit)
        except HistorianError as exc:
            paths = [t.path for t in store.summaries()]
            if tag in paths:
                raise fail(str(exc)) from None
            near = closest_tags(tag, paths)
            hint = f"did you mean {', '.join(map(repr, near))}?" if near else "no tag is close"
            raise fail(
                f"no tag {tag!r} in the historian: {hint} (`conduit tags` lists them)"
            ) from None
        try:
            n = emit(rows, fmt, columns=["ts", "value", "unit", "quality"], title=tag, console=_out)
        except HistorianError as exc:
            raise fail(str(exc)) from None
    if n == 0:
        err.print(
            f"no samples for {tag} in that range (list tags with `conduit tags`)", markup=False
        )
