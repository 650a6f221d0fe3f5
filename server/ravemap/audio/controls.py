"""The engine's live parameters, published by control threads, read by the engine thread.

Latest value wins: each setter validates its input and replaces one attribute with an
immutable value (a float, a bool, None, a tuple), which the GIL makes atomic. The engine
thread reads each attribute once per block. No locks, no queues, nothing to block on.

The performer's chain (server/ravemap/audio/chain.py) reads five more: `scale` (one factor
per latent dim of the model playing, -4..4), `jitter` (0..3), `mix` (0 dry .. 1 wet),
`input_gain_db` (-60..24) and `limit_db` (the limiter's ceiling in dBFS, -60..0, or None
for no limiter), and `prior_temperature`: None plays the source's latents; a number plays the
model's prior at that temperature instead (the autopilot's amount in prior mode; a model with no
prior plays its source). A value out of range raises `ValueError` naming the range ("mix must be in
range 0..1, got 2.0"); offsets alone are clamped, as a mapping's predictions may overshoot.
`scale` has one entry per latent dim of the model; `fit_latent_size` (called on the thread
that loads a model, before it plays) resizes it, so it may briefly not match the model still
playing, and the engine reads it defensively.

The engine's sample clock, `rendered_s`, goes the other way: the seconds of audio the engine has
rendered (at the model's rate, the start of the block it renders next). Gestures, morphs and the
tempo read it so that what they play is timed against the audio, not the wall clock.

Threads: any thread may call the setters (OSC, MIDI, the CLI, a notebook); only the
engine thread reads them. `rendered_s` is written by the engine thread only (once a block) and
read by any.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

SCALE_RANGE = (-4.0, 4.0)
JITTER_RANGE = (0.0, 3.0)
MIX_RANGE = (0.0, 1.0)
INPUT_GAIN_RANGE = (-60.0, 24.0)
LIMIT_RANGE = (-60.0, 0.0)


def check_range(value: float, what: str, allowed: tuple[float, float]) -> float:
    """`value` as a float; TypeError if not a number, ValueError (naming the range) if outside it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{what} must be a number, got {type(value).__name__}")
    value = float(value)
    low, high = allowed
    if not (math.isfinite(value) and low <= value <= high):
        raise ValueError(f"{what} must be in range {low:g}..{high:g}, got {value:g}")
    return value


