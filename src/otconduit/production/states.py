"""Machine states: PackML's names built in, and what each state means for OEE.

ISO 22400-2 splits a machine's planned operation time into production, down time and
planned down time; a state map says which of the machine's states is which. PackML
(ISA-TR88.00.02) numbers its states 0-17; a machine that reports those numbers (or their
names, e.g. an OPC UA ``StateCurrent`` or ``StateName`` node) needs no list of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from otconduit.gateway.model import PACKML_STATES as GATEWAY_PACKML

# ISA-TR88.00.02-2015 state numbers ("StateCurrent"): the gateway's table, written as
# the standard writes the names.
PACKML_STATES: dict[int, str] = {n: name.title() for n, name in GATEWAY_PACKML.items()}
PACKML_PRODUCING = ("Execute",)


class Category(StrEnum):
    """Where a state's time goes (ISO 22400-2 time elements)."""

    PRODUCING = "producing"  # actual production time (APT)
    DOWN = "down"  # actual unit down time (ADOT): inside planned busy time
    PLANNED_STOP = "planned_stop"  # planned down time (PDOT): outside planned busy time


@dataclass(frozen=True, slots=True)
class StateMap:
    """Values of a state tag -> (state name, category). Names match in any case; numbers
    may arrive as floats (a historian stores 6 as 6.0). Names not given a category
    count as down time: inside planned busy time, a machine not producing is down."""

    names: Mapping[int, str]
    categories: Mapping[str, Category]  # casefolded name -> category

    def resolve(self, value: object) -> tuple[str, Category] | None:
        """The state a tag value stands for, or None when the map does not know it."""
        name: str | None = None
        if isinstance(value, bool):
            name = self.names.get(int(value))
        elif isinstance(value, int | float):
            if float(value).is_integer():
                name = self.names.get(int(value))
        elif isinstance(value, str):
            text = value.strip()
            if text.lstrip("-").isdecimal():
                name = self.names.get(int(text))
            else:
                name = self._by_name().get(text.casefold())
        if name is None:
            return None
        return name, self.categories.get(name.casefold(), Category.DOWN)

    def _by_name(self) -> dict[str, str]:
        return {n.casefold(): n for n in self.names.values()}


def build_state_map(
    names: Mapping[int, str] | None,
    producing: list[str],
    down: list[str],
    planned_stop: list[str],
) -> StateMap:
    """A state map from config lists; ``names`` None means PackML. Raises ValueError
    naming a state that is not in the map or is given two categories."""
    table = dict(PACKML_STATES if names is None else names)
    known = {n.casefold(): n for n in table.values()}
    if not producing and names is None:
        producing = list(PACKML_PRODUCING)
    cats: dict[str, Category] = {}
    for cat, listed, field in (
        (Category.PRODUCING, producing, "producing"),
        (Category.DOWN, down, "down"),
        (Category.PLANNED_STOP, planned_stop, "planned_stop"),
    ):
        for item in listed:
            key = _name_of(item, table, known)
            if key is None:
                raise ValueError(
                    f"{field}: state {item!r} is not in the state map "
                    f"({', '.join(sorted(table.values(), key=str.casefold))})"
                )
            if key.casefold() in cats and cats[key.casefold()] is not cat:
                raise ValueError(f"{field}: state {key!r} is already {cats[key.casefold()]}")
            cats[key.casefold()] = cat
    if Category.PRODUCING not in cats.values():
        raise ValueError("producing: name the state(s) in which the machine produces")
    return StateMap(table, cats)


def _name_of(item: str | int, table: Mapping[int, str], known: Mapping[str, str]) -> str | None:
    if isinstance(item, int):
        return table.get(item)
    text = str(item).strip()
    if text.isdecimal():
        return table.get(int(text))
    return known.get(text.casefold())
