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
  it over) and counts the ticks. The tempo is fitted on those timestamps: a line through the last
  `FIT_TICKS` ticks by the Theil-Sen estimator (the median of the slopes between ticks at least
  `SPAN` apart, and the median intercept), so the jitter of single ticks averages out and a stall
  of the MIDI thread (a burst of late ticks, up to a quarter of them) does not bend it. The grid then goes through the
  fitted time of the newest tick, moved onto the performance clock by the offset between the two
  clocks (`clock_now - monotonic_now` when the session applies the event), averaged over about a
  beat of ticks (`OFFSET_WEIGHT`): the engine's clock moves a block at a time, and the average
  smooths that staircase out. Until the clock plays, and when no tick has come for `LOST_S`, the
  grid is stopped: `running` is false.

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
SPAN = 8  # the slopes the tempo is the median of are between ticks at least this far apart
OFFSET_WEIGHT = 1 / 24  # each tick's share of the averaged offset between the monotonic and performance clocks
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
        self._ticks: deque[tuple[int, float]] = deque(maxlen=FIT_TICKS + 1)  # (tick count, monotonic time)
        self._last_tick_t: float | None = None  # on the performance clock
        self._offset: float | None = None  # performance clock - monotonic clock, averaged

    # -- reading ------------------------------------------------------------------------------
    def running(self, now: float) -> bool:
        """Whether the grid moves: always for the internal clock; MIDI between start and stop while ticks come."""
        return _running(self.source, self.playing, self._last_tick_t, now)

    @property
    def beat_s(self) -> float:
        return 60.0 / self.bpm

    def beat_at(self, t: float) -> float:
        """The beat at `t` (fractional, from 0 at the first downbeat); where it stopped while MIDI clock is stopped."""
        if not self.playing:
            return self.ref_beat
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
    def midi(self, kind: str, ticks: int, at: float, offset: float) -> None:
        """A MIDI clock message stamped `at` (monotonic): "tick" (`ticks`: this tick's position, counted
        from 0 at the first tick after a start), "start", "stop", "continue", or "position" (`ticks`: the
        position the next tick has, from a song position pointer). `offset`: the performance clock minus
        the monotonic clock as the session applies it."""
        if self.source != "midi":
            return
        self._offset = offset if self._offset is None else self._offset + OFFSET_WEIGHT * (offset - self._offset)
        t = at + self._offset
        if kind != "tick":
            self._transport_seen = True
        if kind == "start":
            self._ticks.clear()
            self.playing = True
            self.ref_t, self.ref_beat = t, 0.0
        elif kind == "stop":
            if self.playing:
                self.ref_beat, self.ref_t = self.beat_at(t), t
            self.playing = False
            self._ticks.clear()
        elif kind == "continue":
            self.playing = True
            self.ref_t = t
            self._ticks.clear()
        elif kind == "position":
            self.ref_beat, self.ref_t = ticks / TICKS_PER_BEAT, t
            self._ticks.clear()
        elif kind == "tick":
            self._tick(ticks, at)

    def _tick(self, ticks: int, at: float) -> None:
        assert self._offset is not None
        self._last_tick_t = at + self._offset
        if not self._transport_seen:
            self.playing = True  # a clock that sends no start plays from its first tick
        if self._ticks and ticks <= self._ticks[-1][0]:
            self._ticks.clear()  # the count went back (a second clock source, a restart): fit afresh
        self._ticks.append((ticks, at))
        if len(self._ticks) < MIN_FIT:
            if self.playing:
                self.ref_beat, self.ref_t = ticks / TICKS_PER_BEAT, self._last_tick_t
            return
        first = self._ticks[0][0]
        n = np.array([k - first for k, _ in self._ticks], dtype=float)
        times = np.array([s - at for _, s in self._ticks], dtype=float)  # small numbers, for precision
        i, j = np.triu_indices(len(n), k=1)
        apart = (n[j] - n[i]) >= min(SPAN, n[-1] / 2)
        slope = float(np.median((times[j] - times[i])[apart] / (n[j] - n[i])[apart]))
        intercept = float(np.median(times - slope * n))
        if not slope > 0:
            return
        self.bpm = min(max(60.0 / (float(slope) * TICKS_PER_BEAT), BPM_RANGE[0]), BPM_RANGE[1])
        if self.playing:
            # The grid through the fitted time of the newest tick (the fit, not the tick's own jittery time).
            fitted = at + float(intercept + slope * (ticks - first))
            self.ref_beat, self.ref_t = ticks / TICKS_PER_BEAT, fitted + self._offset
