"""The engine thread: keeps the output ring `ahead_blocks` blocks ahead of the audio callback.

Threads and what each may do here:
- engine thread (owned by `Engine`, named "ravemap-engine"): the only thread that runs
  the model while playing. It calls `BlockProcessor.next_block()`, resamples to the
  device's rate with a soxr stream, maps to the device's channels and writes the ring.
  It swaps in a new processor (hot swap of model or loop) only between blocks. An
  exception in a block is counted and that block plays as silence; the thread never dies.
- audio callback (stream.py / headless.py): reads the ring with `FrameRing.fill` only.
- control threads: publish values on `EngineControls`, and hand a ready-built processor
  to `Engine.swap` (building it, which loads and encodes, happens on their thread).

Nothing here blocks the callback: the ring has no lock, and the engine sleeps in short
steps when the ring is full.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import numpy as np
import soxr
import torch

from server.audio.processor import BlockProcessor
from server.audio.ring import FrameRing
from server.audio.source import adapt_channels
from server.ratelimit import RateLimitedLog

log = logging.getLogger("ravemap.engine")


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
    """Runs a `BlockProcessor` in its own thread, feeding a ring at the output's rate."""

    def __init__(self, processor: BlockProcessor, out_sr: int, out_channels: int, ahead_blocks: int = 3):
        if ahead_blocks < 1:
            raise ValueError(f"ahead_blocks must be >= 1, got {ahead_blocks}")
        self.processor = processor
        self.out_sr = int(out_sr)
        self.out_channels = int(out_channels)
        self.ahead_blocks = int(ahead_blocks)
        self.stats = EngineStats()
        self._pending: BlockProcessor | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._errors = RateLimitedLog(log, seconds=5.0)
        self._configure_output(processor)

    def _configure_output(self, processor: BlockProcessor) -> None:
        model_sr = processor.model.info.sr
        block_out = self._block_out(processor)
        self.block_out = block_out
        self.target_fill = self.ahead_blocks * block_out
        if not hasattr(self, "ring"):
            self.ring = FrameRing(capacity=self.target_fill + 4 * block_out, channels=self.out_channels)
        self._resampler = (
            None
            if model_sr == self.out_sr
            else soxr.ResampleStream(model_sr, self.out_sr, processor.out_channels, dtype="float32",
                                     quality="HQ")
        )
        self.block_seconds = processor.block / model_sr

    def _block_out(self, processor: BlockProcessor) -> int:
        """Most frames one block can become at the output rate (soxr may hold back or release a few)."""
        return int(np.ceil(processor.block * self.out_sr / processor.model.info.sr)) + 64

    # -- control side -------------------------------------------------------------------
    def swap(self, processor: BlockProcessor) -> None:
        """Hand over a new processor; the engine thread takes it at the next block."""
        needed = (self.ahead_blocks + 1) * self._block_out(processor)
        if needed > self.ring.capacity:
            raise ValueError(
                f"blocks of {processor.block} samples need a ring of {needed} frames; this engine has "
                f"{self.ring.capacity}: restart with the new block size"
            )
        self._pending = processor

    @property
    def safety(self):
        return self.processor.safety

    # -- lifecycle ----------------------------------------------------------------------
    def start(self, prime_timeout: float = 30.0, prime_with_silence: bool = False) -> None:
        """Start the thread and wait until the ring is primed `ahead_blocks` deep.

        Live input cannot be processed before the stream delivers it: then the ring is
        primed with silence, which is the latency the input path adds.
        """
        if prime_with_silence:
            self.ring.write(np.zeros((self.target_fill, self.out_channels), dtype=np.float32))
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
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- engine thread ------------------------------------------------------------------
    def _run(self) -> None:
        nap = max(0.001, self.block_seconds / 8)
        with torch.inference_mode():
            while not self._stop.is_set():
                if self._pending is not None:
                    self._take_pending()
                if self.ring.available() >= self.target_fill:
                    time.sleep(nap)
                    continue
                self.render_into_ring()

    def _take_pending(self) -> None:
        new, self._pending = self._pending, None
        old = self.processor
        if new is None:
            return
        if new.model is old.model or new.model.info.sr == old.model.info.sr:
            new.pos = old.pos % new.loop.n_samples
        new.smoother.current[:] = old.smoother.current[: len(new.smoother.current)]
        new.safety = old.safety
        self.processor = new
        self._configure_output(new)
        self.stats.swaps += 1

    def render_into_ring(self) -> None:
        """Make one block and append it to the ring (engine thread)."""
        start = time.perf_counter()
        try:
            block = self.processor.next_block()
        except Exception as err:  # a model that throws mid-performance must not stop the music
            self.stats.errors += 1
            self._errors.warning("block %d failed and plays as silence: %s", self.stats.blocks, err)
            block = np.zeros((self.processor.block, self.processor.out_channels), dtype=np.float32)
        if self._resampler is not None:
            block = self._resampler.resample_chunk(block)
            np.clip(block, -1.0, 1.0, out=block)  # resampling can overshoot by a hair
        if block.shape[1] != self.out_channels:
            block = adapt_channels(block, self.out_channels).T
        self.ring.write(block)
        self.stats.add_block(time.perf_counter() - start)
