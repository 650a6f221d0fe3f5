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

`Session` is the one owner. Commands are dispatched through its handler table (`handlers`: command
name -> handler); the work of each concern is done by a collaborator that returns an outcome and
never imports this module: `jobs` (work on other threads, `Finished` events, the loader queue),
`keeper` (the mapping, its lock and its saves), `training`, `engine` (engine commands), `chain` (the
performer's chain), `autopilot` (its walk, stepped on this thread between events), `gestures`
(recorded input streams, played back by steps on this thread between events), `tempo` (the beat
grid on the performance clock, following MIDI clock or its own) and `scenes` (store and recall, the
recall's morph stepped on this thread between events, against `clock()`). Only
this module answers senders (`_settle`), predicts and resets the performance for a new mapping.

Threads:
- session thread, "ravemap-session" (owned here): takes events from the `Inbox` in order and
  applies them, and steps the autopilot, a playing gesture and a scene's morph between them. It is
  the only writer of this state and the only caller of `EngineControls` setters. Whatever takes long
  runs on another thread (see the collaborators' modules: saver, mapping reader, loader, trainer) and
  comes back as an event, which the session applies in turn, so control never waits on a disk or a model.
- Every change, from any thread, goes through the inbox (the Python API waits on the event's
  future). After each event the session thread publishes an immutable `SessionView` (`view`);
  other threads read that: `status()` may be called from any thread.
- `start`, `stop`, `unsaved`, `save_at_exit` and `close` from the owner's thread (the main thread,
  or the notebook's), the last three once `stop` returned.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ravemap.audio.status import ENGINE_OFF
from ravemap.config import Config
from ravemap.control.events import (
    Command,
    Event,
    Finished,
    Inbox,
    LearnAvailable,
    Learned,
    MidiClock,
    SetInputs,
    SetTarget,
    SetTargets,
    TrainingDone,
    TrainingProgress,
)
from ravemap.control.feedback import Feedback
from ravemap.errors import RavemapError
from ravemap.mapping.store import Example, Mapping, check_name
from ravemap.mapping.trainer import Trainer
from ravemap.ratelimit import RateLimitedLog
from ravemap.session.autopilot import Autopilot
from ravemap.session.chain import ChainCommands, is_touch
from ravemap.session.engine import EngineCommands
from ravemap.session.gestures import GestureCommands
from ravemap.session.jobs import Jobs
from ravemap.session.keeper import MappingKeeper, new_mapping
from ravemap.session.outcomes import DEFERRED, Background, CommandError, Refused, fail
from ravemap.session.rows import OutputRows
from ravemap.session.scenes import Scenes
from ravemap.session.tempo import Tempo
from ravemap.session.training import Training
from ravemap.session.view import SessionView, ViewMaker, reply_status, status_of

if TYPE_CHECKING:
    from ravemap.audio.controls import EngineControls
    from ravemap.audio.playback import Playback

log = logging.getLogger("ravemap.session")

Handler = Callable[..., object]  # (event, *event.args) -> what an API caller gets, or DEFERRED


class Session:
    def __init__(self, config: Config, controls: EngineControls, inbox: Inbox, feedback: Feedback,
                 trainer: Trainer, mappings_dir: Path, mapping: Mapping,
                 playback: Playback | None = None, learn: Callable[[int | str], None] | None = None):
        self.config = config
        self.controls = controls
        self.inbox = inbox
        self.feedback = feedback
        self.mappings_dir = mappings_dir
        self.playback = playback
        self.learn = learn
        self.jobs = Jobs(inbox)
        self.keeper = MappingKeeper(config, mappings_dir, mapping, self.jobs, feedback)
        self.training = Training(trainer, inbox, feedback, self.keeper)
        self.autopilot = Autopilot()
        self.chain = ChainCommands(controls, feedback, self.autopilot, playback)
        self.engine = EngineCommands(config, controls, feedback, self.keeper, playback, self.chain.model_swapped)
        self.gestures = GestureCommands(feedback, lambda: self.keeper.mapping, self.keeper.changed)
        tempo = config.tempo
        self.tempo = Tempo(tempo.bpm, tempo.source, tempo.quantize, tempo.beats_per_bar, now=self.clock())
        self.scenes = Scenes(controls, feedback, self.autopilot, self.chain, self.engine, self.keeper, self.tempo,
                             tempo.morph_unit, self.clock, lambda: (self.targets, self.running), self._block_s)
        # Under a tempo with quantize on, a gesture's recording is trimmed to whole beats (its loop keeps
        # time) and its playback starts on the next beat or bar line, as a scene's recall does.
        self.gestures.trim = lambda length: self.tempo.trim(length) if self.tempo.quantize != "off" else length
        self.n_out = len(config.latent.dims)
        self.low, self.high = config.latent.range
        self.inputs: tuple[float, ...] = (0.5,) * mapping.input_size  # replaced, never changed in place
        self.rows = OutputRows(self.n_out)  # Wekinator's per-output record and run buttons
        self.targets: tuple[float, ...] = (0.0,) * self.n_out
        self.recording = False
        self.running = False
        self.last_error = ""
        self._log = RateLimitedLog(log, seconds=2.0)
        self.applied = 0
        self.last_applied_at = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_recorded: tuple[float, ...] | None = None
        self._views = ViewMaker()
        self._completions: list[Callable[[], object]] = []  # futures to complete once the view is published
        self.handlers: dict[str, Handler] = {
            # inputs, examples, run mode
            "record": self._cmd_record,
            "record_once": self._cmd_record_once,
            "clear": lambda event: self._edit_examples(self.keeper.clear_examples),
            "undo": lambda event: self._edit_examples(self.keeper.undo_example),
            "delete_output": lambda event, output: self._edit_examples(lambda: self.keeper.delete_output(output)),
            "outputs_enabled": self._cmd_outputs_enabled,
            "names": self._cmd_names,
            "run": self._cmd_run,
            "toggle": self._cmd_toggle,
            "learn": lambda event, target: self.chain.learn(event.origin, target, self.learn),
            # training
            "train": lambda event, epochs: self.training.start(epochs),
            "train_cancel": lambda event: self.training.cancel(),
            # the mapping
            "save": self._cmd_save,
            "load": self._cmd_load,
            "new": self._cmd_new,
            # the engine
            "transfer": lambda event, on: self.engine.transfer(on),
            "engine": lambda event, on: self.engine.engine(on),
            "gain": lambda event, db: self.engine.gain(db),
            "model": lambda event, name, path=None: self.engine.swap("model", name, path),
            "loop": lambda event, name, path=None: self.engine.swap("loop", name, path),
            "vector_capture": lambda event, name, path=None: self.engine.capture(name, path),
            "vector_apply": self._cmd_vector_apply,
            # answers
            "status": self._cmd_status,
            "ping": lambda event, port: self.feedback.reply(event.origin, "/ravemap/pong", port=port),
            "sync": lambda event: None,  # an API caller waits on it to know that everything sent before is applied
            **self.chain.handlers(),  # scale, jitter, mix, input gain, limit, autopilot
            # record, play (on the next beat or bar line under quantize), stop, delete
            **self.gestures.handlers(self.clock, lambda: len(self.inputs), self.tempo.next_boundary),
            **self.scenes.handlers(),  # scene store and recall, tempo, quantize
        }
        self.view = self._make_view()

    # -- what other threads read ------------------------------------------------------------
    @property
    def mapping(self) -> Mapping:
        """The current mapping, for the session thread (and for the owner once the thread stopped);
        other threads read `view`."""
        return self.keeper.mapping

    @property
    def train_progress(self) -> tuple[float, float]:
        return self.view.progress

    @property
    def unsaved(self) -> bool:
        return self.keeper.unsaved

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

    def save_at_exit(self) -> Path:
        """The last save, once the session thread stopped (see `MappingKeeper.save_at_exit`)."""
        return self.keeper.save_at_exit()

    def close(self) -> None:
        """Let go of the mapping (after `stop` and the last save): another process may take it."""
        self.keeper.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            now = self.clock()
            waits = [w for w in (self.autopilot.wait(time.monotonic()), self.gestures.wait(now),
                                 self.scenes.wait(now)) if w is not None]
            event = self.inbox.get(timeout=min(waits, default=0.05))
            if event is not None:
                self.handle(event)
            self._step_autopilot()
            self._step_gesture()
            self._step_scenes()
            if self.keeper.save_due():
                self._answer(self.keeper.start_save())
                self._publish()

    def handle(self, event: Event) -> None:
        """Apply one event; a bad one is answered, never raised."""
        if event.origin is not None:
            self.feedback.note_sender(event.origin[0])
        self._settle((event,), lambda: self.apply(event))
        if isinstance(event, SetInputs | SetTargets | SetTarget) or is_touch(event):
            self.autopilot.take_over(time.monotonic())  # the performer takes over at once
        if isinstance(event, SetInputs):
            self.gestures.take_over()  # a controller touched the inputs: the gesture playing stops
        if isinstance(event, SetTargets | SetTarget):
            self.scenes.take_over("targets")  # ... of a scene's morph too
        elif isinstance(event, Command):
            self.scenes.command_taken(str(event.args[0]) if event.name == "toggle" and event.args else event.name)
        self.applied += 1
        self.last_applied_at = time.monotonic()
        self._publish()

    def _publish(self) -> None:
        """Publish the new view, then complete the futures of the events settled meanwhile: an API
        caller that wakes up reads a view with its change in it."""
        self.view = self._make_view()
        completions, self._completions = self._completions, []
        for complete in completions:
            complete()

    def _settle(self, events: tuple[Event, ...], work: Callable[[], object]) -> None:
        """Run `work` once for `events`: answer a refusal to each sender, complete each API caller's
        future (at the next `_publish`)."""
        try:
            result = work()
        except (CommandError, ValueError, RavemapError) as err:
            for event in events:
                self._error(event, str(err))
                if event.done is not None:
                    self._completions.append(partial(event.done.set_exception, err))
        except Exception as err:  # a bug here must not stop the session thread
            log.exception("event %r failed", events[-1] if events else None)
            for event in events:
                self._error(event, f"internal error: {err}")
                if event.done is not None:
                    self._completions.append(partial(event.done.set_exception, err))
        else:
            for event in events:
                if event.done is not None and result is not DEFERRED:
                    self._completions.append(partial(event.done.set_result, result))

    def _answer(self, refused: Refused | None) -> None:
        if refused is not None and refused.events:
            self._settle(refused.events, lambda: fail(refused.error))

    def _error(self, event: Event, text: str) -> None:
        """Answer the sender; log one line per sender and kind of event per 2 s (a flood of
        refused commands must not flood the log)."""
        self.last_error = text
        sender = event.origin[0] if event.origin is not None else "-"
        self._log.warning("%s", text, key=f"{sender}:{type(event).__name__}:{getattr(event, 'name', '')}")
        self.feedback.error(event.origin, text)

    # -- work on other threads -------------------------------------------------------------
    def _in_background(self, event: Command, request: Background) -> object:
        """Queue `request` for the loader thread; a waiting request it replaces is refused."""
        self._answer(self.jobs.background(event, request))
        return DEFERRED

    def _finished(self, finished: Finished) -> None:
        done = self.jobs.finish(finished)
        if done is None:
            return
        events, complete, text = done
        if text is not None:
            self.last_error = text
        if events:
            self._settle(events, complete)
        elif finished.error is None:
            try:
                complete()
            except Exception:
                log.exception("finishing background job %d failed", finished.job)

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
            handler = self.handlers.get(event.name)
            if handler is None:
                raise CommandError(f"unknown command {event.name!r}")
            result = handler(event, *event.args)
            return self._in_background(event, result) if isinstance(result, Background) else result
        elif isinstance(event, TrainingProgress):
            self.training.progress(event)
        elif isinstance(event, TrainingDone):
            self._training_done(event)
        elif isinstance(event, Finished):
            self._finished(event)
        elif isinstance(event, Learned):
            log.info("MIDI learn: %s now drives %s", event.description, event.target)
            address = "/ravemap/learn/control" if isinstance(event.target, str) else "/ravemap/learn"
            self.feedback.broadcast(address, event.target, event.description)
        elif isinstance(event, LearnAvailable):
            self.learn = event.learn
        elif isinstance(event, MidiClock):  # stamped on the MIDI thread: that moment on the performance clock
            self.tempo.midi(event.kind, event.ticks, event.at, self.clock() - time.monotonic())
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
        values = list(self.inputs)
        changed = False
        for dim, value in event.values:
            if values[dim] != value:
                values[dim] = float(value)
                changed = True
        if changed:
            self.inputs = tuple(values)
            self.gestures.moved(self.clock(), self.inputs)  # kept while a gesture records
        if self.recording and (changed or event.whole):  # like Wekinator, a new output at the same input
            self._record()                                  # records too (an identical example does not)
        if self.running:  # like Wekinator: an output for each input message, changed or not
            self._predict(send=True)

    def _fit_input_size(self, size: int, source: str, what: str = "input values") -> None:
        """Make the mapping take `size` inputs (see `MappingKeeper.fit_input_size`); new inputs at 0.5."""
        if self.keeper.fit_input_size(size, source, what, training=self.training.running):
            self.inputs = (0.5,) * size
            self._last_recorded = None

    def _set_targets(self, values: tuple[float, ...]) -> None:
        if not all(np.isfinite(values)):
            raise CommandError("latent targets must be finite numbers")
        self.targets = tuple(min(max(float(v), self.low), self.high) for v in values)
        if not self.running:
            self.controls.set_offsets(self.targets)
        elif not self.rows.all_running:
            self._predict()  # outputs whose running is off follow their manual value

    def _predict(self, send: bool = False) -> None:
        """Offsets from the regressor; an output switched off for running, or taught by no example,
        keeps its manual value. `send`: also `/wek/outputs`, as Wekinator does for each input."""
        regressor = self.mapping.regressor
        if regressor is None or regressor.n_in != len(self.inputs):
            return
        out = np.asarray(regressor.predict(np.array(self.inputs, dtype=float)), dtype=float).reshape(-1)
        if out.size != self.n_out or not np.all(np.isfinite(out)):
            self.last_error = "the regressor produced an unusable prediction; offsets kept"
            return
        self.rows.keep_manual(out, self.targets, self.mapping.training.get("taught"))
        offsets = tuple(float(v) for v in np.clip(out, self.low, self.high))
        self.controls.set_offsets(offsets)
        if send:
            self.feedback.wekinator_outputs(offsets)

    def _record(self) -> None:
        example = Example(tuple(float(v) for v in self.inputs), self.rows.recorded(self.targets))
        examples = self.mapping.examples
        if example.input == self._last_recorded and examples and examples[-1] == example:
            return
        self.keeper.add_example(example)
        self._last_recorded = example.input

    def _training_done(self, event: TrainingDone) -> None:
        outcome = self.training.finish(event)
        if outcome is None:
            return
        if outcome.applied and self.running:
            self._predict()
        if outcome.text is not None and not outcome.cancelled:  # a cancel asked for is no error
            self.last_error = outcome.text
        self._completions.append(partial(self.training.announce, outcome))  # once the view shows it

    # -- commands: inputs, examples, run mode ------------------------------------------------
    def _cmd_record(self, event: Command, on: bool) -> None:
        self.recording = bool(on)
        if self.recording and self.running:
            self._set_running(False)
        self.feedback.broadcast("/ravemap/record", int(self.recording))

    def _cmd_record_once(self, event: Command) -> None:
        self._last_recorded = None
        self._record()

    def _edit_examples(self, edit: Callable[[], None]) -> None:
        """Run one of the keeper's example edits; the next recorded example is new whatever it is."""
        edit()
        self._last_recorded = None

    def _cmd_outputs_enabled(self, event: Command, what: str, outputs: tuple[int, ...], on: bool) -> None:
        """Wekinator's enable/disableModelRecording and enable/disableModelRunning (outputs 0-based here)."""
        self.rows.enable(what, outputs, on)
        if what == "running" and self.running:
            self._predict()

    def _cmd_names(self, event: Command, which: str, names: tuple[str, ...]) -> None:
        """Wekinator's setInputNames / setOutputNames, kept in the mapping (and drawn by `ravemap plot`)."""
        if which == "input":
            self._fit_input_size(len(names), "/wekinator/control/setInputNames", "input names")
        self.keeper.set_names(which, names)

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

    def _cmd_toggle(self, event: Command, what: str) -> None:
        if what == "record":
            self._cmd_record(event, not self.recording)
        elif what == "run":
            self._cmd_run(event, not self.running)
        elif what == "transfer":
            self.engine.transfer(not self.controls.transfer)
        else:
            raise CommandError(f"cannot toggle {what!r}")

    def clock(self) -> float:
        """Seconds on the performance clock: the engine's sample clock (`EngineControls.rendered_s`) while
        an engine plays, so what is timed against it keeps time with the audio; the wall clock without one."""
        return self.controls.rendered_s if self.playback is not None else time.monotonic()

    def _block_s(self) -> float | None:
        """Seconds of one engine block of what plays next (None with no engine)."""
        return None if self.playback is None else self.playback.newest.block_s

    def _step_scenes(self) -> None:
        """One step of a scene's morph when one is due (see `ravemap.session.scenes`)."""
        step = self.scenes.step(self.clock())
        if step is None:
            return
        if step.targets is not None:
            self._set_targets(step.targets)
        if step.running is not None and step.running != self.running:
            try:
                self._cmd_run(None, step.running)  # type: ignore[arg-type]
            except CommandError as err:
                self.last_error = f"scene {self.scenes.last}: {err}"
        self._publish()

    # -- the autopilot ----------------------------------------------------------------------
    def _step_autopilot(self) -> None:
        """One step of the walk when one is due: the inputs in run mode, else the latent targets."""
        if not self.autopilot.on:
            return
        current = self.inputs if self.running else self.targets
        examples = self.mapping.examples if self.running else []
        walked = self.autopilot.step(time.monotonic(), self.running, current, self.low, self.high, examples)
        if walked is None:
            return
        if self.running:
            self.inputs = walked
            self.gestures.moved(self.clock(), walked)
            self._predict(send=True)
        else:
            self._set_targets(walked)
        self._publish()

    # -- gestures ------------------------------------------------------------------------------
    def _step_gesture(self) -> None:
        """Apply the playing gesture's vector when one is due, as a controller's input is applied."""
        if self.gestures.playing is None:
            return
        vector = self.gestures.step(self.clock())
        if vector is not None:
            try:
                self._set_inputs(SetInputs(tuple(enumerate(vector)), source="gesture"))
            except (CommandError, ValueError, RavemapError) as err:
                self.gestures.stop()
                self.last_error = f"gesture stopped: {err}"
                log.warning("%s", self.last_error)
            if self.running:
                self.autopilot.take_over(time.monotonic())  # the walk rests while a gesture plays
        if vector is not None or self.gestures.playing is None:
            self._publish()

    def _cmd_vector_apply(self, event: Command, name: str, amount: float) -> tuple[float, ...]:
        """Add `amount` times the named vector (its `latent.dims` entries) to the latent targets."""
        self._set_targets(self.engine.vector_moved(name, amount, self.targets))
        return self.targets

    # -- commands: the mapping ---------------------------------------------------------------
    def _cmd_save(self, event: Command, name: str | None) -> object:
        """Save now, on the saver thread (after the save in flight, if any); the reply comes when written."""
        target = check_name(name) if name is not None else self.mapping.name
        self._answer(self.keeper.request_save(event, target))
        return DEFERRED

    def _cmd_load(self, event: Command, name: str) -> object:
        """Read the file on the mapping reader thread; switch to it when it is read (the newest load wins)."""
        self.keeper.load(event, check_name(name), self._switch_to_loaded)
        return DEFERRED

    def _switch_to_loaded(self, loaded: object) -> None:
        assert isinstance(loaded, Mapping)
        self.keeper.check_newest_load(loaded)
        self._switch(loaded)
        if self.running and loaded.regressor is None:
            self._set_running(False)
        elif self.running:
            self._predict()
        self._announce_mapping()

    def _cmd_new(self, event: Command, name: str | None) -> None:
        name = check_name(name) if name else time.strftime("mapping-%Y%m%d-%H%M%S")
        self._switch(new_mapping(self.config, name, self.mapping.model))
        self.keeper.reading = -1  # a load still being read is not switched to
        if self.running:
            self._set_running(False)
        self.keeper.changed()
        self._announce_mapping()

    def _switch(self, mapping: Mapping) -> None:
        """Make `mapping` current (the keeper locks it and saves the old one), then reset for it:
        inputs of its size, every output recording and running."""
        self.keeper.switch(mapping)
        self.gestures.reset()
        self._last_recorded = None
        if len(self.inputs) != mapping.input_size:
            self.inputs = (0.5,) * mapping.input_size
        self.rows.reset()

    def _announce_mapping(self) -> None:
        self.feedback.broadcast("/ravemap/mapping", self.mapping.name)
        self.feedback.broadcast("/ravemap/examples", len(self.mapping.examples))
        self.feedback.broadcast("/ravemap/run", int(self.running))

    # -- commands: answers ------------------------------------------------------------------
    def _cmd_status(self, event: Command, port: int | None) -> None:
        self.view = self._make_view()  # what this event changed so far
        reply_status(partial(self.feedback.reply, event.origin, port=port), self.status())

    # -- reading -------------------------------------------------------------------------
    def _make_view(self) -> SessionView:
        """An immutable snapshot of the state other threads read (session thread only)."""
        return self._views.make(self.mapping, self.keeper.serial, self.keeper.changes, inputs=self.inputs,
                                targets=self.targets, recording=self.recording, running=self.running,
                                training=self.training.running, progress=self.training.progress_now,
                                last_error=self.last_error, autopilot=self.autopilot.amount,
                                autopilot_rate=self.autopilot.rate, autopilot_prior=self.autopilot.prior,
                                gestures=self.gestures.names(), gesture=self.gestures.report(self.clock()),
                                gesture_recording=self.gestures.recording_name,
                                tempo=self.tempo.snapshot(), scenes=self.scenes.snapshot())

    def status(self) -> dict:
        """The state as `/ravemap/status` sends it; any thread (it reads `view`, the controls and the engine)."""
        engine = self.playback.status() if self.playback is not None else dict(ENGINE_OFF)
        if self.playback is not None:
            engine.update(self.playback.chain_status())  # model delay, gain reduction
        return status_of(self.view, self.controls, engine, self.inbox.dropped, self.clock())
