"""The engine thread: renders each block as late as is safe, just ahead of the audio callback.

The lead. The engine keeps `target_fill` frames ready in the output ring: the lead chosen
for the model (`engine.latency: auto`, server/ravemap/audio/latency.py) or `ahead_blocks` whole blocks,
rounded up to whole device periods (the callback takes a period at a time; the period is
learnt from the callback itself). It renders the next block as soon as the ring holds less
than that, and the block reads the controls as it starts: a control change waits at most one
block (or one period, if blocks are shorter) plus the lead before it is heard. After an
underrun with a chosen lead, the lead grows by a period (a few times at most), so a machine
busier than when it was timed settles on a safe lead. Playing a loop, it comes back down a period
at a time after each `lead_recovery_s` with no underrun (never below the chosen lead), so a stall
early in a long set does not cost latency for the rest of it. Live input keeps a raised lead: a
lowering would shift the delay from the input to the output mid-performance, a jump the player
hears and must adapt to, worse than a few ms more latency. Each change is logged and counted.

Live input keeps its delay. The delay from the input callback to the output is the frames in
the output ring plus the input waiting to be processed; callbacks and renders move frames from
one side to the other and leave the sum alone, so only an underrun (silence played instead of
frames) or late input changes it. Before each live block the engine compares the sum with its
target and, when it has grown, drops the oldest input with a short crossfade
(`LiveInput.keep_delay`), counting the re-alignment.

Threads and what each may do here:
- engine thread (owned by `Engine`, named "ravemap-engine"): the only thread that runs
  the model while playing. It sleeps on the ring's doorbell, which the callback rings each
  time it takes a period (no lock to share with the callback; a swap is taken at the next
  wake-up, `stop` rings it too, `WAIT_S` at most when the callback takes nothing), calls
  `BlockProcessor.next_block()`, resamples to the device's rate with a soxr stream, maps to the
  device's channels (a mono block goes to the ring as it is: its copy fills every channel) and
  writes the ring.
  It swaps in a new processor (hot swap of model or loop) only between blocks, with a crossfade
  (below). An exception in a block is counted and that block plays as silence; the thread never dies.
- audio callback (stream.py / headless.py): reads the ring with `FrameRing.fill` only.
- control threads: publish values on `EngineControls`, and hand a ready-built processor
  to `Engine.swap` (building it, which loads and encodes, happens on their thread); `hold_lead`,
  `wait_for_lead`, `wait_for_swap` and clearing `retired` are theirs too (one swap at a time,
  `Playback`'s lock).

Swaps crossfade. A new processor arrives loaded, encoded, timed and warmed up (on the control
thread that built it): the old one plays until then. While it is prepared the control side holds the
lead at `playback.PREPARE_LEAD_S` (`hold_lead`): `torch.jit.load` holds the GIL for its whole length
(20 ms for the default model, 90-250 ms for a 126 MB export), during which no Python thread runs, so
the ring must hold more than that before loading starts. Handed over, the new processor takes over
only once the ring holds its own chosen lead (a heavier model's lead covers its slower first block;
the old processor renders until then). The old processor renders one more block; all of it but its
last `SWAP_CROSSFADE_S` (20 ms) goes to the ring at once, and that last part fades out under the
new processor's first 20 ms with equal-power gains (cos/sin), rendered at once while the ring is
full. The new processor's limiter starts empty: its first `lookahead` samples (the silence in its
delay line) are dropped, so its own sound starts under the fade. The processor replaced is kept
in `retired` for the control side to free (letting go of a model holds the GIL 15-45 ms: not on
this thread). The lead becomes the one chosen for the new processor: raises made for the old model
(or by the swap) are dropped, and underruns while the crossfade renders do not raise it. A hold
let go (`hold_lead(None)`) drains at `HOLD_RELEASE_RATE` of real time, so the engine keeps
rendering as the ring comes down: after a long idle, its first block at the chosen lead would run
on a cold cache.

Nothing here blocks the callback: the ring has no lock, and the engine sleeps on the
doorbell when the ring is full.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass

import numpy as np
import soxr
import torch

from ravemap.audio.latency import MAX_RAISES
from ravemap.audio.live import LiveInput
from ravemap.audio.processor import BlockProcessor
from ravemap.audio.realtime import raise_thread_priority
from ravemap.audio.ring import FrameRing
from ravemap.audio.source import adapt_channels
from ravemap.ratelimit import RateLimitedLog

log = logging.getLogger("ravemap.engine")

WAIT_S = 0.05  # longest sleep on the doorbell (`stop` rings it): one wake-up a period, not three as at 2 ms
RESAMPLER_HEADROOM = 64  # frames a soxr stream may release beyond a block's share
MIN_RING_FRAMES = 1 << 17  # the ring is allocated once; room for any block auto may choose
SWAP_CROSSFADE_S = 0.020  # equal-power crossfade from the old processor to the new one at a hot swap
HOLD_RELEASE_RATE = 0.5  # a released hold drains the ring at this share of real time (`hold_lead`)


@dataclass
class EngineStats:
    """Counters the daemon reports; written by the engine thread, read by anyone."""

    blocks: int = 0
    errors: int = 0
    worst_block_s: float = 0.0
    total_block_s: float = 0.0
    swaps: int = 0

    def add_block(self, seconds: float) -> None:
        self.blocks += 1
        self.total_block_s += seconds
        if seconds > self.worst_block_s:
            self.worst_block_s = seconds


def configure_torch(threads: int) -> None:
    """Set torch's intra-op thread count (process-wide) before the engine starts."""
    torch.set_num_threads(max(1, int(threads)))


