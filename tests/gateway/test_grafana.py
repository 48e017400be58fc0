"""The Grafana dashboards of examples/grafana/ against a real PostgreSQL historian.

Every panel's SQL (``rawSql`` of each target) is run as Grafana would run it: template
variables interpolated first (a query variable is resolved by running its own query and,
being multi-valued, becomes a list of quoted values; a textbox is its value as typed;
``$__interval`` an interval), then the PostgreSQL data source's macros expanded for a
concrete time range the way Grafana's macro engine writes them
(pkg/tsdb/grafana-postgresql-datasource/macros.go). The historian is filled by the
gateway's own PostgreSQL writer with ten minutes of the synthetic line
(tests/process/synthplant.py); each query must return rows with ``time`` and ``value``.
"""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.gateway.test_historian import PgCluster, pg_cluster  # noqa: F401
from tests.process.synthplant import END, NS, T0, plant_samples

REPO = Path(__file__).resolve().parents[2]
GRAFANA = REPO / "examples" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
FROM_NS, TO_NS = T0 - 60 * NS, T0 + (END + 60) * NS
INTERVAL = "1m"  # what Grafana would choose for ~12 minutes on a dashboard-wide panel
_MACRO = re.compile(r"\$(\w+)\(([^\)]*)\)")  # Grafana's sExpr
_VAR = re.compile(r"\$(\w+)")


def interval_seconds(text: str) -> float:
    """Grafana interval strings: 500ms, 10s, 1m, 1h, 1d, 1w."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)", text.strip().strip("'"))
    if m is None:
        raise ValueError(f"not an interval: {text!r}")
    unit = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m[2]]
    return float(m[1]) * unit


def _secs(v: float) -> str:
    """A float as Go's %v prints it (60 -> 60, 0.5 -> 0.5)."""
    return str(int(v)) if v == int(v) else repr(v)


def expand_macros(sql: str, from_ns: int, to_ns: int) -> str:
    """The PostgreSQL data source's macros that the dashboards use, expanded as Grafana
    does; any other macro fails the test (add it here, as Grafana writes it)."""

    def one(m: re.Match[str]) -> str:
        name, args = m[1], [a.strip() for a in m[2].split(",")]
        if name == "__unixEpochNanoFilter":
            return f"{args[0]} >= {from_ns} AND {args[0]} <= {to_ns}"
        if name == "__unixEpochNanoFrom":
            return str(from_ns)
        if name == "__unixEpochNanoTo":
            return str(to_ns)
        if name in ("__unixEpochGroup", "__unixEpochGroupAlias"):
            s = _secs(interval_seconds(args[1]))
            group = f"floor(({args[0]})/{s})*{s}"
            return group + (' AS "time"' if name.endswith("Alias") else "")
        raise AssertionError(f"macro ${name} is not one the dashboards document")

    return _MACRO.sub(one, sql)


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def interpolate(sql: str, variables: dict[str, str]) -> str:
    """Template variables as Grafana's SQL data sources interpolate them (a macro, a name
    followed by '(', is left for the macro engine)."""

    def one(m: re.Match[str]) -> str:
        after = sql[m.end() : m.end() + 1]
        if after == "(" or m[1] not in variables:
            return m[0]
        return variables[m[1]]

    return _VAR.sub(one, sql)


def macros_in(sql: str) -> set[str]:
    return {f"$__{m[1][2:]}" for m in _MACRO.finditer(sql)}


