"""Swapping models and loops while playing: the sound goes on, the swap fades in, the lead is the new model's.

The issue's acceptance (issue 23, fault 7): ten model swaps back and forth between the default model and
the 128-dim fixture while playing at the shipped latency (`engine.latency: auto`), through the session's
loader thread as `/ravemap/model` does; no underrun beyond what the machine makes by itself in the same
time of playing without swaps; no step in the output across a swap larger than what the crossfade allows;
the lead back to what auto chose for the model now playing after each. The same for loop swaps.

The machine's own underruns are measured in the same test: after each swap the model plays on, unswapped,
for as long as the swap took (from the request until its crossfade has been heard and the lead held while
it was prepared has drained), so both models are played without swaps for as long as with them. The loop
is a steady one (the shipped config otherwise): the default loop's onsets after its silences are steps
of its own that a window of a few hundred ms around a swap cannot tell from a click.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

from ravemap import Ravemap, locations
from ravemap.audio.engine import SWAP_CROSSFADE_S
from ravemap.audio.ring import FrameRing, Tap

# Counts underruns against the audio clock: on a machine of its own.
pytestmark = pytest.mark.alone

SWAPS = 10
LOOP_SWAPS = 4  # a loop swap loads no model: four show what ten would, in less of the suite's time
RECORD_S = 240  # room for every swap and the playing between them


class _MarkedTap(Tap):
    """A `Tap` that knows where in the ring's timeline its recording starts."""

    def __init__(self, ring: FrameRing, frames: int, channels: int):
        super().__init__(frames, channels)
        self.ring = ring
        self.start: int | None = None

    def capture(self, out: np.ndarray) -> None:
        if self.start is None:
            self.start = self.ring.read - out.shape[0]  # inside `fill`, after it took these frames
        super().capture(out)


def _chosen_lead(engine) -> int:
    """The lead auto chose for what plays, in whole periods, with no raise."""
    period, choice = engine.period, engine.processor.latency
    assert choice.auto and choice.lead_s is not None, "the shipped latency is auto"
    return max(1, math.ceil(choice.lead_s * engine.out_sr / period)) * period


def _swap_back_and_forth(rm: Ravemap, swap, targets: list[Path]) -> dict:
    """`swap(target)` for each target in turn while playing; per swap the underruns from the request until its
    crossfade has been heard, then as long again of playing without a swap (the machine's own), and the lead."""
    engine = rm.playback.engine
    ring = engine.ring
    fade = round(SWAP_CROSSFADE_S * engine.out_sr)
    report: dict = {"swap_underruns": [], "prepare_underruns": [], "own_underruns": [], "swap_xruns": [],
                    "own_xruns": [], "leads": [], "chosen": [], "at": [], "seconds": []}
    for target in targets:
        underruns, xruns, start = ring.underruns, rm.playback.output.xruns, time.monotonic()
        swaps = engine.stats.swaps
        swap(target)  # returns once the session has applied it: loaded, handed over
        report["prepare_underruns"].append(ring.underruns - underruns)
        deadline = time.monotonic() + 10
        while engine.stats.swaps == swaps or engine._fade is not None or ring.read < engine.last_swap_frame + fade:
            assert time.monotonic() < deadline, f"the swap to {target.name} was not heard"
            time.sleep(0.005)
        while engine.holding:  # the lead held while it was prepared drains back to the chosen one
            assert time.monotonic() < deadline, "the lead held for the swap was not let go"
            time.sleep(0.005)
        time.sleep(0.05)  # the first periods at the chosen lead
        took = time.monotonic() - start
        report["swap_underruns"].append(ring.underruns - underruns)
        report["swap_xruns"].append(rm.playback.output.xruns - xruns)
        report["leads"].append((engine.target_fill, engine.lead_extra, engine.holding))
        report["chosen"].append(_chosen_lead(engine))
        report["at"].append(engine.last_swap_frame)
        report["seconds"].append(took)
        underruns, xruns = ring.underruns, rm.playback.output.xruns
        time.sleep(max(took, 0.3))  # the same time of playing, no swap: the machine's own
        report["own_underruns"].append(ring.underruns - underruns)
        report["own_xruns"].append(rm.playback.output.xruns - xruns)
    return report


def _check_leads(report: dict, period: int) -> None:
    """After each swap the lead is the one auto chose for what plays, the hold let go; a period more only for
    each underrun the machine made since the swap (the engine's answer to a busier machine, not the swap's)."""
    for i, ((lead, extra, held), chosen) in enumerate(zip(report["leads"], report["chosen"], strict=True)):
        assert not held and lead == chosen + extra * period and extra <= report["swap_underruns"][i], (
            f"swap {i}: lead {lead} frames ({extra} periods raised), auto chose {chosen}")