class EngineControls:
    """Latent offsets, style transfer, gain, pause and the performer's chain, as the engine should play them next."""

    def __init__(self, n_offsets: int, offset_range: tuple[float, float], transfer: bool = True,
                 gain_db: float = 0.0, *, scale: float | Sequence[float] = 1.0, jitter: float = 0.0,
                 mix: float = 1.0, input_gain_db: float = 0.0, limit_db: float | None = None):
        if n_offsets < 0:
            raise ValueError(f"n_offsets must be >= 0, got {n_offsets}")
        low, high = offset_range
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ValueError(f"offset range must be two finite numbers low < high, got {offset_range}")
        self.n_offsets = n_offsets
        self.offset_range = (float(low), float(high))
        self.offsets: tuple[float, ...] = (0.0,) * n_offsets
        self.transfer = bool(transfer)
        self.rendered_s = 0.0  # the engine's sample clock (see the top); the engine thread's alone
        self.gain_db = 0.0
        self.paused = False
        self.set_gain_db(gain_db)
        # The performer's chain. `scale` starts empty (no model yet) and is sized by fit_latent_size;
        # `scale_fill` is what dims it has not been told about get (the last value set for all dims).
        self.scale: tuple[float, ...] = ()
        self.scale_fill = 1.0
        self._scale_list: tuple[float, ...] | None = None
        if isinstance(scale, numbers.Real):
            self.scale_fill = check_range(scale, "scale", SCALE_RANGE)
        else:
            self._scale_list = tuple(check_range(v, f"scale {i}", SCALE_RANGE) for i, v in enumerate(scale))
            self.scale = self._scale_list
        self.jitter = 0.0
        self.mix = 1.0
        self.input_gain_db = 0.0
        self.limit_db: float | None = None
        self.prior_temperature: float | None = None
        self.set_jitter(jitter)
        self.set_mix(mix)
        self.set_input_gain_db(input_gain_db)
        self.set_limit_db(limit_db)

    def set_offsets(self, values: Sequence[float]) -> tuple[float, ...]:
        """Set every offset; non-finite values are refused, others clamped to the range."""
        values = tuple(values)
        if len(values) != self.n_offsets:
            raise ValueError(f"expected {self.n_offsets} latent offsets, got {len(values)}")
        clamped = tuple(self._clamp(v, f"offset {i}") for i, v in enumerate(values))
        self.offsets = clamped
        return clamped

    def set_offset(self, index: int, value: float) -> float:
        if not 0 <= index < self.n_offsets:
            raise ValueError(f"latent offset index must be in 0..{self.n_offsets - 1}, got {index}")
        clamped = self._clamp(value, f"offset {index}")
        current = list(self.offsets)
        current[index] = clamped
        self.offsets = tuple(current)
        return clamped

    def set_transfer(self, on: bool) -> None:
        self.transfer = bool(on)

    def set_gain_db(self, db: float) -> None:
        db = float(db)
        if not math.isfinite(db) or not -120.0 <= db <= 24.0:
            raise ValueError(f"gain must be a finite number of dB in -120..24, got {db}")
        self.gain_db = db

    def set_paused(self, paused: bool) -> None:
        self.paused = bool(paused)

    # -- the performer's chain -------------------------------------------------------------
    @property
    def scale_list(self) -> tuple[float, ...] | None:
        """The list `latent.scale` gave at start, until a model has been fitted to it (else None)."""
        return self._scale_list

    def fit_latent_size(self, n: int, where: str = "the model") -> None:
        """Size `scale` for a model with `n` latent dims (on the loading thread, before it plays).

        A list given at start (`latent.scale`) must have exactly `n` entries: ValueError otherwise.
        Otherwise the values set so far are kept for the dims both models have, and new dims get
        the value last set for every dim.
        """
        if self._scale_list is not None and len(self._scale_list) != n:
            raise ValueError(f"latent.scale lists {len(self._scale_list)} values but {where} has {n} "
                             f"latent dims: give one number for every dim, or {n} numbers")
        self._scale_list = None  # checked once: from here on the live values are what counts
        current = self.scale
        if len(current) != n:
            self.scale = current[:n] + (self.scale_fill,) * max(0, n - len(current))

    def set_scale(self, values: float | Sequence[float]) -> tuple[float, ...]:
        """One number for every latent dim, or one per dim of the model playing."""
        if isinstance(values, numbers.Real):
            value = check_range(values, "scale", SCALE_RANGE)
            self.scale_fill = value
            self.scale = (value,) * len(self.scale)
            return self.scale
        values = tuple(values)
        if len(values) != len(self.scale):
            raise ValueError(f"expected {len(self.scale)} scale values (one per latent dim of the model), "
                             f"got {len(values)}")
        self.scale = tuple(check_range(v, f"scale {i}", SCALE_RANGE) for i, v in enumerate(values))
        return self.scale

    def set_scale_dim(self, index: int, value: float) -> float:
        n = len(self.scale)
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < n:
            raise ValueError(f"scale dim must be in range 0..{n - 1}, got {index}")
        value = check_range(value, f"scale {index}", SCALE_RANGE)
        current = list(self.scale)
        current[index] = value
        self.scale = tuple(current)
        return value

    def set_jitter(self, value: float) -> float:
        self.jitter = check_range(value, "jitter", JITTER_RANGE)
        return self.jitter

    def set_mix(self, value: float) -> float:
        self.mix = check_range(value, "mix", MIX_RANGE)
        return self.mix

    def set_input_gain_db(self, db: float) -> float:
        self.input_gain_db = check_range(db, "input gain (dB)", INPUT_GAIN_RANGE)
        return self.input_gain_db

    def set_limit_db(self, db: float | None) -> float | None:
        """The limiter's ceiling in dBFS; None turns it off (the [-1, 1] clip still holds)."""
        self.limit_db = None if db is None else check_range(db, "limit (dBFS)", LIMIT_RANGE)
        return self.limit_db

    def set_prior_temperature(self, temperature: float | None) -> float | None:
        """Play the model's prior at this temperature (0..1), or the source's latents (None)."""
        self.prior_temperature = None if temperature is None else check_range(temperature, "prior temperature",
                                                                              MIX_RANGE)
        return self.prior_temperature

    def _clamp(self, value: float, what: str) -> float:
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"{what} must be a finite number, got {value}")
        low, high = self.offset_range
        return min(max(value, low), high)
