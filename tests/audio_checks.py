"""Measurements the audio tests share: spectra, and finding a dry segment inside a loop."""

from __future__ import annotations

import numpy as np


def log_spectrum(x: np.ndarray, n: int = 2048) -> np.ndarray:
    frames = np.lib.stride_tricks.sliding_window_view(x, n)[:: n // 2] * np.hanning(n)
    return np.log(np.abs(np.fft.rfft(frames)).mean(axis=0) + 1e-7)


def spectral_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(log_spectrum(a) - log_spectrum(b)).mean())


def find_in_loop(segment: np.ndarray, loop: np.ndarray) -> int | None:
    """Offset p such that `segment` equals the looped `loop` from p exactly, or None."""
    looped = np.tile(loop, segment.size // loop.size + 2)
    for p in np.flatnonzero(loop == segment[0]):
        if np.array_equal(looped[p : p + segment.size], segment):
            return int(p)
    return None
