"""Audio sources for the engine: a file played as a seamless loop.

`load_loop` reads WAV/FLAC/OGG (anything libsndfile reads) with soundfile, resamples it to
the model's rate with soxr, and adapts its channels to the model's input channels. The
result is a float32 array `[channels, n]` whose length is a whole number of the model's
compression ratio, so latent frames line up with the loop's seam.

Threads: loading runs off the audio path (start-up or a loader thread). `Loop.read`
is called by the engine thread only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import soundfile
import soxr

from ravemap.errors import SourceError


class AudioSource(Protocol):
    """What `BlockProcessor` reads: a `Loop`, or live input (`ravemap.audio.live.LiveInput`)."""

    path: Path
    sr: int
    file_sr: int
    samples: np.ndarray  # [channels, n]; live input keeps none (n = 0)
    seekable: bool

    @property
    def n_samples(self) -> int: ...

    @property
    def seconds(self) -> float: ...

    def read(self, start: int, n: int, out: np.ndarray) -> None: ...


@dataclass
class Loop:
    """A loop at the model's rate: `samples[channels, n]`, n a multiple of `ratio`."""

    path: Path
    samples: np.ndarray
    sr: int
    file_sr: int
    seekable = True  # a file can be read at any position; live input cannot

    @property
    def n_samples(self) -> int:
        return int(self.samples.shape[1])

    @property
    def seconds(self) -> float:
        return self.n_samples / self.sr

    def read(self, start: int, n: int, out: np.ndarray) -> None:
        """Copy `n` samples from position `start` (wrapping around) into `out[channels, n]`."""
        total = self.n_samples
        pos = start % total
        done = 0
        while done < n:
            take = min(n - done, total - pos)
            out[:, done : done + take] = self.samples[:, pos : pos + take]
            done += take
            pos = 0


def adapt_channels(audio: np.ndarray, channels: int) -> np.ndarray:
    """`audio[frames, file_channels]` -> `[channels, frames]`: mono is copied, extra channels are mixed."""
    have = audio.shape[1]
    if have == channels:
        return np.ascontiguousarray(audio.T)
    if have == 1:
        return np.ascontiguousarray(np.repeat(audio.T, channels, axis=0))
    if channels == 1:
        return np.ascontiguousarray(audio.mean(axis=1, keepdims=True).T)
    # More channels in the file than the model takes: keep the first ones.
    return np.ascontiguousarray(audio[:, :channels].T)


def load_loop(path: str | Path, sr: int, channels: int, ratio: int) -> Loop:
    """Read a loop file and prepare it for a model with this rate, channel count and ratio."""
    path = Path(path)
    if not path.is_file():
        raise SourceError(f"{path}: no such loop file; give one with --loop or engine.loop")
    try:
        audio, file_sr = soundfile.read(str(path), dtype="float32", always_2d=True)
    except Exception as err:  # soundfile raises LibsndfileError, RuntimeError, TypeError...
        raise SourceError(
            f"{path}: cannot read this audio file ({str(err).strip()[:200]}); use WAV, FLAC or OGG"
        ) from err
    if audio.shape[0] == 0 or audio.shape[1] == 0:
        raise SourceError(f"{path}: the audio file holds no samples")
    if file_sr != sr:
        audio = soxr.resample(audio, file_sr, sr, quality="HQ").astype(np.float32, copy=False)
    if not np.all(np.isfinite(audio)):
        raise SourceError(f"{path}: the audio file holds NaN or infinite samples")
    samples = adapt_channels(audio, channels)
    return Loop(path=path, samples=fit_to_ratio(samples, ratio), sr=sr, file_sr=int(file_sr))


def fit_to_ratio(samples: np.ndarray, ratio: int) -> np.ndarray:
    """Trim to a whole number of latent frames; repeat a loop shorter than one frame."""
    n = samples.shape[1]
    if n < ratio:
        reps = -(-ratio // n)
        samples = np.tile(samples, (1, reps))
        n = samples.shape[1]
    keep = n - n % ratio
    return np.ascontiguousarray(samples[:, :keep])
