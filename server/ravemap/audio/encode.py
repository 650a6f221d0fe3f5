"""Encoding a whole audio file with a RAVE model, away from the engine: latent vectors for `/ravemap/vector/capture`.

Threads: `mean_latent` runs on whatever thread calls it (the session's loader thread); it loads
its own instance of the model, so the engine's model and its streaming state are never touched.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ravemap.audio.model import load_model
from ravemap.audio.source import load_loop


def mean_latent(model_path: Path, source: Path) -> list[float]:
    """The mean over time of `source` encoded by a fresh instance of the model at `model_path` (so the
    same file always gives the same vector, for a deterministic encoder). ModelError / SourceError."""
    model = load_model(model_path)
    info = model.info
    audio = load_loop(source, info.sr, info.in_channels, info.ratio)
    with torch.inference_mode():
        z = model.encode(torch.from_numpy(audio.samples)[None])
    return [float(v) for v in z[0].mean(dim=-1)]
