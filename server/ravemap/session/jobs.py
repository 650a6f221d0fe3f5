"""Work the session hands to other threads, and the `Finished` events that bring it back.

Whatever takes long (a save, reading a mapping file, a hot swap, encoding a file) runs on a
thread of its own and comes back through the inbox as a `Finished` event, which the session
applies in turn, so control never waits on a disk or a model. This module keeps the jobs in
flight (which events wait on each, and what to do with its result) and the loader queue; it
answers nobody itself: the core takes a finished job (`take`) and settles its events.

Threads:
- session thread: `add`, `spawn`, `take`, `finish`, `background`, `queue_for_loader` (the job table is
  its own).
- worker threads, one per job, named by whoever spawns them ("ravemap-saver",
  "ravemap-mapping-reader"): run `run`, which posts `Finished` into the inbox.
- loader thread, "ravemap-loader" (owned here, one at a time): hot swaps of model or loop and
  vector captures from files, which take seconds. Requests that come while one runs wait, the
  newest of each kind, and run in order once it ends (the queue is shared with the session
  thread under `_loader_lock`).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass

from ravemap.control.events import Event, Finished, Inbox
from ravemap.session.outcomes import Background, CommandError, Refused


@dataclass(frozen=True)
class Job:
    """A job in flight: the events answered with its outcome, what runs on the session thread with its
    result (`then`), and, on failure, `on_error` (which may return a text for `last_error`)."""

    events: tuple[Event, ...]
    then: Callable[[object], object]
    on_error: Callable[[BaseException], str | None] | None = None


class Jobs:
    def __init__(self, inbox: Inbox):
        self.inbox = inbox
        self._numbers = itertools.count(1)
        self._waiting: dict[int, Job] = {}
        self.finishing = 0  # the job whose `Finished` event is being applied
        self._loader_lock = threading.Lock()
        self._loader_queue: dict[str, tuple[Event, Callable[[], None]]] = {}
        self._loader_busy = False

    def add(self, events: tuple[Event, ...], then: Callable[[object], object],
            on_error: Callable[[BaseException], str | None] | None = None) -> int:
        """A new job whose outcome answers `events`; returns its number. Start it with `spawn` or
        `queue_for_loader`."""
        number = next(self._numbers)
        self._waiting[number] = Job(events, then, on_error)
        return number

    def spawn(self, job: int, work: Callable[[], object], thread: str) -> threading.Thread:
        """Run `work` for `job` on a new thread named `thread`."""
        worker = threading.Thread(target=self.run, args=(job, work), name=thread, daemon=True)
        worker.start()
        return worker

    def run(self, job: int, work: Callable[[], object]) -> None:
        """On the worker thread: run `work` and post its result, or the exception it raised."""
        try:
            result, error = work(), None
        except BaseException as err:  # handed to the session thread, which answers it
            result, error = None, err
        self.inbox.put(Finished(job, result, error))

    def take(self, finished: Finished) -> Job | None:
        """The job `finished` ends (None: forgotten, its request replaced); it is now `finishing`."""
        job = self._waiting.pop(finished.job, None)
        if job is not None:
            self.finishing = finished.job
        return job

    def background(self, event: Event, request: Background) -> Refused | None:
        """A job for `request` on the loader thread; the waiting request of its kind that it replaces
        comes back refused."""
        replaced = self.queue_for_loader(request.kind, event, self.add((event,), request.then), request.work)
        if replaced is None:
            return None
        return Refused((replaced,), CommandError(
            f"/ravemap/{request.kind.split(':')[0]}: replaced by a newer request before it started loading"))

    def finish(self, finished: Finished) -> tuple[tuple[Event, ...], Callable[[], object], str | None] | None:
        """For the job `finished` ends (None: forgotten): the events it answers, how to complete it (its
        `then` on the result, or raise the job's error) and a text for `last_error` from its `on_error`."""
        job = self.take(finished)
        if job is None:
            return None
        text = job.on_error(finished.error) if finished.error is not None and job.on_error is not None else None

        def complete() -> object:
            if finished.error is not None:
                raise finished.error
            return job.then(finished.result)

        return job.events, complete, text

    def queue_for_loader(self, kind: str, event: Event, job: int, work: Callable[[], object]) -> Event | None:
        """Run `work` on the loader thread after what is loading now. A request of the same `kind`
        still waiting is replaced by this one: returns its event (to be refused), whose job is forgotten."""
        with self._loader_lock:
            replaced = self._loader_queue.pop(kind, None)
            self._loader_queue[kind] = (event, lambda: self.run(job, work))
            start = not self._loader_busy
            self._loader_busy = True
        old_event = None
        if replaced is not None:
            old_event = replaced[0]
            for number, waiting in list(self._waiting.items()):
                if any(e is old_event for e in waiting.events):
                    del self._waiting[number]
        if start:
            threading.Thread(target=self._run_loader, name="ravemap-loader", daemon=True).start()
        return old_event

    def _run_loader(self) -> None:
        while True:
            with self._loader_lock:
                if not self._loader_queue:
                    self._loader_busy = False
                    return
                kind = next(iter(self._loader_queue))
                _, run = self._loader_queue.pop(kind)
            run()
