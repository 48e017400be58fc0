"""Values the store holds for each filterable field, so a filter value that matches
nothing can be told apart from a typo (and the closest real value offered)."""

from __future__ import annotations

import json

from otconduit.store.sqlite import Store

# Tables whose ``protocol`` column a listing filters on.
_PROTOCOL_SQL = {
    "conversations": "SELECT DISTINCT protocol FROM conversations",
    "alerts": "SELECT DISTINCT protocol FROM alerts WHERE protocol IS NOT NULL",
    "violations": "SELECT DISTINCT protocol FROM violations WHERE protocol IS NOT NULL",
}


def protocols(store: Store, table: str = "conversations") -> set[str]:
    """Protocol names stored in ``table`` (alerts may list several, comma separated)."""
    out: set[str] = set()
    for (value,) in store.conn.execute(_PROTOCOL_SQL[table]):
        out.update(p.strip() for p in str(value).split(",") if p.strip())
    return out


def roles(store: Store) -> set[str]:
    return {
        r
        for (r,) in store.conn.execute(
            "SELECT DISTINCT name FROM asset_attributes WHERE kind = 'role'"
        )
    }


def functions(store: Store) -> set[str]:
    """Function names of every stored conversation (as the protocol spells them)."""
    out: set[str] = set()
    for (blob,) in store.conn.execute("SELECT functions FROM conversation_stats"):
        out.update(json.loads(blob or "{}"))
    return out


def capture_paths(store: Store) -> list[str]:
    return [p for (p,) in store.conn.execute("SELECT path FROM captures ORDER BY id")]


def alert_values(store: Store, column: str) -> set[str]:
    """Distinct values of an alerts column (``rule``; ``techniques`` lists flattened)."""
    if column == "techniques":
        sql = "SELECT DISTINCT j.value FROM alerts, json_each(alerts.techniques) j"
    elif column == "rule":
        sql = "SELECT DISTINCT rule FROM alerts"
    else:
        raise ValueError(column)
    return {str(v) for (v,) in store.conn.execute(sql)}


def violation_values(store: Store, what: str) -> set[str]:
    """Distinct stored violation ``rule`` names or zones (source and destination)."""
    if what == "rule":
        sql = "SELECT DISTINCT rule FROM violations"
    elif what == "zone":
        sql = (
            "SELECT src_zone FROM violations WHERE src_zone IS NOT NULL "
            "UNION SELECT dst_zone FROM violations WHERE dst_zone IS NOT NULL"
        )
    else:
        raise ValueError(what)
    return {str(v) for (v,) in store.conn.execute(sql)}
