"""Multi-resolution STFT magnitudes: the training loss and the reconstruction figure of `evaluate`."""

from __future__ import annotations

import torch
from torch import Tensor

FFT_SIZES = (2048, 1024, 512, 256, 128, 64)
LOG_EPS = 1e-4

_windows: dict[int, Tensor] = {}


def magnitude(x: Tensor, n_fft: int) -> Tensor:
    """`|STFT|` of `x[B, T]` with a Hann window of `n_fft` and hop `n_fft / 4`."""
    if n_fft not in _windows:
        _windows[n_fft] = torch.hann_window(n_fft)
    return torch.stft(x, n_fft, n_fft // 4, window=_windows[n_fft], center=True, return_complex=True).abs()


def loss(target: Tensor, output: Tensor, sizes: tuple[int, ...] = FFT_SIZES) -> Tensor:
    """Sum over resolutions of log-magnitude L1 + spectral convergence."""
    total = torch.zeros(())
    for n in sizes:
        t = magnitude(target, n)
        o = magnitude(output, n)
        total = total + (torch.log(t + LOG_EPS) - torch.log(o + LOG_EPS)).abs().mean()
        total = total + torch.linalg.norm(t - o) / (torch.linalg.norm(t) + 1e-7)
    return total


@torch.no_grad()
def log_distance(target: Tensor, output: Tensor, sizes: tuple[int, ...] = FFT_SIZES) -> float:
    """Mean over resolutions of the mean |log|X| - log|Y||: the reconstruction figure."""
    values = [
        (torch.log(magnitude(target, n) + LOG_EPS) - torch.log(magnitude(output, n) + LOG_EPS)).abs().mean()
        for n in sizes
    ]
    return float(torch.stack(values).mean())
