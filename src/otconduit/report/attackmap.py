"""Detection coverage as an ATT&CK for ICS matrix heat map (inline SVG).

Columns are MITRE's tactics in matrix order, cells the techniques of each tactic. A cell
is grey when no rule evidences the technique, blue when rules do but nothing was raised
in the report's window, and orange to dark red by the number of alerts that named it
(log scale, so one noisy technique does not wash out the rest). A technique that serves
several tactics appears in each, as in MITRE's own matrix.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from otconduit.detect.attack import attack_table
from otconduit.detect.coverage import coverage
from otconduit.report.charts import FONT, MUTED, esc

CELL_W, CELL_H, GAP, HEAD = 92, 36, 3, 44
NO_RULE = "#f3f4f6"
RULE = "#dbeafe"
LOW, HIGH = (253, 215, 170), (153, 27, 27)


@dataclass(slots=True)
class Coverage:
    svg: str
    techniques: int
    covered: int
    alerted: int
    by_tactic: list[tuple[str, int, int, int]]  # tactic, techniques, covered, alerted
    modified: str  # date of MITRE's table the shipped copy was made from


def _wrap(text: str, width: int, lines: int) -> list[str]:
    words, out, cur = [], [], ""
    for w in text.split():  # a word longer than a line is cut into lines
        words += [w[i : i + width] for i in range(0, len(w), width)]
    for w in words:
        if cur and len(cur) + 1 + len(w) > width:
            out.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}".strip()
    out.append(cur)
    if len(out) > lines:
        out = out[:lines]
        out[-1] = out[-1][: width - 1] + "…"
    return out


def _heat(t: float) -> tuple[str, str]:
    """Fill and text colour for an alert intensity ``t`` in [0, 1]."""
    rgb = tuple(round(a + (b - a) * t) for a, b in zip(LOW, HIGH, strict=True))
    text = "#ffffff" if t > 0.45 else "#1f2937"
    return "#{:02x}{:02x}{:02x}".format(*rgb), text


def attack_heatmap(alert_techniques: Iterable[list[str]]) -> Coverage:
    """The matrix for the shipped technique table, the rule catalogue's coverage and the
    techniques named by the alerts given (one list per alert)."""
    table = attack_table()
    cov = coverage()
    rules = {r["id"]: r["rules"] for r in cov.rows}
    hits: Counter[str] = Counter()
    for named in alert_techniques:
        hits.update(set(named))
    top = max(hits.values(), default=0)
    columns = []
    for tac in table.tactics:
        techs = sorted(
            (te for te in table.techniques.values() if tac.shortname in te.tactics),
            key=lambda te: te.name,
        )
        columns.append((tac, techs))
    rows = max(len(ts) for _, ts in columns)
    width = len(columns) * (CELL_W + GAP)
    height = HEAD + rows * (CELL_H + GAP) + 30
    body = []
    by_tactic = []
    for c, (tac, techs) in enumerate(columns):
        x = c * (CELL_W + GAP)
        covered = sum(1 for t in techs if rules.get(t.id))
        alerted = sum(1 for t in techs if hits.get(t.id))
        by_tactic.append((tac.name, len(techs), covered, alerted))
        for k, line in enumerate(_wrap(tac.name, 17, 2)):
            body.append(
                f'<text x="{x + CELL_W / 2:.1f}" y="{12 + 11 * k}" text-anchor="middle" '
                f'font-size="9.5" font-weight="bold" fill="#111827">{esc(line)}</text>'
            )
        body.append(
            f'<text x="{x + CELL_W / 2:.1f}" y="{HEAD - 6}" text-anchor="middle" font-size="8" '
            f'fill="{MUTED}">{covered}/{len(techs)} covered</text>'
        )
        for r, t in enumerate(techs):
            y = HEAD + r * (CELL_H + GAP)
            n = hits.get(t.id, 0)
            if n:
                fill, ink = _heat(math.log1p(n) / math.log1p(top) if top > 1 else 1.0)
            elif rules.get(t.id):
                fill, ink = RULE, "#1e3a8a"
            else:
                fill, ink = NO_RULE, "#9ca3af"
            what = f"{t.id} {t.name}: " + (
                f"{n} alert(s); rules {', '.join(rules[t.id])}"
                if n
                else f"rules {', '.join(rules[t.id])}"
                if rules.get(t.id)
                else "no rule"
            )
            body.append(
                f'<g><title>{esc(what)}</title><rect x="{x}" y="{y}" width="{CELL_W}" '
                f'height="{CELL_H}" rx="2" fill="{fill}" stroke="#d1d5db" stroke-width="0.5"/>'
            )
            body.append(
                f'<text x="{x + 4}" y="{y + 10}" font-size="8" font-weight="bold" '
                f'fill="{ink}">{esc(t.id)}{f" ({n})" if n else ""}</text>'
            )
            for k, line in enumerate(_wrap(t.name, 19, 2)):
                body.append(
                    f'<text x="{x + 4}" y="{y + 20 + 9 * k}" font-size="7.5" '
                    f'fill="{ink}">{esc(line)}</text>'
                )
            body.append("</g>")
    y = height - 14
    legend = [(NO_RULE, "no rule"), (RULE, "rule, no alert")]
    legend += [(_heat(0.0)[0], "alerted (few)"), (_heat(1.0)[0], f"alerted ({top} max)")]
    lx = 0.0
    for fill, label in legend:
        body.append(
            f'<rect x="{lx}" y="{y - 9}" width="12" height="12" fill="{fill}" stroke="#d1d5db"/>'
        )
        body.append(f'<text x="{lx + 16}" y="{y + 1}" font-size="9">{esc(label)}</text>')
        lx += 30 + 6 * len(label)
    svg = (
        f'<svg class="chart attack" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" font-family="{FONT}">'
        f"<title>ATT&amp;CK for ICS detection coverage</title>{''.join(body)}</svg>"
    )
    techniques = len(table.techniques)
    covered = sum(1 for tid in table.techniques if rules.get(tid))
    alerted = sum(1 for tid in table.techniques if hits.get(tid))
    return Coverage(svg, techniques, covered, alerted, by_tactic, table.modified[:10])
