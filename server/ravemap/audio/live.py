"""Live input as the engine's source: what the duplex callback captured, at the model's rate.

The duplex PortAudio callback (stream.py) pushes input frames into a `FrameRing` at the
device's rate. `LiveInput.read` runs in the engine thread: it takes what has arrived,
resamples it to the model's rate with a soxr stream, adapts the channels, and hands out
exactly one block. If the input is late by more than `timeout` it pads with silence and
counts it, so the engine never stalls.

Its delay is kept by the engine: before each block the engine calls `keep_delay` with the
frames waiting in the output ring and the delay it aims for; input that has piled up beyond
that (after an underrun or an xrun) is dropped, oldest first, with a short crossfade from
what would have played into what plays now, and counted in `realignments`.

It stands where a `Loop` stands in `BlockProcessor` (same `read`, `sr`, `n_samples`), but
is not seekable: it is always read in order, once per block, and forces `encode: live`.

Threads: `read` in the engine thread only; the ring is written by the audio callback.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import soxr

from ravemap.audio.ring import FrameRing
from ravemap.audio.source import adapt_channels

CROSSFADE_SAMPLES = 64  # about 1.5 ms: long enough not to click, short enough to stay on time
TOLERANCE_S = 0.002  # delay drift a resampled input may show without being re-aligned


class LiveInput:
    seekable = False
    n_samples = 1 << 62  # endless: positions never wrap
    file_sr = 0

    def __init__(self, ring: FrameRing, device_sr: int, model_sr: int, channels: int, name: str = "input",
                 timeout: float = 0.005):
        self.ring = ring
        self.sr = int(model_sr)
        self.device_sr = int(device_sr)
        self.channels = int(channels)
        self.path = Path(f"<{name}>")
        self.timeout = timeout
        self.late_blocks = 0
        self.realignments = 0
        self._fade_from: np.ndarray | None = None  # what would have played, for the crossfade
        self.samples = np.zeros((self.channels, 0), dtype=np.float32)  # shape[0] is all a Loop user reads
        self._resampler = (
            None if self.device_sr == self.sr
            else soxr.ResampleStream(self.device_sr, self.sr, ring.channels, dtype="float32", quality="HQ")
        )
        self._pending = np.zeros((0, ring.channels), dtype=np.float32)

    @property
    def seconds(self) -> float:
        return float("inf")

    def _gather(self) -> None:
        """Move what the callback captured into `_pending`, at the model's rate."""
        got = self.ring.take(self.ring.available())
        if got.shape[0]:
            if self._resampler is not None:
                got = self._resampler.resample_chunk(got)
            self._pending = np.concatenate([self._pending, got])

    def keep_delay(self, output_frames: int, target_frames: int, output_sr: int) -> bool:
        """Drop input that has piled up beyond `target_frames` of delay; True if it did.

        The delay is `output_frames` (ready in the output ring, at `output_sr`) plus the input
        not yet processed. Differences below `TOLERANCE_S` (a resampler's rounding) are left.
        """
        self._gather()
        backlog = self._pending.shape[0] * output_sr / self.sr
        excess = output_frames + backlog - target_frames
        tolerance = 0 if self._resampler is None else TOLERANCE_S * output_sr
        if excess <= tolerance:
            return False
        drop = min(self._pending.shape[0], int(round(excess * self.sr / output_sr)))
        if drop <= 0:
            return False
        fade = min(CROSSFADE_SAMPLES, drop)
        self._fade_from = self._pending[:fade].copy()
        self._pending = self._pending[drop:]
        self.realignments += 1
        return True

    def read(self, start: int, n: int, out: np.ndarray) -> None:
        """Fill `out[channels, n]` with the next `n` input samples at the model's rate."""
        deadline = time.monotonic() + self.timeout
        while self._pending.shape[0] < n:
            before = self._pending.shape[0]
            self._gather()
            if self._pending.shape[0] > before:
                continue
            if time.monotonic() > deadline:
                self.late_blocks += 1
                short = n - self._pending.shape[0]
                self._pending = np.concatenate(
                    [self._pending, np.zeros((short, self.ring.channels), dtype=np.float32)]
                )
                break
            time.sleep(0.0005)
        block, self._pending = self._pending[:n], self._pending[n:]
        if self._fade_from is not None:
            block = block.copy()
            old, self._fade_from = self._fade_from, None
            k = min(old.shape[0], n)
            ramp = np.linspace(0.0, 1.0, k, endpoint=False, dtype=np.float32)[:, None]
            block[:k] = old[:k] + (block[:k] - old[:k]) * ramp
        out[:, :] = adapt_channels(block, self.channels)
