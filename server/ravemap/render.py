"""`ravemap render`: the engine's block path, run offline into a file, faster than real time.

The same `BlockProcessor.next_block()` that the engine thread calls while serving makes
every block here, so a render is what the daemon would have played (at the model's rate,
in the model's channels, with no resampling to a device). Written as 32-bit float WAV so
that `--no-transfer` is bit-exact with the loop as the engine prepared it.

Threads: the caller's only.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
import torch

from ravemap.audio.playback import make_controls, prepare_processor
from ravemap.config import Config, with_overrides
from ravemap.errors import ConfigError


@dataclass(frozen=True)
class RenderResult:
    path: Path
    seconds: float
    wall_seconds: float
    sr: int
    channels: int
    peak: float

    @property
    def speed(self) -> float:
        return self.seconds / self.wall_seconds if self.wall_seconds > 0 else math.inf


def render(config: Config, out: Path, seconds: float, latent: tuple[float, ...] | None = None,
           transfer: bool | None = None) -> RenderResult:
    if not math.isfinite(seconds) or seconds <= 0:
        raise ConfigError(f"--seconds: {seconds} is not allowed: give a positive number of seconds")
    controls = make_controls(config)
    if latent is not None:
        if len(latent) != controls.n_offsets:
            raise ConfigError(
                f"--latent: {len(latent)} values given but latent.dims controls {controls.n_offsets} "
                f"dims {list(config.latent.dims)}; give one value per dim, e.g. "
                f"--latent {','.join(['0'] * controls.n_offsets)}"
            )
        try:
            controls.set_offsets(latent)
        except ValueError as err:
            raise ConfigError(f"--latent: {err}") from err
    if transfer is not None:
        controls.set_transfer(transfer)
    torch.set_num_threads(config.engine.torch_threads)
    # Offline, latency means nothing: render in the first release's big blocks (unless set), which
    # a streaming model plays the same as small ones, and which cost the fewest calls.
    processor = prepare_processor(with_overrides(config, engine__latency="fixed"), controls)
    processor.set_offsets_now(controls.offsets)
    sr = processor.model.info.sr
    n_blocks = math.ceil(seconds * sr / processor.block)
    total = int(round(seconds * sr))
    started = time.perf_counter()
    with torch.inference_mode():
        blocks = [processor.next_block() for _ in range(n_blocks)]
    wall = time.perf_counter() - started
    audio = np.concatenate(blocks)[:total]
    out.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(out), audio, sr, subtype="FLOAT")
    return RenderResult(out, total / sr, wall, sr, audio.shape[1], float(np.abs(audio).max(initial=0.0)))
