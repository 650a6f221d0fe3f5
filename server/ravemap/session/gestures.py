"""Gestures: recorded streams of input vectors with their timing, played back as a controller would.

- Recording: `/ravemap/gesture/record 1 [name]` starts (the default name is the next free `gesture-N`;
  a name is checked like a mapping's, and recording under a gesture's name replaces it at the end);
  from then on every new input vector the session applies (OSC routes, Wekinator's port, MIDI, the page,
  the Python API, the autopilot's walk) is kept with its time since the start. `/ravemap/gesture/record 0`
  ends it: its length is the time from start to end, passed through `trim` (see below), and it is kept
  with the mapping (saved in the mapping file). A gesture with fewer than two different vectors (no
  movement) is refused. `record 1` while recording starts again (what was recorded is dropped);
  `record 0` while not recording does nothing (a momentary button's release).
- Playing: `/ravemap/gesture/play name [speed] [loop]` (speed 0.1..10, default 1; loop 1 by default)
  applies its vectors at their times (divided by the speed), from `start_at`, each exactly as a
  controller's input would be applied (in run mode through the mapping, recorded as an example in
  record mode). Between two recorded vectors the input holds the earlier one, as it did while
  recording; a loop starts again after `length`. Without loop it ends after `length` on the last vector.
  `/ravemap/gesture/stop` stops it where it is. An input from anywhere else (a controller touched)
  takes over: the gesture stops. A mapping switch (load, new) stops both the playing and the recording.

Timing: every time here is on the session's performance clock (`Session.clock()`: the engine's sample
clock while an engine plays, the wall clock without one), for the recorded times and for playback,
so a gesture keeps time with the audio the engine renders: the engine applies the input of a block
at the start of that block, and playback applies each vector at the block it was recorded at (at
most one block late, when the session thread is held up). The session thread steps playback between
events: `wait` says how long it may wait for the next event, until the next vector is due but at most
`TICK_S` (and `TICK_S` while the engine's clock stands still between two blocks).

Quantize (the session's tempo, `ravemap.session.tempo`): `GestureCommands.trim(duration_s) -> duration_s`
is applied to a recording's length when it ends (identity by default; the session sets it to whole
beats while `tempo.quantize` is on; vectors later than the trimmed length are dropped), and
`play(..., start_at=clock seconds)` starts playback then rather than now (None: now); the handler takes
it from `start_at(now)`, the tempo's next beat or bar line under quantize.

Threads: none of its own. Every method runs on the session thread (its handlers are part of
`Session.handlers`); the gestures themselves are immutable `ravemap.mapping.store.Gesture` values.
"""

from __future__ import annotations

import bisect
import logging
import math
import re
from collections.abc import Callable
from collections.abc import Mapping as ReadOnly
from dataclasses import dataclass, field
from types import MappingProxyType

from ravemap.control.events import Command
from ravemap.control.feedback import Feedback
from ravemap.mapping.store import MAX_GESTURE_POINTS, MAX_GESTURE_S, MAX_GESTURES, Gesture, Mapping, check_name
from ravemap.ratelimit import RateLimitedLog
from ravemap.session.outcomes import CommandError

log = logging.getLogger("ravemap.session")

TICK_S = 0.01  # playback is stepped at least this often while a gesture plays (10 ms)
# The engine's clock is a sum of block durations: a recorded time and the same time in playback, both
# differences of such sums, may differ in their last bits. A vector is due this much before its time, so
# rounding never puts it a block late (far below a sample's duration).
CLOCK_EPSILON_S = 1e-6
SPEED_RANGE = (0.1, 10.0)
_DEFAULT_NAME = re.compile(r"gesture-(\d{1,9})")


def no_trim(duration_s: float) -> float:
    """The default `trim`: a recording is as long as it was."""
    return duration_s


@dataclass
class Recording:
    name: str
    started: float  # clock seconds
    times: list[float] = field(default_factory=list)
    inputs: list[tuple[float, ...]] = field(default_factory=list)


