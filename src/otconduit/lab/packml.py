"""PackML state machine (ISA-TR88.00.02 state and command numbers) for the packaging machine.

Acting states ("...ing") finish by themselves after ``ACTING_TIME`` plant seconds, the way a
real machine completes its sequence; waiting states change only on a command.
"""

from __future__ import annotations

from enum import IntEnum


class State(IntEnum):
    UNDEFINED = 0
    CLEARING = 1
    STOPPED = 2
    STARTING = 3
    IDLE = 4
    SUSPENDED = 5
    EXECUTE = 6
    STOPPING = 7
    ABORTING = 8
    ABORTED = 9
    HOLDING = 10
    HELD = 11
    UNHOLDING = 12
    SUSPENDING = 13
    UNSUSPENDING = 14
    RESETTING = 15
    COMPLETING = 16
    COMPLETE = 17


class Command(IntEnum):
    UNDEFINED = 0
    RESET = 1
    START = 2
    STOP = 3
    HOLD = 4
    UNHOLD = 5
    SUSPEND = 6
    UNSUSPEND = 7
    ABORT = 8
    CLEAR = 9


ACTING_TIME = 2.0  # plant seconds an acting state takes

# (state, command) -> next state; Stop and Abort are handled generically below.
_ON_COMMAND: dict[tuple[State, Command], State] = {
    (State.STOPPED, Command.RESET): State.RESETTING,
    (State.COMPLETE, Command.RESET): State.RESETTING,
    (State.IDLE, Command.START): State.STARTING,
    (State.EXECUTE, Command.HOLD): State.HOLDING,
    (State.HELD, Command.UNHOLD): State.UNHOLDING,
    (State.EXECUTE, Command.SUSPEND): State.SUSPENDING,
    (State.SUSPENDED, Command.UNSUSPEND): State.UNSUSPENDING,
    (State.SUSPENDED, Command.HOLD): State.HOLDING,
    (State.ABORTED, Command.CLEAR): State.CLEARING,
}
# acting state -> state it settles in (state complete)
_ON_DONE: dict[State, State] = {
    State.CLEARING: State.STOPPED,
    State.STARTING: State.EXECUTE,
    State.STOPPING: State.STOPPED,
    State.ABORTING: State.ABORTED,
    State.HOLDING: State.HELD,
    State.UNHOLDING: State.EXECUTE,
    State.SUSPENDING: State.SUSPENDED,
    State.UNSUSPENDING: State.EXECUTE,
    State.RESETTING: State.IDLE,
    State.COMPLETING: State.COMPLETE,
}
_NO_STOP = {State.STOPPED, State.STOPPING, State.ABORTING, State.ABORTED, State.CLEARING}
_NO_ABORT = {State.ABORTING, State.ABORTED}


class PackMLMachine:
    """Current state plus the time spent in it; ``command`` returns whether it was accepted."""

    def __init__(self, state: State = State.EXECUTE) -> None:
        self.state = state
        self.in_state = 0.0

    def command(self, cmd: int) -> bool:
        try:
            c = Command(cmd)
        except ValueError:
            return False
        nxt: State | None
        if c == Command.STOP:
            nxt = None if self.state in _NO_STOP else State.STOPPING
        elif c == Command.ABORT:
            nxt = None if self.state in _NO_ABORT else State.ABORTING
        else:
            nxt = _ON_COMMAND.get((self.state, c))
        if nxt is None:
            return False
        self._enter(nxt)
        return True

    def step(self, dt: float) -> None:
        self.in_state += dt
        done = _ON_DONE.get(self.state)
        if done is not None and self.in_state >= ACTING_TIME:
            self._enter(done)

    def _enter(self, state: State) -> None:
        self.state = state
        self.in_state = 0.0

    @property
    def name(self) -> str:
        return self.state.name.capitalize()

    @property
    def producing(self) -> bool:
        return self.state == State.EXECUTE
