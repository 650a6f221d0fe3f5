"""Audio descriptors and Spearman's rank correlation, in numpy, for the latent-sweep figures.

- `rms_db`: loudness as the RMS of the whole signal, in dB.
- `centroid_hz`: spectral centroid of the whole signal (magnitude-weighted over all STFT frames).
- `f0_hz`: median f0 of the voiced frames, from a YIN estimator (cumulative mean normalised
  difference, absolute threshold, parabolic refinement).
- `spearman`: Pearson correlation of average ranks (ties share their mean rank).
"""

from __future__ import annotations

import numpy as np

FRAME = 2048
HOP = 512


def _frames(x: np.ndarray, frame: int = FRAME, hop: int = HOP) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if len(x) < frame:
        x = np.pad(x, (0, frame - len(x)))
    n = 1 + (len(x) - frame) // hop
    idx = np.arange(frame)[None, :] + hop * np.arange(n)[:, None]
    return x[idx]


def rms_db(x: np.ndarray) -> float:
    return float(20.0 * np.log10(np.sqrt(np.mean(np.square(x, dtype=np.float64))) + 1e-9))


def centroid_hz(x: np.ndarray, sr: int) -> float:
    frames = _frames(x) * np.hanning(FRAME)
    mag = np.abs(np.fft.rfft(frames, axis=-1))
    freqs = np.fft.rfftfreq(FRAME, 1.0 / sr)
    total = mag.sum()
    return float((mag * freqs).sum() / total) if total > 0 else 0.0


def yin(x: np.ndarray, sr: int, fmin: float = 45.0, fmax: float = 1500.0, threshold: float = 0.2):
    """Per-frame f0 (Hz, NaN where unvoiced) and frame RMS, frames of 2048 hop 512."""
    w = FRAME // 2
    frames = _frames(x)
    tau_min = int(sr / fmax)
    tau_max = min(int(sr / fmin), w - 1)
    # d(tau) = sum_{j<w} (x_j - x_{j+tau})^2 = e0 + e_tau - 2 r(tau)
    spec_a = np.fft.rfft(frames[:, :w], n=2 * FRAME)
    spec_b = np.fft.rfft(frames, n=2 * FRAME)
    r = np.fft.irfft(np.conj(spec_a) * spec_b, n=2 * FRAME)[:, :w]
    sq = np.concatenate([np.zeros((len(frames), 1)), np.cumsum(frames**2, axis=1)], axis=1)
    e0 = sq[:, w][:, None]
    taus = np.arange(w)
    e_tau = sq[:, taus + w] - sq[:, taus]
    d = np.maximum(e0 + e_tau - 2.0 * r, 0.0)
    cum = np.cumsum(d[:, 1:], axis=1) / np.arange(1, w)
    dn = np.ones_like(d)
    dn[:, 1:] = d[:, 1:] / np.maximum(cum, 1e-12)
    f0 = np.full(len(frames), np.nan)
    for i, row in enumerate(dn):
        seg = row[tau_min : tau_max + 1]
        below = np.nonzero(seg < threshold)[0]
        if len(below) == 0:
            continue
        t = below[0]
        while t + 1 < len(seg) and seg[t + 1] < seg[t]:
            t += 1
        tau = t + tau_min
        if 1 <= tau < w - 1:
            a, b, c = row[tau - 1], row[tau], row[tau + 1]
            denom = a - 2 * b + c
            shift = 0.5 * (a - c) / denom if abs(denom) > 1e-12 else 0.0
            f0[i] = sr / (tau + float(np.clip(shift, -1, 1)))
    rms = np.sqrt(np.mean(frames[:, w:] ** 2, axis=1))
    return f0, rms


def f0_hz(x: np.ndarray, sr: int) -> float:
    """Median f0 of frames that YIN calls voiced and that are within 40 dB of the loudest frame."""
    f0, rms = yin(x, sr)
    loud = rms > rms.max() * 10 ** (-40 / 20)
    voiced = np.isfinite(f0) & loud
    return float(np.median(f0[voiced])) if voiced.any() else float("nan")


def describe(x: np.ndarray, sr: int) -> dict[str, float]:
    return {"rms_db": rms_db(x), "centroid_hz": centroid_hz(x, sr), "f0_hz": f0_hz(x, sr)}


def _ranks(v: np.ndarray) -> np.ndarray:
    order = np.argsort(v, kind="mergesort")
    ranks = np.empty(len(v))
    sorted_v = v[order]
    i = 0
    while i < len(v):
        j = i
        while j + 1 < len(v) and sorted_v[j + 1] == sorted_v[i]:
            j += 1
        ranks[order[i : j + 1]] = 0.5 * (i + j)
        i = j + 1
    return ranks


def spearman(a, b) -> float:
    """Spearman's rho; 0 where either side is constant or has NaNs."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return 0.0
    ra, rb = _ranks(a), _ranks(b)
    ra -= ra.mean()
    rb -= rb.mean()
    denom = np.sqrt((ra**2).sum() * (rb**2).sum())
    return float((ra * rb).sum() / denom) if denom > 0 else 0.0
