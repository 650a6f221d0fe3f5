"""`--audio none`: consume the engine's ring on a real-time clock, with no sound card.

The engine runs exactly as it would with a device (same ring, same `FrameRing.fill`,
same underrun count); this thread stands in for the PortAudio callback, taking one
period of frames every period. Useful on a headless box and in mapping-only mode.

Threads: one clock thread, "ravemap-clock", owned here; it only calls `FrameRing.fill`, and
sleeps between periods (`stop` is seen within one period).
"""

from __future__ import annotations

import threading
import time

import numpy as np

from ravemap.audio.realtime import raise_thread_priority
from ravemap.audio.ring import FrameRing


class HeadlessOutput:
    """Plays to nowhere at `samplerate`, in periods of `period` frames."""

    PERIOD = 256  # a low-latency sound card's period at 44.1/48 kHz

    def __init__(self, ring: FrameRing, samplerate: int, period: int = PERIOD):
        self.ring = ring
        self.samplerate = int(samplerate)
        self.period = int(period)
        self.xruns = 0
        self.callbacks = 0
        self._scratch = np.zeros((self.period, ring.channels), dtype=np.float32)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="ravemap-clock", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        raise_thread_priority()  # it stands in for a sound card's callback thread
        step = self.period / self.samplerate
        due = time.monotonic()
        while not self._stop.is_set():
            due += step
            self.ring.fill(self._scratch)
            self.callbacks += 1
            late = time.monotonic() - due
            if late > step:  # the clock itself fell behind (a starved machine): count it, catch up
                self.xruns += 1
                due = time.monotonic()
            elif late < 0.0:
                time.sleep(-late)  # a plain sleep: an Event's wait costs a lock and a condition every period

    @property
    def active(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
            self._thread = None

    def describe(self) -> str:
        return f"no audio device (clocked at {self.samplerate} Hz)"
