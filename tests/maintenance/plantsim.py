"""The lab's conveyor (its process model, :class:`otconduit.lab.process.PlantProcess`) run
in simulated time with a bearing failure, its tags written into a historian as the gateway
would poll them: the watch's input without sockets or wall-clock waits."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from otconduit.gateway.config import GatewayConfig
from otconduit.gateway.historian.sqlite import SQLiteHistorian
from otconduit.gateway.model import Quality, TagSample
from otconduit.gateway.plantconfig import plant_gateway
from otconduit.lab.process import PlantProcess

T0_NS = 1_800_000_000 * 10**9  # the simulated plant's epoch
TAGS = ("vibration_rms", "bearing_temp", "motor_current", "actual_speed", "running")


@dataclass(frozen=True, slots=True)
class Run:
    config: GatewayConfig
    historian: Path
    trip_ns: int | None
    degradation_ns: int


def simulate(
    out: Path, *, seed: int = 7, horizon: float = 7200.0, poll: float = 1.0, wear: bool = True
) -> Run:
    """A bearing that starts to wear at 10 % of ``horizon`` and fails at 65 % of it (the
    lab scenario's own schedule; none with ``wear=False``), polled every ``poll`` plant
    seconds."""
    raw = plant_gateway()
    raw["sinks"] = {"historian": {"path": str(out)}}
    cfg = GatewayConfig.model_validate(raw)
    conveyor = next(d for d in cfg.devices if d.name == "conveyor-plc")
    paths = {t.path.rsplit("/", 1)[-1]: (cfg.full_path(t), t.unit) for t in conveyor.tags}
    proc = PlantProcess(seed)
    start = horizon * 0.1
    if wear:
        proc.schedule_bearing_failure(start, horizon * 0.65)
    hist = SQLiteHistorian(out, readonly=False)
    batch: list[TagSample] = []
    trip: int | None = None
    t = 0.0
    while t < horizon:
        t += poll
        proc.advance_to(t)
        ts = T0_NS + int(t * 1e9)
        values = proc.conveyor_values()
        for name in TAGS:
            path, unit = paths[name]
            batch.append(TagSample(path, values[name], Quality.GOOD, ts, unit))
        if trip is None and any(e.kind == "conveyor_trip" for e in proc.events):
            trip = T0_NS + int(next(e.t for e in proc.events if e.kind == "conveyor_trip") * 1e9)
        if len(batch) >= 5000:
            hist.write(batch)
            batch = []
    hist.write(batch)
    hist.flush()
    hist.close()
    return Run(cfg, out, trip, T0_NS + int(start * 1e9))
