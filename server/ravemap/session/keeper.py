"""The mapping keeper: which mapping is current, its lock, whether it changed, and its saves.

The mapping is held by this process alone (`MappingLock`), from start to stop, and each
mapping switched to is locked before the switch. A change marks it dirty (`changed`); it is
saved `mapping.save_delay_s` after a change, and never sooner than `SAVE_SPACING` times the
last save's duration after it, so a mapping that grows is saved less often. Explicit saves
(`/ravemap/mapping/save`) wait for the one in flight. At exit, `save_at_exit` tries again, then
writes a recovery copy to the user's data folder (`locations.recovery_folder`), else the temp folder.

The keeper changes the mapping's bookkeeping only; the core decides what a switch means for the
performance (inputs, run mode) and answers the senders.

Threads:
- session thread: every method but `save_at_exit`, and `save` while the session runs.
- saver thread, "ravemap-saver" (one at a time, through `Jobs`): writes an immutable snapshot of
  the mapping (`_snapshot`). Switching mappings (load, new) and stopping save on the calling thread.
- mapping reader, "ravemap-mapping-reader": runs `reader(name)`'s function, which reads and checks
  a file for `/ravemap/mapping/load` (at most `store.MAX_FILE_BYTES`); the newest load wins. It waits
  for a child process on a file over 1 MB (`ravemap.mapping.reader`), so it never holds the GIL for long.
- `save`, `save_at_exit` and `close` from the main thread once the session thread has stopped.
"""

from __future__ import annotations

import copy
import logging
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from ravemap import locations
from ravemap.config import Config
from ravemap.control.events import Command, Event
from ravemap.control.feedback import Feedback
from ravemap.errors import MappingError
from ravemap.mapping.regressor import RegressorSettings
from ravemap.mapping.store import (
    MAX_EXAMPLES,
    MAX_SIZE,
    Example,
    Mapping,
    MappingLock,
    load_mapping,
    mapping_path,
    save_mapping,
)
from ravemap.session.jobs import Jobs
from ravemap.session.outcomes import CommandError, Refused

log = logging.getLogger("ravemap.session")

SAVE_RETRY_S = 5.0
SAVE_SPACING = 4.0  # the next save starts no sooner than this many times the last one's duration after it
EXIT_SAVE_TRIES = 3
EXIT_RETRY_PAUSE_S = 0.5


def new_mapping(config: Config, name: str, model: str | None = None) -> Mapping:
    m = config.mapping
    settings = RegressorSettings(kind=m.regressor, hidden=tuple(m.hidden), epochs=m.epochs,
                                 learning_rate=m.learning_rate, seed=m.seed)
    return Mapping(name=name, input_size=config.inputs.size, output_dims=tuple(config.latent.dims),
                   output_range=tuple(config.latent.range), settings=settings, model=model)  # type: ignore[arg-type]


def check_fits(config: Config, mapping: Mapping) -> None:
    """MappingError unless `mapping` drives the config's `latent.dims` (the same dims, in order). Its
    input size is its own (`inputs.size` is only the size a new mapping starts with)."""
    dims = tuple(config.latent.dims)
    if tuple(mapping.output_dims) != dims:
        raise MappingError(
            f"mapping {mapping.name!r} maps {mapping.input_size} inputs to latent dims {list(mapping.output_dims)}, "
            f"but the config has latent.dims {list(dims)}"
        )


