"""The engine's live parameters, published by control threads, read by the engine thread.

Latest value wins: each setter validates its input and replaces one attribute with an
immutable value (a float, a bool, a tuple), which the GIL makes atomic. The engine
thread reads each attribute once per block. No locks, no queues, nothing to block on.

Threads: any thread may call the setters (OSC, MIDI, the CLI, a notebook); only the
engine thread reads.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


class EngineControls:
    """Latent offsets, style transfer, gain and pause, as the engine should play them next."""

    def __init__(self, n_offsets: int, offset_range: tuple[float, float], transfer: bool = True,
                 gain_db: float = 0.0):
        if n_offsets < 0:
            raise ValueError(f"n_offsets must be >= 0, got {n_offsets}")
        low, high = offset_range
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ValueError(f"offset range must be two finite numbers low < high, got {offset_range}")
        self.n_offsets = n_offsets
        self.offset_range = (float(low), float(high))
        self.offsets: tuple[float, ...] = (0.0,) * n_offsets
        self.transfer = bool(transfer)
        self.gain_db = 0.0
        self.paused = False
        self.set_gain_db(gain_db)

    def set_offsets(self, values: Sequence[float]) -> tuple[float, ...]:
        """Set every offset; non-finite values are refused, others clamped to the range."""
        values = tuple(values)
        if len(values) != self.n_offsets:
            raise ValueError(f"expected {self.n_offsets} latent offsets, got {len(values)}")
        clamped = tuple(self._clamp(v, f"offset {i}") for i, v in enumerate(values))
        self.offsets = clamped
        return clamped

    def set_offset(self, index: int, value: float) -> float:
        if not 0 <= index < self.n_offsets:
            raise ValueError(f"latent offset index must be in 0..{self.n_offsets - 1}, got {index}")
        clamped = self._clamp(value, f"offset {index}")
        current = list(self.offsets)
        current[index] = clamped
        self.offsets = tuple(current)
        return clamped

    def set_transfer(self, on: bool) -> None:
        self.transfer = bool(on)

    def set_gain_db(self, db: float) -> None:
        db = float(db)
        if not math.isfinite(db) or not -120.0 <= db <= 24.0:
            raise ValueError(f"gain must be a finite number of dB in -120..24, got {db}")
        self.gain_db = db

    def set_paused(self, paused: bool) -> None:
        self.paused = bool(paused)

    def _clamp(self, value: float, what: str) -> float:
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"{what} must be a finite number, got {value}")
        low, high = self.offset_range
        return min(max(value, low), high)
