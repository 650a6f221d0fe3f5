"""What readers on other threads see of the session: an immutable snapshot, replaced whole.

The session thread builds a new `SessionView` after each event it applies and publishes it by
one attribute assignment (`Session.view`); the web page, the Python API's `status()` and
`vectors`, and the daemon's ready line read only that. Nothing in a view is ever changed: the
examples and inputs are tuples, the vectors a read-only mapping of tuples, and the regressor is
never mutated once trained (a new training makes a new one), so sharing it is safe.

Threads: built on the session thread (`ViewMaker`); read from any thread (`status_of` too).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from collections.abc import Mapping as ReadOnly
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ravemap.mapping.regressor import Regressor
from ravemap.mapping.store import Example, Mapping
from ravemap.session.scenes import SceneView
from ravemap.session.tempo import TempoView

if TYPE_CHECKING:
    from ravemap.audio.controls import EngineControls


@dataclass(frozen=True)
class SessionView:
    name: str  # the current mapping's
    serial: int  # counts mapping switches: a reloaded mapping of the same name is another
    examples: tuple[Example, ...]
    regressor: Regressor | None
    regressor_kind: str
    input_size: int
    output_dims: tuple[int, ...]
    output_range: tuple[float, float]
    model: str | None  # the model file the mapping was made with
    loss: float | None  # the last training's final loss, when the mapping is trained
    vectors: ReadOnly[str, tuple[float, ...]]
    inputs: tuple[float, ...]
    targets: tuple[float, ...]
    recording: bool
    running: bool
    training: bool
    progress: tuple[float, float]  # the running (or last) training's fraction done and loss
    last_error: str
    autopilot: float  # the autopilot's amount (0 off), rate (Hz) and prior mode
    autopilot_rate: float
    autopilot_prior: bool
    gestures: tuple[str, ...]  # the mapping's gestures' names
    gesture: ReadOnly[str, object] | None  # the gesture playing (GestureCommands.report), None when none
    gesture_recording: str | None  # the name of the gesture being recorded
    tempo: TempoView  # the beat grid (see `ravemap.session.tempo`)
    scenes: SceneView  # the stored scenes and the recall in progress


NO_VECTORS: ReadOnly[str, tuple[float, ...]] = MappingProxyType({})


class ViewMaker:
    """Makes `SessionView`s, copying the examples, vectors and training report only when they changed."""

    def __init__(self) -> None:
        self._key: tuple = ()
        self._shared: tuple = ((), NO_VECTORS, None)

    def make(self, mapping: Mapping, serial: int, changes: int, **state: Any) -> SessionView:
        """`serial` counts mapping switches and `changes` the changes to this one; `state` is the
        session's own fields of the view (inputs, targets, flags, progress, last_error)."""
        examples = mapping.examples
        key = (id(mapping), serial, changes, id(examples), len(examples))
        if key != self._key:
            vectors = mapping.extras.get("vectors", {})
            final = mapping.training.get("loss") if isinstance(mapping.training, dict) else None
            self._shared = (
                tuple(examples),
                MappingProxyType({str(k): tuple(v) for k, v in vectors.items()}) if vectors else NO_VECTORS,
                final if isinstance(final, int | float) else None,
            )
            self._key = key
        shared_examples, vectors, loss = self._shared
        return SessionView(
            name=mapping.name, serial=serial, examples=shared_examples, regressor=mapping.regressor,
            regressor_kind=mapping.settings.kind, input_size=mapping.input_size,
            output_dims=tuple(mapping.output_dims), output_range=tuple(mapping.output_range),  # type: ignore[arg-type]
            model=mapping.model, loss=loss, vectors=vectors, **state,
        )


def status_of(view: SessionView, controls: EngineControls, engine: dict[str, object], dropped: int,
              now: float) -> dict:
    """`/ravemap/status`: the view, the engine's live controls, the engine's fields (`Playback.status()`),
    the events the inbox dropped, and the tempo and scenes at `now` on the performance clock."""
    return {
        "mapping": view.name,
        "examples": len(view.examples),
        "trained": view.regressor is not None,
        "regressor": view.regressor_kind,
        "recording": view.recording,
        "running": view.running,
        "training": view.training,
        "inputs": [float(v) for v in view.inputs],
        "targets": list(view.targets),
        "offsets": list(controls.offsets),
        "transfer": controls.transfer,
        "engine": not controls.paused,
        "gain_db": controls.gain_db,
        "scale": list(controls.scale),
        "jitter": controls.jitter,
        "mix": controls.mix,
        "input_gain_db": controls.input_gain_db,
        "limit_db": controls.limit_db,
        "autopilot": view.autopilot,
        "autopilot_rate": view.autopilot_rate,
        "autopilot_prior": view.autopilot_prior,
        "gestures": list(view.gestures),
        "gesture": None if view.gesture is None else dict(view.gesture),
        "gesture_recording": view.gesture_recording,
        "tempo": view.tempo.status(now),
        "bpm": round(view.tempo.bpm, 3),
        "quantize": view.tempo.quantize,
        "scenes": list(view.scenes.stored),
        "scene": view.scenes.status(),
        **engine,
        "events_dropped": dropped,
        "last_error": view.last_error,
    }


def reply_status(reply: Callable[..., None], status: dict) -> None:
    """`/ravemap/status`'s answer: record, run, examples and latent as their own messages, then the whole
    state as JSON. `reply(address, *args)` sends one to whoever asked."""
    for address, key in (("/ravemap/record", "recording"), ("/ravemap/run", "running"),
                         ("/ravemap/examples", "examples")):
        reply(address, int(status[key]))
    reply("/ravemap/latent", *[float(v) for v in status["offsets"]])
    reply("/ravemap/status", json.dumps(status, sort_keys=True))
