"""ravemap in process: the Python API that the workshop's notebook uses and the daemon is built on.

    from ravemap import Ravemap
    rm = Ravemap(audio="none")            # the config's model and loop; "none": no sound card
    rm.start()                            # engine thread (+ audio output)
    rm.set_offsets([1.5, 0, 0, 0])        # move through the latent space
    rm.set_inputs([0.2, 0.8]); rm.record_once()
    result = rm.train()                   # in the trainer process; returns the FitResult
    rm.train(wait=False); rm.cancel_training()   # or start one and stop it
    rm.run(True); rm.set_inputs([0.5, 0.5])
    rm.stop()

One code path: a `Ravemap` owns the same objects `ravemap serve` runs (`Playback` for the
engine and audio, `Session` for the performance state, the trainer process), and each method
posts an event into the session's inbox exactly as an OSC message does, then waits until the
session thread has applied it. `ravemap serve` is a `Ravemap` plus OSC, MIDI, zeroconf and
signal handling.

Threads: call the methods from one thread of yours (a notebook cell, a script). They block
until the session thread has applied the change (a few microseconds to milliseconds;
`train(wait=True)` until training ends, `capture_vector`, `load_model` and `load_loop` while the
session's loader thread loads). Reading properties (`offsets`, `vectors`, `gestures`, `status()`) never blocks:
they read the snapshot the session thread publishes after each change.
"""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path
from typing import Any

import numpy as np

from ravemap.audio import realtime
from ravemap.audio.engine import configure_torch
from ravemap.audio.playback import Playback, make_controls
from ravemap.config import Config, load_config, with_overrides
from ravemap.control.events import Command, Event, Inbox, SetInputs, SetTargets
from ravemap.control.feedback import Feedback
from ravemap.mapping.regressor import FitResult
from ravemap.mapping.trainer import Trainer
from ravemap.session import Session, open_mapping

CALL_TIMEOUT_S = 60.0


