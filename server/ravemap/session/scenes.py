"""Scenes: a snapshot of everything a performer sets, stored with the mapping and recalled with a morph.

`/ravemap/scene/store i N` keeps, as scene N (1..`MAX_SCENE`), the manual latent targets, run mode,
style transfer, the output gain and the chain (scale per latent dim, jitter, mix, the limiter's
ceiling or off, the autopilot's amount and rate) in the mapping (`Mapping.scenes`, saved with it).
The input gain is left out: with `engine.encode: cached` a new input gain encodes the loop again,
which takes as long as a loop swap and could not glide.

`/ravemap/scene/recall i N [f time] [s unit]` morphs every continuous value (targets, gain, scale,
jitter, mix, the limiter's ceiling when it is on in both, the autopilot's amount and rate) in a
straight line from where it is when the morph starts to the scene's, over `time` (0: at once), in
`tempo.morph_unit` or the unit given (beats are turned into seconds at the tempo of the recall).
Switches (run, transfer, the limiter going on or off) flip at the end. With `tempo.quantize` the
morph starts on the next beat or bar line (`Tempo.next_boundary`). A new recall replaces the one
in progress and starts from where that one got to. A performer's own message for a value being
morphed (a latent message for the targets, `/ravemap/mix` for mix...) takes that value over: the
morph leaves it alone from then on. While the targets morph, the autopilot holds (it starts
again from the scene `HOLD_S` after the morph, if the scene's amount is above 0).

Timing: morphs run on the performance clock (`Session.clock()`, the engine's sample clock), not the
wall clock. The session thread steps the morph between events (`wait`, `step`), at least twice per
engine block (`block_s`), so each block the engine renders reads a value of its own; the engine
glides offsets and scales per latent frame and ramps gain and mix over a block, so the straight
line is heard without steps or clicks.

Threads: none of its own. Every method runs on the session thread; `snapshot` makes the immutable
`SceneView` that other threads read.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ravemap.mapping.store import MAX_SCENE, Scene
from ravemap.session.autopilot import Autopilot
from ravemap.session.outcomes import CommandError
from ravemap.session.tempo import Tempo

if TYPE_CHECKING:
    from ravemap.audio.controls import EngineControls
    from ravemap.control.feedback import Feedback
    from ravemap.session.chain import ChainCommands
    from ravemap.session.engine import EngineCommands
    from ravemap.session.keeper import MappingKeeper

log = logging.getLogger("ravemap.session")

TICK_S = 0.02  # the longest step of a morph (an engine block of 40 ms or more is stepped twice in it)
MIN_TICK_S = 0.002
# What a performer's command takes over from a morph (command name -> the scene's field).
TAKES_OVER = {"gain": "gain_db", "scale": "scale", "scale_dim": "scale", "jitter": "jitter", "mix": "mix",
              "limit": "limit_db", "autopilot": "autopilot", "autopilot_rate": "autopilot_rate", "run": "running",
              "transfer": "transfer"}


@dataclass(frozen=True)
class SceneView:
    """What other threads read: the stored scene numbers and the recall in progress (if any)."""

    stored: tuple[int, ...]
    number: int | None  # the scene recalled last (or being recalled)
    state: str  # "idle", "waiting" (for its beat or bar line), "morphing"
    starts_at: float | None  # on the performance clock: when it is due (the beat or bar line with quantize)
    began_at: float | None  # when its first step was taken
    ends_at: float | None
    progress: float  # 0..1 of the morph (1 when done)

    def status(self) -> dict[str, object]:
        return {"number": self.number, "state": self.state, "starts_at": self.starts_at, "began_at": self.began_at,
                "ends_at": self.ends_at, "progress": round(self.progress, 4)}


@dataclass
class Step:
    """What the core applies of one morph step: the targets and, at the end, run mode."""

    targets: tuple[float, ...] | None
    running: bool | None  # the scene's run mode, at the end only


@dataclass
class _Morph:
    number: int
    scene: Scene
    starts_at: float
    duration: float
    source: Scene | None = None  # where each value was when the morph started
    began_at: float | None = None
    progress: float = 0.0


class Scenes:
    def __init__(self, controls: EngineControls, feedback: Feedback, autopilot: Autopilot, chain: ChainCommands,
                 engine: EngineCommands, keeper: MappingKeeper, tempo: Tempo, morph_unit: str,
                 clock: Callable[[], float], performer: Callable[[], tuple[tuple[float, ...], bool]],
                 block_s: Callable[[], float | None]):
        self.controls = controls
        self.feedback = feedback
        self.autopilot = autopilot
        self.chain = chain
        self.engine = engine
        self.keeper = keeper
        self.tempo = tempo
        self.morph_unit = morph_unit
        self.clock = clock
        self.performer = performer  # (targets, running) as the core has them
        self.block_s = block_s
        self.morph: _Morph | None = None
        self.last: int | None = None
        self._ended: tuple[float | None, float | None, float | None] = (None, None, None)  # the last morph's times
        self._taken: set[str] = set()

    def handlers(self) -> dict[str, Callable[..., object]]:
        return {
            "scene_store": lambda event, number: self.store(number),
            "scene_recall": lambda event, number, seconds=0.0, unit=None: self.recall(number, seconds, unit),
            "tempo": lambda event, bpm: self.set_bpm(bpm),
            "quantize": lambda event, value: self.set_quantize(value),
        }

    # -- commands ------------------------------------------------------------------------------
    def capture(self) -> Scene:
        """Everything a performer sets, as it is now."""
        targets, running = self.performer()
        c = self.controls
        return Scene(tuple(targets), running, c.transfer, c.gain_db, tuple(c.scale), c.jitter, c.mix, c.limit_db,
                     self.autopilot.amount, self.autopilot.rate)

    def store(self, number: int) -> list[int]:
        _check_number(number, "/ravemap/scene/store")
        self.keeper.mapping.scenes[number] = self.capture()
        self.keeper.changed()
        stored = sorted(self.keeper.mapping.scenes)
        self.feedback.broadcast("/ravemap/scenes", *stored)
        return stored

    def recall(self, number: int, amount: float, unit: str | None) -> float:
        """Start a recall (on the next beat or bar line with quantize); returns when it starts (performance clock)."""
        where = "/ravemap/scene/recall"
        _check_number(number, where)
        if isinstance(amount, bool) or not isinstance(amount, int | float) or not math.isfinite(amount) or amount < 0:
            raise CommandError(f"{where}: the morph time must be a finite number, 0 or more, got {amount!r}")
        unit = unit or self.morph_unit
        if unit not in ("seconds", "beats"):
            raise CommandError(f"{where}: the morph time's unit is seconds or beats, got {unit!r}")
        scene = self.keeper.mapping.scenes.get(number)
        if scene is None:
            stored = ", ".join(str(n) for n in sorted(self.keeper.mapping.scenes)) or "none yet"
            raise CommandError(f"{where}: no scene {number} is stored (stored: {stored}); store it first with "
                               "/ravemap/scene/store")
        duration = self.tempo.beats_to_s(amount) if unit == "beats" else float(amount)
        now = self.clock()
        starts_at = self.tempo.next_boundary(now)
        self.morph = _Morph(number, scene, starts_at, duration)
        self.last = number
        self._taken = set()
        self.feedback.broadcast("/ravemap/scene", number)
        return starts_at

    def set_bpm(self, bpm: float) -> float:
        try:
            result = self.tempo.set_bpm(bpm, self.clock())
        except (TypeError, ValueError) as err:
            raise CommandError(f"/ravemap/tempo: {err}") from None
        self.feedback.broadcast("/ravemap/tempo", result)
        return result

    def set_quantize(self, value: str) -> str:
        try:
            result = self.tempo.set_quantize(value)
        except ValueError as err:
            raise CommandError(f"/ravemap/quantize: {err}") from None
        self.feedback.broadcast("/ravemap/quantize", result)
        return result

    def take_over(self, field: str) -> None:
        """A performer's own message for `field` (a `Scene` field): the morph leaves it alone."""
        if self.morph is not None:
            self._taken.add(field)

    def command_taken(self, name: str) -> None:
        field = TAKES_OVER.get(name)
        if field is not None:
            self.take_over(field)

    # -- stepping ---------------------------------------------------------------------------------
    def wait(self, now: float) -> float | None:
        """How long the session thread may wait for an event before the next step (None: nothing to step)."""
        if self.morph is None:
            return None
        block = self.block_s()
        tick = TICK_S if block is None else min(TICK_S, max(MIN_TICK_S, block / 2))
        return min(max(0.0, self.morph.starts_at - now), tick)

    def step(self, now: float) -> Step | None:
        """Set the chain's values for `now` and return what the core applies; None while nothing moves."""
        morph = self.morph
        if morph is None or now < morph.starts_at:
            return None
        if morph.source is None:
            morph.source, morph.began_at = self.capture(), now
        source, scene, taken = morph.source, morph.scene, self._taken
        w = 1.0 if morph.duration <= 0 else min(1.0, (now - morph.starts_at) / morph.duration)
        morph.progress = w
        end = w >= 1.0
        c = self.controls
        if "gain_db" not in taken:
            c.set_gain_db(_mix(source.gain_db, scene.gain_db, w))
        if "scale" not in taken and scene.scale:
            n = min(len(c.scale), len(scene.scale), len(source.scale))
            if n:
                c.set_scale(tuple(_mix(a, b, w) for a, b in zip(source.scale[:n], scene.scale[:n], strict=True))
                            + tuple(c.scale[n:]))
        if "jitter" not in taken:
            c.set_jitter(_mix(source.jitter, scene.jitter, w))
        if "mix" not in taken:
            c.set_mix(_mix(source.mix, scene.mix, w))
        if "limit_db" not in taken:
            if source.limit_db is not None and scene.limit_db is not None:
                c.set_limit_db(_mix(source.limit_db, scene.limit_db, w))
            elif end:
                c.set_limit_db(scene.limit_db)
        if "autopilot_rate" not in taken:
            self.autopilot.set_rate(_mix(source.autopilot_rate, scene.autopilot_rate, w))
        if "autopilot" not in taken and not self.autopilot.prior:
            self.autopilot.set_amount(_mix(source.autopilot, scene.autopilot, w))
        targets = None
        if "targets" not in taken and len(source.targets) == len(scene.targets):
            targets = tuple(_mix(a, b, w) for a, b in zip(source.targets, scene.targets, strict=True))
            self.autopilot.take_over(time.monotonic())  # the walk holds while the targets morph
        running = None
        if end:
            if "transfer" not in taken:
                self.engine.transfer(scene.transfer)
            running = None if "running" in taken else scene.running
            self._announce(scene, taken)
            self._ended = (morph.starts_at, morph.began_at, morph.starts_at + morph.duration)
            self.morph = None
        return Step(targets, running)

    def _announce(self, scene: Scene, taken: set[str]) -> None:
        """The morph ended: tell the controllers the values it set (during it, the page reads the status)."""
        c = self.controls
        self.feedback.broadcast("/ravemap/gain", c.gain_db)
        self.feedback.broadcast("/ravemap/scale", *[float(v) for v in c.scale])
        self.feedback.broadcast("/ravemap/jitter", c.jitter)
        self.feedback.broadcast("/ravemap/mix", c.mix)
        if c.limit_db is None:
            self.feedback.broadcast("/ravemap/limit/off")
        else:
            self.feedback.broadcast("/ravemap/limit", c.limit_db)
        self.feedback.broadcast("/ravemap/autopilot/rate", self.autopilot.rate)
        if "autopilot" not in taken and not self.autopilot.prior:
            self.chain.autopilot_amount(scene.autopilot)  # the exact value, and prior mode kept in step

    # -- reading ----------------------------------------------------------------------------------
    def snapshot(self) -> SceneView:
        stored = tuple(sorted(self.keeper.mapping.scenes))
        morph = self.morph
        if morph is None:
            starts, began, ends = (None if t is None else round(t, 6) for t in self._ended)
            return SceneView(stored, self.last, "idle", starts, began, ends, 1.0 if self.last is not None else 0.0)
        state = "waiting" if morph.source is None else "morphing"
        began = None if morph.began_at is None else round(morph.began_at, 6)
        return SceneView(stored, morph.number, state, round(morph.starts_at, 6), began,
                         round(morph.starts_at + morph.duration, 6), morph.progress)


def _mix(a: float, b: float, w: float) -> float:
    return b if w >= 1.0 else a + (b - a) * w


def _check_number(number: object, where: str) -> int:
    if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= MAX_SCENE:
        raise CommandError(f"{where}: the scene must be an int in 1..{MAX_SCENE}, got {number!r}")
    return number

