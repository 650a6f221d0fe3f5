"""A single-producer, single-consumer ring of audio frames.

The engine thread writes prepared frames; the audio callback (or the headless clock)
reads them. No lock: the writer only advances `_written`, the reader only advances
`_read`, and each is one Python int assignment, which the GIL makes atomic. The buffer
is allocated once; `write` and `fill` copy into and out of it without allocating
sample arrays.

Realtime contract for `fill` (called from the PortAudio callback): it copies what is
ready, writes silence for the rest, counts an underrun when it had to, rings the
doorbell and returns. It never blocks, never logs, never raises.

The doorbell wakes the engine as soon as the reader has taken frames, instead of the engine
polling: one non-blocking write to an eventfd (a pipe where there is none) per callback, and a
wait on it in the engine thread (`wait_below`). Polling every half millisecond cost a
fifth of a core in wake-ups and GIL hand-overs on a 2-core machine; the doorbell costs one
wake-up per period.
"""

from __future__ import annotations

import contextlib
import os
import select
import weakref

import numpy as np


class Doorbell:
    """Wakes one waiting thread from another without a lock: an eventfd, or a pipe.

    `ring` never blocks and never raises (a full pipe already holds a wake-up); `wait` returns
    True when rung since the last wait, False on timeout.
    """

    def __init__(self) -> None:
        if hasattr(os, "eventfd"):  # Linux: a counter that never fills up
            self._read_fd = self._write_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            self._eventfd = True
        else:
            self._read_fd, self._write_fd = os.pipe()
            os.set_blocking(self._read_fd, False)
            os.set_blocking(self._write_fd, False)
            self._eventfd = False
        self._poll = None
        if hasattr(select, "poll"):  # no FD_SETSIZE limit, unlike select
            self._poll = select.poll()
            self._poll.register(self._read_fd, select.POLLIN)
        self._closer = weakref.finalize(self, _close_all, {self._read_fd, self._write_fd})

    def ring(self) -> None:
        try:
            if self._eventfd:
                os.eventfd_write(self._write_fd, 1)
            else:
                os.write(self._write_fd, b"\x01")
        except OSError:  # the pipe is full (a wake-up is already waiting) or closed: nothing to do
            pass

    def wait(self, timeout: float) -> bool:
        try:
            if self._poll is not None:
                ready = bool(self._poll.poll(max(0, int(timeout * 1000 + 0.999))))
            else:
                ready = bool(select.select([self._read_fd], [], [], timeout)[0])
        except (OSError, ValueError):  # closed under us
            return False
        if ready:
            self.clear()
        return ready

    def clear(self) -> None:
        """Forget wake-ups so far (before looking at what they are about, so none is lost)."""
        try:
            if self._eventfd:
                os.eventfd_read(self._read_fd)
            else:
                os.read(self._read_fd, 65536)
        except OSError:  # nothing was waiting
            pass

    def close(self) -> None:
        self._closer()


def _close_all(fds: set[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


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
        self.doorbell = Doorbell()  # rung by `fill`: the engine waits on it instead of polling

    def available(self) -> int:
        return self._written - self._read

    @property
    def written(self) -> int:
        """Frames ever written (the engine's position in the output's timeline)."""
        return self._written

    @property
    def read(self) -> int:
        """Frames ever taken by the callback."""
        return self._read

    def free(self) -> int:
        return self.capacity - (self._written - self._read)

    def write(self, frames: np.ndarray) -> None:
        """Append `frames[n, channels]` (or `[n, 1]`, copied to every channel); the caller checks `free()` first."""
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
        self.doorbell.ring()

    def wait_below(self, fill: int, timeout: float) -> None:
        """Engine thread: return once the ring holds less than `fill` frames, or after `timeout` seconds.

        The doorbell is cleared before the ring is looked at, so a period taken between the look
        and the sleep still wakes it."""
        self.doorbell.clear()
        if self._written - self._read < fill:
            return
        self.doorbell.wait(timeout)


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
