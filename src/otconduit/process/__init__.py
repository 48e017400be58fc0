"""Alerts in process terms: what a command on the wire does to the plant.

The gateway config already knows that Modbus ``hr:0`` of 127.0.10.10 unit 1 is
``packaging/line1/conveyor/speed_setpoint`` in 0.1 m/min; the monitor sees a write of 400
to that register. Joined, the write reads ``conveyor/speed_setpoint := 40.0 m/min (was
25.0)``.

- :mod:`.tagmap` turns a gateway config into a lookup: (device address, port, unit,
  table or S7 area, address range) -> the tags stored there, with their decoding.
- :mod:`.annotate` follows operations in time order, keeps what each device's registers
  were last seen to hold (reads and writes), and says which tags a write changed, to what,
  and from what (the gateway historian's last sample before the write when there is one).
- :mod:`.history` reads the historian for those previous values and for trends.
- :mod:`.alerts` puts the result on stored alerts (``process`` in their JSON).

It sits above ``gateway``, ``store`` and ``detect``, below ``console`` and ``cli``.
"""

from __future__ import annotations

from otconduit.process.annotate import ProcessAnnotator, annotate_operations, process_text
from otconduit.process.tagmap import MappedTag, TagMap

__all__ = ["MappedTag", "ProcessAnnotator", "TagMap", "annotate_operations", "process_text"]
