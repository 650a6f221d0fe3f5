"""Training a mapping's regressor: starting and cancelling fits, and where a result goes.

Fits run in the trainer's child process (`ravemap.mapping.trainer`). A result is applied to the
mapping it was trained from: the current one, or, when another mapping was loaded or started
meanwhile, that mapping's file (see `finish`). The core decides what a new regressor means for
the performance (a new prediction in run mode) and records the error text.

A cancel is not instantly over: the trainer process has to stop (or be ended, `CANCEL_TIMEOUT_S`).
A `start` that comes meanwhile (Wekinator's train, cancel, train, clicked half a second apart) is
not refused: it waits, and starts on the current mapping once the cancelled training has ended
(see `finish`); a second `start` while one waits is the same training, and a `cancel` drops the one
waiting too. A cancel the user asked for is reported as `/ravemap/train/cancelled s`, not as an error.

Threads:
- session thread: `start`, `cancel`, `progress`, `finish`, `announce`.
- trainer's listener and watchdog threads: only post `TrainingProgress` / `TrainingDone` events
  into the inbox (the callbacks made in `start`).
- API callers wait on `ended` (a Condition) for `finished_generation` and read `last_fit` under it.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace

from ravemap.control.events import Inbox, TrainingDone, TrainingProgress
from ravemap.control.feedback import Feedback
from ravemap.errors import MappingError
from ravemap.mapping.regressor import FitResult
from ravemap.mapping.store import Mapping, MappingLock, load_mapping, save_mapping, training_arrays, training_report
from ravemap.mapping.trainer import CANCELLED, Trainer
from ravemap.session.keeper import MappingKeeper
from ravemap.session.outcomes import CommandError

log = logging.getLogger("ravemap.session")


@dataclass(frozen=True)
class TrainingOutcome:
    """A training that ended: `applied` when the current mapping's regressor changed; `text` says why
    a result was dropped (None when kept); `cancelled` when it ended because a user cancelled it."""

    generation: int
    result: FitResult | None
    text: str | None
    applied: bool
    cancelled: bool = False


@dataclass
class _Waiting:
    """A `start` that came while a cancelled training was still stopping."""

    generation: int
    epochs: int | None
    mapping: Mapping  # the mapping it was asked for; it starts only if that is still the current one
    cancelled: bool = False  # a cancel came after it: it never starts


class Training:
    def __init__(self, trainer: Trainer, inbox: Inbox, feedback: Feedback, keeper: MappingKeeper):
        self.trainer = trainer
        self.inbox = inbox
        self.feedback = feedback
        self.keeper = keeper
        self.running = False
        self.progress_now = (0.0, float("nan"))
        self.generation = 0  # the last generation given out
        self._handed = 0  # the generation the trainer is running (or whose end is on its way)
        self._cancelling = False  # the running training was cancelled and has not ended yet
        self._waiting: _Waiting | None = None
        self._taught: tuple[bool, ...] = ()
        self._training_for: Mapping | None = None  # the mapping object the running training belongs to
        # Training results for API callers: `finished_generation` is the last generation whose training ended.
        self.ended = threading.Condition()
        self.finished_generation = 0
        self.last_fit: tuple[FitResult | None, str | None] = (None, None)

    def start(self, epochs: int | None) -> int:
        """Train on the current mapping's examples in the trainer process; returns the generation."""
        mapping = self.keeper.mapping
        examples = mapping.examples
        if not examples:
            raise CommandError("/ravemap/train: no examples yet; record some first (the old mapping stays)")
        if self._waiting is not None and not self._waiting.cancelled:
            self._waiting.epochs, self._waiting.mapping = epochs, mapping  # the same click, again
            return self._waiting.generation
        if self.trainer.busy:
            if not self._cancelling:
                raise CommandError("/ravemap/train: training is already running")
            self.generation += 1
            self._waiting = _Waiting(self.generation, epochs, mapping)
            log.info("training of mapping %r waits for the cancelled one to end", mapping.name)
            return self.generation
        self.generation += 1
        return self._hand_over(self.generation, mapping, epochs)

    def _hand_over(self, generation: int, mapping: Mapping, epochs: int | None) -> int:
        x, y, self._taught = training_arrays(mapping)
        settings = mapping.settings if epochs is None else replace(mapping.settings, epochs=epochs)
        examples = mapping.examples

        def on_progress(fraction: float, loss: float) -> None:
            self.inbox.put(TrainingProgress(fraction, loss))

        def on_done(result: FitResult | None, error: str | None) -> None:
            self.inbox.put(TrainingDone(result, error, generation))

        try:
            self.trainer.train(x, y, settings, on_progress=on_progress, on_done=on_done)
        except RuntimeError as err:  # busy, or no trainer process could be started
            raise CommandError(f"/ravemap/train: {err}") from None
        self.running = True
        self._handed, self._cancelling = generation, False
        self._training_for = mapping
        self.progress_now = (0.0, float("nan"))
        self.feedback.broadcast("/ravemap/train/progress", 0.0, float("nan"))
        log.info("training %s on %d examples of mapping %r", settings.kind, len(examples), mapping.name)
        return generation

    def cancel(self) -> bool:
        """Stop the running training; every mapping keeps what it had. False when none was running
        (a cancel that crosses the end of a training is no error). A training waiting for the
        previous cancel to end is dropped too."""
        cancelled = self.trainer.cancel()
        dropped = self._waiting is not None and not self._waiting.cancelled
        if self._waiting is not None:
            self._waiting.cancelled = True
        if cancelled:
            self._cancelling = True
            log.info("cancelling the training of mapping %r", getattr(self._training_for, "name", "?"))
        return cancelled or dropped

    def progress(self, event: TrainingProgress) -> None:
        self.progress_now = (event.fraction, event.loss)
        self.feedback.broadcast("/ravemap/train/progress", float(event.fraction), float(event.loss))

    def finish(self, event: TrainingDone) -> TrainingOutcome | None:
        """The result goes to the mapping it was trained from: the current one, or, when another
        mapping was loaded or started meanwhile, that mapping's file. What cannot go there is
        dropped, saying why. None for a training that is not the latest handed to the trainer.
        A training waiting for this one to end starts now (see the module docstring)."""
        if event.generation != self._handed:
            return None
        self.running = self._cancelling = False
        trained, self._training_for = self._training_for, None
        result: FitResult | None = event.result if event.error is None else None  # type: ignore[assignment]
        applied = cancelled = False
        generation = event.generation
        if result is None:
            error = event.error or "the trainer returned nothing"
            cancelled = error.startswith(CANCELLED)
            text: str | None = (f"{error}, the previous mapping stays" if cancelled
                                else f"training failed, the previous mapping stays: {error}")
        elif trained is None or trained is self.keeper.mapping:
            text = None
            applied = self._apply(result)
        else:
            text, applied = self._save_training_of(trained, result)
        waiting, self._waiting = self._waiting, None
        if waiting is not None and waiting.cancelled:
            generation = waiting.generation  # its callers learn it was cancelled, with this one's
        elif waiting is not None:
            self._start_waiting(waiting)
        return TrainingOutcome(generation, None if text is not None else result, text, applied, cancelled)

    def _start_waiting(self, waiting: _Waiting) -> None:
        """Start the training that waited for a cancel to end; one that cannot start ends as a
        failed training (through the inbox, as every ending does)."""
        try:
            if waiting.mapping is not self.keeper.mapping:
                raise CommandError("/ravemap/train: another mapping was opened while the cancelled training "
                                   "ended; train again")
            if not waiting.mapping.examples:
                raise CommandError("/ravemap/train: no examples left; record some first")
            self._hand_over(waiting.generation, waiting.mapping, waiting.epochs)
        except CommandError as err:
            self.running, self._handed = True, waiting.generation
            self.inbox.put(TrainingDone(None, str(err), waiting.generation))

    def announce(self, outcome: TrainingOutcome) -> None:
        """Wake API callers waiting for this training; log and broadcast why a result was dropped."""
        with self.ended:
            self.finished_generation = outcome.generation
            self.last_fit = (outcome.result, outcome.text)
            self.ended.notify_all()
        text = outcome.text
        if text is not None and outcome.cancelled:  # asked for: not an error
            log.info("%s", text)
            self.feedback.broadcast("/ravemap/train/cancelled", text)
        elif text is not None:
            log.warning("%s", text)
            self.feedback.broadcast("/ravemap/error", text)

    def _apply(self, result: FitResult) -> bool:
        mapping = self.keeper.mapping
        mapping.regressor = result.regressor
        mapping.training = training_report(result)
        if not all(self._taught):
            mapping.training["taught"] = list(self._taught)
        self.keeper.changed()
        log.info("trained %r on %d examples in %.2f s: loss %.5f (%s)", mapping.name, result.examples,
                 result.seconds, result.loss, result.reason)
        self.feedback.broadcast("/ravemap/train/done", float(result.loss), int(result.examples),
                                float(result.seconds))
        return True

    def _save_training_of(self, trained: Mapping, result: FitResult) -> tuple[str | None, bool]:
        """Training of a mapping that is no longer the current one ended. Its result goes into that
        mapping's file while the file still holds the examples it had when it was closed, or into the
        current mapping when that is the same one reopened with the same examples. Otherwise it is
        dropped: returns why (None when kept), and whether the current mapping took it."""
        name = trained.name
        current = self.keeper.mapping
        folder = self.keeper.mappings_dir
        dropped = f"training of mapping {name!r} ended after another mapping was opened"
        if current.name == name:
            if current.examples != trained.examples:
                return (f"{dropped} under the same name, with other examples: the result is dropped; "
                        "train again"), False
            return None, self._apply(result)  # the same mapping, reopened
        try:
            hold = MappingLock(folder, name)  # another ravemap may have opened it since
        except MappingError as err:
            return f"{dropped}, and {err}: the result is dropped", False
        try:
            try:
                stored = load_mapping(folder, name)
            except MappingError as err:
                return f"{dropped}, and its file cannot be read back ({err}): the result is dropped", False
            if stored.examples != trained.examples:
                return (f"{dropped}, and {name}.json no longer holds the examples it was trained on: the result "
                        f"is dropped; load {name!r} and train again"), False
            stored.regressor = result.regressor
            stored.training = training_report(result)
            if not all(self._taught):
                stored.training["taught"] = list(self._taught)
            try:
                path = save_mapping(folder, stored)
            except MappingError as err:
                return f"{dropped}, and saving the result failed ({err}): the result is dropped", False
        finally:
            hold.release()
        log.info("trained %r on %d examples in %.2f s: loss %.5f; it is no longer the current mapping, "
                 "so the result was saved to %s", name, result.examples, result.seconds, result.loss, path)
        self.feedback.broadcast("/ravemap/train/progress", 1.0, float(result.loss))
        return None, False
