"""The `loop` step: write `loops/default.wav`, a two-bar phrase from the same synth as the data.

32 eighth notes of 8192 samples (about 161 BPM), 262144 samples (5.94 s) in all: a multiple
of the model's ratio, so latent frames line up with the seam. A minor-pentatonic riff with
accents, rests, an octave leap, a legato glide and a held note with vibrato.

The phrase is rendered with an extra second of tail, and the tail is folded back onto the
start (added to it): the release of the last note rings on into the first bar exactly as it
would if the phrase really repeated, and the first note starts from silence, so the loop
wraps with no step in the waveform.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile

from training import synth
from training.config import SR

STEP = 8192
STEPS = 32
LENGTH = STEP * STEPS

# (step, length in steps, MIDI pitch, velocity, legato)
RIFF = [
    (0, 2, 57, 1.00, False),
    (2, 1, 57, 0.55, False),
    (3, 1, 60, 0.70, False),
    (4, 2, 64, 0.90, False),
    (6, 1, 62, 0.60, False),
    (7, 1, 60, 0.70, False),
    (8, 3, 67, 1.00, False),
    (11, 1, 69, 0.80, True),
    (13, 1, 64, 0.70, False),
    (14, 2, 62, 0.85, False),
    (16, 2, 57, 1.00, False),
    (18, 1, 55, 0.55, False),
    (19, 1, 57, 0.70, False),
    (20, 2, 60, 0.90, False),
    (22, 1, 52, 0.70, False),
    (23, 1, 55, 0.60, False),
    (24, 4, 69, 1.00, False),
    (28, 2, 64, 0.80, True),
]

TIMBRE = synth.Timbre(
    tilt=1.2,
    even=0.8,
    bright_env=0.8,
    bright_vel=0.6,
    noise_db=-26.0,
    noise_center=3000.0,
    noise_width=1.5,
    chiff_db=-12.0,
    chiff_time=0.015,
    attack=0.006,
    decay=0.3,
    sustain=0.55,
    release=0.12,
    vib_rate=5.5,
    vib_cents=18.0,
    vib_delay=0.3,
    glide=0.07,
)


def notes(sr: int = SR) -> list[synth.Note]:
    step_s = STEP / sr
    out = []
    for step, length, pitch, velocity, legato in RIFF:
        dur = length * step_s * (1.0 if legato or length >= 3 else 0.8)
        out.append(synth.Note(step * step_s, dur, float(pitch), velocity, legato))
    return out


def render(seed: int, sr: int = SR) -> np.ndarray:
    """The loop as float32 `[LENGTH]`, seamless when repeated."""
    rng = np.random.default_rng([seed, 3])
    tail = sr
    full = synth.render(notes(sr), TIMBRE, (LENGTH + tail) / sr, sr, rng).audio
    audio = full[:LENGTH].copy()
    audio[:tail] += full[LENGTH : LENGTH + tail]
    peak = np.abs(audio).max()
    return (audio * (0.5 / peak)).astype(np.float32)  # peak at -6 dBFS


def write(path: Path, seed: int, sr: int = SR) -> dict[str, float]:
    audio = render(seed, sr)
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), audio, sr, subtype="PCM_16")
    steps = np.abs(np.diff(audio))
    return {
        "seconds": len(audio) / sr,
        "samples": float(len(audio)),
        "wrap_step": float(abs(audio[0] - audio[-1])),
        "median_step": float(np.median(steps)),
        "max_step": float(steps.max()),
    }
