"""The autopilot: a smooth, bounded, band-limited random walk that plays when nobody touches anything.

`/ravemap/autopilot f` sets its amount (0 off .. 1) and `/ravemap/autopilot/rate f` how fast it
wanders (Hz). Each coordinate it moves follows a sum of `WAVES` slow sinusoids with random phases and
frequencies between 0.5 and 1.5 times the rate, their amplitudes summing to 1: smooth, bounded by 1,
and with nothing above 1.5 x rate in it. Phases advance by rate x time step, so a change of rate
changes the speed without a jump.

- Manual mode: it moves the latent targets around where the performer left them (the anchor), by up
  to amount x half of `latent.range` each way, clamped to `latent.range`.
- Run mode: it moves the input vector between the inputs of the recorded examples (up to `HULL`
  of them, drawn when the walk starts): the walked point is a convex combination of them (softmax
  weights of the slow signals), blended with the anchor by the amount, so it only visits inputs
  inside the convex hull of the examples and the anchor, which are the sounds the mapping was taught.
  With no example it walks the inputs around the anchor in 0..1 like the manual mode.
- A touch takes over at once: an input or latent message (or a command that changes what is walked:
  run, a mapping load, an example edit) stops the walk; `HOLD_S` after the last touch the walk
  starts again from where the performer left things, fading in from zero deviation over one period
  (1 / rate), so the restart never jumps.
- Amount 0 stops the walk where it is (nothing jumps back).

Threads: none of its own. The session thread calls `step` between events (`Session._run` waits at most
`TICK_S` for the next one while the autopilot is on) and applies what it returns as its own change;
this object is read and written on the session thread only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ravemap.audio.controls import check_range
from ravemap.mapping.store import Example

TICK_S = 0.04  # a step at most every 40 ms (25 a second): smooth for latents that glide (engine.smoothing_ms)
HOLD_S = 1.0  # after a touch, the walk waits this long before it starts again from there
WAVES = 4  # slow sinusoids per coordinate
HULL = 32  # examples the run-mode walk moves between (drawn at random when it starts)
SHARPNESS = 3.0  # softmax sharpness of the run-mode weights: higher visits single examples more closely
AMOUNT_RANGE = (0.0, 1.0)
RATE_RANGE = (0.01, 10.0)


class Autopilot:
    def __init__(self, rate: float = 0.25, seed: int | None = None):
        self.amount = 0.0
        self.rate = check_range(rate, "autopilot rate (Hz)", RATE_RANGE)
        self.prior = False
        self._rng = np.random.default_rng(seed)
        self._held_until = 0.0
        self._walk: _Walk | None = None

    @property
    def on(self) -> bool:
        return self.amount > 0.0 and not self.prior

    def set_amount(self, amount: float) -> float:
        self.amount = check_range(amount, "autopilot amount", AMOUNT_RANGE)
        if self.amount == 0.0:
            self._walk = None  # stops where it is; the next walk starts from there
        return self.amount

    def set_rate(self, hz: float) -> float:
        self.rate = check_range(hz, "autopilot rate (Hz)", RATE_RANGE)
        return self.rate

    def take_over(self, now: float) -> None:
        """A performer touched a walked control: stop, and start again from there `HOLD_S` later."""
        self._walk = None
        self._held_until = now + HOLD_S

    def wait(self, now: float) -> float | None:
        """How long the session thread may wait for an event before the next step (None: no step due)."""
        if not self.on:
            return None
        due = max(self._held_until, self._walk.next_at if self._walk is not None else now)
        return min(max(0.0, due - now), TICK_S)

    def step(self, now: float, running: bool, current: tuple[float, ...], low: float, high: float,
             examples: Sequence[Example]) -> tuple[float, ...] | None:
        """The walked values now (latent targets in manual mode, inputs in run mode), or None when no
        step is due. `current`: the values as they are; `low`, `high`: the manual mode's bounds;
        `examples`: the recorded examples (run mode; only a few are read when a walk starts)."""
        if not self.on or now < self._held_until or not current:
            return None
        walk = self._walk
        if walk is None or walk.running != running or walk.size != len(current):
            walk = self._walk = _Walk(self._rng, now, running, current, low, high, examples)
        if now < walk.next_at:
            return None
        return walk.advance(now, self.rate, self.amount)


class _Walk:
    """One walk, from the anchor where it started."""

    def __init__(self, rng: np.random.Generator, now: float, running: bool, anchor: tuple[float, ...],
                 low: float, high: float, examples: Sequence[Example]):
        self.running = running
        self.size = len(anchor)
        self.anchor = np.asarray(anchor, dtype=float)
        # A few drawn at random, never a pass over all of them (a mapping may hold a million).
        drawn = rng.choice(len(examples), size=min(HULL, len(examples)), replace=False) if running and examples else ()
        fitting = [examples[i].input for i in drawn if len(examples[i].input) == self.size]
        self.points: np.ndarray | None = None
        if fitting:
            self.points = np.asarray(fitting, dtype=float)
            coords = len(self.points)
            self.low, self.high = -math.inf, math.inf
        else:
            coords = self.size
            self.low, self.high = (0.0, 1.0) if running else (low, high)
        self.half = (high - low) / 2 if not running else 0.5
        self.freqs = rng.uniform(0.5, 1.5, size=(coords, WAVES))
        self.phases = rng.uniform(0.0, 2 * math.pi, size=(coords, WAVES))
        weights = rng.uniform(0.5, 1.0, size=(coords, WAVES))
        self.amps = weights / weights.sum(axis=1, keepdims=True)
        self.progress = 0.0  # periods since the start: the fade-in
        self.last = now
        self.next_at = now

    def advance(self, now: float, rate: float, amount: float) -> tuple[float, ...]:
        dt = min(now - self.last, 0.5)  # a stalled thread does not make the walk leap
        self.last, self.next_at = now, now + TICK_S
        self.phases += 2 * math.pi * rate * dt * self.freqs
        self.progress += rate * dt
        fade = _smoothstep(min(1.0, self.progress))
        signals = (self.amps * np.sin(self.phases)).sum(axis=1)  # each in -1..1
        if self.points is not None:
            weights = np.exp(SHARPNESS * signals)
            target = (weights / weights.sum()) @ self.points
            values = self.anchor + fade * amount * (target - self.anchor)
        else:
            values = np.clip(self.anchor + fade * amount * self.half * signals, self.low, self.high)
        return tuple(float(v) for v in values)


def _smoothstep(x: float) -> float:
    return x * x * (3.0 - 2.0 * x)
