"""The substation RTU: a c104 (lib60870) IEC 60870-5-104 outstation for one feeder bay.

Station (common address) 20 holds measured values of the 20 kV feeder as short floats
(M_ME_NC_1: voltage kV, current A, active power MW, sent on interrogation and read),
the circuit breaker's position as a single point (M_SP_NA_1)
and the breaker's control as a single command (C_SC_NA_1, select before operate). A
command executed on it opens or closes the breaker: the feeder's current and power drop
to zero while it is open, and the new position is reported back (return information).
"""

# No ``from __future__ import annotations`` here: c104 checks a callback's annotations
# as objects, and string annotations fail its check.
import math
import random

import c104

from otconduit.lab import addresses as A

COMMON_ADDRESS = 20
IOA_VOLTAGE = 1001
IOA_CURRENT = 1002
IOA_POWER = 1003
IOA_BREAKER = 2001
IOA_BREAKER_CMD = 3001
MEASURED = (IOA_VOLTAGE, IOA_CURRENT, IOA_POWER)
SELECT_TIMEOUT_MS = 10_000


class Outstation:
    """c104 server on the RTU's address; ``tick`` recomputes the feeder's measurands."""

    def __init__(self, ip: str = A.SUBSTATION_RTU.ip, port: int = 2404, seed: int = 1) -> None:
        self.ip = ip
        self.port = port
        self.breaker_closed = True
        self.commands: list[tuple[bool, bool]] = []  # (select, state) as the RTU got them
        self._rng = random.Random(f"{seed}:substation")
        self.server = c104.Server(
            ip=ip, port=port, tick_rate_ms=100, select_timeout_ms=SELECT_TIMEOUT_MS
        )
        station = self.server.add_station(common_address=COMMON_ADDRESS)
        assert station is not None
        self.points: dict[int, c104.Point] = {}
        for ioa in MEASURED:
            point = station.add_point(io_address=ioa, type=c104.Type.M_ME_NC_1)
            assert point is not None
            self.points[ioa] = point
        breaker = station.add_point(io_address=IOA_BREAKER, type=c104.Type.M_SP_NA_1)
        command = station.add_point(
            io_address=IOA_BREAKER_CMD,
            type=c104.Type.C_SC_NA_1,
            related_io_address=IOA_BREAKER,
            related_io_autoreturn=True,
            command_mode=c104.CommandMode.SELECT_AND_EXECUTE,
        )
        assert breaker is not None and command is not None
        breaker.value = True
        self.points[IOA_BREAKER] = breaker
        command.on_receive(callable=self._on_command)
        self.tick(0.0)

    def _on_command(
        self,
        point: c104.Point,
        previous_info: c104.Information,
        message: c104.IncomingMessage,
    ) -> c104.ResponseState:
        """The breaker follows an executed command (c104 calls this from its thread;
        the signature, names included, is what c104 checks)."""
        state = bool(point.value)
        self.commands.append((bool(message.is_select_command), state))
        if not message.is_select_command:
            self.breaker_closed = state
            self.points[IOA_BREAKER].value = state
        return c104.ResponseState.SUCCESS

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        self.server.stop()

    def tick(self, plant_t: float) -> None:
        """Feeder measurands at plant time ``plant_t``: a daily load curve with noise."""
        load = 0.55 + 0.25 * math.sin(plant_t / 3600.0 * math.pi / 6) + self._rng.gauss(0, 0.01)
        current = 180.0 * load if self.breaker_closed else 0.0
        voltage = 20.4 - 0.002 * current + self._rng.gauss(0, 0.01)
        power = math.sqrt(3) * voltage * current * 0.95 / 1000.0
        self.points[IOA_VOLTAGE].value = round(voltage, 3)
        self.points[IOA_CURRENT].value = round(current, 1)
        self.points[IOA_POWER].value = round(power, 3)
