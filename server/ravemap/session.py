"""The performance state, and the one place control events change it.

A performer's session: the input vector (from OSC routes and MIDI), the manual latent
targets (sliders), record and run modes, the current mapping (examples, regressor) and the
trainer. Outside run mode the engine's latent offsets are the manual targets; in run mode
every new input vector goes through the regressor, and its prediction (clamped to
`latent.range`) becomes the offsets that the engine applies at its next block, and goes out as
Wekinator's `/wek/outputs`. Per output (Wekinator's model rows), recording and running can be
switched off: an example then does not teach that output, and in run mode it keeps its manual value.
The input size is the mapping's: a new, empty mapping takes it from the first whole input vector
it receives (`/wek/inputs`).

Threads:
- session thread, "ravemap-session" (owned here): takes events from the `Inbox` in order and
  applies them. It is the only writer of this state and the only caller of
  `EngineControls` setters for the offsets. Whatever takes long runs on another thread and
  comes back as a `Finished` event, which the session applies in turn, so control never waits
  on a disk or a model:
- saver thread, "ravemap-saver" (owned here, one at a time): writes an immutable snapshot of
  the mapping, `mapping.save_delay_s` after a change, and never sooner than `SAVE_SPACING`
  times the last save's duration after it, so a mapping that grows is saved less often.
  Switching mappings (load, new) and stopping save on the calling thread.
- mapping reader, "ravemap-mapping-reader": reads and checks a file for `/ravemap/mapping/load`
  (at most `store.MAX_FILE_BYTES`); the newest load wins.
- loader thread, "ravemap-loader" (owned here, one at a time): hot swaps of model or loop and
  vector captures from files, which take seconds. Requests that come while one runs wait, the
  newest of each kind, and run in order once it ends.
- trainer: fits run in the trainer's child process; its listener and watchdog threads only post
  `TrainingProgress` / `TrainingDone` events into the inbox. A result is applied here, to the
  mapping it was trained from (see `_training_done`).
Anyone may call `status()` (it reads immutable snapshots).

The mapping is held by this process alone (`MappingLock`), from start to stop, and each
mapping switched to is locked before the switch.
"""

from __future__ import annotations

import copy
import itertools
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ravemap import locations
from ravemap.config import Config
from ravemap.control.events import (
    Command,
    Event,
    Finished,
    Inbox,
    Learned,
    SetInputs,
    SetTarget,
    SetTargets,
    TrainingDone,
    TrainingProgress,
)
from ravemap.control.feedback import Feedback
from ravemap.errors import MappingError, RavemapError
from ravemap.mapping.regressor import FitResult, RegressorSettings
from ravemap.mapping.store import (
    MAX_EXAMPLES,
    MAX_SIZE,
    Example,
    Mapping,
    MappingLock,
    check_name,
    load_mapping,
    mapping_path,
    save_mapping,
    training_arrays,
    training_report,
)
from ravemap.mapping.trainer import CANCELLED, Trainer
from ravemap.names import resolve_in
from ravemap.ratelimit import RateLimitedLog

if TYPE_CHECKING:
    from ravemap.audio.controls import EngineControls
    from ravemap.audio.playback import Playback

log = logging.getLogger("ravemap.session")

MODEL_SUFFIXES = (".ts",)
LOOP_SUFFIXES = (".wav", ".flac", ".ogg", ".aif", ".aiff")
SAVE_RETRY_S = 5.0
SAVE_SPACING = 4.0  # the next save starts no sooner than this many times the last one's duration after it
EXIT_SAVE_TRIES = 3
EXIT_RETRY_PAUSE_S = 0.5
DEFERRED = object()  # a command's result comes later, with its `Finished` event


class CommandError(ValueError):
    """A command that cannot be carried out now; the text goes back to the sender."""


def _raise(err: BaseException) -> object:
    raise err


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


def recovery_folder() -> Path:
    """Where a mapping that cannot be saved in its folder goes at exit: the user's data folder."""
    if os.name == "nt":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "ravemap" / "recovered"


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


