"""`engine.latency: auto`: time the model's block on this machine and choose the block size and lead.

How the engine's timing becomes latency. The engine renders a block whenever the output ring
holds less than its *lead* (frames kept ready ahead of the sound card) and reads the
controls (offsets, gain, transfer, pause) as that block starts. So a control change waits for
the next render (at most one block, or one device period when blocks are shorter than a
period), then plays after the lead: control-to-sound is at most `lead + max(block, period)`.
Both should be as short as is safe:

- the block: the smallest multiple of the model's compression ratio whose median time is at
  most `MEDIAN_SHARE` of the block's own duration (room for the resampler, Python and
  whatever else the machine does) and whose worst time fits inside that duration (a size whose
  median fits but one call did not is timed once more: a single slow call is more often another
  process taking the core than the model);
- the lead: long enough to cover the worst block time measured, with a margin
  (`LEAD_SAFETY` times the worst plus `WAKE_MARGIN_S` for the engine thread to wake up, and
  never under `MIN_LEAD_S`, what a busy machine may keep any thread waiting), rounded up by the
  engine to whole device periods. If the machine gets busier than it was when timed and the
  callback finds the ring short anyway, the engine adds a period to the lead after each such
  underrun (up to `MAX_RAISES` periods), and says so: it settles where this machine is safe.

The timing runs the real `BlockProcessor.next_block()` (model, offsets, mix, safety) on the
thread that loads the model (start-up, or the loader thread of a hot swap), before the chosen
processor is warmed up; it costs about a second at most. A hot swap back to a model file that
played before in this process reuses the choice made then (`Playback`), untimed.

An explicit `engine.block_size` or `engine.ahead_blocks` wins over the choice; with
`engine.latency: fixed` nothing is timed and unset values take the first release's 2048 x 3.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

MEDIAN_SHARE = 0.5  # a block's median time must stay within this share of its duration
WORST_SHARE = 1.0  # ... and its worst time within the duration itself
LEAD_SAFETY = 1.5  # lead = LEAD_SAFETY x worst block time + WAKE_MARGIN_S, at least MIN_LEAD_S
WAKE_MARGIN_S = 0.001
MIN_LEAD_S = 0.008  # what a thread may wait on a busy machine (the scheduler, the GIL) beyond its block
MAX_RAISES = 8  # periods the engine may add to the lead after underruns
MAX_BLOCK = 16384  # largest block auto tries (372 ms at 44.1 kHz)
TIMING_SECONDS = 0.25  # audio timed per candidate block size (at least MIN_CALLS blocks)
MIN_CALLS = 12
MAX_CALLS = 64
UNTIMED_CALLS = 3  # TorchScript specialises on a new shape over its first calls
FIXED_BLOCK = 2048  # `engine.latency: fixed` with no explicit values: the first release's settings
FIXED_AHEAD = 3


@dataclass(frozen=True)
class BlockTiming:
    """Seconds per block for one block size, measured on this machine."""

    block: int
    median_s: float
    worst_s: float
    calls: int


@dataclass(frozen=True)
class LatencyChoice:
    """What the engine plays with: block size, lead, and how they were chosen."""

    block: int  # samples per block at the model's rate
    lead_s: float | None  # seconds kept ready ahead of the device (None: `ahead_blocks` whole blocks)
    ahead_blocks: int | None  # explicit whole blocks ahead, when set
    auto: bool  # True when anything was chosen from timings
    timing: BlockTiming | None = None  # the chosen block's timing, when measured

    def describe(self) -> str:
        how = "auto" if self.auto else "fixed"
        if self.timing is None:
            return how
        t = self.timing
        return f"{how}, block time median {1000 * t.median_s:.2f} ms / worst {1000 * t.worst_s:.2f} ms"


def block_fits(timing: BlockTiming, sr: int) -> bool:
    """True when this block size keeps up with room to spare (see the module docstring)."""
    duration = timing.block / sr
    return timing.median_s <= MEDIAN_SHARE * duration and timing.worst_s <= WORST_SHARE * duration


def lead_for(timing: BlockTiming) -> float:
    """Seconds of audio to keep ready so that the slowest block measured still lands in time."""
    return max(MIN_LEAD_S, LEAD_SAFETY * timing.worst_s + WAKE_MARGIN_S)


def candidate_blocks(ratio: int) -> list[int]:
    """ratio, 2 x ratio, 4 x ratio ... up to MAX_BLOCK (always at least one: the ratio itself)."""
    blocks = [ratio]
    while blocks[-1] * 2 <= max(MAX_BLOCK, ratio):
        blocks.append(blocks[-1] * 2)
    return blocks


def choose(ratio: int, sr: int, measure: Callable[[int], BlockTiming], block_size: int | None = None,
           ahead_blocks: int | None = None) -> LatencyChoice:
    """Pick the block and lead for a model of this ratio and rate; `measure(block)` times one size.

    With `block_size` given, only that size is timed (for the lead); with both given nothing is.
    """
    if block_size is not None and ahead_blocks is not None:
        return LatencyChoice(block_size, None, ahead_blocks, auto=False)
    sizes = [block_size] if block_size is not None else candidate_blocks(ratio)
    timing = None
    for size in sizes:
        timing = measure(size)
        if not block_fits(timing, sr) and timing.median_s <= MEDIAN_SHARE * size / sr:
            # Fast enough but one call was slow: the machine, not the model, more often than not
            # (another process took the core). Time it once more and keep the cleaner run.
            again = measure(size)
            timing = again if again.worst_s < timing.worst_s else timing
        if block_fits(timing, sr):
            break
    assert timing is not None
    if ahead_blocks is not None:
        return LatencyChoice(timing.block, None, ahead_blocks, auto=True, timing=timing)
    return LatencyChoice(timing.block, lead_for(timing), None, auto=True, timing=timing)


def time_blocks(next_block: Callable[[], object], block: int, sr: int) -> BlockTiming:
    """Call `next_block` paced as playback paces it: a few untimed calls, then one block every
    block's duration, for TIMING_SECONDS of audio.

    Paced, not back to back: a block that follows a sleep finds the CPU's caches (and, on a
    virtual machine, the core itself) given to others meanwhile, and takes 2-4 times as long
    as one that follows another block (measured on the 2-core test machine: 1.4 ms against 0.37 ms
    for the default model at 256 samples). Back-to-back times chose leads too short to play on.
    """
    calls = min(MAX_CALLS, max(MIN_CALLS, math.ceil(TIMING_SECONDS * sr / block)))
    for _ in range(UNTIMED_CALLS):
        next_block()
    step = block / sr
    times = []
    due = time.perf_counter()
    for _ in range(calls):
        due += step
        start = time.perf_counter()
        next_block()
        end = time.perf_counter()
        times.append(end - start)
        if due > end:
            time.sleep(due - end)
        else:
            due = end
    return BlockTiming(block, statistics.median(times), max(times), calls)
