"""Live input as the engine's source: what the duplex callback captured, at the model's rate.

The duplex PortAudio callback (stream.py) pushes input frames into a `FrameRing` at the
device's rate. `LiveInput.read` runs in the engine thread: it takes what has arrived,
resamples it to the model's rate with a soxr stream, adapts the channels, and hands out
exactly one block. If the input is late by more than `timeout` it pads with silence and
counts it, so the engine never stalls.

It stands where a `Loop` stands in `BlockProcessor` (same `read`, `sr`, `n_samples`), but
is not seekable: it is always read in order, once per block, and forces `encode: live`.

Threads: `read` in the engine thread only; the ring is written by the audio callback.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import soxr

from server.audio.ring import FrameRing
from server.audio.source import adapt_channels


class LiveInput:
    seekable = False
    n_samples = 1 << 62  # endless: positions never wrap
    file_sr = 0

    def __init__(self, ring: FrameRing, device_sr: int, model_sr: int, channels: int, name: str = "input",
                 timeout: float = 0.5):
        self.ring = ring
        self.sr = int(model_sr)
        self.device_sr = int(device_sr)
        self.channels = int(channels)
        self.path = Path(f"<{name}>")
        self.timeout = timeout
        self.late_blocks = 0
        self.samples = np.zeros((self.channels, 0), dtype=np.float32)  # shape[0] is all a Loop user reads
        self._resampler = (
            None if self.device_sr == self.sr
            else soxr.ResampleStream(self.device_sr, self.sr, ring.channels, dtype="float32", quality="HQ")
        )
        self._pending = np.zeros((0, ring.channels), dtype=np.float32)

    @property
    def seconds(self) -> float:
        return float("inf")

    def read(self, start: int, n: int, out: np.ndarray) -> None:
        """Fill `out[channels, n]` with the next `n` input samples at the model's rate."""
        deadline = time.monotonic() + self.timeout
        while self._pending.shape[0] < n:
            got = self.ring.take(self.ring.available())
            if got.shape[0]:
                if self._resampler is not None:
                    got = self._resampler.resample_chunk(got)
                self._pending = np.concatenate([self._pending, got])
                continue
            if time.monotonic() > deadline:
                self.late_blocks += 1
                short = n - self._pending.shape[0]
                self._pending = np.concatenate(
                    [self._pending, np.zeros((short, self.ring.channels), dtype=np.float32)]
                )
                break
            time.sleep(0.002)
        block, self._pending = self._pending[:n], self._pending[n:]
        out[:, :] = adapt_channels(block, self.channels)