class Session:
    def __init__(self, config: Config, controls: EngineControls, inbox: Inbox, feedback: Feedback,
                 trainer: Trainer, mappings_dir: Path, mapping: Mapping,
                 playback: Playback | None = None, learn: Callable[[int], None] | None = None):
        self.config = config
        self.controls = controls
        self.inbox = inbox
        self.feedback = feedback
        self.trainer = trainer
        self.mappings_dir = mappings_dir
        self.playback = playback
        self.learn = learn
        self.mapping = mapping
        self.n_out = len(config.latent.dims)
        self.low, self.high = config.latent.range
        self.inputs = np.full(mapping.input_size, 0.5)
        # Per output, as Wekinator's record and run buttons on each model row (not saved).
        self.record_on = [True] * self.n_out
        self.run_on = [True] * self.n_out
        self._training_taught: tuple[bool, ...] = ()
        self.targets: tuple[float, ...] = (0.0,) * self.n_out
        self.recording = False
        self.running = False
        self.training = False
        self.train_progress = (0.0, float("nan"))
        self.last_error = ""
        self._log = RateLimitedLog(log, seconds=2.0)
        self.applied = 0
        self.last_applied_at = 0.0
        self._generation = 0
        # Training results for API callers: `finished` is the last generation whose training ended.
        self.training_ended = threading.Condition()
        self.finished_generation = 0
        self.last_fit: tuple[FitResult | None, str | None] = (None, None)
        self._training_for: Mapping | None = None  # the mapping object the running training belongs to
        self._dirty_since: float | None = None
        self._save_after = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_recorded: tuple[float, ...] | None = None
        self._hold = MappingLock(mappings_dir, mapping.name)  # MappingError if another ravemap holds it
        self._serial = 0  # which mapping: counts switches
        self._changes = 0  # changes to this mapping
        self._jobs = itertools.count(1)
        self._waiting: dict[int, tuple[Event | None, Callable[[object], object],
                                       Callable[[BaseException], None] | None]] = {}
        self._saver: threading.Thread | None = None
        self._saving: int | None = None  # the job of the save in flight
        self._save_requests: list[tuple[Command, str]] = []  # explicit saves waiting for the one in flight
        self._reading = 0  # the newest mapping load's job
        self._finishing = 0  # the job whose `Finished` event is being applied
        self._loader_lock = threading.Lock()
        self._loader_queue: dict[str, tuple[Command, Callable[[], None]]] = {}
        self._loader_busy = False

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="ravemap-session", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
            self._thread = None

    def close(self) -> None:
        """Let go of the mapping (after `stop` and the last save): another process may take it."""
        self._hold.release()

    def _run(self) -> None:
        while not self._stop.is_set():
            event = self.inbox.get(timeout=0.05)
            if event is not None:
                self.handle(event)
            self._maybe_save()

    def handle(self, event: Event) -> None:
        """Apply one event; a bad one is answered, never raised."""
        if event.origin is not None:
            self.feedback.note_sender(event.origin[0])
        self._settle(event, lambda: self.apply(event))
        self.applied += 1
        self.last_applied_at = time.monotonic()

    def _settle(self, event: Event, work: Callable[[], object]) -> None:
        """Run `work` for `event`: answer a refusal to its sender, complete an API caller's future."""
        try:
            result = work()
        except (CommandError, ValueError, RavemapError) as err:
            self._error(event, str(err))
            if event.done is not None:
                event.done.set_exception(err)
        except Exception as err:  # a bug here must not stop the session thread
            log.exception("event %r failed", event)
            self._error(event, f"internal error: {err}")
            if event.done is not None:
                event.done.set_exception(err)
        else:
            if event.done is not None and result is not DEFERRED:
                event.done.set_result(result)

    # -- work on other threads -------------------------------------------------------------
    def _off_thread(self, event: Event | None, work: Callable[[], object], then: Callable[[object], object],
                    thread: str | None = None, on_error: Callable[[BaseException], None] | None = None) -> int:
        """Run `work` on a new thread named `thread` (None: the caller queues it), then `then(result)`
        on the session thread, for `event` (answered as `handle` does). Returns the job number."""
        job = next(self._jobs)
        self._waiting[job] = (event, then, on_error)
        if thread is not None:
            threading.Thread(target=self._work, args=(job, work), name=thread, daemon=True).start()
        return job

    def _work(self, job: int, work: Callable[[], object]) -> None:
        try:
            result, error = work(), None
        except BaseException as err:  # handed to the session thread, which answers it
            result, error = None, err
        self.inbox.put(Finished(job, result, error))

    def _finished(self, finished: Finished) -> None:
        entry = self._waiting.pop(finished.job, None)
        if entry is None:
            return
        event, then, on_error = entry
        self._finishing = finished.job
        if finished.error is not None and on_error is not None:
            on_error(finished.error)

        def complete() -> object:
            if finished.error is not None:
                raise finished.error
            return then(finished.result)

        if event is not None:
            self._settle(event, complete)
        elif finished.error is None:
            try:
                then(finished.result)
            except Exception:
                log.exception("finishing background job %d failed", finished.job)

    def _error(self, event: Event, text: str) -> None:
        """Answer the sender; log one line per sender and kind of event per 2 s (a flood of
        refused commands must not flood the log)."""
        self.last_error = text
        sender = event.origin[0] if event.origin is not None else "-"
        self._log.warning("%s", text, key=f"{sender}:{type(event).__name__}:{getattr(event, 'name', '')}")
        self.feedback.error(event.origin, text)

    # -- events --------------------------------------------------------------------------
    def apply(self, event: Event) -> object:
        """Apply one event on the session thread; what a command returns goes to an API caller."""
        if isinstance(event, SetInputs):
            self._set_inputs(event)
        elif isinstance(event, SetTargets):
            if len(event.values) != self.n_out:
                raise CommandError(f"/ravemap/latent: expected {self.n_out} values, got {len(event.values)}")
            self._set_targets(event.values)
        elif isinstance(event, SetTarget):
            values = list(self.targets)
            values[event.index] = event.value
            self._set_targets(tuple(values))
        elif isinstance(event, Command):
            handler = getattr(self, f"_cmd_{event.name}", None)
            if handler is None:
                raise CommandError(f"unknown command {event.name!r}")
            return handler(event, *event.args)
        elif isinstance(event, TrainingProgress):
            self.train_progress = (event.fraction, event.loss)
            self.feedback.broadcast("/ravemap/train/progress", float(event.fraction), float(event.loss))
        elif isinstance(event, TrainingDone):
            self._training_done(event)
        elif isinstance(event, Finished):
            self._finished(event)
        elif isinstance(event, Learned):
            log.info("MIDI learn: %s now drives input %d", event.description, event.dim)
            self.feedback.broadcast("/ravemap/learn", event.dim, event.description)
        return None

    def _set_inputs(self, event: SetInputs) -> None:
        if not all(np.isfinite(value) for _, value in event.values):
            raise CommandError(f"{event.source}: input values must be finite")
        if event.whole:
            self._fit_input_size(len(event.values), event.source)
        elif event.values:
            top = max(dim for dim, _ in event.values) + 1
            if top > self.mapping.input_size:
                self._fit_input_size(max(top, self.config.inputs.size), event.source)
        changed = False
        for dim, value in event.values:
            if self.inputs[dim] != value:
                self.inputs[dim] = value
                changed = True
        if self.recording and (changed or event.whole):  # like Wekinator, a new output at the same input
            self._record()                                  # records too (an identical example does not)
        if self.running:  # like Wekinator: an output for each input message, changed or not
            self._predict(send=True)

    def _fit_input_size(self, size: int, source: str, what: str = "input values") -> None:
        """Make the mapping take `size` inputs: a new, empty mapping adopts it; one with examples or a
        trained regressor refuses with what to do instead."""
        mapping = self.mapping
        if size == mapping.input_size:
            return
        if mapping.examples or mapping.regressor is not None or self.training:
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
        self.inputs = np.full(size, 0.5)
        self._last_recorded = None
        self._changed()

    def _set_targets(self, values: tuple[float, ...]) -> None:
        if not all(np.isfinite(values)):
            raise CommandError("latent targets must be finite numbers")
        self.targets = tuple(min(max(float(v), self.low), self.high) for v in values)
        if not self.running:
            self.controls.set_offsets(self.targets)
        elif not all(self.run_on):
            self._predict()  # outputs whose running is off follow their manual value

    def _predict(self, send: bool = False) -> None:
        """Offsets from the regressor; an output switched off for running, or taught by no example,
        keeps its manual value. `send`: also `/wek/outputs`, as Wekinator does for each input."""
        regressor = self.mapping.regressor
        if regressor is None or regressor.n_in != self.inputs.size:
            return
        out = np.asarray(regressor.predict(self.inputs.copy()), dtype=float).reshape(-1)
        if out.size != self.n_out or not np.all(np.isfinite(out)):
            self.last_error = "the regressor produced an unusable prediction; offsets kept"
            return
        taught = self.mapping.training.get("taught")
        if not isinstance(taught, list) or len(taught) != self.n_out:
            taught = [True] * self.n_out
        for k in range(self.n_out):
            if not (self.run_on[k] and taught[k]):
                out[k] = self.targets[k]
        offsets = tuple(float(v) for v in np.clip(out, self.low, self.high))
        self.controls.set_offsets(offsets)
        if send:
            self.feedback.wekinator_outputs(offsets)

    def _record(self) -> None:
        if not any(self.record_on):
            raise CommandError("recording is off for every output (/wekinator/control/enableModelRecording "
                               "switches it on again); nothing recorded")
        outputs = tuple(t if on else None for t, on in zip(self.targets, self.record_on, strict=True))
        example = Example(tuple(float(v) for v in self.inputs), outputs)
        if example.input == self._last_recorded and self.mapping.examples and self.mapping.examples[-1] == example:
            return
        if len(self.mapping.examples) >= MAX_EXAMPLES:
            raise CommandError(
                f"/ravemap/record: mapping {self.mapping.name!r} holds {MAX_EXAMPLES} examples, the most a mapping "
                "can hold; this example is not kept (start another with /ravemap/mapping/new, or clear or undo)")
        self.mapping.examples.append(example)
        self._last_recorded = example.input
        self._changed()
        self.feedback.broadcast("/ravemap/examples", len(self.mapping.examples))

    # -- commands (names match Command.name) ---------------------------------------------
    def _cmd_record(self, event: Command, on: bool) -> None:
        self.recording = bool(on)
        if self.recording and self.running:
            self._set_running(False)
        self.feedback.broadcast("/ravemap/record", int(self.recording))

    def _cmd_record_once(self, event: Command) -> None:
        self._last_recorded = None
        self._record()

    def _cmd_clear(self, event: Command) -> None:
        self.mapping.examples.clear()
        self._last_recorded = None
        self._changed()
        self.feedback.broadcast("/ravemap/examples", 0)

    def _cmd_undo(self, event: Command) -> None:
        if not self.mapping.examples:
            raise CommandError("/ravemap/examples/undo: there are no examples to undo")
        self.mapping.examples.pop()
        self._last_recorded = None
        self._changed()
        self.feedback.broadcast("/ravemap/examples", len(self.mapping.examples))

    def _cmd_train(self, event: Command, epochs: int | None) -> int:
        examples = self.mapping.examples
        if not examples:
            raise CommandError("/ravemap/train: no examples yet; record some first (the old mapping stays)")
        if self.trainer.busy:
            raise CommandError("/ravemap/train: training is already running")
        x, y, self._training_taught = training_arrays(self.mapping)
        settings = self.mapping.settings if epochs is None else replace(self.mapping.settings, epochs=epochs)
        self._generation += 1
        generation = self._generation
        def on_progress(fraction: float, loss: float) -> None:
            self.inbox.put(TrainingProgress(fraction, loss))

        def on_done(result: FitResult | None, error: str | None) -> None:
            self.inbox.put(TrainingDone(result, error, generation))

        try:
            self.trainer.train(x, y, settings, on_progress=on_progress, on_done=on_done)
        except RuntimeError as err:  # busy, or no trainer process could be started
            raise CommandError(f"/ravemap/train: {err}") from None
        self.training = True
        self._training_for = self.mapping
        self.train_progress = (0.0, float("nan"))
        self.feedback.broadcast("/ravemap/train/progress", 0.0, float("nan"))
        log.info("training %s on %d examples of mapping %r", settings.kind, len(examples), self.mapping.name)
        return generation

    def _cmd_train_cancel(self, event: Command) -> bool:
        """Stop the running training; every mapping keeps what it had. False when none was running
        (a cancel that crosses the end of a training is no error)."""
        cancelled = self.trainer.cancel()
        if cancelled:
            log.info("cancelling the training of mapping %r", getattr(self._training_for, "name", "?"))
        return cancelled

    def _training_done(self, event: TrainingDone) -> None:
        """The result goes to the mapping it was trained from: the current one, or, when another
        mapping was loaded or started meanwhile, that mapping's file. What cannot go there is
        dropped, saying why."""
        if event.generation != self._generation:
            return
        self.training = False
        trained, self._training_for = self._training_for, None
        result: FitResult | None = event.result if event.error is None else None  # type: ignore[assignment]
        if result is None:
            error = event.error or "the trainer returned nothing"
            text: str | None = (f"{error}, the previous mapping stays" if error.startswith(CANCELLED)
                                else f"training failed, the previous mapping stays: {error}")
        elif trained is None or trained is self.mapping:
            text = None
            self._apply_training(result)
        else:
            text = self._save_training_of(trained, result)
        if text is not None:
            result = None
        with self.training_ended:
            self.finished_generation = event.generation
            self.last_fit = (result, text)
            self.training_ended.notify_all()
        if text is not None:
            self.last_error = text
            if text.startswith(CANCELLED):
                log.info("%s", text)
            else:
                log.warning("%s", text)
            self.feedback.broadcast("/ravemap/error", text)

    def _apply_training(self, result: FitResult) -> None:
        self.mapping.regressor = result.regressor
        self.mapping.training = training_report(result)
        if not all(self._training_taught):
            self.mapping.training["taught"] = list(self._training_taught)
        self._changed()
        log.info("trained %r on %d examples in %.2f s: loss %.5f (%s)", self.mapping.name, result.examples,
                 result.seconds, result.loss, result.reason)
        self.feedback.broadcast("/ravemap/train/done", float(result.loss), int(result.examples),
                                float(result.seconds))
        if self.running:
            self._predict()

    def _save_training_of(self, trained: Mapping, result: FitResult) -> str | None:
        """Training of a mapping that is no longer the current one ended. Its result goes into that
        mapping's file while the file still holds the examples it had when it was closed, or into the
        current mapping when that is the same one reopened with the same examples. Otherwise it is
        dropped: returns why (None when kept)."""
        name = trained.name
        dropped = f"training of mapping {name!r} ended after another mapping was opened"
        if self.mapping.name == name:
            if self.mapping.examples != trained.examples:
                return (f"{dropped} under the same name, with other examples: the result is dropped; "
                        "train again")
            self._apply_training(result)  # the same mapping, reopened
            return None
        try:
            hold = MappingLock(self.mappings_dir, name)  # another ravemap may have opened it since
        except MappingError as err:
            return f"{dropped}, and {err}: the result is dropped"
        try:
            try:
                stored = load_mapping(self.mappings_dir, name)
            except MappingError as err:
                return f"{dropped}, and its file cannot be read back ({err}): the result is dropped"
            if stored.examples != trained.examples:
                return (f"{dropped}, and {name}.json no longer holds the examples it was trained on: the result "
                        f"is dropped; load {name!r} and train again")
            stored.regressor = result.regressor
            stored.training = training_report(result)
            if not all(self._training_taught):
                stored.training["taught"] = list(self._training_taught)
            try:
                path = save_mapping(self.mappings_dir, stored)
            except MappingError as err:
                return f"{dropped}, and saving the result failed ({err}): the result is dropped"
        finally:
            hold.release()
        log.info("trained %r on %d examples in %.2f s: loss %.5f; it is no longer the current mapping, "
                 "so the result was saved to %s", name, result.examples, result.seconds, result.loss, path)
        self.feedback.broadcast("/ravemap/train/progress", 1.0, float(result.loss))
        return None

    def _cmd_delete_output(self, event: Command, output: int) -> None:
        """Wekinator's deleteExamplesForOutput: examples stop teaching `output` (0-based); an example
        left teaching no output is deleted."""
        kept = []
        for example in self.mapping.examples:
            outputs = list(example.output)
            outputs[output] = None
            if any(v is not None for v in outputs):
                kept.append(Example(example.input, tuple(outputs)))
        self.mapping.examples[:] = kept
        self._last_recorded = None
        self._changed()
        self.feedback.broadcast("/ravemap/examples", len(kept))

    def _cmd_outputs_enabled(self, event: Command, what: str, outputs: tuple[int, ...], on: bool) -> None:
        """Wekinator's enable/disableModelRecording and enable/disableModelRunning (outputs 0-based here)."""
        flags = self.record_on if what == "recording" else self.run_on
        for k in outputs:
            flags[k] = bool(on)
        if what == "running" and self.running:
            self._predict()

    def _cmd_names(self, event: Command, which: str, names: tuple[str, ...]) -> None:
        """Wekinator's setInputNames / setOutputNames, kept in the mapping (and drawn by `ravemap plot`)."""
        if which == "input":
            self._fit_input_size(len(names), "/wekinator/control/setInputNames", "input names")
            self.mapping.input_names = tuple(names)
        else:
            if len(names) != self.n_out:
                raise CommandError(f"/wekinator/control/setOutputNames: {len(names)} names, but there are "
                                   f"{self.n_out} outputs (latent.dims {list(self.config.latent.dims)})")
            self.mapping.output_names = tuple(names)
        self._changed()

    def _cmd_run(self, event: Command, on: bool) -> None:
        if on and self.mapping.regressor is None:
            self.feedback.broadcast("/ravemap/run", 0)  # a toggle that was switched on drops back
            raise CommandError("/ravemap/run: nothing trained yet; record examples and train first")
        self._set_running(bool(on))

    def _set_running(self, on: bool) -> None:
        self.running = on
        if on:
            self.recording = False
            self._predict()
        else:
            self.controls.set_offsets(self.targets)
        self.feedback.broadcast("/ravemap/run", int(self.running))

    def _cmd_save(self, event: Command, name: str | None) -> object:
        """Save now, on the saver thread (after the save in flight, if any); the reply comes when written."""
        target = check_name(name) if name is not None else self.mapping.name
        self._save_requests.append((event, target))
        if self._saving is None:
            self._start_save()
        return DEFERRED

    def _cmd_load(self, event: Command, name: str) -> object:
        """Read the file on the mapping reader thread; switch to it when it is read (the newest load wins)."""
        check_name(name)
        config, folder = self.config, self.mappings_dir

        def read() -> Mapping:
            loaded = load_mapping(folder, name)
            check_fits(config, loaded)
            return loaded

        job = self._off_thread(event, read, self._switch_to_loaded, thread="ravemap-mapping-reader")
        self._reading = job
        return DEFERRED

    def _switch_to_loaded(self, loaded: object) -> None:
        assert isinstance(loaded, Mapping)
        if self._reading != self._finishing:
            raise CommandError(f"/ravemap/mapping/load {loaded.name}: a newer load or new mapping came first; "
                               "not switched")
        self._switch(loaded)
        if self.running and loaded.regressor is None:
            self._set_running(False)
        elif self.running:
            self._predict()
        self._announce_mapping()

    def _cmd_new(self, event: Command, name: str | None) -> None:
        name = check_name(name) if name else time.strftime("mapping-%Y%m%d-%H%M%S")
        self._switch(new_mapping(self.config, name, self.mapping.model))
        self._reading = -1  # a load still being read is not switched to
        if self.running:
            self._set_running(False)
        self._changed()
        self._announce_mapping()

    def _switch(self, mapping: Mapping) -> None:
        """Make `mapping` current: lock its name, save the current one if it changed (on this thread:
        a switch is refused rather than lose examples), then let go of the old name."""
        same = mapping.name == self._hold.name
        hold = self._hold if same else MappingLock(self.mappings_dir, mapping.name)
        try:
            if self._dirty_since is not None:
                self.save()
        except BaseException:
            if not same:
                hold.release()
            raise
        if not same:
            self._hold.release()
            self._hold = hold
        self.mapping = mapping
        self._serial += 1
        self._changes = 0
        self._dirty_since = None
        self._save_after = 0.0
        self._reset_for_mapping()

    def _reset_for_mapping(self) -> None:
        """Another mapping is current: inputs of its size, every output recording and running."""
        self._last_recorded = None
        if self.inputs.size != self.mapping.input_size:
            self.inputs = np.full(self.mapping.input_size, 0.5)
        self.record_on = [True] * self.n_out
        self.run_on = [True] * self.n_out

    def _announce_mapping(self) -> None:
        self.feedback.broadcast("/ravemap/mapping", self.mapping.name)
        self.feedback.broadcast("/ravemap/examples", len(self.mapping.examples))
        self.feedback.broadcast("/ravemap/run", int(self.running))

    def _cmd_transfer(self, event: Command, on: bool) -> None:
        self.controls.set_transfer(on)
        self.feedback.broadcast("/ravemap/transfer", int(on))

    def _cmd_engine(self, event: Command, on: bool) -> None:
        self.controls.set_paused(not on)
        self.feedback.broadcast("/ravemap/engine", int(on))

    def _cmd_gain(self, event: Command, db: float) -> None:
        self.controls.set_gain_db(db)
        self.feedback.broadcast("/ravemap/gain", float(db))

    def _cmd_model(self, event: Command, name: str) -> object:
        path = resolve_in(self.config.paths.models_dir, name, MODEL_SUFFIXES, "model",
                          builtin=locations.embedded_model())
        return self._swap_in_background(event, "model", path)

    def _cmd_loop(self, event: Command, name: str) -> object:
        path = resolve_in(self.config.paths.loops_dir, name, LOOP_SUFFIXES, "loop",
                          builtin=locations.embedded_loop())
        return self._swap_in_background(event, "loop", path)

    def _swap_in_background(self, event: Command, what: str, path: Path) -> object:
        playback = self.playback
        if playback is None:
            raise CommandError(f"/ravemap/{what}: no audio engine is running")

        def load() -> str:
            try:
                if what == "model":
                    playback.swap_model(path)
                else:
                    playback.swap_loop(path)
            except Exception as err:  # the old model / loop plays on
                raise CommandError(f"/ravemap/{what} {path.name}: {err}; still playing the previous one") from err
            return path.name

        def swapped(name: object) -> None:
            if what == "model":
                self.mapping.model = str(name)
            self.feedback.broadcast(f"/ravemap/{what}", str(name))

        job = self._off_thread(event, load, swapped)
        self._queue_for_loader(what, event, job, load)
        return DEFERRED

    def _queue_for_loader(self, kind: str, event: Command, job: int, work: Callable[[], object]) -> None:
        """Run `work` on the loader thread after what is loading now. A request of the same `kind`
        still waiting is replaced by this one (its sender is told): the newest of each kind wins."""
        with self._loader_lock:
            replaced = self._loader_queue.pop(kind, None)
            self._loader_queue[kind] = (event, lambda: self._work(job, work))
            start = not self._loader_busy
            self._loader_busy = True
        if replaced is not None:
            old_event, _ = replaced
            for waiting, entry in list(self._waiting.items()):
                if entry[0] is old_event:
                    del self._waiting[waiting]
            self._settle(old_event, lambda: _raise(CommandError(
                f"/ravemap/{kind.split(':')[0]}: replaced by a newer request before it started loading")))
        if start:
            threading.Thread(target=self._run_loader, name="ravemap-loader", daemon=True).start()

    def _run_loader(self) -> None:
        while True:
            with self._loader_lock:
                if not self._loader_queue:
                    self._loader_busy = False
                    return
                kind = next(iter(self._loader_queue))
                _, run = self._loader_queue.pop(kind)
            run()

    def _cmd_status(self, event: Command, port: int | None) -> None:
        reply = self.feedback.reply
        reply(event.origin, "/ravemap/record", int(self.recording), port=port)
        reply(event.origin, "/ravemap/run", int(self.running), port=port)
        reply(event.origin, "/ravemap/examples", len(self.mapping.examples), port=port)
        reply(event.origin, "/ravemap/latent", *[float(v) for v in self.controls.offsets], port=port)
        reply(event.origin, "/ravemap/status", json.dumps(self.status(), sort_keys=True), port=port)

    # -- latent arithmetic ---------------------------------------------------------------
    def _cmd_vector_capture(self, event: Command, name: str, path: str | None = None) -> object:
        """Encode a file (the API gives a path) or the current loop on the loader thread, then keep the
        mean latent as `name` (returned to an API caller).

        Encoded with a fresh instance of the playing model, so a streaming model's playing state is
        never touched and the same file always gives the same vector (for a deterministic encoder).
        """
        check_name(name)
        playback = self.playback
        if playback is None:
            raise CommandError("/ravemap/vector/capture: no model is loaded")
        current = playback.newest
        if path is None and not current.loop.seekable:
            raise CommandError("/ravemap/vector/capture: the source is live input; capture from a file instead")
        source = Path(path) if path is not None else current.loop.path
        model_path = current.model.info.path

        def encode() -> list[float]:
            import torch

            from ravemap.audio.model import load_model
            from ravemap.audio.source import load_loop

            model = load_model(model_path)
            info = model.info
            audio = load_loop(source, info.sr, info.in_channels, info.ratio)
            with torch.inference_mode():
                z = model.encode(torch.from_numpy(audio.samples)[None])
            return [float(v) for v in z[0].mean(dim=-1)]

        def keep(result: object) -> list[float]:
            vector = list(result)  # type: ignore[call-overload]
            self.mapping.extras.setdefault("vectors", {})[name] = vector
            self._changed()
            log.info("captured latent vector %r from %s", name, source)
            self.feedback.broadcast("/ravemap/vector", name, *vector[: self.n_out])
            return vector

        job = self._off_thread(event, encode, keep)
        self._queue_for_loader(f"vector:{name}", event, job, encode)
        return DEFERRED

    def _cmd_vector_apply(self, event: Command, name: str, amount: float) -> tuple[float, ...]:
        """Add `amount` times the named vector (its `latent.dims` entries) to the latent targets."""
        vectors = self.mapping.extras.get("vectors", {})
        if name not in vectors:
            known = ", ".join(sorted(vectors)) or "none yet"
            raise CommandError(f"/ravemap/vector/apply: no vector {name!r} (captured: {known})")
        vector = vectors[name]
        dims = self.config.latent.dims
        if max(dims) >= len(vector):
            raise CommandError(f"/ravemap/vector/apply: vector {name!r} has {len(vector)} dims, too few for {dims}")
        moved = tuple(t + amount * vector[d] for t, d in zip(self.targets, dims, strict=True))
        self._set_targets(moved)
        return self.targets

    def _cmd_sync(self, event: Command) -> None:
        """Nothing: an API caller waits on it to know that everything sent before is applied."""

    def _cmd_toggle(self, event: Command, what: str) -> None:
        if what == "record":
            self._cmd_record(event, not self.recording)
        elif what == "run":
            self._cmd_run(event, not self.running)
        elif what == "transfer":
            self._cmd_transfer(event, not self.controls.transfer)
        else:
            raise CommandError(f"cannot toggle {what!r}")

    def _cmd_ping(self, event: Command, port: int | None) -> None:
        self.feedback.reply(event.origin, "/ravemap/pong", port=port)

    def _cmd_learn(self, event: Command, dim: int) -> None:
        if self.learn is None:
            raise CommandError("/ravemap/learn: MIDI input is off or no MIDI port is open")
        self.learn(dim)
        self.feedback.reply(event.origin, "/ravemap/learn", dim, "waiting for a controller to move")

    # -- persistence ---------------------------------------------------------------------
    def _changed(self) -> None:
        self._changes += 1
        if self._dirty_since is None:
            self._dirty_since = time.monotonic()

    def _maybe_save(self) -> None:
        if self._dirty_since is None or self._saving is not None:
            return
        now = time.monotonic()
        if now - self._dirty_since >= self.config.mapping.save_delay_s and now >= self._save_after:
            self._start_save()

    def _snapshot(self, name: str) -> Mapping:
        """A copy of the mapping that the session's later changes never touch (examples are immutable)."""
        m = self.mapping
        return replace(m, name=name, examples=list(m.examples), training=copy.deepcopy(m.training),
                       extras=copy.deepcopy(m.extras))

    def _start_save(self) -> None:
        """Write a snapshot on the saver thread; answer the explicit saves that asked for it when done."""
        requests, self._save_requests = self._save_requests, []
        name = requests[-1][1] if requests else self.mapping.name
        renaming = name != self._hold.name
        try:
            mapping_path(self.mappings_dir, name)  # a link out of the folder: refused before it is locked
            hold = MappingLock(self.mappings_dir, name) if renaming else self._hold
        except MappingError as err:
            for event, _ in requests:
                self._settle(event, lambda err=err: _raise(err))  # type: ignore[misc]
            return
        snapshot, serial, changes = self._snapshot(name), self._serial, self._changes
        folder = self.mappings_dir
        started = time.monotonic()

        def write() -> Path:
            return save_mapping(folder, snapshot)

        def saved(path: object) -> str:
            self._saving = None
            took = time.monotonic() - started
            self._save_after = time.monotonic() + SAVE_SPACING * took
            if serial == self._serial:
                if renaming:
                    self._hold.release()
                    self._hold = hold
                    self.mapping.name = name
                if changes == self._changes:
                    self._dirty_since = None
            elif renaming:
                hold.release()
            for event, _ in requests:
                self.feedback.reply(event.origin, "/ravemap/mapping", name)
            for event, _ in requests[:-1]:
                self._settle(event, lambda: name)
            if self._save_requests:
                self._start_save()
            return name

        def failed(err: BaseException) -> None:
            self._saving = None
            if renaming:
                hold.release()
            self._save_after = time.monotonic() + SAVE_RETRY_S
            if not requests:
                text = f"could not save mapping {name!r} (examples kept in memory, will retry): {err}"
                self.last_error = text
                log.warning("%s", text)
                self.feedback.broadcast("/ravemap/error", text)
            for event, _ in requests[:-1]:
                self._settle(event, lambda: _raise(err))
            if self._save_requests:
                self._start_save()

        last = requests[-1][0] if requests else None
        job = self._off_thread(last, write, saved, on_error=failed)
        self._saving = job
        self._saver = threading.Thread(target=self._work, args=(job, write), name="ravemap-saver", daemon=True)
        self._saver.start()

    def _wait_for_saver(self) -> None:
        saver = self._saver
        if saver is not None:
            saver.join()

    @property
    def unsaved(self) -> bool:
        return self._dirty_since is not None

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
        for folder in (recovery_folder(), Path(tempfile.gettempdir()) / "ravemap-recovered"):
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
                           f"be written to {recovery_folder()} or the temp folder: "
                           f"{len(self.mapping.examples)} examples are lost")

    # -- reading -------------------------------------------------------------------------
    def status(self) -> dict:
        playback = self.playback
        engine = playback.engine if playback is not None else None
        playing = playback.newest if playback is not None else None
        return {
            "mapping": self.mapping.name,
            "examples": len(self.mapping.examples),
            "trained": self.mapping.regressor is not None,
            "regressor": self.mapping.settings.kind,
            "recording": self.recording,
            "running": self.running,
            "training": self.training,
            "inputs": [float(v) for v in self.inputs],
            "targets": list(self.targets),
            "offsets": list(self.controls.offsets),
            "transfer": self.controls.transfer,
            "engine": not self.controls.paused,
            "gain_db": self.controls.gain_db,
            "model": playing.model.info.path.name if engine and playing else None,
            "loop": str(playing.loop.path.name) if engine and playing else None,
            "underruns": engine.ring.underruns if engine else 0,
            "block_size": engine.processor.block if engine else None,
            "lead_frames": engine.target_fill if engine else None,
            "lead_raises": engine.lead_raises if engine else 0,
            "period_frames": engine.period if engine else None,
            "latency_ms": round(engine.latency_ms, 2) if engine else None,
            "latency_choice": engine.processor.latency.describe() if engine else None,
            "engine_priority": engine.priority if engine else None,
            "live_realignments": getattr(engine.processor.loop, "realignments", 0) if engine else 0,
            "nonfinite_silenced": engine.processor.safety.nonfinite_samples if engine else 0,
            "clipped": engine.processor.safety.clipped_samples if engine else 0,
            "events_dropped": self.inbox.dropped,
            "last_error": self.last_error,
        }
