"""Response runbooks per rule category, shown with every alert (CLI, export, console)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

import yaml


@dataclass(frozen=True, slots=True)
class Runbook:
    category: str
    title: str
    involve: tuple[str, ...]
    it_steps: tuple[str, ...]
    ot_steps: tuple[str, ...]
    do_not: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "category": self.category,
            "title": self.title,
            "involve": list(self.involve),
            "it_steps": list(self.it_steps),
            "ot_steps": list(self.ot_steps),
            "do_not": list(self.do_not),
        }


@cache
def runbooks() -> dict[str, Runbook]:
    text = resources.files("otconduit.detect").joinpath("data/runbooks.yaml").read_text("utf-8")
    raw = yaml.safe_load(text)
    return {
        cat: Runbook(
            cat,
            r["title"],
            tuple(r["involve"]),
            tuple(r["it_steps"]),
            tuple(r["ot_steps"]),
            tuple(r["do_not"]),
        )
        for cat, r in raw.items()
    }


def runbook(category: str) -> Runbook:
    return runbooks()[category]
