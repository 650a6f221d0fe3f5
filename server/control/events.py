"""Control events: what OSC and MIDI translate messages into, and the inbox that carries them.

Transports translate; they don't decide. Each message becomes a small immutable event,
put into the `Inbox`; the session thread takes events out in order and applies them.

The inbox is bounded. A continuous value (an input vector, the latent targets) replaces
the previous event of the same kind when that one is still the newest waiting, so under a
flood of XY messages the newest value wins and the queue stays short; when the inbox is
full anyway, new events are dropped and counted.

Threads: `Inbox.put` from any transport thread (OSC, MIDI's callback thread, the
trainer's listener); `Inbox.get` from the session thread only.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

Origin = tuple[str, int] | None  # (sender IP, reply port) or None when nobody can be answered


@dataclass(frozen=True)
class Event:
    origin: Origin = field(default=None, kw_only=True)

    @property
    def coalesce_key(self) -> str | None:
        """Events with the same key may replace each other while waiting (latest value wins)."""
        return None


@dataclass(frozen=True)
class SetInputs(Event):
    """New values for some input dims, already normalised (by the route's range) to 0..1."""

    values: tuple[tuple[int, float], ...]
    source: str = ""

    @property
    def coalesce_key(self) -> str | None:
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
    """A discrete action: record, train, run, save, ... with its already-checked arguments."""

    name: str
    args: tuple[object, ...] = ()


@dataclass(frozen=True)
class Learned(Event):
    """MIDI learn bound a controller to an input dim."""

    dim: int
    description: str


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


class Inbox:
    """Bounded FIFO with latest-value-wins coalescing of continuous events."""

    def __init__(self, capacity: int = 1024):
        self.capacity = capacity
        self._queue: deque[Event] = deque()
        self._cond = threading.Condition()
        self.dropped = 0
        self.coalesced = 0
        self.received = 0

    def put(self, event: Event) -> bool:
        with self._cond:
            self.received += 1
            key = event.coalesce_key
            if key is not None and self._queue and self._queue[-1].coalesce_key == key:
                self._queue[-1] = event
                self.coalesced += 1
                self._cond.notify()
                return True
            if len(self._queue) >= self.capacity:
                self.dropped += 1
                return False
            self._queue.append(event)
            self._cond.notify()
            return True

    def get(self, timeout: float | None = None) -> Event | None:
        with self._cond:
            if not self._queue:
                self._cond.wait(timeout)
            return self._queue.popleft() if self._queue else None

    def __len__(self) -> int:
        return len(self._queue)
