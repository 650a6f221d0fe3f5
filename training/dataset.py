"""The `data` step: synthesize the training and held-out sets, and serve training batches.

Training audio is one long stream of random phrases (each with its own timbre) separated by
short silences, saved with its per-sample f0 and amplitude labels. Held-out audio is a set of
fixed-length clips cut from phrases drawn with a different seed, for `evaluate`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from training import synth
from training.config import DATA, SR, DataConfig

TRAIN_FILE = "train.npz"
HELDOUT_FILE = "heldout.npz"


def _stream(rng: np.random.Generator, seconds: float, sr: int) -> synth.Rendered:
    parts: list[synth.Rendered] = []
    total = 0
    while total < seconds * sr:
        phrase = synth.random_phrase(rng, sr)
        gap = int(rng.uniform(0.05, 0.6) * sr)
        silence = np.zeros(gap, dtype=np.float32)
        parts.append(phrase)
        parts.append(synth.Rendered(silence, np.full(gap, phrase.f0[-1], np.float32), silence))
        total += len(phrase.audio) + gap
    audio = np.clip(np.concatenate([p.audio for p in parts]), -0.99, 0.99)
    f0 = np.concatenate([p.f0 for p in parts])
    amp = np.concatenate([p.amp for p in parts])
    return synth.Rendered(audio, f0, amp)


def build(out_dir: Path, seed: int, cfg: DataConfig = DATA, sr: int = SR) -> dict[str, float]:
    """Write `train.npz` and `heldout.npz` under `out_dir`; return a few figures for the log."""
    out_dir.mkdir(parents=True, exist_ok=True)
    train = _stream(np.random.default_rng([seed, 1]), cfg.train_seconds, sr)
    np.savez(out_dir / TRAIN_FILE, audio=train.audio, f0=train.f0, amp=train.amp, sr=sr)

    clip = int(cfg.heldout_clip_seconds * sr)
    n_clips = int(cfg.heldout_seconds / cfg.heldout_clip_seconds)
    held = _stream(np.random.default_rng([seed, 2]), n_clips * cfg.heldout_clip_seconds * 1.5 + 2, sr)
    # Cut clips where something plays (skip clips that are mostly silence).
    clips = []
    start = 0
    while len(clips) < n_clips and start + clip <= len(held.audio):
        seg = held.audio[start : start + clip]
        if np.sqrt(np.mean(seg**2)) > 1e-3:
            clips.append(seg)
        start += clip
    np.savez(out_dir / HELDOUT_FILE, audio=np.stack(clips), sr=sr)
    return {
        "train_seconds": len(train.audio) / sr,
        "heldout_clips": float(len(clips)),
        "train_peak": float(np.abs(train.audio).max()),
        "train_rms": float(np.sqrt(np.mean(train.audio**2))),
    }


@dataclass
class Batches:
    """Random crops of the training stream: audio with the encoder's context before it, and labels."""

    audio: torch.Tensor
    f0: torch.Tensor
    amp: torch.Tensor
    ratio: int
    frames: int  # frames decoded per example (context frames included)
    context: int  # samples before the first frame that only the encoder sees
    generator: torch.Generator

    @classmethod
    def load(cls, path: Path, ratio: int, frames: int, context: int, seed: int) -> Batches:
        data = np.load(path)
        gen = torch.Generator().manual_seed(seed)
        return cls(
            torch.from_numpy(data["audio"]),
            torch.from_numpy(data["f0"]),
            torch.from_numpy(data["amp"]),
            ratio,
            frames,
            context,
            gen,
        )

    def sample(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`x[B, context + frames * ratio]` (the first `context` samples: encoder context only), and
        the f0 / amplitude labels at the last sample of each decoded frame, `[B, frames]`."""
        length = self.context + self.frames * self.ratio
        starts = torch.randint(0, len(self.audio) - length, (batch_size,), generator=self.generator)
        idx = starts[:, None] + torch.arange(length)[None, :]
        x = self.audio[idx]
        ends = starts[:, None] + self.context + self.ratio * torch.arange(1, self.frames + 1)[None, :] - 1
        return x, self.f0[ends], self.amp[ends]
