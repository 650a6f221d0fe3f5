"""The performer's chain as session commands: scale, jitter, mix, input gain, limiter, and the autopilot's settings.

Each command checks its value through `EngineControls` (which names the range: "mix must be in range
0..1, got 2"), sets it (latest value wins; the engine thread reads it at its next block) and tells the
controllers the new value. `input_gain` with `engine.encode: cached` also encodes the loop again at the
new gain, which takes as long as a loop swap: it returns a `Background` request for the loader thread,
and the core answers once the loop plays at that gain. The autopilot's own state lives in
`ravemap.session.autopilot`; these commands only set its amount, rate and prior mode. In prior mode
(a model that exports `prior`) with an amount above 0, the engine plays the model's prior at
temperature = amount (`EngineControls.prior_temperature`) instead of the loop's latents, and the walk
rests; prior 0 or amount 0 gives the loop back.

`handlers()` is this concern's part of the session's handler table (command name -> handler).

Threads:
- session thread: every method, and the `then` of the re-encoding's `Background` request.
- loader thread, "ravemap-loader" (see `ravemap.session.jobs`): `Playback.reencode`; it touches no
  session state.
"""

from __future__ import annotations

import logging
import numbers
from collections.abc import Callable
from typing import TYPE_CHECKING

from ravemap.control.events import Command
from ravemap.control.feedback import Feedback
from ravemap.session.autopilot import Autopilot
from ravemap.session.outcomes import Background, CommandError

if TYPE_CHECKING:
    from ravemap.audio.controls import EngineControls
    from ravemap.audio.playback import Playback


def _checked(set_value: Callable[[], object]) -> object:
    """A setter's TypeError (a string for a number) becomes a refusal, like its ValueError."""
    try:
        return set_value()
    except TypeError as err:
        raise CommandError(str(err)) from err


log = logging.getLogger("ravemap.session")


class ChainCommands:
    def __init__(self, controls: EngineControls, feedback: Feedback, autopilot: Autopilot,
                 playback: Playback | None):
        self.controls = controls
        self.feedback = feedback
        self.autopilot = autopilot
        self.playback = playback

    def handlers(self) -> dict[str, Callable[..., object]]:
        return {
            "scale": lambda event, *values: self.scale(values),
            "scale_dim": lambda event, dim, value: self.scale_dim(dim, value),
            "jitter": lambda event, value: self._set("jitter", self.controls.set_jitter, value),
            "mix": lambda event, value: self._set("mix", self.controls.set_mix, value),
            "input_gain": lambda event, db: self.input_gain(db),
            "limit": lambda event, db: self.limit(db),
            "autopilot": lambda event, amount: self.autopilot_amount(amount),
            "autopilot_rate": lambda event, hz: self._set("autopilot/rate", self.autopilot.set_rate, hz),
            "autopilot_prior": lambda event, on: self.autopilot_prior(bool(on)),
        }

    def learn(self, origin: tuple[str, int] | None, target: int | str,
              learn: Callable[[int | str], None] | None) -> None:
        """MIDI learn for an input dim (an int) or a chain control (its MIDI name, e.g. "mix", "scale 3"):
        the next controller moved drives it (`learn` is the MIDI input's, None with no MIDI port)."""
        address = "/ravemap/learn/control" if isinstance(target, str) else "/ravemap/learn"
        if learn is None:
            raise CommandError(f"{address}: MIDI input is off or no MIDI port is open")
        learn(target)
        self.feedback.reply(origin, address, target, "waiting for a controller to move")

    def _set(self, name: str, setter: Callable[[float], float], value: float) -> float:
        result = float(_checked(lambda: setter(value)))  # type: ignore[arg-type]
        self.feedback.broadcast(f"/ravemap/{name}", result)
        return result

    def scale(self, values: tuple[float, ...]) -> tuple[float, ...]:
        """One number for every latent dim of the model, or one per dim."""
        if not values:
            raise CommandError("/ravemap/scale: give one number for every dim, or one per latent dim of the model")
        given = values[0] if len(values) == 1 and isinstance(values[0], numbers.Real) else values
        scale = _checked(lambda: self.controls.set_scale(given))  # type: ignore[arg-type]
        self.feedback.broadcast("/ravemap/scale", *[float(v) for v in scale])  # type: ignore[attr-defined]
        return tuple(scale)  # type: ignore[arg-type]

    def scale_dim(self, dim: int, value: float) -> float:
        result = float(_checked(lambda: self.controls.set_scale_dim(dim, value)))  # type: ignore[arg-type]
        self.feedback.broadcast(f"/ravemap/scale/{dim}", result)
        return result

    def input_gain(self, db: float) -> object:
        """Set the input gain; with a cached loop, a `Background` request that encodes it again."""
        result = self._set("input/gain", self.controls.set_input_gain_db, db)
        playback = self.playback
        if playback is None or playback.newest.latents is None:
            return result
        return Background("input/gain", playback.reencode, lambda _: result)

    def limit(self, db: float | None) -> float | None:
        """The limiter's ceiling in dBFS; None switches it off (the [-1, 1] clip stays)."""
        result = _checked(lambda: self.controls.set_limit_db(db))
        if result is None:
            self.feedback.broadcast("/ravemap/limit/off")
        else:
            self.feedback.broadcast("/ravemap/limit", float(result))  # type: ignore[arg-type]
        return result  # type: ignore[return-value]

    def autopilot_amount(self, amount: float) -> float:
        if self.autopilot.prior and amount > 0:
            self._check_prior()
        result = self._set("autopilot", self.autopilot.set_amount, amount)
        self._sync_prior()
        return result

    def autopilot_prior(self, on: bool) -> bool:
        if on:
            self._check_prior()
        self.autopilot.prior = on
        self._sync_prior()
        self.feedback.broadcast("/ravemap/autopilot/prior", int(on))
        return on

    def model_swapped(self) -> None:
        """Another model plays: prior mode ends if it has no prior (the walk takes over again), saying so."""
        if not self.autopilot.prior:
            return
        try:
            self._check_prior()
        except CommandError as err:
            log.info("%s: prior mode is off", err)
            self.autopilot_prior(False)

    def _sync_prior(self) -> None:
        """The engine plays the prior at temperature = amount while prior mode is on and the amount above 0."""
        on = self.autopilot.prior and self.autopilot.amount > 0.0
        self.controls.set_prior_temperature(self.autopilot.amount if on else None)

    def _check_prior(self) -> None:
        if self.playback is None:
            raise CommandError("/ravemap/autopilot/prior: no model is loaded")
        info = self.playback.newest.model.info
        model, methods = info.path.name, info.methods
        if "prior" not in methods:
            raise CommandError(f"/ravemap/autopilot/prior: the model {model} exports no `prior` method (it has "
                               f"{', '.join(methods) or 'none'}); the autopilot walks the latent instead")
        if not info.has_prior:
            raise CommandError(f"/ravemap/autopilot/prior: the model {model} lists `prior`, but it did not return "
                               "latents [1, latent_size, frames] for a temperature [1, 1, frames] at load (an export "
                               "without a trained prior); the autopilot walks the latent instead")


def is_touch(event: object) -> bool:
    """Whether a command moves what the autopilot walks (see `ravemap.session.autopilot`)."""
    return isinstance(event, Command) and event.name in TOUCHES


TOUCHES = frozenset({"run", "vector_apply", "load", "new", "clear", "undo", "record_once"})