@dataclass
class Playing:
    gesture: Gesture
    start_at: float  # clock seconds at which position 0 plays
    speed: float
    loop: bool
    applied: tuple[int, int] = (-1, -1)  # (cycle, index) of the vector applied last

    def elapsed(self, now: float) -> float:
        """Seconds into the gesture (across loops), at the gesture's own pace; negative before it starts."""
        return (now - self.start_at) * self.speed


class GestureCommands:
    """The gestures' recorder and player, and their commands (`handlers()`)."""

    def __init__(self, feedback: Feedback, mapping: Callable[[], Mapping], changed: Callable[[], None]):
        self.feedback = feedback
        self._mapping = mapping  # the current mapping (the keeper's)
        self._changed = changed  # marks the mapping changed (saved later)
        self.trim: Callable[[float], float] = no_trim  # the quantize hook for a recording's length
        self.recording: Recording | None = None
        self.playing: Playing | None = None
        self._last_now = -math.inf  # the clock when playback was last stepped
        self._log = RateLimitedLog(log, seconds=2.0)

    def handlers(self, clock: Callable[[], float], input_size: Callable[[], int],
                 start_at: Callable[[float], float] | None = None) -> dict[str, Callable[..., object]]:
        """This concern's part of the session's handler table; `clock` is the session's performance clock,
        `input_size` the length of its input vector now, and `start_at(now)` when a playback asked for now
        starts (the tempo's next beat or bar line under quantize; now without it)."""

        def play(event: Command, name: str, speed: float = 1.0, loop: object = 1) -> str:
            now = clock()
            return self.play(name, speed, loop, now, input_size(), start_at(now) if start_at is not None else None)

        return {
            "gesture_record": lambda event, on, name=None: self.record(event, bool(on), name, clock()),
            "gesture_play": play,
            "gesture_stop": lambda event: self.stop(),
            "gesture_delete": lambda event, name: self.delete(name),
        }

    # -- reading ---------------------------------------------------------------------------
    def names(self) -> tuple[str, ...]:
        return tuple(g.name for g in self._mapping().gestures)

    def find(self, name: str) -> Gesture | None:
        return next((g for g in self._mapping().gestures if g.name == name), None)

    @property
    def recording_name(self) -> str | None:
        return self.recording.name if self.recording is not None else None

    def report(self, now: float) -> ReadOnly[str, object] | None:
        """The gesture playing, for `/ravemap/status`: name, length (seconds), speed, loop, position
        (seconds into it, at its own pace), cycle (loops done) and clock (the performance clock `now`, when
        this was reported); None when none plays."""
        playing = self.playing
        if playing is None:
            return None
        elapsed = max(0.0, playing.elapsed(now))
        length = playing.gesture.length
        cycle, position = divmod(elapsed, length) if playing.loop else (0.0, min(elapsed, length))
        return MappingProxyType({"name": playing.gesture.name, "length": length, "speed": playing.speed,
                                 "loop": playing.loop, "position": round(position, 4), "cycle": int(cycle),
                                 "clock": now})

    # -- recording -------------------------------------------------------------------------
    def record(self, event: Command, on: bool, name: str | None, now: float) -> str | None:
        """Start (`on`) or end a recording; returns the gesture's name (an API caller gets it)."""
        if on:
            return self.start_recording(name, now)
        return self.finish_recording(now)

    def start_recording(self, name: str | None, now: float) -> str:
        name = check_name(name, "gesture name") if name is not None else self.free_name()
        if self.find(name) is None and len(self._mapping().gestures) >= MAX_GESTURES:
            raise CommandError(f"/ravemap/gesture/record: mapping {self._mapping().name!r} holds {MAX_GESTURES} "
                               "gestures, the most it keeps; delete one (/ravemap/gesture/delete) or record under "
                               "the name of one to replace it")
        if self.recording is not None:
            log.info("gesture %r: recording again as %r (what was recorded is dropped)", self.recording.name, name)
        self.recording = Recording(name, now)
        self.feedback.broadcast("/ravemap/gesture/record", 1, name)
        return name

    def free_name(self) -> str:
        """The next `gesture-N` after the highest one the mapping holds."""
        numbers = [int(m.group(1)) for n in self.names() if (m := _DEFAULT_NAME.fullmatch(n))]
        return f"gesture-{max(numbers, default=0) + 1}"

    def moved(self, now: float, inputs: tuple[float, ...]) -> None:
        """A new input vector was applied (from anywhere): kept with its time while recording."""
        recording = self.recording
        if recording is None:
            return
        if recording.inputs and len(inputs) != len(recording.inputs[0]):
            log.info("gesture %r: the input size changed to %d; recording starts over", recording.name, len(inputs))
            recording.times.clear()
            recording.inputs.clear()
        if len(recording.inputs) >= MAX_GESTURE_POINTS:
            self._log.warning("gesture %r holds %d input vectors, the most a gesture keeps; later ones are not kept",
                              recording.name, MAX_GESTURE_POINTS, key="full")
            return
        recording.times.append(max(0.0, now - recording.started))
        recording.inputs.append(tuple(float(v) for v in inputs))

    def finish_recording(self, now: float) -> str | None:
        """End the recording: the new gesture is kept with the mapping (replacing one of its name)."""
        recording, self.recording = self.recording, None
        if recording is None:
            return None  # nothing was recording: a button's release
        self.feedback.broadcast("/ravemap/gesture/record", 0, recording.name)
        where = f"/ravemap/gesture/record: gesture {recording.name!r}"
        if len(set(recording.inputs)) < 2:
            raise CommandError(f"{where} holds no movement ({len(recording.inputs)} input vector(s)"
                               f"{', all the same' if recording.inputs else ''}); not kept: move a controller (the "
                               "pad, /ravemap/xy, /wek/inputs) while recording")
        length = float(self.trim(max(0.0, now - recording.started)))
        if not (math.isfinite(length) and length > 0.0):
            raise CommandError(f"{where} would last {length:g} s on the performance clock (the engine's clock moves "
                               "a block at a time); not kept: record a longer gesture")
        length = min(length, MAX_GESTURE_S)
        kept = bisect.bisect_right(recording.times, length)
        times, inputs = tuple(recording.times[:kept]), tuple(recording.inputs[:kept])
        if len(set(inputs)) < 2:
            raise CommandError(f"{where} holds no movement within its {length:g} s; not kept")
        gesture = Gesture(recording.name, length, times, inputs)
        mapping = self._mapping()
        old = [g.name for g in mapping.gestures]
        if gesture.name in old:
            mapping.gestures = tuple(gesture if g.name == gesture.name else g for g in mapping.gestures)
        else:
            mapping.gestures = (*mapping.gestures, gesture)
        self._changed()
        log.info("gesture %r: %d input vectors over %.3f s", gesture.name, len(times), length)
        self.feedback.broadcast("/ravemap/gesture/recorded", gesture.name, float(length), len(times))
        return gesture.name

    def delete(self, name: str) -> None:
        name = check_name(name, "gesture name")
        mapping = self._mapping()
        if self.find(name) is None:
            raise CommandError(f"/ravemap/gesture/delete: no gesture {name!r} in mapping {mapping.name!r}"
                               f"{'; it holds ' + ', '.join(self.names()) if mapping.gestures else ''}")
        if self.playing is not None and self.playing.gesture.name == name:
            self.stop()
        mapping.gestures = tuple(g for g in mapping.gestures if g.name != name)
        self._changed()

    # -- playing ---------------------------------------------------------------------------
    def play(self, name: str, speed: float, loop: object, now: float, input_size: int,
             start_at: float | None = None) -> str:
        """Play gesture `name` from `start_at` (clock seconds; None: now), `speed` times as fast."""
        name = check_name(name, "gesture name")
        if isinstance(speed, bool) or not isinstance(speed, int | float) or not math.isfinite(speed) \
                or not SPEED_RANGE[0] <= speed <= SPEED_RANGE[1]:
            raise CommandError(f"/ravemap/gesture/play: speed must be a number in {SPEED_RANGE[0]:g}.."
                               f"{SPEED_RANGE[1]:g}, got {speed!r:.40}")
        if isinstance(loop, bool | int | float) and loop in (0, 1):
            looping = bool(loop)
        else:
            raise CommandError(f"/ravemap/gesture/play: loop must be 1 or 0, got {loop!r:.40}")
        gesture = self.find(name)
        if gesture is None:
            held = ", ".join(self.names())
            raise CommandError(f"/ravemap/gesture/play: no gesture {name!r} in mapping {self._mapping().name!r} "
                               f"({'it holds ' + held if held else 'it holds none yet: record one with '}"
                               f"{'' if held else '/ravemap/gesture/record 1'})")
        size = len(gesture.inputs[0])
        if size != input_size:
            raise CommandError(f"/ravemap/gesture/play: gesture {name!r} holds {size} inputs, but the mapping takes "
                               f"{input_size}; record it again")
        self.playing = Playing(gesture, now if start_at is None else float(start_at), float(speed), looping)
        self._last_now = -math.inf
        self.feedback.broadcast("/ravemap/gesture/playing", name)
        return name

    def stop(self) -> None:
        if self.playing is not None:
            self.playing = None
            self.feedback.broadcast("/ravemap/gesture/playing", "")

    def take_over(self) -> None:
        """A controller touched the inputs: the gesture stops where it is."""
        self.stop()

    def reset(self) -> None:
        """A mapping switch: nothing plays or records any more."""
        self.stop()
        if self.recording is not None:
            log.info("gesture %r: not kept (the mapping was switched while recording)", self.recording.name)
            self.recording = None
            self.feedback.broadcast("/ravemap/gesture/record", 0, "")

    def wait(self, now: float) -> float | None:
        """How long the session thread may wait for an event before the next step (None: nothing plays)."""
        playing = self.playing
        if playing is None:
            return None
        if now <= self._last_now:
            return TICK_S  # the engine's clock stands still between two blocks
        return min(max(0.0, self._next_due(playing, now) - now), TICK_S)

    def _next_due(self, playing: Playing, now: float) -> float:
        """Clock seconds at which the next vector (or the end) is due."""
        elapsed = playing.elapsed(now)
        if elapsed < 0:
            return playing.start_at
        gesture = playing.gesture
        cycle, index = playing.applied
        if index + 1 < len(gesture.times):
            at = max(0, cycle) * gesture.length + gesture.times[index + 1]
        else:
            at = (max(0, cycle) + 1) * gesture.length + (gesture.times[0] if playing.loop else 0.0)
        return playing.start_at + at / playing.speed - CLOCK_EPSILON_S

    def step(self, now: float) -> tuple[float, ...] | None:
        """The input vector due now, or None (nothing new due, or nothing plays). A gesture that does not
        loop ends after its length, on its last vector."""
        playing = self.playing
        if playing is None:
            return None
        self._last_now = now
        elapsed = playing.elapsed(now) + CLOCK_EPSILON_S
        if elapsed < 0:
            return None
        gesture = playing.gesture
        if not playing.loop and elapsed >= gesture.length:
            self.stop()
            last = len(gesture.times) - 1
            return gesture.inputs[last] if playing.applied != (0, last) else None
        cycle, position = divmod(elapsed, gesture.length)
        index = bisect.bisect_right(gesture.times, position) - 1
        if index < 0 or (int(cycle), index) == playing.applied:
            return None  # before its first vector, the input holds the last one (as it did while recording)
        playing.applied = (int(cycle), index)
        return gesture.inputs[index]
