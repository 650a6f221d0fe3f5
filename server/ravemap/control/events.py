"""Control events: what OSC and MIDI translate messages into, and the inbox that carries them.

Transports translate; they don't decide. Each message becomes a small immutable event,
put into the `Inbox`; the session thread takes events out in order and applies them.

The inbox is bounded. A continuous value (an input vector, the latent targets) replaces
the previous event of the same kind when that one is still the newest waiting, so under a
flood of XY messages the newest value wins and the queue stays short. When the inbox is
full anyway, new discrete events are dropped and counted, and the newest value of each
continuous kind waits beside the queue (one per kind, so still bounded) until there is
room: after a flood the controls end where the performer left them.

Threads: `Inbox.put` from any transport thread (OSC, MIDI's callback thread, the
trainer's listener and watchdog); `Inbox.get` from the session thread only.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

Origin = tuple[str, int] | None  # (sender IP, reply port) or None when nobody can be answered


@dataclass(frozen=True)
class Event:
    origin: Origin = field(default=None, kw_only=True)
    # Set by the Python API: the session completes it once the event is applied (or refused).
    done: Future | None = field(default=None, kw_only=True, compare=False)

    @property
    def coalesce_key(self) -> str | None:
        """Events with the same key may replace each other while waiting (latest value wins)."""
        return None


@dataclass(frozen=True)
class SetInputs(Event):
    """New values for some input dims, already normalised (by the route's range) to 0..1.

    `whole`: the values are the whole input vector in order (Wekinator's `/wek/inputs`, a route
    with no `dims`); its length may set the input size of a new, empty mapping."""

    values: tuple[tuple[int, float], ...]
    source: str = ""
    whole: bool = False

    @property
    def coalesce_key(self) -> str | None:
        if self.whole:
            return "inputs:whole"
        return "inputs:" + ",".join(str(d) for d, _ in self.values)


@dataclass(frozen=True)
class SetTargets(Event):
    """All manual latent targets at once."""

    values: tuple[float, ...]

    @property
    def coalesce_key(self) -> str | None:
        return "targets"


@dataclass(frozen=True)
class SetTarget(Event):
    index: int
    value: float

    @property
    def coalesce_key(self) -> str | None:
        return f"target:{self.index}"


@dataclass(frozen=True)
class Command(Event):
    """A discrete action, applied by the handler named `name` in the session's handler table (`Session.handlers`):
    record, train, train_cancel, run, save, ... with its already-checked arguments. Any translator may emit
    any of them (Wekinator's addresses do)."""

    name: str
    args: tuple[object, ...] = ()


@dataclass(frozen=True)
class Learned(Event):
    """MIDI learn bound a controller to an input dim (an int) or a chain control (its MIDI name, a str)."""

    target: int | str
    description: str


@dataclass(frozen=True)
class LearnAvailable(Event):
    """MIDI input is open: `/ravemap/learn DIM` calls `learn(DIM)`, `/ravemap/learn/control NAME` `learn(NAME)`
    (the daemon posts this once, at start)."""

    learn: Callable[[int | str], None]


@dataclass(frozen=True)
class MidiClock(Event):
    """A MIDI clock message, timestamped on the MIDI thread as it came (`at`: `time.monotonic()`):
    "tick" (`ticks`: this tick's position, from 0 at the first tick after a start), "start", "stop",
    "continue", "position" (`ticks`: where the next tick is, from a song position pointer). Ticks
    coalesce (each carries its own count and time, so the newest says all the tempo needs)."""

    kind: str
    ticks: int
    at: float

    @property
    def coalesce_key(self) -> str | None:
        return "midi-clock" if self.kind == "tick" else None


@dataclass(frozen=True)
class TrainingProgress(Event):
    fraction: float
    loss: float

    @property
    def coalesce_key(self) -> str | None:
        return "train-progress"


@dataclass(frozen=True)
class TrainingDone(Event):
    result: object  # FitResult or None
    error: str | None
    generation: int = 0


def _key(event: Event) -> str | None:
    """Coalescing key; none for an event someone waits on (it must be applied, not replaced)."""
    return event.coalesce_key if event.done is None else None


class Inbox:
    """Bounded FIFO with latest-value-wins coalescing of continuous events."""

    def __init__(self, capacity: int = 1024):
        self.capacity = capacity
        self._queue: deque[Event] = deque()
        # The newest continuous value per kind that came while the queue was full, in arrival order.
        self._overflow: dict[str, Event] = {}
        self._cond = threading.Condition()
        self.dropped = 0
        self.coalesced = 0
        self.received = 0

    def put(self, event: Event) -> bool:
        """False when the event was dropped (a discrete event while the inbox is full)."""
        with self._cond:
            self.received += 1
            self._move_overflow()
            key = _key(event)
            if self._overflow or len(self._queue) >= self.capacity:
                # Full: events that came earlier still wait beside the queue, so this one must too.
                if key is None:
                    self.dropped += 1
                    if event.done is not None:
                        event.done.set_exception(RuntimeError("the control inbox is full; try again"))
                    return False
                if self._overflow.pop(key, None) is not None:
                    self.coalesced += 1
                self._overflow[key] = event
                return True
            self._append(event)
            self._cond.notify()
            return True

    def _append(self, event: Event) -> None:
        key = _key(event)
        if key is not None and self._queue and _key(self._queue[-1]) == key:
            self._queue[-1] = event
            self.coalesced += 1
        else:
            self._queue.append(event)

    def _move_overflow(self) -> None:
        while self._overflow and len(self._queue) < self.capacity:
            key = next(iter(self._overflow))
            self._append(self._overflow.pop(key))

    def get(self, timeout: float | None = None) -> Event | None:
        with self._cond:
            if not self._queue:
                self._cond.wait(timeout)
            if not self._queue:
                return None
            event = self._queue.popleft()
            self._move_overflow()
            return event

    def __len__(self) -> int:
        with self._cond:
            return len(self._queue) + len(self._overflow)


@dataclass(frozen=True)
class Finished(Event):
    """Work the session handed to another thread (a save, a mapping read, a hot swap, a vector
    capture) is done: `result`, or the exception it raised. Session-internal; never coalesced
    into another and never dropped (each job has a key of its own, so a full inbox keeps it aside)."""

    job: int
    result: object = None
    error: BaseException | None = None

    @property
    def coalesce_key(self) -> str | None:
        return f"finished:{self.job}"
