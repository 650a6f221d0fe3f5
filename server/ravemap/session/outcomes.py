"""What the session's collaborators hand back to the core, which alone settles events.

A collaborator (the mapping keeper, training, engine commands) never answers a sender or
completes an API caller's future: it returns a value, raises `CommandError`, or returns one
of these small objects, and the core (`ravemap.session.core`) acts on it.

Threads: plain values; made and read on the session thread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ravemap.control.events import Event

DEFERRED = object()  # a command's result comes later, with its `Finished` event


class CommandError(ValueError):
    """A command that cannot be carried out now; the text goes back to the sender."""


def fail(err: BaseException) -> object:
    """Raise `err` (for the core's `settle`, which runs a function and answers what it returns or raises)."""
    raise err


@dataclass(frozen=True)
class Background:
    """Work for the loader thread (a hot swap, a vector capture): `work` runs there, then `then(result)`
    on the session thread. A request of the same `kind` still waiting is replaced by this one."""

    kind: str
    work: Callable[[], object]
    then: Callable[[object], object]


@dataclass(frozen=True)
class Refused:
    """Events that cannot be carried out, all for the same reason: the core answers each with `error`."""

    events: tuple[Event, ...]
    error: BaseException
