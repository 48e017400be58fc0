"""The report as data: sections made of blocks (a paragraph, key figures, findings, a
figure, a table) that the HTML template lays out in order.

Gathering decides *what* the evidence says; the template only decides how it looks, so
one template serves every section and tests can read the figures straight from these
objects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

TONES = ("good", "info", "warn", "bad")
DASH = "\u2013"  # what an empty figure shows
_URL = re.compile(r"\b(?:https?|ftp)://([^/\s)\]>\"']+)(?:[^\s)\]>\"']*[^\s)\]>\"'.,;:!?])?", re.I)


def no_urls(text: str) -> str:
    """Text with each URL cut to its site (``support.example.com``): the report names
    where to look (advisories keep their links, `conduit advisories show`) but holds no
    address a reader's viewer could follow or fetch."""
    return _URL.sub(lambda m: m.group(1), text)


@dataclass(slots=True)
class Cell:
    text: str
    tone: str = ""  # good | info | warn | bad | muted | num


def cell(value: Any, tone: str = "") -> Cell:
    """A table cell: None as a dash, numbers with thousands separators (right-aligned)."""
    if value is None or value == "":
        return Cell(DASH, tone or "muted")
    if isinstance(value, bool):
        return Cell("yes" if value else "no", tone)
    if isinstance(value, int):
        return Cell(f"{value:,}", tone or "num")
    if isinstance(value, float):
        a = abs(value)
        text = (
            f"{value:,.0f}" if a >= 100 else f"{value:,.2f}" if a >= 1 or a == 0 else f"{value:.3g}"
        )
        return Cell(text, tone or "num")
    return Cell(no_urls(str(value)), tone)


@dataclass(slots=True)
class Heading:
    text: str
    kind: str = "heading"


@dataclass(slots=True)
class Para:
    text: str
    tone: str = ""
    kind: str = "para"


@dataclass(slots=True)
class Metric:
    label: str
    value: str
    note: str = ""
    tone: str = ""


@dataclass(slots=True)
class Metrics:
    items: list[Metric]
    kind: str = "metrics"


@dataclass(slots=True)
class Finding:
    text: str
    tone: str = "info"


@dataclass(slots=True)
class Findings:
    items: list[Finding]
    kind: str = "findings"


@dataclass(slots=True)
class Figure:
    title: str
    svg: str
    caption: str = ""
    wide: bool = False  # printed on a landscape page of its own
    number: int = 0  # assigned in document order
    kind: str = "figure"


@dataclass(slots=True)
class Table:
    title: str
    columns: list[str]
    rows: list[list[Cell]]
    note: str = ""
    kind: str = "table"


Block = Heading | Para | Metrics | Findings | Figure | Table


@dataclass(slots=True)
class Section:
    key: str  # anchor: govern, identify, ...
    title: str
    code: str = ""  # CSF 2.0 function code (GV, ID, PR, DE, RS, RC)
    intro: str = ""
    categories: str = ""  # CSF categories the evidence speaks to
    blocks: list[Block] = field(default_factory=list)
    blind: list[str] = field(default_factory=list)  # what Conduit cannot evidence here

    def add(self, *blocks: Block) -> Section:
        self.blocks.extend(blocks)
        return self

    def figures(self) -> list[Figure]:
        return [b for b in self.blocks if isinstance(b, Figure)]


@dataclass(slots=True)
class Report:
    title: str
    plant: str
    scope: list[tuple[str, str]]  # (what, value) lines of the cover page
    summary: Section
    sections: list[Section]  # the six CSF functions
    kpis: Section
    appendix: Section
    generated_at: str
    data: dict[str, Any] = field(default_factory=dict)  # figures tests and scripts read

    def all_sections(self) -> list[Section]:
        return [self.summary, *self.sections, self.kpis, self.appendix]

    def number_figures(self) -> None:
        n = 0
        for s in self.all_sections():
            for fig in s.figures():
                n += 1
                fig.number = n
