"""The lab's witness (``truth`` in ``conduit lab --json``), without the network: the
process model run step by step and its account checked against what the model did."""

from __future__ import annotations

import pytest

from otconduit.lab.process import DT, PlantProcess


def test_counts_survive_the_shift_reset() -> None:
    p = PlantProcess(seed=4, start_of_day=13 * 3600 + 55 * 60)  # 14:00 comes after 300 s
    assert p.shift == 1
    good_out = 0
    while p.t < 600:
        p.advance_to(p.t + DT)
        good_out += p.conveyor.parts_out  # good parts handed on in this step
    assert p.shift == 2  # the PLC zeroed its counters at 14:00
    truth = p.truth.as_json()
    conveyor = truth["machines"]["conveyor"]
    assert conveyor["good"] == good_out > 0
    assert p.conveyor.good < conveyor["good"]  # the register only counts this shift
    assert conveyor["produced"] == conveyor["good"] + conveyor["scrap"]
    assert sum(conveyor["state_seconds"].values()) == pytest.approx(600.0)
    assert truth["plant_seconds"] == pytest.approx(600.0)


def test_states_energy_and_machines() -> None:
    p = PlantProcess(seed=2, start_of_day=8 * 3600 + 55 * 60)
    p.schedule_bearing_failure(30.0, 200.0)
    kwh0 = [m.kwh for m in p.meters]
    p.advance_to(400.0)
    truth = p.truth.as_json()["machines"]
    trip = next(e.t for e in p.events if e.kind == "conveyor_trip")
    # the trip latches FAULT from the step after it to the end (the break cannot clear it)
    assert truth["conveyor"]["state_seconds"]["FAULT"] == pytest.approx(400.0 - trip, abs=DT)
    for i, name in enumerate(("meter-1", "meter-2")):
        assert truth[name]["kwh"] == pytest.approx(p.meters[i].kwh - kwh0[i], abs=1e-5)
        assert truth[name]["produced"] is None
    assert set(truth["packer"]["state_seconds"]) <= {"Execute", "Suspending", "Suspended",
                                                     "Unsuspending"}  # fmt: skip
    assert truth["press"]["produced"] == truth["press"]["good"] + truth["press"]["scrap"]
    # meter 1 feeds the conveyor and the press (plus its base load)
    assert truth["meter-1"]["kwh"] > truth["conveyor"]["kwh"] + truth["press"]["kwh"]
