"""The network map by Purdue level, drawn as inline SVG.

Levels are horizontal bands, enterprise at the top and the process at the bottom with
the IDMZ between; each zone of the policy is a box in its level's band (assets in no zone
share a dashed box at their inferred level, assets of unknown level a band of their own);
assets are dots in their box, coloured by role. Grey lines join zones that talked; red
lines are stored policy violations (dashed: a sweep of hosts that never answered).

Three densities, so the picture stays readable from a cell to a site: up to
``LABELLED_MAX`` assets each dot carries its name; up to ``DOTS_MAX`` dots only; beyond
that each box shows its asset count and the red lines join boxes, as wide as their
count warrants.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from otconduit.console.zoning import LEVEL_NAMES
from otconduit.report.charts import FONT, MUTED, esc
from otconduit.report.facts import Facts

WIDTH = 1000
LABEL_W = 120
PAD = 12
LABELLED_MAX = 60
DOTS_MAX = 400
RED = "#dc2626"
ROLE_COLOURS = {
    "control": ("#1d4ed8", "PLC, I/O, meter, gateway"),
    "supervisory": ("#0f766e", "HMI, engineering, historian"),
    "other": ("#6b7280", "other host"),
}
CONTROL_ROLES = {"plc", "io", "meter", "gateway"}
SUPERVISORY_ROLES = {"hmi_scada", "engineering_workstation", "scada_historian"}
STANDARD_LEVELS = (4.0, 3.5, 3.0, 2.0, 1.0, 0.0)
UNKNOWN = "unknown"


@dataclass(slots=True)
class Box:
    key: str  # zone name, "(no zone)@level" or "(unplaced)"
    label: str
    band: float | str
    assets: list[dict[str, Any]]
    dashed: bool
    x: float = 0.0
    y: float = 0.0
    w: float = 0.0
    h: float = 0.0
    dots: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def centre(self) -> tuple[float, float]:
        return self.x + self.w / 2, self.y + self.h / 2


@dataclass(slots=True)
class NetMap:
    svg: str
    mode: str  # labelled | dots | counts
    boxes: int
    dots: int
    violation_lines: int
    conversation_lines: int


def _role_class(roles: list[str]) -> str:
    if CONTROL_ROLES & set(roles):
        return "control"
    if SUPERVISORY_ROLES & set(roles):
        return "supervisory"
    return "other"


def _band_name(band: float | str) -> str:
    if band == UNKNOWN:
        return "Level unknown"
    lv = float(band)
    head = "IDMZ (3.5)" if lv == 3.5 else f"Level {lv:g}"
    return f"{head}: {LEVEL_NAMES.get(lv, '')}"


def _boxes(f: Facts) -> list[Box]:
    boxes: dict[str, Box] = {}
    if f.policy is not None:
        for z in f.policy.zones:
            boxes[z.name] = Box(z.name, z.name, z.level, [], False)
    for a in f.assets:
        if a["zone"] is not None and a["zone"] in boxes:
            boxes[a["zone"]].assets.append(a)
            continue
        band: float | str = a["level"] if a["level"] is not None else UNKNOWN
        key = f"(no zone)@{band}" if band != UNKNOWN else "(unplaced)"
        label = "(no zone)" if band != UNKNOWN else "(level unknown)"
        boxes.setdefault(key, Box(key, label, band, [], True)).assets.append(a)
    return list(boxes.values())


def _size(b: Box, mode: str) -> None:
    n = len(b.assets)
    if mode == "labelled":
        cols = 2 if n > 12 else 1
        rows = math.ceil(n / cols) if n else 0
        b.w, b.h = 150.0 * cols, 26.0 + 12 * rows + 4
    elif mode == "dots":
        cols = min(30, max(6, math.ceil(math.sqrt(n * 2.5))))
        rows = math.ceil(n / cols) if n else 0
        b.w, b.h = max(110.0, cols * 10 + 16.0), 26.0 + 10 * rows + 6
    else:
        b.w, b.h = 130.0, 48.0


def _place_dots(b: Box, mode: str) -> None:
    if mode == "counts":
        return
    assets = sorted(b.assets, key=lambda a: (a["name"] or "~", a["ip"]))
    for i, a in enumerate(assets):
        if mode == "labelled":
            col, row = divmod(i, math.ceil(len(assets) / (2 if len(assets) > 12 else 1)))
            b.dots[a["ip"]] = (b.x + 10 + 150 * col, b.y + 30 + 12 * row)
        else:
            cols = int((b.w - 16) // 10)
            row, col = divmod(i, cols)
            b.dots[a["ip"]] = (b.x + 12 + 10 * col, b.y + 28 + 10 * row)


def _natural(text: str) -> list[Any]:
    """cell-2 before cell-10."""
    return [int(t) if t.isdecimal() else t for t in re.split(r"(\d+)", text)]


def _layout(
    boxes: list[Box], mode: str, right: float
) -> tuple[list[tuple[float | str, float, float]], float]:
    """Place boxes in their bands, left to right up to ``right`` and then on a new row;
    returns the bands (band, y, height) and the total height."""
    levels = {b.band for b in boxes if b.band != UNKNOWN}
    order: list[float | str] = sorted(set(STANDARD_LEVELS) | levels, key=lambda v: -float(v))
    if any(b.band == UNKNOWN for b in boxes):
        order.append(UNKNOWN)
    bands = []
    y = 8.0
    for band in order:
        members = [b for b in boxes if b.band == band]
        for b in members:
            _size(b, mode)
        x, row_h, top = float(LABEL_W + PAD), 0.0, y + PAD
        for b in sorted(members, key=lambda b: (b.dashed, _natural(b.key))):
            if x + b.w > right and x > LABEL_W + PAD:
                x, top, row_h = float(LABEL_W + PAD), top + row_h + PAD, 0.0
            b.x, b.y = x, top
            _place_dots(b, mode)
            x += b.w + PAD
            row_h = max(row_h, b.h)
        height = max(44.0, (top + row_h + PAD) - y)
        bands.append((band, y, height))
        y += height + 4
    return bands, y


Link = tuple[str, str | None, str, str | None, bool]  # box, anchor ip, box, anchor ip, sweep


def network_map(f: Facts) -> NetMap:
    """The map of the facts' assets, zones, conversations and violations."""
    boxes = _boxes(f)
    n = len(f.assets)
    mode = "labelled" if n <= LABELLED_MAX else "dots" if n <= DOTS_MAX else "counts"
    by_key = {b.key: b for b in boxes}
    box_of_ip: dict[str, Box] = {}
    for b in boxes:
        for a in b.assets:
            box_of_ip.setdefault(a["ip"], b)

    def box_for(ip: str | None, zone: str | None) -> Box | None:
        if ip is not None and ip in box_of_ip:
            return box_of_ip[ip]
        z, level, _ = f.place(ip) if ip is not None else (zone, None, "unknown")
        z = z or zone
        if z is not None and z in by_key:
            return by_key[z]
        if level is not None:
            return by_key.get(f"(no zone)@{level}")
        return None

    # Violations, resolved to boxes (and dots) before the layout: the room their lines
    # need on the right decides how wide the boxes may spread.
    flagged: set[str] = set()
    links: Counter[Link] = Counter()
    for v in f.violations:
        if v["rule"] == "asset-in-no-zone":
            flagged.add(v["src_ip"])
            continue
        sa, sb = box_for(v["src_ip"], v["src_zone"]), box_for(v["dst_ip"], v["dst_zone"])
        if sa is None or sb is None:
            continue
        with_dots = mode != "counts"
        link = (
            sa.key,
            v["src_ip"] if with_dots else None,
            sb.key,
            v["dst_ip"] if with_dots else None,
            v["dst_ip"] is None,
        )
        if link[:2] == link[2:4]:
            continue
        flagged.update(ip for ip in (v["src_ip"], v["dst_ip"]) if ip)
        links[link] += int(v["count"] or 1)
    channel = min(260.0, max(60.0, 16 + 7.0 * len(links))) if links else float(PAD)
    bands, height = _layout(boxes, mode, WIDTH - channel)

    def anchor(key: str, ip: str | None) -> tuple[float, float]:
        b = by_key[key]
        y = b.dots[ip][1] if ip is not None and ip in b.dots else b.centre[1]
        return b.x + b.w, y

    body: list[str] = [
        f'<defs><marker id="netmap-arrow" viewBox="0 0 6 6" refX="5" refY="3" markerWidth="7" '
        f'markerHeight="7" markerUnits="userSpaceOnUse" orient="auto-start-reverse">'
        f'<path d="M0,0 L6,3 L0,6 z" fill="{RED}"/></marker></defs>'
    ]
    for band, y, h in bands:
        shade = "#eef2ff" if band == 3.5 else "#f9fafb" if band != UNKNOWN else "#fff7ed"
        body.append(
            f'<rect x="0" y="{y:.1f}" width="{WIDTH}" height="{h:.1f}" fill="{shade}" '
            f'stroke="#e5e7eb"/>'
        )
        for k, line in enumerate(_band_name(band).split(": ")):
            body.append(
                f'<text x="8" y="{y + 18 + 12 * k:.1f}" font-size="{10.5 if k == 0 else 9}" '
                f'font-weight="{"bold" if k == 0 else "normal"}" fill="#374151">{esc(line)}</text>'
            )
    # Zone-to-zone conversations (grey) under everything.
    pairs: Counter[tuple[str, str]] = Counter()
    for c in f.conversations:
        ca, cb = box_for(c["client_ip"], None), box_for(c["server_ip"], None)
        if ca is not None and cb is not None and ca is not cb:
            ka, kb = sorted((ca.key, cb.key))
            pairs[(ka, kb)] += 1
    for (ka, kb), cnt in sorted(pairs.items()):
        (x1, y1), (x2, y2) = by_key[ka].centre, by_key[kb].centre
        w = 1 + math.log10(cnt)
        body.append(
            f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="#9ca3af" '
            f'stroke-width="{w:.1f}" opacity="0.6"><title>{cnt} conversation(s) between '
            f"{esc(by_key[ka].label)} and {esc(by_key[kb].label)}</title></line>"
        )
    # Violations (red): each leaves its source's box at the right edge, level with the
    # source's dot, runs down (or up) a channel of its own on the right of the map and
    # enters the destination's box the same way, with an arrow. No line crosses a label.
    right = max((b.x + b.w for b in boxes), default=LABEL_W + PAD)
    ordered = sorted(
        links.items(), key=lambda kv: abs(anchor(*kv[0][:2])[1] - anchor(*kv[0][2:4])[1])
    )
    step = min(7.0, (WIDTH - PAD - right - 16) / max(1, len(ordered)))
    for i, (link, cnt) in enumerate(ordered):
        (x1, y1), (x2, y2) = anchor(link[0], link[1]), anchor(link[2], link[3])
        x = right + 12 + step * i
        w = 1.4 if mode != "counts" else 1.2 + math.log10(max(cnt, 1))
        dash = ' stroke-dasharray="5 3"' if link[4] else ""
        body.append(
            f'<path d="M{x1:.1f},{y1:.1f} H{x:.1f} V{y2:.1f} H{x2 + 2:.1f}" fill="none" '
            f'stroke="{RED}" stroke-width="{w:.1f}" opacity="0.85" '
            f'marker-end="url(#netmap-arrow)"{dash}><title>{cnt} occurrence(s)</title></path>'
        )
    for b in boxes:
        dash = ' stroke-dasharray="4 3"' if b.dashed else ""
        body.append(
            f'<rect x="{b.x:.1f}" y="{b.y:.1f}" width="{b.w:.1f}" height="{b.h:.1f}" rx="4" '
            f'fill="#ffffff" stroke="#6b7280"{dash}/>'
        )
        head = b.label if mode == "counts" else f"{b.label} ({len(b.assets)})"
        body.append(
            f'<text x="{b.x + 6:.1f}" y="{b.y + 15:.1f}" font-size="10" font-weight="bold" '
            f'fill="#111827">{esc(head)}</text>'
        )
        if mode == "counts":
            roles = Counter(_role_class(a["roles"]) for a in b.assets)
            body.append(
                f'<text x="{b.x + 6:.1f}" y="{b.y + 33:.1f}" font-size="11" fill="#111827">'
                f"{len(b.assets):,} assets</text>"
            )
            x = b.x + b.w - 12
            for cls in reversed(ROLE_COLOURS):
                if roles.get(cls):
                    body.append(
                        f'<circle cx="{x:.1f}" cy="{b.y + 29:.1f}" r="4" '
                        f'fill="{ROLE_COLOURS[cls][0]}"><title>{roles[cls]} '
                        f"{esc(ROLE_COLOURS[cls][1])}</title></circle>"
                    )
                    x -= 12
    dots = 0
    for b in boxes:
        for a in b.assets:
            if a["ip"] not in b.dots:
                continue
            x, y = b.dots[a["ip"]]
            colour = ROLE_COLOURS[_role_class(a["roles"])][0]
            ring = f' stroke="{RED}" stroke-width="1.6"' if a["ip"] in flagged else ""
            label = a["name"] or a["ip"]
            body.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.6" fill="{colour}"{ring}>'
                f"<title>{esc(label)} {esc(a['ip'])}</title></circle>"
            )
            dots += 1
            if mode == "labelled":
                body.append(
                    f'<text x="{x + 7:.1f}" y="{y + 3.5:.1f}" font-size="8.5" fill="#111827">'
                    f"{esc(label[:24])}</text>"
                )
    # Legend.
    y = height + 10
    x = 8.0
    items = [
        (f'<circle cx="{{x}}" cy="{y:.1f}" r="4" fill="{c}"/>', t) for c, t in ROLE_COLOURS.values()
    ]
    line = f'<line x1="{{x0}}" y1="{y:.1f}" x2="{{x1}}" y2="{y:.1f}" stroke-width="2" '
    items += [
        (line + 'stroke="#9ca3af"/>', "conversations between zones"),
        (line + f'stroke="{RED}"/>', "policy violation"),
        (line + f'stroke="{RED}" stroke-dasharray="5 3"/>', "sweep"),
        (
            f'<circle cx="{{x}}" cy="{y:.1f}" r="4" fill="#fff" stroke="{RED}" '
            'stroke-width="1.6"/>',
            "asset in a violation",
        ),
    ]
    for shape, text in items:
        body.append(shape.format(x=f"{x + 5:.1f}", x0=f"{x:.1f}", x1=f"{x + 14:.1f}"))
        body.append(
            f'<text x="{x + 19:.1f}" y="{y + 3.5:.1f}" font-size="9" fill="{MUTED}">'
            f"{esc(text)}</text>"
        )
        x += 30 + 5.4 * len(text)
    total_h = height + 22
    svg = (
        f'<svg class="chart netmap" viewBox="0 0 {WIDTH} {total_h:.0f}" width="{WIDTH}" '
        f'height="{total_h:.0f}" role="img" font-family="{FONT}">'
        f"<title>Network map by Purdue level</title>{''.join(body)}</svg>"
    )
    return NetMap(svg, mode, len(boxes), dots, len(links), len(pairs))