class Ravemap:
    """A model playing a loop, steered through a trainable mapping. See the module docstring."""

    def __init__(self, config: Config | str | Path | None = None, *, model: str | Path | None = None,
                 loop: str | Path | None = None, audio: str | int | None = None, mapping: str | None = None,
                 mappings_dir: str | Path | None = None):
        """Load the model and the loop (encoded once, warmed up) and open the mapping; nothing plays yet.

        `config` is a `Config` or a config file (default: the one `ravemap serve` reads, see
        `ravemap.locations`); the keyword arguments override it like the command-line options of
        `ravemap serve`.
        """
        base = config if isinstance(config, Config) else load_config(config)
        cwd = Path.cwd()
        self.config = with_overrides(
            base,
            engine__model=cwd / model if model is not None else None,
            engine__loop=cwd / loop if loop is not None else None,
            audio__device=audio,
            mapping__name=mapping,
            paths__mappings_dir=cwd / mappings_dir if mappings_dir is not None else None,
        )
        configure_torch(self.config.engine.torch_threads)
        realtime.prepare_process()
        self.controls = make_controls(self.config)
        self.playback = Playback.from_config(self.config, self.controls)
        self.inbox = Inbox(self.config.osc.queue_size)
        self.feedback = Feedback(self.config)
        self.trainer = Trainer(stall_timeout=self.config.mapping.trainer_stall_s)
        model_name = self.config.engine.model.name
        first = open_mapping(self.config, self.config.paths.mappings_dir, self.config.mapping.name, model_name)
        self.session = Session(self.config, self.controls, self.inbox, self.feedback, self.trainer,
                               self.config.paths.mappings_dir, first, playback=self.playback)
        self.session.start()
        self._playing = self._started = False

    # -- lifecycle (caller's thread) -----------------------------------------------------
    def start(self) -> None:
        """Start the engine thread and the audio output (`audio="none"`: a real-time clock)."""
        if not self._playing:
            # Before the first block: a full collection holds the GIL far longer than a small block lasts.
            realtime.freeze_startup_objects()
            self.playback.start()
            self._playing = self._started = True

    def stop(self, *, save: bool | None = None) -> Path | None:
        """Stop audio, session and trainer, save the mapping (atomically) and let go of it.

        Returns where the mapping was written: its file, or a recovery copy when its folder
        cannot be written (see `Session.save_at_exit`); MappingError when nothing could be.
        A Ravemap that never played and has no unsaved change writes nothing (a start that
        failed, on a machine with no sound card say, leaves the mappings folder alone);
        `save=False` writes only unsaved changes."""
        if self._playing:
            self.playback.stop()
            self._playing = False
        self.session.stop()
        self.trainer.close(timeout=0.5)
        self.feedback.close()
        try:
            if (self._started if save is None else save) or self.session.unsaved:
                return self.session.save_at_exit()
            return None
        finally:
            self.session.close()

    def __enter__(self) -> Ravemap:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the engine ----------------------------------------------------------------------
    def set_transfer(self, on: bool) -> None:
        """Style transfer on (the model plays) or off (the dry loop)."""
        self._call("transfer", bool(on))

    def set_gain(self, db: float) -> None:
        self._call("gain", float(db))

    def pause(self) -> None:
        """Fade to silence; the model's state, the offsets and the mapping are kept."""
        self._call("engine", False)

    def resume(self) -> None:
        self._call("engine", True)

    # -- the performer's chain ---------------------------------------------------------------
    # Through the session's inbox like every change (as `/ravemap/scale`, `/ravemap/mix` ... are).
    # Out-of-range values raise ValueError naming the range.
    def set_scale(self, value: float | list[float] | tuple[float, ...], dim: int | None = None) -> None:
        """Multiply the model's own latent before the offsets: one number for every dim, a list (one per
        dim of the model), or one number for `dim`; -4..4, 1 leaves it alone, 0 removes the loop's part."""
        if dim is not None:
            self._call("scale_dim", int(dim), value)
        elif isinstance(value, list | tuple):
            self._call("scale", *value)
        else:
            self._call("scale", value)

    def set_jitter(self, amount: float) -> None:
        """Gaussian noise of this std (0..3) on every latent dim, a new draw per latent frame."""
        self._call("jitter", amount)

    def set_mix(self, amount: float) -> None:
        """0 plays the source delayed by the model's delay (dry), 1 the model (wet)."""
        self._call("mix", amount)

    def set_input_gain(self, db: float) -> None:
        """Gain (-60..24 dB) on the loop or live input before the encoder. With `encode: cached` the
        loop is encoded again at that gain (as long as a loop swap takes; this returns once it plays);
        the dry path moves at once."""
        self._call("input_gain", db, timeout=None)

    def set_limit(self, db: float | None) -> None:
        """The output limiter's ceiling in dBFS (-60..0); None: no limiter, only the [-1, 1] clip."""
        self._call("limit", db)

    def set_autopilot(self, amount: float | None = None, rate: float | None = None,
                      prior: bool | None = None) -> None:
        """The autopilot's amount (0 off .. 1), how fast it wanders (Hz, 0.01..10), and whether it plays the
        model's `prior` (refused for a model that exports none); see the README."""
        if prior is not None:
            self._call("autopilot_prior", bool(prior))
        if rate is not None:
            self._call("autopilot_rate", rate)
        if amount is not None:
            self._call("autopilot", amount)

    def load_model(self, path: str | Path) -> None:
        """Play another RAVE export from the next block (the old one plays on if it fails: ModelError).
        Loaded on the session's loader thread, like `/ravemap/model`; returns once it plays."""
        path = Path(path)
        self._call("model", path.name, str(path), timeout=None)

    def load_loop(self, path: str | Path) -> None:
        """Play another loop with the current model (the old one plays on if it fails: SourceError)."""
        path = Path(path)
        self._call("loop", path.name, str(path), timeout=None)

    @property
    def offsets(self) -> tuple[float, ...]:
        """The latent offsets the engine applies at its next block."""
        return self.controls.offsets

    # -- the mapping ---------------------------------------------------------------------
    def set_inputs(self, values: list[float] | tuple[float, ...]) -> None:
        """The whole input vector (x, y, ...), each in 0..1; records or runs as the mode says. A new,
        empty mapping takes its input size from the first vector (like `/wek/inputs`)."""
        values = tuple(float(v) for v in values)
        self._post(SetInputs(tuple(enumerate(values)), source="python", whole=True))

    def set_offsets(self, values: list[float] | tuple[float, ...]) -> None:
        """The manual latent targets (the sliders), one per `latent.dims`; clamped to `latent.range`."""
        self._post(SetTargets(tuple(float(v) for v in values)))

    def record(self, on: bool) -> None:
        """Record an example each time the inputs change."""
        self._call("record", bool(on))

    def record_once(self) -> None:
        """Store (current inputs -> current targets) as an example."""
        self._call("record_once")

    def clear_examples(self) -> None:
        self._call("clear")

    def undo_example(self) -> None:
        self._call("undo")

    def train(self, epochs: int | None = None, wait: bool = True, timeout: float | None = None) -> FitResult | None:
        """Train the regressor in the trainer process; with `wait`, return its FitResult.

        The FitResult holds the loss per epoch (`history`, `val_history`) and why it stopped
        (`reason`: early stop when the loss stopped improving, or the epoch limit).
        """
        generation = self._call("train", epochs)
        if not wait:
            return None
        training = self.session.training
        with training.ended:
            if not training.ended.wait_for(lambda: training.finished_generation >= generation, timeout):
                raise TimeoutError(f"training did not end within {timeout} s")
            result, error = training.last_fit
        if error is not None:
            raise RuntimeError(error)  # what went wrong, and that the previous mapping stays
        return result

    def cancel_training(self) -> bool:
        """Stop the running training (the mapping keeps what it had; a `train()` waiting on it
        raises "training cancelled ..."). False when no training was running."""
        return bool(self._call("train_cancel"))

    def run(self, on: bool) -> None:
        """The regressor drives the latent (True) or the manual targets do (False)."""
        self._call("run", bool(on))

    def save_mapping(self, name: str | None = None) -> None:
        """Save now (under `name` if given); returns once the file is written (MappingError if not)."""
        self._call("save", name)

    def load_mapping(self, name: str) -> None:
        """Read `<mappings_dir>/<name>.json` (beside the session thread) and switch to it; returns once switched."""
        self._call("load", name)

    def new_mapping(self, name: str | None = None) -> None:
        """Save the current mapping if it changed, then start an empty one."""
        self._call("new", name)

    # -- scenes and the tempo (see the README's Playing in time) -----------------------------
    def store_scene(self, number: int) -> list[int]:
        """Keep everything set now as scene `number` (1..128) in the mapping; returns the stored numbers."""
        return list(self._call("scene_store", number))  # type: ignore[call-overload]

    def recall_scene(self, number: int, time: float = 0.0, unit: str | None = None) -> float:
        """Morph to scene `number` over `time` (in `tempo.morph_unit`, or `unit`: "seconds" or "beats");
        returns when the morph starts, in seconds of the performance clock (on the next beat or bar line
        with `tempo.quantize`)."""
        return float(self._call("scene_recall", number, float(time), unit))

    def set_tempo(self, bpm: float | None = None, quantize: str | None = None) -> None:
        """The internal clock's tempo (20..300 bpm) and when recalls start (`off`, `beat`, `bar`)."""
        if bpm is not None:
            self._call("tempo", bpm)
        if quantize is not None:
            self._call("quantize", quantize)

    # -- latent arithmetic ---------------------------------------------------------------
    def capture_vector(self, name: str, path: str | Path | None = None) -> np.ndarray:
        """Encode an audio file (or, without `path`, the current loop) and keep its mean latent as `name`."""
        return np.asarray(self._call("vector_capture", name, str(path) if path is not None else None))

    def apply_vector(self, name: str, amount: float = 1.0) -> tuple[float, ...]:
        """Add `amount` x the named vector to the latent targets (clamped); returns the new targets."""
        return tuple(self._call("vector_apply", name, float(amount)))  # type: ignore[arg-type]

    @property
    def vectors(self) -> dict[str, list[float]]:
        return {name: list(vector) for name, vector in self.session.view.vectors.items()}

    # -- gestures ------------------------------------------------------------------------
    def record_gesture(self, on: bool, name: str | None = None) -> str | None:
        """Start (True; `name` or the next free `gesture-N`) or end (False) recording a gesture: every new
        input vector with its time on the engine's clock. Returns its name; ending one with no movement
        raises ValueError."""
        return self._call("gesture_record", bool(on), name)  # type: ignore[no-any-return]

    def play_gesture(self, name: str, speed: float = 1.0, loop: bool = True) -> None:
        """Play a gesture (speed 0.1..10): its vectors drive the inputs as `set_inputs` would; any other
        input takes over."""
        self._call("gesture_play", name, float(speed), bool(loop))

    def stop_gesture(self) -> None:
        self._call("gesture_stop")

    @property
    def gestures(self) -> list[str]:
        """The current mapping's gestures, by name."""
        return list(self.session.view.gestures)

    # -- reading -------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        return {**self.session.status(), **self.playback.chain_status()}

    # -- plumbing ------------------------------------------------------------------------
    def _call(self, name: str, *args: object, timeout: float | None = CALL_TIMEOUT_S) -> Any:
        return self._post(Command(name, args), timeout)

    def _post(self, event: Event, timeout: float | None = CALL_TIMEOUT_S) -> Any:
        future: Future = Future()
        event = _with_future(event, future)
        self.inbox.put(event)  # a full inbox fails the future at once
        return future.result(timeout)


def _with_future(event: Event, future: Future) -> Event:
    from dataclasses import replace

    return replace(event, done=future)