def open_mapping(config: Config, mappings_dir: Path, name: str, model: str | None) -> Mapping:
    """The named mapping, or a new one; a corrupt or misfitting file is reported and never overwritten,
    and a mapping another ravemap holds is left to it."""
    try:
        MappingLock(mappings_dir, name).release()
    except MappingError as err:
        fresh = f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
        log.error("%s; ravemap starts a new mapping %r instead", err, fresh)
        return new_mapping(config, fresh, model)
    try:
        mapping = load_mapping(mappings_dir, name)
        check_fits(config, mapping)
    except MappingError as err:
        try:
            missing = not (mappings_dir / f"{name}.json").exists()
        except OSError:  # the folder cannot be read: never write over that name
            missing = False
        if missing:
            log.info("mapping %r is new: it will be saved to %s", name, mappings_dir / f"{name}.json")
            return new_mapping(config, name, model)
        fresh = f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
        log.error("%s; that file is left untouched and ravemap starts a new mapping %r", err, fresh)
        return new_mapping(config, fresh, model)
    log.info("mapping %r: %d examples, %s", name, len(mapping.examples),
             "trained" if mapping.regressor is not None else "not trained yet")
    return mapping


class MappingKeeper:
    """The current mapping, held locked, and when and where it is saved."""

    def __init__(self, config: Config, mappings_dir: Path, mapping: Mapping, jobs: Jobs, feedback: Feedback):
        self.config = config
        self.mappings_dir = mappings_dir
        self.jobs = jobs
        self.feedback = feedback
        self.hold = MappingLock(mappings_dir, mapping.name)  # MappingError if another ravemap holds it
        self.mapping = mapping
        self.serial = 0  # which mapping: counts switches
        self.changes = 0  # changes to this mapping
        self._dirty_since: float | None = None
        self._save_after = 0.0
        self._saver: threading.Thread | None = None
        self._saving: int | None = None  # the job of the save in flight
        self._save_requests: list[tuple[Command, str]] = []  # explicit saves waiting for the one in flight
        self.reading = 0  # the newest mapping load's job

    # -- changes -------------------------------------------------------------------------
    def changed(self) -> None:
        self.changes += 1
        if self._dirty_since is None:
            self._dirty_since = time.monotonic()

    @property
    def unsaved(self) -> bool:
        return self._dirty_since is not None

    # -- the mapping's shape ----------------------------------------------------------------
    def fit_input_size(self, size: int, source: str, what: str, training: bool) -> bool:
        """Make the mapping take `size` inputs: a new, empty mapping adopts it (True: it changed); one with
        examples, a trained regressor or a training running refuses with what to do instead."""
        mapping = self.mapping
        if size == mapping.input_size:
            return False
        if mapping.examples or mapping.regressor is not None or training:
            held = (f"holds {len(mapping.examples)} examples" if mapping.examples
                    else "is trained" if mapping.regressor is not None else "is training")
            raise CommandError(
                f"{source}: {size} {what}, but mapping {mapping.name!r} takes {mapping.input_size} inputs "
                f"(it {held}); send {mapping.input_size} values, or start a new mapping for {size} inputs "
                "(/wekinator/control/runNewProject or /ravemap/mapping/new)")
        if not 1 <= size <= MAX_SIZE:
            raise CommandError(f"{source}: {size} {what}; a mapping takes 1 to {MAX_SIZE} inputs")
        log.info("mapping %r now takes %d inputs (from %s)", mapping.name, size, source)
        mapping.input_size = size
        mapping.input_names = ()
        self.changed()
        return True

    def set_names(self, which: str, names: tuple[str, ...]) -> None:
        """Wekinator's input or output names (the input size already fits `names`)."""
        n_out = len(self.config.latent.dims)
        if which == "input":
            self.mapping.input_names = tuple(names)
        else:
            if len(names) != n_out:
                raise CommandError(f"/wekinator/control/setOutputNames: {len(names)} names, but there are "
                                   f"{n_out} outputs (latent.dims {list(self.config.latent.dims)})")
            self.mapping.output_names = tuple(names)
        self.changed()

    # -- examples ------------------------------------------------------------------------
    def add_example(self, example: Example) -> None:
        examples = self.mapping.examples
        if len(examples) >= MAX_EXAMPLES:
            raise CommandError(
                f"/ravemap/record: mapping {self.mapping.name!r} holds {MAX_EXAMPLES} examples, the most a mapping "
                "can hold; this example is not kept (start another with /ravemap/mapping/new, or clear or undo)")
        examples.append(example)
        self._examples_changed()

    def clear_examples(self) -> None:
        self.mapping.examples.clear()
        self._examples_changed()

    def undo_example(self) -> None:
        if not self.mapping.examples:
            raise CommandError("/ravemap/examples/undo: there are no examples to undo")
        self.mapping.examples.pop()
        self._examples_changed()

    def delete_output(self, output: int) -> None:
        """Wekinator's deleteExamplesForOutput: examples stop teaching `output` (0-based); an example
        left teaching no output is deleted."""
        kept = []
        for example in self.mapping.examples:
            outputs = list(example.output)
            outputs[output] = None
            if any(v is not None for v in outputs):
                kept.append(Example(example.input, tuple(outputs)))
        self.mapping.examples[:] = kept
        self._examples_changed()

    def _examples_changed(self) -> None:
        self.changed()
        self.feedback.broadcast("/ravemap/examples", len(self.mapping.examples))

    # -- saving beside the session thread --------------------------------------------------
    def request_save(self, event: Command, name: str) -> Refused | None:
        """An explicit save under `name`, answered when written (after the save in flight, if any)."""
        self._save_requests.append((event, name))
        return self.start_save() if self._saving is None else None

    def save_due(self) -> bool:
        """No save in flight, and an explicit one waits, or the mapping changed long enough ago."""
        if self._saving is not None:
            return False
        if self._save_requests:
            return True
        if self._dirty_since is None:
            return False
        now = time.monotonic()
        return now - self._dirty_since >= self.config.mapping.save_delay_s and now >= self._save_after

    def _snapshot(self, name: str) -> Mapping:
        """A copy of the mapping that the session's later changes never touch (examples are immutable)."""
        m = self.mapping
        return replace(m, name=name, examples=list(m.examples), training=copy.deepcopy(m.training),
                       extras=copy.deepcopy(m.extras), scenes=dict(m.scenes))  # scenes are immutable

    def start_save(self) -> Refused | None:
        """Write a snapshot on the saver thread; the explicit saves that asked for it are answered when it
        is written. Returns them refused when the name cannot be saved to."""
        requests, self._save_requests = self._save_requests, []
        name = requests[-1][1] if requests else self.mapping.name
        renaming = name != self.hold.name
        events: tuple[Event, ...] = tuple(event for event, _ in requests)
        try:
            mapping_path(self.mappings_dir, name)  # a link out of the folder: refused before it is locked
            hold = MappingLock(self.mappings_dir, name) if renaming else self.hold
        except MappingError as err:
            return Refused(events, err)
        snapshot, serial, changes = self._snapshot(name), self.serial, self.changes
        folder = self.mappings_dir
        started = time.monotonic()

        def write() -> Path:
            return save_mapping(folder, snapshot)

        def saved(path: object) -> str:
            self._saving = None
            took = time.monotonic() - started
            self._save_after = time.monotonic() + SAVE_SPACING * took
            if serial == self.serial:
                if renaming:
                    self.hold.release()
                    self.hold = hold
                    self.mapping.name = name
                if changes == self.changes:
                    self._dirty_since = None
            elif renaming:
                hold.release()
            for event in events:
                self.feedback.reply(event.origin, "/ravemap/mapping", name)
            return name

        def failed(err: BaseException) -> str | None:
            self._saving = None
            if renaming:
                hold.release()
            self._save_after = time.monotonic() + SAVE_RETRY_S
            if events:
                return None
            text = f"could not save mapping {name!r} (examples kept in memory, will retry): {err}"
            log.warning("%s", text)
            self.feedback.broadcast("/ravemap/error", text)
            return text

        job = self.jobs.add(events, saved, on_error=failed)
        self._saving = job
        self._saver = self.jobs.spawn(job, write, "ravemap-saver")
        return None

    # -- saving on the calling thread ------------------------------------------------------
    def _wait_for_saver(self) -> None:
        saver = self._saver
        if saver is not None:
            saver.join()

    def save(self) -> Path:
        """Save the mapping now, on the calling thread (atomic), after the save in flight. Raises
        MappingError; the mapping stays in memory. The session thread, or any thread once it stopped."""
        self._wait_for_saver()
        path = save_mapping(self.mappings_dir, self.mapping)
        self._dirty_since = None
        self._save_after = 0.0
        return path

    def save_at_exit(self) -> Path:
        """The last save, once the session thread stopped: tried `EXIT_SAVE_TRIES` times, then a recovery
        copy goes to the user's data folder, or else the temp folder. Returns where the mapping is;
        MappingError only when nothing could be written anywhere."""
        error: MappingError | None = None
        for attempt in range(EXIT_SAVE_TRIES):
            if attempt:
                time.sleep(EXIT_RETRY_PAUSE_S)
            try:
                return self.save()
            except MappingError as err:
                error = err
                log.warning("saving mapping %r at exit, try %d of %d: %s", self.mapping.name, attempt + 1,
                            EXIT_SAVE_TRIES, err)
        name = f"{self.mapping.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        for folder in (locations.recovery_folder(), Path(tempfile.gettempdir()) / "ravemap-recovered"):
            try:
                path = save_mapping(folder, replace(self.mapping, name=name))
            except MappingError as err:
                log.warning("could not write a recovery copy of mapping %r: %s", self.mapping.name, err)
                continue
            log.error("could not save mapping %r in %s (%s); a recovery copy with all %d examples is at %s",
                      self.mapping.name, self.mappings_dir, error, len(self.mapping.examples), path)
            self._dirty_since = None
            return path
        raise MappingError(f"could not save mapping {self.mapping.name!r} ({error}), and no recovery copy could "
                           f"be written to {locations.recovery_folder()} or the temp folder: "
                           f"{len(self.mapping.examples)} examples are lost")

    def close(self) -> None:
        """Let go of the mapping (after the last save): another process may take it."""
        self.hold.release()

    # -- switching -------------------------------------------------------------------------
    def load(self, event: Command, name: str, then: Callable[[object], object]) -> None:
        """Read mapping `name` on the mapping reader thread, then `then(mapping)` on the session thread;
        the newest load is the one switched to (`check_newest_load`)."""
        job = self.jobs.add((event,), then)
        self.jobs.spawn(job, self.reader(name), "ravemap-mapping-reader")
        self.reading = job

    def reader(self, name: str) -> Callable[[], Mapping]:
        """What the mapping reader thread runs for `/ravemap/mapping/load name`: read and check the file."""
        config, folder = self.config, self.mappings_dir

        def read() -> Mapping:
            loaded = load_mapping(folder, name)
            check_fits(config, loaded)
            return loaded

        return read

    def check_newest_load(self, loaded: Mapping) -> None:
        """CommandError unless the load being finished is the newest (a later load or new mapping wins)."""
        if self.reading != self.jobs.finishing:
            raise CommandError(f"/ravemap/mapping/load {loaded.name}: a newer load or new mapping came first; "
                               "not switched")

    def switch(self, mapping: Mapping) -> None:
        """Make `mapping` current: lock its name, save the current one if it changed (on this thread:
        a switch is refused rather than lose examples), then let go of the old name."""
        same = mapping.name == self.hold.name
        hold = self.hold if same else MappingLock(self.mappings_dir, mapping.name)
        try:
            if self._dirty_since is not None:
                self.save()
        except BaseException:
            if not same:
                hold.release()
            raise
        if not same:
            self.hold.release()
            self.hold = hold
        self.mapping = mapping
        self.serial += 1
        self.changes = 0
        self._dirty_since = None
        self._save_after = 0.0
