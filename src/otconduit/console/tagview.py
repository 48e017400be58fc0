"""How a gateway tag reads to a person: what kind of value it is (gauge, counter, state,
flag), how many decimals it has, and what its state numbers are called.

All of it comes from the tag's definition in the gateway config -- a declared ``kind``,
``states`` and ``decimals``, else its type, scale and unit -- never from its name:
``total_power`` in W is a gauge, ``total_kwh`` in kWh a counter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from otconduit.gateway.model import PACKML_STATES

# Units of quantities that only accumulate: energy, and things counted.
ENERGY_UNITS = {"wh", "kwh", "mwh", "gwh", "varh", "kvarh", "mvarh", "vah", "kvah", "mvah"}
COUNTER_UNITS = ENERGY_UNITS | {"parts", "pcs", "pieces", "cycles", "count", "counts"}
POWER_UNITS = {"w", "kw", "mw", "va", "kva", "mva", "var", "kvar", "mvar"}
FLOAT_DECIMALS = 2  # a float with no scale nor declared decimals
STATE_TAG = "state"  # an undeclared tag of this name is a machine state


@dataclass(frozen=True, slots=True)
class TagInfo:
    """What the gateway config says about one tag (all optional)."""

    type: str | None = None  # the config's data type: uint16, float32, bool, ...
    unit: str = ""
    kind: str | None = None
    states: dict[int, str] | str | None = None
    decimals: int | None = None
    scale_step: float | None = None  # engineering units per raw step, when scaled

    @classmethod
    def from_config(cls, tag: Any) -> TagInfo:
        """From a :class:`otconduit.gateway.config.Tag`."""
        step = None
        s = tag.scale
        if s is not None:
            if s.raw is not None and s.eng is not None:
                step = abs((s.eng[1] - s.eng[0]) / (s.raw[1] - s.raw[0]))
            else:
                step = abs(s.factor)
        return cls(tag.type, tag.unit, tag.kind, tag.states, tag.decimals, step)


def _step_decimals(step: float) -> int:
    """Decimals a scale step needs: 0.1 -> 1, 0.25 -> 2, 0.01 -> 2, 10 -> 0."""
    if step <= 0 or step >= 1:
        return 0
    exponent = Decimal(repr(step)).normalize().as_tuple().exponent
    exact = -exponent if isinstance(exponent, int) else 6
    return max(0, min(6, exact, math.ceil(-math.log10(step)) + 1))


def kind_of(info: TagInfo | None, name: str, value: Any) -> str:
    """gauge, counter, state or flag (see the module doc)."""
    if info is not None and info.kind:
        return info.kind
    if info is not None and info.states is not None:
        return "state"
    if (info is not None and info.type == "bool") or isinstance(value, bool):
        return "flag"
    if name.lower() == STATE_TAG:
        return "state"
    unit = (info.unit if info is not None else "").strip().lower()
    return "counter" if unit in COUNTER_UNITS else "gauge"


def decimals_of(info: TagInfo | None, value: Any) -> int:
    if info is not None and info.decimals is not None:
        return info.decimals
    if info is not None and info.scale_step is not None:
        return _step_decimals(info.scale_step)
    if info is not None and info.type and info.type.startswith(("int", "uint")):
        return 0
    return FLOAT_DECIMALS if isinstance(value, float) and not value.is_integer() else 0


def state_name(info: TagInfo | None, value: Any) -> str | None:
    """The state's name: from the tag's ``states`` map, else PackML; None if unknown."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        return str(value)
    if number != value:
        return None
    table = info.states if info is not None and isinstance(info.states, dict) else PACKML_STATES
    return table.get(number)


def show(value: Any, decimals: int) -> str:
    """The value as a person reads it, rounded to the tag's precision."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, int | float):
        return f"{value:.{decimals}f}" if decimals else str(round(value))
    return str(value)


def describe(info: TagInfo | None, name: str, unit: str, value: Any) -> dict[str, Any]:
    """The keys the console adds to a tag row: kind, decimals, display, state name."""
    info = info or (TagInfo(unit=unit) if unit else None)
    kind = kind_of(info, name, value)
    places = decimals_of(info, value)
    out: dict[str, Any] = {"kind": kind, "decimals": places, "display": show(value, places)}
    if kind == "state":
        out["state_name"] = state_name(info, value)
        if out["state_name"]:
            out["display"] = f"{out['state_name']} ({show(value, 0)})"
    out["energy"] = unit.strip().lower() in POWER_UNITS | ENERGY_UNITS
    return out