class Engine:
    """Runs a `BlockProcessor` in its own thread, feeding a ring at the output's rate.

    `period_hint`: frames the output is expected to take per callback, until the callback
    says otherwise (the headless clock's period, or the device's low-latency buffer).
    """

    def __init__(self, processor: BlockProcessor, out_sr: int, out_channels: int, period_hint: int = 256,
                 lead_recovery_s: float = 30.0):
        self.processor = processor
        self.out_sr = int(out_sr)
        self.out_channels = int(out_channels)
        self.period_hint = max(1, int(period_hint))
        self.stats = EngineStats()
        self._pending: BlockProcessor | None = None
        self.retired: BlockProcessor | None = None  # the processor a swap replaced, for the control side to free
        self.taken: BlockProcessor | None = None  # the processor the last swap put in place, set once it is done
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._errors = RateLimitedLog(log, seconds=5.0)
        self._period_seen = 0
        self._underruns_seen = 0
        self.lead_recovery_s = float(lead_recovery_s)  # calm seconds before a period comes off; 0: never
        self.lead_extra = 0  # periods the lead holds now beyond the chosen one (latency.MAX_RAISES at most)
        self.lead_raises = 0  # times a period was added after an underrun (a counter for the status)
        self.lead_lowerings = 0  # times a period came off after lead_recovery_s with no underrun
        self._calm_since = time.monotonic()  # the last underrun or change of the lead
        self.lead_held = 0  # frames kept ready at least while a swap is prepared (`hold_lead`); 0: none
        self._hold_released_at: float | None = None  # when `hold_lead(None)` let go: the hold drains from then
        self._held_seen = 0
        self._fade: np.ndarray | None = None  # the old processor's last frames, fading out under the new one's
        self._fade_pos = 0
        self._skip = 0  # samples still to drop from the start of a swapped-in processor (its limiter's delay)
        self.last_swap_frame: int | None = None
        self.priority = "not started"
        self._configure_output(processor)
        self.ring = FrameRing(capacity=max(MIN_RING_FRAMES, 4 * (self.target_fill + self.block_out)),
                              channels=self.out_channels)

    def _configure_output(self, processor: BlockProcessor) -> None:
        model_sr = processor.model.info.sr
        self.block_out = self._block_out(processor)
        self._resampler = (
            None
            if model_sr == self.out_sr
            else soxr.ResampleStream(model_sr, self.out_sr, processor.out_channels, dtype="float32",
                                     quality="HQ")
        )
        self.block_seconds = processor.block_s
        self._update_target(processor)

    def _block_out(self, processor: BlockProcessor) -> int:
        """Most frames one block can become at the output rate (soxr may hold back or release a few)."""
        model_sr = processor.model.info.sr
        headroom = 0 if model_sr == self.out_sr else RESAMPLER_HEADROOM
        return int(np.ceil(processor.block * self.out_sr / model_sr)) + headroom

    @property
    def period(self) -> int:
        """Frames the output takes per callback: the largest seen so far, else the hint."""
        ring = getattr(self, "ring", None)
        return ring.period if ring is not None and ring.period else self.period_hint

    def _update_target(self, processor: BlockProcessor) -> None:
        """The lead in frames: what the latency choice asks, in whole periods, at least one."""
        period = self.period
        lead = self._chosen_lead(processor) + self.lead_extra * period
        held = self.hold_now()
        self.target_fill = max(lead, math.ceil(held / period) * period)
        self._period_seen = period
        self._held_seen = held

    def hold_now(self) -> int:
        """Frames the hold keeps ready now: all of `lead_held` until released, then less and less, at
        `HOLD_RELEASE_RATE` of real time, down to none."""
        held, released = self.lead_held, self._hold_released_at
        if released is None or not held:
            return held
        return max(0, held - int(HOLD_RELEASE_RATE * (time.monotonic() - released) * self.out_sr))

    @property
    def holding(self) -> bool:
        """True while the lead includes a hold (`hold_lead`), until the engine has applied its whole release."""
        return self._held_seen > 0 or self.hold_now() > 0

    def _chosen_lead(self, processor: BlockProcessor) -> int:
        """The lead chosen for `processor` in frames, in whole periods, with no raise."""
        period = self.period
        choice = processor.latency
        if choice.ahead_blocks is not None:
            lead = choice.ahead_blocks * self._block_out(processor)
        else:
            assert choice.lead_s is not None
            lead = math.ceil(choice.lead_s * self.out_sr)
        return max(1, math.ceil(lead / period)) * period

    @property
    def lookahead_frames(self) -> int:
        """The limiter's look-ahead at the output's rate (0 without a limiter at load)."""
        processor = self.processor
        return math.ceil(processor.limiter.lookahead * self.out_sr / processor.model.info.sr)

    @property
    def latency_frames(self) -> int:
        """Most frames from a control change to its sound: the next block's start, the lead, the look-ahead."""
        return self.target_fill + max(self.block_out, self.period) + self.lookahead_frames

    @property
    def latency_ms(self) -> float:
        return 1000.0 * self.latency_frames / self.out_sr

    @property
    def live_delay_target(self) -> int:
        """Frames from live input to output: the lead, plus a block's input when blocks exceed a period."""
        return self.target_fill + max(0, self.block_out - self.period)

    def describe_latency(self) -> str:
        choice = self.processor.latency
        raised = f", raised {self.lead_extra}x after underruns" if self.lead_extra else ""
        lookahead = self.processor.limiter.lookahead
        limiter = f", limiter look-ahead {lookahead} samples" if lookahead else ""
        return (f"block {self.processor.block} samples, lead {self.target_fill} frames "
                f"({self.target_fill / self.block_out:.2f} blocks{raised}), period {self.period}{limiter}, "
                f"latency {self.latency_ms:.1f} ms ({choice.describe()}); "
                f"model delay {self.processor.model_delay} samples")

    # -- control side -------------------------------------------------------------------
    def swap(self, processor: BlockProcessor) -> None:
        """Hand over a new processor; the engine thread takes it at the next block."""
        needed = 2 * (self._chosen_lead(processor) + self._block_out(processor))  # a hold is kept within half
        if needed > self.ring.capacity:
            raise ValueError(
                f"blocks of {processor.block} samples need a ring of {needed} frames; this engine has "
                f"{self.ring.capacity}: restart with the new block size"
            )
        self._pending = processor

    def hold_lead(self, seconds: float | None) -> None:
        """Keep at least `seconds` of audio ready while a swap is prepared; None lets go of it gradually.

        The engine thread takes a hold within `WAIT_S`; `wait_for_lead` waits until the ring holds it. A
        release drains the ring at `HOLD_RELEASE_RATE` of real time, so the engine keeps rendering (at
        that share of its pace) down to the chosen lead: after a long idle its first block would be slow,
        on a cold cache, just when the ring is at its shortest."""
        if seconds is None:
            self._hold_released_at = time.monotonic()
        else:
            self._hold_released_at = None
            self.lead_held = min(math.ceil(seconds * self.out_sr), self.ring.capacity // 2)

    def wait_for_swap(self, processor: BlockProcessor, timeout: float) -> bool:
        """Control side: wait until the engine thread has swapped `processor` in (crossfade set up, `retired`
        holding the one it replaced); False on timeout."""
        deadline = time.monotonic() + timeout
        while self.taken is not processor:
            if time.monotonic() > deadline or not self.running:
                return False
            time.sleep(0.005)
        return True

    def wait_for_lead(self, timeout: float) -> bool:
        """Control side: wait until the ring holds the lead (`hold_lead`'s included); False on timeout."""
        deadline = time.monotonic() + timeout
        while self._held_seen < self.lead_held or self.ring.available() < self._held_seen:
            if time.monotonic() > deadline or not self.running:
                return False
            time.sleep(0.005)
        return True

    @property
    def safety(self):
        return self.processor.safety

    # -- lifecycle ----------------------------------------------------------------------
    def start(self, prime_timeout: float = 30.0, prime_with_silence: bool = False) -> None:
        """Start the thread and wait until the ring holds the lead.

        Live input cannot be processed before the stream delivers it: then the ring is
        primed with silence, which is the latency the input path adds.
        """
        if prime_with_silence:
            self.ring.write(np.zeros((self.live_delay_target, self.out_channels), dtype=np.float32))
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="ravemap-engine", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + prime_timeout
        while self.ring.available() < self.target_fill:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the engine could not fill its first blocks; see the log")
            time.sleep(0.005)
        self.ring.started = True

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self.ring.doorbell.ring()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- engine thread ------------------------------------------------------------------
    def _run(self) -> None:
        self.priority = raise_thread_priority()
        with torch.inference_mode():
            while not self._stop.is_set():
                if self._pending is not None and self._fade is None:
                    if self.ring.available() < self._swap_fill(self._pending):
                        self.render_into_ring()  # the old processor first fills the ring to the new lead
                        continue
                    self._take_pending()
                if (self.ring.period != self._period_seen and self.ring.period) or self.hold_now() != self._held_seen:
                    self._update_target(self.processor)
                if self._fade is not None:
                    pass  # a swap is fading: its underruns do not raise the new processor's lead
                elif self.ring.underruns != self._underruns_seen:
                    self._after_underrun()
                elif self.lead_extra and self.lead_recovery_s > 0:
                    self._maybe_lower_lead()
                if self.ring.available() >= self.target_fill and self._fade is None:
                    self.ring.wait_below(self.target_fill, WAIT_S)
                    continue
                self.render_into_ring()  # a crossfade is rendered at once, while the ring is at its fullest

    def _after_underrun(self) -> None:
        """The callback found the ring short: the machine is busier than when it was timed."""
        self._underruns_seen = self.ring.underruns
        self._calm_since = time.monotonic()
        if self.lead_extra < MAX_RAISES and self.processor.latency.lead_s is not None:
            self.lead_extra += 1
            self.lead_raises += 1
            self._update_target(self.processor)
            self._errors.warning("underrun: the machine is busier than when ravemap timed the model; lead "
                                 "raised to %d frames, latency now %.1f ms", self.target_fill, self.latency_ms)

    def _maybe_lower_lead(self) -> None:
        """A period off a raised lead after `lead_recovery_s` with no underrun (a loop only: see the top)."""
        now = time.monotonic()
        if now - self._calm_since < self.lead_recovery_s or isinstance(self.processor.loop, LiveInput):
            return
        self._calm_since = now
        self.lead_extra -= 1
        self.lead_lowerings += 1
        self._update_target(self.processor)
        log.info("no underrun for %.0f s: lead lowered to %d frames (%d above the chosen lead), latency now %.1f ms",
                 self.lead_recovery_s, self.target_fill, self.lead_extra * self.period, self.latency_ms)

    def _swap_fill(self, new: BlockProcessor) -> int:
        """Frames the ring holds before `new` takes over: its own chosen lead, which must cover its first
        block (a heavier model's lead is longer than the light one's it replaces), and never less than the
        lead playing now."""
        return max(self.target_fill, self._chosen_lead(new))

    def _take_pending(self) -> None:
        new, self._pending = self._pending, None
        old = self.processor
        if new is None:
            return
        fade = self._old_tail(old)
        if new.model is old.model or new.model.info.sr == old.model.info.sr:
            new.pos = old.pos % new.loop.n_samples
        new.smoother.current[:] = old.smoother.current[: len(new.smoother.current)]
        if new.shaper.n == old.shaper.n:
            new.shaper.current[:] = old.shaper.current
        # The new limiter starts empty: its first `lookahead` samples are the silence in its delay line, dropped
        # so that the new processor's sound starts under the fade at once. (The old limiter's pending samples
        # are not taken over: they would play under the fade a fade's length late, then cut to the new sound.)
        self._skip = new.limiter.lookahead
        new.safety = old.safety
        self.processor = new
        self.retired = old  # freed by the control side (`Playback`), not here: a big model takes ms to free
        self.lead_extra = 0  # the lead chosen for the new processor: no raise is kept across a swap
        self._configure_output(new)
        self._fade, self._fade_pos = fade, 0
        self.last_swap_frame = self.ring.written  # where in the output the crossfade starts
        self._underruns_seen = self.ring.underruns  # nor do underruns while the new one was prepared
        self._calm_since = time.monotonic()
        self.stats.swaps += 1
        self.taken = new  # last: whoever waits for this swap finds it done

    def _old_tail(self, old: BlockProcessor) -> np.ndarray | None:
        """One more block of the old processor: its head to the ring now, its last `SWAP_CROSSFADE_S` returned
        (at the output's rate and channels) to fade out under the new processor's first frames."""
        frames = max(1, round(SWAP_CROSSFADE_S * self.out_sr))
        parts, have = [], 0
        try:
            while have < frames + 1:
                part = self._to_output(old.next_block())
                parts.append(part)
                have += part.shape[0]
        except Exception as err:  # the old model failing now: the swap cuts instead of fading
            self.stats.errors += 1
            self._errors.warning("the model being replaced failed at the swap, which cuts instead of fading: %s", err)
            parts = parts or [np.zeros((0, self.out_channels), dtype=np.float32)]
        out = np.concatenate(parts) if len(parts) > 1 else parts[0]
        head = max(0, out.shape[0] - frames)
        if head:
            self.ring.write(out[:head])
        return out[head:] if out.shape[0] > head else None

    def _crossfade(self, block: np.ndarray) -> np.ndarray:
        """Fade the old processor's tail out under `block`'s first frames (equal power: cos^2 + sin^2 = 1)."""
        fade, pos = self._fade, self._fade_pos
        assert fade is not None
        n = min(block.shape[0], fade.shape[0] - pos)
        theta = (np.arange(pos, pos + n, dtype=np.float32) + 0.5) * np.float32(0.5 * np.pi / fade.shape[0])
        block = np.array(block, dtype=np.float32, copy=True)
        block[:n] = block[:n] * np.sin(theta)[:, None] + fade[pos : pos + n] * np.cos(theta)[:, None]
        np.clip(block[:n], -1.0, 1.0, out=block[:n])  # two sounds each under the ceiling may sum above full scale
        self._fade_pos = pos + n
        if self._fade_pos >= fade.shape[0]:
            self._fade = None
            self._underruns_seen = self.ring.underruns  # the swap's underruns do not raise the new lead
        return block

    def render_into_ring(self) -> None:
        """Make one block and append it to the ring (engine thread)."""
        start = time.perf_counter()
        source = self.processor.loop
        if isinstance(source, LiveInput) and self.ring.started:
            source.keep_delay(self.ring.available(), self.live_delay_target, self.out_sr)
        try:
            block = self.processor.next_block()
        except Exception as err:  # a model that throws mid-performance must not stop the music
            self.stats.errors += 1
            self._errors.warning("block %d failed and plays as silence: %s", self.stats.blocks, err)
            block = np.zeros((self.processor.block, self.processor.out_channels), dtype=np.float32)
        if self._skip:
            cut = min(self._skip, block.shape[0])
            block, self._skip = block[cut:], self._skip - cut
        if self._fade is None and self._resampler is None and block.shape[1] == 1:
            self.ring.write(block)  # mono to any channels: the ring's copy spreads it, no block in between
        else:
            block = self._to_output(block)
            if self._fade is not None:
                block = self._crossfade(block)
            self.ring.write(block)
        self.stats.add_block(time.perf_counter() - start)

    def _to_output(self, block: np.ndarray) -> np.ndarray:
        """A block at the model's rate and channels, at the output's (the resampler is the playing processor's)."""
        if self._resampler is not None:
            block = self._resampler.resample_chunk(block)
            np.clip(block, -1.0, 1.0, out=block)  # resampling can overshoot by a hair
        if block.shape[1] != self.out_channels:
            block = adapt_channels(block, self.out_channels).T
        return block