def _steps_across_swaps(tap: _MarkedTap, swaps: list[int], fade: int) -> list[str]:
    """Swaps where the output moves more from one sample to the next than the signal itself does, plus what
    the crossfade's gains add (an equal-power fade over `fade` samples moves each by at most pi / (2 fade) x
    sqrt(2) x the peak)."""
    played = tap.recorded()
    assert tap.start is not None and played.shape[0] < tap.buffer.shape[0], "the recording holds every swap"
    step = np.abs(np.diff(played, axis=0)).max(axis=1)
    fade_allows = math.pi / (2 * fade) * math.sqrt(2) * np.abs(played).max()
    clicks = []
    for i, at in enumerate(swaps):
        at -= tap.start
        around = step[at - 256 : at + fade + 256]
        # The signals' own steps: the old one's before the swap, the new one's from the end of the fade (a model's
        # first blocks may be louder than its later ones: that is its sound, heard in full once the fade is over).
        own = max(step[at - 9600 : at - 512].max(), step[at + fade : at + fade + 9600].max())
        if around.max() > math.sqrt(2) * own + fade_allows:
            where = int(np.argmax(around)) - 256
            clicks.append(f"swap {i}: a step of {around.max():.3f} {where} samples after the crossfade starts, "
                          f"where the signal's own steps reach {own:.3f}")
    return clicks


def _steady_loop(path: Path, hz: tuple[float, ...], seconds: float = 2.0, sr: int = 48000) -> Path:
    """Sines with a whole number of cycles in the loop: no onset and no seam, so a model plays it with steps
    of the same size all the time, and a step at a swap stands out (the default loop's onsets after its
    silences are steps a swap does not make)."""
    t = np.arange(int(seconds * sr)) / sr
    tone = sum(0.3 / len(hz) * np.sin(2 * np.pi * f * t) for f in hz)
    soundfile.write(str(path), np.stack([tone, tone], axis=1).astype(np.float32), sr, subtype="FLOAT")
    return path


@pytest.fixture
def steady_loops(tmp_path) -> tuple[Path, Path]:
    return _steady_loop(tmp_path / "low.wav", (110.0, 220.0)), _steady_loop(tmp_path / "high.wav", (330.0, 495.0))


@pytest.fixture
def playing(tmp_path, steady_loops):
    """The shipped config (default model, latency auto) playing a steady loop on the headless clock."""
    rm = Ravemap(audio="none", loop=steady_loops[0], mappings_dir=tmp_path / "mappings")
    assert rm.config.engine.latency == "auto"
    rm.start()
    engine = rm.playback.engine
    tap = _MarkedTap(engine.ring, engine.out_sr * RECORD_S, engine.out_channels)
    engine.ring.tap = tap
    try:
        yield rm, tap
    finally:
        rm.stop(save=False)


def test_ten_model_swaps_add_no_underrun_no_click_and_leave_the_lead_auto_chose(playing, full_model):
    rm, tap = playing
    engine = rm.playback.engine
    default = locations.embedded_model()
    first_lead = engine.target_fill
    assert engine.lead_extra == 0 and first_lead == _chosen_lead(engine)
    time.sleep(0.5)
    report = _swap_back_and_forth(rm, rm.load_model, [full_model if i % 2 == 0 else default for i in range(SWAPS)])
    print("model swaps:", report)
    assert engine.stats.swaps == SWAPS and engine.stats.errors == 0
    _check_leads(report, engine.period)
    back_on_default = report["chosen"][1::2]
    assert back_on_default == [first_lead] * (SWAPS // 2), "back on the default model, the lead it started with"
    on_full = report["chosen"][0::2]
    assert len(set(on_full)) == 1, f"the full model's lead is chosen once and kept: {on_full}"
    added, own = sum(report["swap_underruns"]), sum(report["own_underruns"])
    assert added <= own, (f"{added} underruns in {sum(report['seconds']):.1f} s of swapping "
                          f"{report['swap_underruns']}, {own} in as long without {report['own_underruns']}")
    assert _steps_across_swaps(tap, report["at"], round(SWAP_CROSSFADE_S * engine.out_sr)) == []


def test_loop_swaps_add_no_underrun_no_click_and_keep_the_lead(playing, steady_loops):
    rm, tap = playing
    engine = rm.playback.engine
    first_lead = engine.target_fill
    time.sleep(0.5)
    report = _swap_back_and_forth(rm, rm.load_loop, [steady_loops[(i + 1) % 2] for i in range(LOOP_SWAPS)])
    print("loop swaps:", report)
    assert engine.stats.swaps == LOOP_SWAPS and engine.stats.errors == 0
    _check_leads(report, engine.period)
    assert report["chosen"] == [first_lead] * LOOP_SWAPS, "the model's own lead throughout"
    added, own = sum(report["swap_underruns"]), sum(report["own_underruns"])
    assert added <= own, (f"{added} underruns in {sum(report['seconds']):.1f} s of swapping "
                          f"{report['swap_underruns']}, {own} in as long without {report['own_underruns']}")
    assert _steps_across_swaps(tap, report["at"], round(SWAP_CROSSFADE_S * engine.out_sr)) == []
