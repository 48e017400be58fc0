"""The whole-plant map stays readable: a crowded zone is folded into one node per subnet
(click one to open it), and filters keep one protocol, industrial protocols only, or
policy violations only -- each an API parameter and a control on the page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from otconduit.console.netmap import INDUSTRIAL
from otconduit.policy import load_policy
from otconduit.policy.check import evaluate_and_store
from otconduit.store import Store
from tests.console.conftest import POLICY, Env, make_env
from tests.console.synth import write_plant

HMI, MES, OFFICE, PLC = "127.0.20.10", "127.0.30.10", "127.0.40.50", "127.0.10.10"
ENG = "127.0.20.20"  # engineering workstation: reads the PLC, as the policy allows
FIELD = [f"127.0.10.{100 + i}" for i in range(60)]  # sixty devices in cell-1
CELL = "subnet:127.0.10.0/24@zone:cell-1"


@pytest.fixture(scope="module")
def crowded_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("crowded") / "plant.db"
    hosts = [(HMI, ["hmi_scada"]), (ENG, []), (MES, []), (OFFICE, []), (PLC, ["plc"])]
    hosts += [(ip, ["plc"]) for ip in FIELD]
    convs: list[Any] = [(HMI, PLC, 502), (ENG, PLC, 502), (OFFICE, PLC, 502),
                        (OFFICE, MES, 80, "http")]  # fmt: skip
    convs += [(HMI, ip, 502) for ip in FIELD]
    write_plant(db, hosts, convs, ops_per_conv=1)
    with Store(db) as st:
        evaluate_and_store(st, load_policy(POLICY))
    return db


@pytest.fixture
def crowded(crowded_db: Path, tmp_path: Path) -> Iterator[Env]:
    e = make_env(crowded_db, tmp_path)
    yield e
    e.ctx.close()


def _graph(env: Env, **params: Any) -> dict[str, Any]:
    r = env.client("viewer").get("/api/map", params=params)
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


def _kinds(m: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for n in m["nodes"]:
        out.setdefault(n["data"]["kind"], []).append(n["data"])
    return out


def test_crowded_zone_folds_into_subnets(crowded: Env) -> None:
    m = _graph(crowded)
    kinds = _kinds(m)
    (subnet,) = kinds["subnet"]
    assert subnet["id"] == CELL and subnet["parent"] == "zone:cell-1"
    assert subnet["assets"] == len(FIELD) + 1 and m["subnets"] == 1
    assert not any(a["ip"].startswith("127.0.10.") for a in kinds["asset"])
    assert len(m["nodes"]) < 20  # not 64 assets and their edges
    edges = {(e["data"]["source"], e["data"]["target"]): e["data"] for e in m["edges"]}
    hmi = edges[(f"asset:{HMI}", CELL)]
    # One edge for 61 conversations, coloured by the worst: the HMI may reach the PLC,
    # not the sixty others.
    assert hmi["conversations"] == len(FIELD) + 1 and hmi["verdict"] == "violation"
    assert hmi["rules"]
    assert edges[(f"asset:{ENG}", CELL)]["verdict"] == "allowed"
    assert edges[(f"asset:{OFFICE}", CELL)]["verdict"] == "violation"
    # Opening the subnet draws its devices.
    opened = _graph(crowded, zone="subnet:127.0.10.0/24")
    shown = {a["ip"] for a in _kinds(opened)["asset"]}
    assert set(FIELD) | {PLC} <= shown and "subnet" not in _kinds(opened)


def test_filters(crowded: Env) -> None:
    every = _graph(crowded, zone="subnet:127.0.10.0/24")
    http = _graph(crowded, protocol="http")
    assert {e["data"]["protocols"][0] for e in http["edges"]} == {"http"}
    assert {a["ip"] for a in _kinds(http)["asset"]} == {OFFICE, MES}
    assert http["filtered_out"] == every["assets"] - 2 and http["filters"]["protocol"] == "http"
    ind = _graph(crowded, industrial="true")
    assert ind["edges"] and all(set(e["data"]["protocols"]) <= INDUSTRIAL for e in ind["edges"])
    assert MES not in {a.get("ip") for a in _kinds(ind)["asset"]}
    bad = _graph(crowded, violations="true")
    assert bad["edges"] and {e["data"]["verdict"] for e in bad["edges"]} == {"violation"}
    assert ENG not in {a.get("ip") for a in _kinds(bad)["asset"]}  # its traffic is allowed
    assert {HMI, OFFICE} <= {a.get("ip") for a in _kinds(bad)["asset"]}
    assert crowded.client("viewer").get("/api/map?industrial=maybe").status_code == 422


def test_page_has_the_filter_controls(crowded: Env) -> None:
    html = crowded.client("viewer").get("/map", params={"industrial": "true"}).text
    for control in ('id="f-protocol"', 'id="f-industrial"', 'id="f-violations"',
                    'id="f-unconfirmed"'):  # fmt: skip
        assert control in html
    assert "<option>http</option>" in html and "<option>modbus</option>" in html
    assert 'id="f-industrial" checked' in html