def _panels(dash: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for p in dash["panels"]:
        yield p
        yield from p.get("panels", [])  # panels folded into a row


@pytest.fixture(scope="module")
def historian(pg_cluster: PgCluster) -> Iterator[Any]:  # noqa: F811
    import psycopg

    from otconduit.gateway.historian.postgres import PostgresHistorian

    name = f"grafana_{uuid.uuid4().hex[:12]}"
    pg_cluster.admin(f"CREATE DATABASE {name}")
    dsn = pg_cluster.dsn(name)
    h = PostgresHistorian(dsn)
    h.write(plant_samples())
    h.flush()
    h.close()
    with psycopg.connect(dsn, autocommit=True) as conn:
        yield conn
    with contextlib.suppress(Exception):
        pg_cluster.admin(f"DROP DATABASE {name} WITH (FORCE)")


def _variables(conn: Any, dash: dict[str, Any]) -> dict[str, str]:
    out = {"__interval": INTERVAL}
    for v in dash["templating"]["list"]:
        if v["type"] == "query":
            sql = expand_macros(interpolate(v["query"], out), FROM_NS, TO_NS)
            values = [str(r[0]) for r in conn.execute(sql).fetchall()]
            assert values, f"{dash['uid']}: variable {v['name']} has no values"
            out[v["name"]] = ",".join(_quote(x) for x in values)  # multi / All
        else:  # textbox, constant, custom: the value as typed
            out[v["name"]] = str(v["current"]["value"])
    return out


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_panel_query_returns_time_and_value(historian: Any, path: Path) -> None:
    dash = json.loads(path.read_text())
    variables = _variables(historian, dash)
    ran = 0
    for panel in _panels(dash):
        for t in panel.get("targets", []):
            assert t["datasource"]["uid"] == "conduit-historian", (path.name, panel["title"])
            sql = expand_macros(interpolate(t["rawSql"], variables), FROM_NS, TO_NS)
            assert "$" not in sql, (panel["title"], sql)  # nothing left unexpanded
            cur = historian.execute(sql)
            cols = [c.name for c in cur.description]
            rows = cur.fetchall()
            assert rows, f"{path.name}: {panel['title']!r} returned no rows"
            assert "time" in cols and "value" in cols, (panel["title"], cols)
            values = [r[cols.index("value")] for r in rows]
            assert any(v is not None for v in values), (panel["title"], rows[:3])
            ran += 1
    assert ran >= 3, path.name


def _stat(historian: Any, uid: str, title: str) -> float:
    dash = json.loads((GRAFANA / "dashboards" / f"{uid}.json").read_text())
    variables = _variables(historian, dash)
    panel = next(p for p in _panels(dash) if p["title"] == title)
    sql = expand_macros(interpolate(panel["targets"][0]["rawSql"], variables), FROM_NS, TO_NS)
    row = historian.execute(sql).fetchone()
    return float(row[1])


def test_kpi_panels_compute_what_the_samples_say(historian: Any) -> None:
    # synthplant: RUNNING (1) for the first 401 of 600 samples, one a second; no planned
    # stop; a good part every other running second, scrap every 50th.
    availability = _stat(historian, "conduit-oee", "Availability")
    assert availability == pytest.approx(401 / 599, abs=0.01)
    quality = _stat(historian, "conduit-oee", "Quality rate")
    assert 0.9 < quality < 1.0
    assert _stat(historian, "conduit-energy", "Energy in range") > 0
    co2 = _stat(historian, "conduit-energy", "CO2e in range (scope 2, location-based)")
    assert co2 == pytest.approx(0.4 * _stat(historian, "conduit-energy", "Energy in range"))


def test_macro_expansion_is_grafanas() -> None:
    sql = "SELECT $__unixEpochGroupAlias(ts / 1e9, 1m) WHERE $__unixEpochNanoFilter(ts)"
    assert expand_macros(sql, 1, 2) == (
        'SELECT floor((ts / 1e9)/60)*60 AS "time" WHERE ts >= 1 AND ts <= 2'
    )
    assert expand_macros("$__unixEpochGroup(x, 500ms)", 0, 0) == "floor((x)/0.5)*0.5"
    with pytest.raises(AssertionError):
        expand_macros("$__timeFilter(t)", 0, 0)


def test_provisioning_and_documented_macros() -> None:
    ds = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "conduit-historian.yaml")
                        .read_text())  # fmt: skip
    [source] = ds["datasources"]
    assert source["uid"] == "conduit-historian"
    assert "grafana-postgresql" in source["type"] or source["type"] == "postgres"
    prov = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "conduit.yaml").read_text())
    assert prov["providers"][0]["type"] == "file"
    assert {p.stem for p in DASHBOARDS} == {"conduit-tags", "conduit-oee", "conduit-energy"}
    readme = (GRAFANA / "README.md").read_text()
    used: set[str] = set()
    for path in DASHBOARDS:
        dash = json.loads(path.read_text())
        assert dash["uid"] == path.stem
        for panel in _panels(dash):
            for t in panel.get("targets", []):
                used |= macros_in(t["rawSql"])
    assert used, "the dashboards use no macro?"
    for macro in used:
        assert f"`{macro}(" in readme, f"{macro} is used but not documented in README"
