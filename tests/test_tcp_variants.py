"""TCP corner cases end to end: each rewritten capture of the lab session must give the
same operations as the original, except for exactly what the rewrite destroyed.

The variants (tests/data/modbus_<kind>.pcap) were made by the lab's own rewriter from a
recorded pymodbus session; modbus_variants.json says what each one changed.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from otconduit.analysis.run import analyze_file
from otconduit.store import Store, views
from tests.conftest import DATA

VARIANTS = json.loads((DATA / "modbus_variants.json").read_text())


def _ops(tmp: Path, name: str) -> list[dict[str, Any]]:
    with Store(tmp / f"{name}.db") as store:
        analyze_file(store, DATA / name)
        return list(views.operations(store))


def _sig(o: dict[str, Any]) -> tuple[Any, ...]:
    return (
        o["src_ip"],
        o["transaction_id"],
        o["unit"],
        o["function_code"],
        o["status"],
        o["exception_code"],
        o["address"],
        o["quantity"],
        json.dumps(o["values"]),
        json.dumps(o["detail"].get("response_values")),
        o["request_frame"] is None,
        o["response_frame"] is None,
    )


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Counter[tuple[Any, ...]]:
    ops = _ops(tmp_path_factory.mktemp("ref"), "modbus_all_functions.pcap")
    assert len(ops) == 51
    return Counter(map(_sig, ops))


@pytest.mark.parametrize(
    "kind", ["clean", "split", "coalesce", "retransmit", "reorder", "vlan", "qinq"]
)
def test_variant_gives_identical_operations(
    kind: str, reference: Counter[tuple[Any, ...]], tmp_path: Path
) -> None:
    ops = _ops(tmp_path, f"modbus_{kind}.pcap")
    assert Counter(map(_sig, ops)) == reference


def test_vlan_ids_are_kept(tmp_path: Path) -> None:
    for kind, vlan in (("vlan", 10), ("qinq", 10)):
        with Store(tmp_path / f"{kind}.db") as store:
            analyze_file(store, DATA / f"modbus_{kind}.pcap")
            assets = views.assets(store)
            convs = views.conversations(store)
        assert assets and all(a["vlan"] == vlan for a in assets)
        assert all(c["vlan"] == vlan for c in convs)


def test_gap_loses_exactly_the_missing_request(
    reference: Counter[tuple[Any, ...]], tmp_path: Path
) -> None:
    info = VARIANTS["gap"]
    (lost,) = info["removed"]["adus"]
    ops = _ops(tmp_path, "modbus_gap.pcap")
    got = Counter(map(_sig, ops))
    missing = reference - got
    extra = got - reference
    # The lost request's transaction survives only as a response without request.
    assert sum(missing.values()) == 1
    (m,) = missing
    assert (m[1], m[2], m[3]) == (lost["tid"], lost["unit"], lost["fc"])
    orphans = [o for o in ops if o["request_frame"] is None]
    assert len(orphans) == 1 and orphans[0]["transaction_id"] == lost["tid"]
    assert sum(extra.values()) == 1
    # Every other transaction after the gap is still paired.
    assert sum(1 for o in ops if o["status"] != "no_response") == len(ops)


def test_midstream_start(reference: Counter[tuple[Any, ...]], tmp_path: Path) -> None:
    info = VARIANTS["midstream"]
    (first,) = info["first_adus"]
    ops = _ops(tmp_path, "modbus_midstream.pcap")
    orphans = [o for o in ops if o["request_frame"] is None]
    assert len(orphans) == 1
    assert (orphans[0]["transaction_id"], orphans[0]["function_code"]) == (
        first["tid"],
        first["fc"],
    )
    paired = Counter(_sig(o) for o in ops if o["request_frame"] is not None)
    assert not (paired - reference)  # nothing invented
    assert sum(paired.values()) == 51 - first["tid"]
