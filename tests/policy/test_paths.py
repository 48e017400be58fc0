"""Attack paths on the plant policy: enterprise reaches cell-1 only through the IDMZ."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from otconduit.policy.paths import attack_paths, build_graph, reachable_zones
from otconduit.policy.spec import PolicySpec, load_spec

PLANT = Path(__file__).resolve().parents[2] / "examples" / "plant-policy.yaml"


@pytest.fixture(scope="module")
def plant() -> PolicySpec:
    return load_spec(PLANT)


def _without(spec: PolicySpec, *names: str) -> PolicySpec:
    return dataclasses.replace(
        spec, conduits=tuple(c for c in spec.conduits if c.name not in names)
    )


def test_enterprise_reaches_cell_through_idmz(plant: PolicySpec) -> None:
    paths = attack_paths(plant)
    assert paths, "office-trends + historian-collection open a path"
    assert {p.source_zone for p in paths} == {"enterprise"}
    press = next(p for p in paths if p.target == "press-plc")
    assert press.zones == ["enterprise", "idmz", "cell-1"]
    assert press.nodes[1:] == ["historian", "press-plc"]
    assert press.nodes[0] in {"office-pc-1", "office-pc-2", "office-pc-3"}
    assert press.conduits == ["office-trends", "historian-collection"]
    # remote-io is not a historian target: reached one hop later via the PLC's I/O scan
    rio = next(p for p in paths if p.target == "remote-io")
    assert rio.conduits[-1] == "plc-io-scan"
    assert attack_paths(plant) == paths  # deterministic


@pytest.mark.parametrize("cut", ["office-trends", "historian-collection"])
def test_no_path_without_either_conduit(plant: PolicySpec, cut: str) -> None:
    spec = _without(plant, cut)
    assert attack_paths(spec) == []
    assert "cell-1" not in reachable_zones(spec, "enterprise")


def test_reachable_zones_and_graph(plant: PolicySpec) -> None:
    assert reachable_zones(plant, "enterprise") == {"idmz", "cell-1"}
    assert reachable_zones(plant, "cell-1") == set()
    g = build_graph(plant)
    assert g.edges["host:historian", "host:conveyor-plc"]["conduits"] == ["historian-collection"]
    # intranet is open to the whole enterprise zone: every office PC may use it
    assert g.has_edge("host:office-pc-1", "zone:enterprise")
    assert g.has_edge("zone:enterprise", "host:it-web")


def test_whole_zone_conduit_reaches_unnamed_hosts() -> None:
    spec = load_spec_text(
        """
        version: 1
        plant: t
        zones:
          - {name: it, level: 4, members: [192.0.2.0/26]}
          - {name: ot, level: 1, members: [192.0.2.64/26]}
        conduits:
          - name: flat
            from: it
            to: ot
            protocols: {modbus: {ports: [502]}}
        """
    )
    (path,) = attack_paths(spec)
    assert (path.target, path.zones, path.conduits) == ("zone:ot", ["it", "ot"], ["flat"])


def load_spec_text(text: str) -> PolicySpec:
    from otconduit.policy.load import parse_policy
    from otconduit.policy.spec import spec_from_policy

    return spec_from_policy(parse_policy(text))
