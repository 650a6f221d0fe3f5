"""A single-producer, single-consumer ring of audio frames.

The engine thread writes prepared frames; the audio callback (or the headless clock)
reads them. No lock: the writer only advances `_written`, the reader only advances
`_read`, and each is one Python int assignment, which the GIL makes atomic. The buffer
is allocated once; `write` and `fill` copy into and out of it without allocating
sample arrays.

Realtime contract for `fill` (called from the PortAudio callback): it copies what is
ready, writes silence for the rest, counts an underrun when it had to, and returns.
It never blocks, never logs, never raises.
"""

from __future__ import annotations

import numpy as np


class FrameRing:
    """Frames of `channels` float32 samples; capacity fixed at construction."""

    def __init__(self, capacity: int, channels: int):
        self.capacity = int(capacity)
        self.channels = int(channels)
        self._buf = np.zeros((self.capacity, self.channels), dtype=np.float32)
        self._written = 0  # total frames ever written (engine thread only)
        self._read = 0  # total frames ever read (callback only)
        self.underruns = 0  # callbacks that found too few frames ready
        self.overflows = 0  # pushes that found too little room (input side)
        self.started = False  # underruns count only once playback has been primed
        self.period = 0  # most frames one `fill` has asked for: the device's period
        self.tap: Tap | None = None  # optional copy of everything played (tests, meters)

    def available(self) -> int:
        return self._written - self._read

    def free(self) -> int:
        return self.capacity - (self._written - self._read)

    def write(self, frames: np.ndarray) -> None:
        """Append `frames[n, channels]`; the caller checks `free()` first."""
        n = frames.shape[0]
        if n > self.free():
            raise OverflowError(f"ring has room for {self.free()} frames, asked to write {n}")
        self._copy_in(frames, n)

    def push(self, frames: np.ndarray) -> None:
        """Append what fits and drop the rest, counting it (for an input callback: never raises)."""
        room = self.capacity - (self._written - self._read)
        n = frames.shape[0] if frames.shape[0] <= room else room
        if n < frames.shape[0]:
            self.overflows += 1
        self._copy_in(frames, n)

    def _copy_in(self, frames: np.ndarray, n: int) -> None:
        """Copy the first `n` frames in at the write position, wrapping round the end."""
        if n <= 0:
            return
        start = self._written % self.capacity
        first = n if n <= self.capacity - start else self.capacity - start
        self._buf[start : start + first] = frames[:first]
        if first < n:
            self._buf[: n - first] = frames[first:n]
        self._written += n

    def take(self, most: int) -> np.ndarray:
        """Remove and return up to `most` frames (a new array; for the engine thread, not a callback)."""
        n = min(most, self._written - self._read)
        out = np.empty((n, self.channels), dtype=np.float32)
        start = self._read % self.capacity
        first = min(n, self.capacity - start)
        out[:first] = self._buf[start : start + first]
        out[first:] = self._buf[: n - first]
        self._read += n
        return out

    def fill(self, out: np.ndarray) -> None:
        """Fill `out[frames, channels]` from the ring; silence and an underrun count if short."""
        want = out.shape[0]
        if want > self.period:
            self.period = want
        have = self._written - self._read
        n = want if have >= want else have
        if n > 0:
            start = self._read % self.capacity
            first = n if n <= self.capacity - start else self.capacity - start
            out[:first] = self._buf[start : start + first]
            if first < n:
                out[first:n] = self._buf[: n - first]
            self._read += n
        if n < want:
            out[n:] = 0.0
            if self.started:
                self.underruns += 1
        if self.tap is not None:
            self.tap.capture(out)


class Tap:
    """A preallocated recording of what the callback played; stops when full.

    `capture` runs inside the callback: one copy into a buffer allocated up front.
    """

    def __init__(self, frames: int, channels: int):
        self.buffer = np.zeros((int(frames), int(channels)), dtype=np.float32)
        self.frames = 0

    def capture(self, out: np.ndarray) -> None:
        room = self.buffer.shape[0] - self.frames
        n = out.shape[0] if out.shape[0] <= room else room
        if n > 0:
            self.buffer[self.frames : self.frames + n] = out[:n]
            self.frames += n

    def recorded(self) -> np.ndarray:
        return self.buffer[: self.frames]
