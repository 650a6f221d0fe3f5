"""The tempo: a beat grid on the performance clock that scene recalls and gestures follow.

Times are seconds of the performance clock (`Session.clock()`: the engine's sample clock while an
engine plays, the wall clock without one), never the wall clock, so what is timed against the
grid keeps time with the audio. The grid is a line: beat `ref_beat` falls at `ref_t`, and `bpm`
beats follow each minute; beat 0 is the first downbeat, so bar lines fall on multiples of
`beats_per_bar`.

Two sources:
- `internal` (`tempo.bpm`, `/ravemap/tempo f`): the grid starts at the session's start; a new
  tempo keeps the beat where it is (the grid turns at the present, it never jumps).
- `midi` (`tempo.source: midi`): MIDI clock, 24 ticks per quarter note, with start (the position
  goes back to beat 0), stop (the grid holds) and continue (it goes on from there), and song
  position pointers. The MIDI thread timestamps each message (`time.monotonic()`, when rtmidi hands
  it over) and counts the ticks; the session converts that time to the performance clock when it
  applies the event (`clock_now - (monotonic_now - at)`) and fits a line through the last
  `FIT_TICKS` ticks (least squares: the jitter of single ticks averages out; a tick more than
  `OUTLIER` of an interval off the line is left out of the next fit). Until the clock plays, and
  when no tick has come for `LOST_S`, the grid is stopped: `running` is false.

For the other session collaborators (scenes, gestures):
- `next_boundary(t)`: the time of the next beat (`quantize: beat`) or bar line (`bar`) at or after
  `t`; `t` itself with `quantize: off`, or while the clock is stopped.
- `trim(duration_s)`: a duration rounded to a whole number of beats (at least one) at the tempo now.
- `beats_to_s(beats)`: a number of beats as seconds at the tempo now.

Threads: none of its own. The session thread alone calls every method that changes it (the
`MidiClock` events the MIDI thread posts are applied there); `snapshot` makes the immutable
`TempoView` that other threads read (`status`).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ravemap.audio.controls import check_range

BPM_RANGE = (20.0, 300.0)
TICKS_PER_BEAT = 24  # MIDI clock
FIT_TICKS = 48  # the ticks (two beats) the tempo is fitted over
MIN_FIT = 6  # ticks needed before a tempo is estimated from MIDI clock (a quarter of a beat)
OUTLIER = 0.5  # a tick this many intervals away from the fitted line is left out of the fit
LOST_S = 0.5  # no tick for this long (and no stop): the clock is stopped (cable pulled, program gone)
QUANTIZE = ("off", "beat", "bar")

Quantize = Literal["off", "beat", "bar"]


@dataclass(frozen=True)
class TempoView:
    """What other threads read of the tempo: the grid line and how it is followed."""

    bpm: float
    ref_t: float
    ref_beat: float
    playing: bool
    source: str
    quantize: str
    beats_per_bar: int
    last_tick_t: float | None

    def running(self, now: float) -> bool:
        return _running(self.source, self.playing, self.last_tick_t, now)

    def beat_at(self, t: float) -> float:
        if not self.running(t):
            return self.ref_beat
        return self.ref_beat + (t - self.ref_t) * self.bpm / 60.0

    def status(self, now: float) -> dict[str, object]:
        """`/ravemap/status`'s `tempo`: bpm, the beat count and the phase in the beat and bar, the source."""
        beat = self.beat_at(now)
        return {"bpm": round(self.bpm, 3), "source": self.source, "running": self.running(now),
                "beat": round(beat, 4), "beat_phase": round(beat % 1.0, 4),
                "bar": int(beat // self.beats_per_bar),
                "bar_phase": round((beat % self.beats_per_bar) / self.beats_per_bar, 4),
                "quantize": self.quantize, "beats_per_bar": self.beats_per_bar, "clock_s": round(now, 4)}


def _running(source: str, playing: bool, last_tick_t: float | None, now: float) -> bool:
    if source == "internal":
        return True
    return playing and last_tick_t is not None and now - last_tick_t < LOST_S


def check_bpm(bpm: float) -> float:
    return check_range(bpm, "tempo (bpm)", BPM_RANGE)


def check_quantize(value: str) -> Quantize:
    if value not in QUANTIZE:
        raise ValueError(f"quantize must be one of {', '.join(QUANTIZE)}, got {str(value)[:20]!r}")
    return value  # type: ignore[return-value]


class Tempo:
    def __init__(self, bpm: float = 120.0, source: str = "internal", quantize: str = "off",
                 beats_per_bar: int = 4, now: float = 0.0):
        self.bpm = check_bpm(bpm)
        self.source = source
        self.quantize: Quantize = check_quantize(quantize)
        self.beats_per_bar = int(beats_per_bar)
        self.ref_t = now
        self.ref_beat = 0.0
        self.playing = source == "internal"  # MIDI: between start/continue and stop
        self._transport_seen = False  # MIDI: a start, stop or continue came (without any, ticks play)
        self._ticks: deque[tuple[int, float]] = deque(maxlen=FIT_TICKS + 1)  # (tick count, performance time)
        self._last_tick_t: float | None = None
        self._stopped_at: float | None = None

    # -- reading ------------------------------------------------------------------------------
    def running(self, now: float) -> bool:
        """Whether the grid moves: always for the internal clock; MIDI between start and stop while ticks come."""
        return _running(self.source, self.playing, self._last_tick_t, now)

    @property
    def beat_s(self) -> float:
        return 60.0 / self.bpm

    def beat_at(self, t: float) -> float:
        return self.ref_beat + (t - self.ref_t) / self.beat_s

    def next_boundary(self, t: float) -> float:
        """The next beat (`quantize: beat`) or bar line (`bar`) at or after `t` on the performance clock;
        `t` itself with quantize off or while the clock is stopped."""
        if self.quantize == "off" or not self.running(t):
            return t
        every = 1 if self.quantize == "beat" else self.beats_per_bar
        beat = self.beat_at(t)
        target = math.ceil(beat / every - 1e-9) * every
        return t + max(0.0, target - beat) * self.beat_s

    def trim(self, duration_s: float) -> float:
        """`duration_s` rounded to a whole number of beats at the tempo now, at least one beat."""
        return max(1, round(duration_s / self.beat_s)) * self.beat_s

    def beats_to_s(self, beats: float) -> float:
        return beats * self.beat_s

    def snapshot(self) -> TempoView:
        return TempoView(self.bpm, self.ref_t, self.ref_beat, self.playing, self.source, self.quantize,
                         self.beats_per_bar, self._last_tick_t)

    # -- the internal clock --------------------------------------------------------------------
    def set_bpm(self, bpm: float, now: float) -> float:
        """A new tempo for the internal clock; the beat now stays where it is."""
        if self.source != "internal":
            raise ValueError("the tempo follows MIDI clock (tempo.source: midi); set the tempo on the MIDI "
                             "clock's source, or use tempo.source: internal")
        bpm = check_bpm(bpm)
        self.ref_beat, self.ref_t = self.beat_at(now), now
        self.bpm = bpm
        return bpm

    def set_quantize(self, value: str) -> Quantize:
        self.quantize = check_quantize(value)
        return self.quantize

    # -- following MIDI clock ------------------------------------------------------------------
    def midi(self, kind: str, ticks: int, t: float) -> None:
        """A MIDI clock message at performance time `t`: "tick" (`ticks`: this tick's position, counted
        from 0 at the first tick after a start), "start", "stop", "continue", or "position" (`ticks`: the
        position the next tick has, from a song position pointer)."""
        if self.source != "midi":
            return
        if kind != "tick":
            self._transport_seen = True
        if kind == "start":
            self._ticks.clear()
            self.playing = True
            self.ref_t, self.ref_beat = t, 0.0
            self._stopped_at = None
        elif kind == "stop":
            if self.playing:
                self.ref_beat, self.ref_t = self.beat_at(t), t
            self.playing = False
            self._stopped_at = t
            self._ticks.clear()
        elif kind == "continue":
            self.playing = True
            self.ref_t = t
            self._ticks.clear()
        elif kind == "position":
            self.ref_beat, self.ref_t = ticks / TICKS_PER_BEAT, t
            self._ticks.clear()
        elif kind == "tick":
            self._tick(ticks, t)

    def _tick(self, ticks: int, t: float) -> None:
        self._last_tick_t = t
        if not self._transport_seen:
            self.playing = True  # a clock that sends no start plays from its first tick
        if self._ticks and ticks <= self._ticks[-1][0]:
            self._ticks.clear()  # the count went back (a second clock source, a restart): fit afresh
        self._ticks.append((ticks, t))
        if len(self._ticks) < MIN_FIT:
            if self.playing:
                self.ref_beat, self.ref_t = ticks / TICKS_PER_BEAT, t
            return
        n = np.array([k for k, _ in self._ticks], dtype=float)
        times = np.array([s for _, s in self._ticks], dtype=float)
        slope, intercept = np.polyfit(n, times, 1)
        interval = float(slope)
        if interval > 0:
            off = np.abs(times - (intercept + slope * n)) > OUTLIER * interval
            if off.any() and (~off).sum() >= MIN_FIT:
                slope, intercept = np.polyfit(n[~off], times[~off], 1)
                interval = float(slope)
        if not interval > 0:
            return
        bpm = 60.0 / (interval * TICKS_PER_BEAT)
        self.bpm = min(max(bpm, BPM_RANGE[0]), BPM_RANGE[1])
        if self.playing:
            # The grid through the fitted time of the newest tick (the fit, not the tick's own jittery time).
            self.ref_beat, self.ref_t = ticks / TICKS_PER_BEAT, float(intercept + slope * ticks)
