"""Every setting of the default-model recipe, in one place.

The recipe is deterministic for a given seed: data, initial weights, training batches and
the default loop all derive from `SEED`. Change numbers here, not in the step modules.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BUILD_DIR = REPO_ROOT / "training" / "build"
MODEL_PATH = REPO_ROOT / "models" / "default.ts"
LOOP_PATH = REPO_ROOT / "loops" / "default.wav"
MODEL_README = REPO_ROOT / "models" / "README.md"

SEED = 1234
SR = 44100


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of the default model (see model.py)."""

    sr: int = SR
    ratio: int = 256  # samples per latent frame (5.8 ms at 44.1 kHz)
    encoder_window: int = 2048  # samples the encoder sees per frame: the frame and the 1792 before it
    rms_slices: int = 8  # log-RMS features: slices of 2 * ratio / rms_slices samples ending at the frame end
    latent_size: int = 8  # exported dims == full latent size
    hidden: int = 256
    n_harmonics: int = 64
    n_noise_bands: int = 32
    noise_fir: int = 256  # taps of each fixed noise-band filter (at most ratio: one frame of tail)
    substeps: int = 2  # amplitude envelope points per latent frame (one per 128 samples)
    f0_min: float = 30.0
    f0_max: float = 2000.0


@dataclass(frozen=True)
class DataConfig:
    """How much synthesized audio to make (see synth.py and dataset.py)."""

    train_seconds: float = 480.0
    heldout_seconds: float = 40.0
    heldout_clip_seconds: float = 2.0


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation (see train.py)."""

    steps: int = 4000  # about 0.3 s of CPU per step: roughly 13 min on 2 idle cores (estimated, not measured)
    batch_size: int = 12
    frames: int = 48  # latent frames per example that count in the loss (12288 samples)
    context_frames: int = 4  # frames decoded before them to warm up the streaming state
    lr: float = 1e-3
    lr_final: float = 3e-5
    beta_kl: float = 0.005
    kl_warmup: float = 0.3  # fraction of steps over which beta ramps up from 0
    f0_weight: float = 1.0
    threads: int = 2
    time_limit_s: float = 1000.0  # the schedule finishes within this many seconds even on a busy machine (0: off)


MODEL = ModelConfig()
DATA = DataConfig()
TRAIN = TrainConfig()
