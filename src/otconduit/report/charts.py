"""Charts as inline SVG text: bar, stacked bar, column and line charts.

No charting library is installed here and the report may load nothing from outside, so
the few chart types the report needs are drawn directly: each function returns one
``<svg>`` element (sized by its ``viewBox``, so it scales to the page) whose text stays
text -- searchable in the HTML and extractable from the PDF.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape

FONT = "DejaVu Sans, Liberation Sans, Arial, sans-serif"
INK = "#1f2937"
MUTED = "#6b7280"
GRID = "#e5e7eb"
SEVERITY_COLOURS = {
    "critical": "#991b1b",
    "high": "#dc2626",
    "medium": "#f59e0b",
    "low": "#3b82f6",
    "info": "#9ca3af",
}
SERIES = ("#2563eb", "#059669", "#d97706", "#7c3aed", "#db2777", "#0891b2", "#65a30d")


def esc(value: object) -> str:
    return escape(str(value), quote=True)


def num(v: float) -> str:
    """A count with thousands separators; other values to three significant figures."""
    if float(v).is_integer():
        return f"{int(v):,}"
    return f"{v:,.3g}" if abs(v) < 100 else f"{v:,.0f}"


def pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f} %"


def _svg(width: float, height: float, title: str, body: list[str]) -> str:
    return (
        f'<svg class="chart" viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" '
        f'height="{height:.0f}" role="img" font-family="{FONT}" font-size="11">'
        f"<title>{esc(title)}</title>{''.join(body)}</svg>"
    )


def _text(
    x: float,
    y: float,
    s: object,
    *,
    anchor: str = "start",
    size: float = 11,
    fill: str = INK,
    weight: str = "normal",
) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" '
        f'fill="{fill}" font-weight="{weight}">{esc(s)}</text>'
    )


def clip(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def hbar_chart(
    items: Sequence[tuple[str, float, str]],
    *,
    title: str,
    width: int = 560,
    label_width: int = 170,
    fmt: Callable[[float], str] = num,
) -> str:
    """Horizontal bars, one per ``(label, value, colour)``, longest scale = largest value."""
    row = 20
    height = 10 + row * max(1, len(items))
    top = max((v for _, v, _ in items), default=0) or 1
    span = width - label_width - 60
    body = []
    for i, (label, v, colour) in enumerate(items):
        y = 5 + i * row
        w = span * v / top
        body.append(_text(label_width - 6, y + 14, clip(label, 28), anchor="end"))
        body.append(
            f'<rect x="{label_width}" y="{y + 3}" width="{max(w, 0.5):.1f}" height="{row - 6}" '
            f'fill="{colour}" rx="2"/>'
        )
        body.append(_text(label_width + w + 5, y + 14, fmt(v), fill=MUTED))
    if not items:
        body.append(_text(label_width, 20, "nothing to show", fill=MUTED))
    return _svg(width, height, title, body)


def stacked_bars(
    rows: Sequence[tuple[str, Sequence[tuple[str, float, str]]]],
    *,
    title: str,
    width: int = 560,
    label_width: int = 150,
) -> str:
    """One 100 % bar per row, split into ``(part, value, colour)``, with each part's count
    written in it where it fits, and a legend of the parts below."""
    row = 24
    span = width - label_width - 10
    body = []
    legend: dict[str, str] = {}
    for i, (label, parts) in enumerate(rows):
        y = 5 + i * row
        total = sum(v for _, v, _ in parts) or 1
        body.append(_text(label_width - 6, y + 15, clip(label, 24), anchor="end"))
        x = float(label_width)
        for name, v, colour in parts:
            legend.setdefault(name, colour)
            w = span * v / total
            if w <= 0:
                continue
            body.append(
                f'<rect x="{x:.1f}" y="{y + 2}" width="{w:.1f}" height="{row - 6}" '
                f'fill="{colour}"><title>{esc(name)}: {esc(num(v))}</title></rect>'
            )
            if w > 8 * len(num(v)) + 4:
                body.append(_text(x + w / 2, y + 15, num(v), anchor="middle", fill="#fff"))
            x += w
    y = 10 + row * len(rows)
    x = float(label_width)
    for name, colour in legend.items():
        body.append(f'<rect x="{x:.1f}" y="{y}" width="10" height="10" fill="{colour}"/>')
        body.append(_text(x + 14, y + 9, name, size=10))
        x += 24 + 6.2 * len(name)
        if x > width - 80:
            x, y = float(label_width), y + 16
    return _svg(width, y + 18, title, body)


def column_chart(
    labels: Sequence[str],
    values: Sequence[float | None],
    *,
    title: str,
    colour: str = SERIES[0],
    unit: str = "",
    width: int = 640,
    height: int = 200,
) -> str:
    """Vertical columns over category labels (days, shifts); None is drawn as a gap."""
    left, bottom, top_pad = 56, 40, 14
    plot_h = height - bottom - top_pad
    n = max(1, len(labels))
    step = (width - left - 10) / n
    top = _nice(max((v for v in values if v is not None), default=0) or 1)
    body = _y_axis(
        left, top_pad, width, plot_h, top, lambda v: num(v) + (f" {unit}" if unit else "")
    )
    for i, (label, v) in enumerate(zip(labels, values, strict=True)):
        x = left + i * step
        if v is not None:
            h = plot_h * v / top
            body.append(
                f'<rect x="{x + step * 0.15:.1f}" y="{top_pad + plot_h - h:.1f}" '
                f'width="{step * 0.7:.1f}" height="{max(h, 0.5):.1f}" fill="{colour}">'
                f"<title>{esc(label)}: {esc(num(v))} {esc(unit)}</title></rect>"
            )
        body.append(_x_label(x + step / 2, top_pad + plot_h, label, i, n))
    return _svg(width, height, title, body)


def line_chart(
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None], str]],
    *,
    title: str,
    top: float | None = None,
    fmt: Callable[[float], str] = num,
    width: int = 640,
    height: int = 220,
) -> str:
    """Lines over category labels, one per ``(name, values, colour)``; None breaks a line.
    A single point is drawn as a dot."""
    left, bottom, top_pad = 56, 56, 14
    plot_h = height - bottom - top_pad
    n = max(1, len(labels))
    step = (width - left - 10) / n
    vals = [v for _, vs, _ in series for v in vs if v is not None]
    top = top if top is not None else _nice(max(vals, default=0) or 1)
    body = _y_axis(left, top_pad, width, plot_h, top, fmt)
    for i, label in enumerate(labels):
        body.append(_x_label(left + i * step + step / 2, top_pad + plot_h, label, i, n))
    for name, vs, colour in series:
        pts: list[list[tuple[float, float]]] = [[]]
        for i, v in enumerate(vs):
            if v is None:
                pts.append([])
                continue
            pts[-1].append(
                (left + i * step + step / 2, top_pad + plot_h - plot_h * min(v, top) / top)
            )
        for run in pts:
            if len(run) > 1:
                d = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
                body.append(
                    f'<polyline points="{d}" fill="none" stroke="{colour}" stroke-width="2"/>'
                )
            for x, y in run:
                body.append(
                    f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.8" fill="{colour}">'
                    f"<title>{esc(name)}</title></circle>"
                )
    y = height - 12
    x = float(left)
    for name, _, colour in series:
        body.append(f'<rect x="{x:.1f}" y="{y - 9}" width="10" height="10" fill="{colour}"/>')
        body.append(_text(x + 14, y, name, size=10))
        x += 24 + 6.2 * len(name)
    return _svg(width, height, title, body)


def _nice(v: float) -> float:
    """The next round number at or above ``v`` for an axis top (1, 2, 2.5, 5 x 10^n)."""
    exp = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if m * exp >= v:
            return m * exp
    return 10 * exp


def _y_axis(
    left: float,
    top_pad: float,
    width: float,
    plot_h: float,
    top: float,
    fmt: Callable[[float], str],
) -> list[str]:
    out = []
    for k in range(5):
        v = top * k / 4
        y = top_pad + plot_h - plot_h * k / 4
        out.append(
            f'<line x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
        )
        out.append(_text(left - 4, y + 4, fmt(v), anchor="end", size=9, fill=MUTED))
    return out


def _x_label(x: float, y: float, label: str, i: int, n: int) -> str:
    every = max(1, math.ceil(n / 14))  # at most 14 labels under the axis
    if i % every:
        return ""
    return (
        f'<text x="{x:.1f}" y="{y + 12:.1f}" font-size="9" fill="{MUTED}" text-anchor="end" '
        f'transform="rotate(-30 {x:.1f} {y + 12:.1f})">{esc(clip(label, 16))}</text>'
    )
