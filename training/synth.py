"""A monophonic subtractive/additive voice: the family of sounds the default model learns.

One voice plays a list of `Note`s with a `Timbre`:
- a harmonic tone (up to 64 harmonics, amplitudes k**-tilt, adjustable even harmonics), whose
  tilt follows the envelope (darker as a note decays) and the velocity (brighter when louder);
- band-pass filtered noise at a set level, plus a short noise "chiff" at each attack;
- an ADSR envelope per note (legato notes glide in pitch and are not re-attacked);
- vibrato that fades in after a delay.

`render` returns the audio with its labels (f0 and amplitude per sample), which training uses
to check the decoder's pitch. `random_phrase` draws a phrase and a timbre from a seeded
numpy Generator. Everything is numpy; nothing here knows about torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

N_HARMONICS = 64
OUTPUT_GAIN = 0.25  # keeps the loudest notes' peaks near -3 dBFS


@dataclass(frozen=True)
class Note:
    start: float  # seconds
    dur: float  # gate length, seconds
    pitch: float  # MIDI note number (may be fractional)
    velocity: float = 0.8  # 0..1, maps to -24..0 dB
    legato: bool = False  # glide from the previous pitch without a new attack


@dataclass(frozen=True)
class Timbre:
    tilt: float = 1.4  # harmonic k has amplitude k**-tilt
    even: float = 1.0  # gain of even harmonics
    bright_env: float = 0.6  # tilt added as the envelope falls to 0
    bright_vel: float = 0.5  # tilt removed per unit of velocity above 0.5
    noise_db: float = -24.0  # noise level relative to the harmonic part
    noise_center: float = 2000.0  # Hz, centre of the noise band
    noise_width: float = 1.5  # octaves (std of a log-frequency Gaussian)
    chiff_db: float = -14.0  # attack noise burst level
    chiff_time: float = 0.02  # seconds, decay time constant of the burst
    attack: float = 0.01
    decay: float = 0.25
    sustain: float = 0.6
    release: float = 0.15
    vib_rate: float = 5.5  # Hz
    vib_cents: float = 15.0
    vib_delay: float = 0.25  # seconds after each attack before vibrato fades in
    glide: float = 0.06  # seconds for a legato pitch glide


@dataclass
class Rendered:
    audio: np.ndarray  # float32 [n]
    f0: np.ndarray = field(repr=False)  # float32 [n], Hz (held between notes)
    amp: np.ndarray = field(repr=False)  # float32 [n], envelope x velocity gain, 0..1


def _velocity_gain(velocity: float) -> float:
    return float(10.0 ** ((np.clip(velocity, 0.0, 1.0) - 1.0) * 24.0 / 20.0))


def _controls(notes: list[Note], timbre: Timbre, n: int, sr: int) -> dict[str, np.ndarray]:
    """Per-sample pitch (MIDI), envelope, velocity gain, brightness offset, chiff and vibrato depth."""
    t_all = np.arange(n) / sr
    pitch = np.zeros(n)
    env = np.zeros(n)
    gain = np.zeros(n)
    tilt_off = np.zeros(n)
    chiff = np.zeros(n)
    vib = np.zeros(n)
    notes = sorted(notes, key=lambda note: note.start)
    level = 0.0  # envelope level where the next note takes over
    g_prev = _velocity_gain(notes[0].velocity) if notes else 0.0
    p_prev = notes[0].pitch if notes else 60.0
    off_prev = -timbre.bright_vel * (notes[0].velocity - 0.5) if notes else 0.0
    vib_start = 0.0
    for i, note in enumerate(notes):
        s = int(round(note.start * sr))
        e = int(round(notes[i + 1].start * sr)) if i + 1 < len(notes) else n
        s, e = min(max(s, 0), n), min(max(e, 0), n)
        if e <= s:
            continue
        t = t_all[s:e] - s / sr
        gate = note.dur
        # Envelope: attack from the current level, exponential decay to sustain, release after the gate.
        if note.legato:
            body = timbre.sustain + (level - timbre.sustain) * np.exp(-t / max(timbre.decay / 3, 1e-3))
        else:
            a = max(timbre.attack, 1e-3)
            att = level + (1.0 - level) * np.clip(t / a, 0, 1)
            dec = timbre.sustain + (1 - timbre.sustain) * np.exp(-(t - a) / max(timbre.decay / 3, 1e-3))
            body = np.where(t < a, att, dec)
        if gate < t[-1] + 1.0 / sr:
            gi = int(round(gate * sr))
            gi = min(max(gi, 1), len(t))
            at_gate = body[gi - 1]
            rel = at_gate * np.exp(-(t[gi:] - gate) / max(timbre.release / 6.9, 1e-3))
            body = np.concatenate([body[:gi], rel])
        env[s:e] = body
        level = float(body[-1])
        # Velocity gain crossfades over 10 ms so that a new velocity never clicks.
        g = _velocity_gain(note.velocity)
        gain[s:e] = g_prev + (g - g_prev) * np.clip(t / 0.01, 0, 1)
        g_prev = g
        off = -timbre.bright_vel * (note.velocity - 0.5)
        tilt_off[s:e] = off_prev + (off - off_prev) * np.clip(t / 0.01, 0, 1)
        off_prev = off
        # Pitch: a step, or a glide (linear in semitones) for legato notes.
        if note.legato:
            pitch[s:e] = p_prev + (note.pitch - p_prev) * np.clip(t / max(timbre.glide, 1e-3), 0, 1)
        else:
            pitch[s:e] = note.pitch
            vib_start = note.start
            if timbre.chiff_db > -79:
                burst = np.clip(t / 0.002, 0, 1) * np.exp(-t / max(timbre.chiff_time, 1e-3))
                chiff[s:e] += 10 ** (timbre.chiff_db / 20) * burst
        p_prev = note.pitch
        vib[s:e] = np.clip((t_all[s:e] - vib_start - timbre.vib_delay) / 0.2, 0, 1)
    if notes:
        first = int(round(notes[0].start * sr))
        pitch[:first] = notes[0].pitch
        gain[:first] = _velocity_gain(notes[0].velocity)
        tilt_off[:first] = -timbre.bright_vel * (notes[0].velocity - 0.5)
    vibrato = timbre.vib_cents / 100.0 * vib * np.sin(2 * np.pi * timbre.vib_rate * t_all)
    return {
        "pitch": pitch + vibrato,
        "env": env,
        "gain": gain,
        "tilt": timbre.tilt + tilt_off + timbre.bright_env * (1.0 - env),
        "chiff": chiff,
    }


def _harmonic_part(f0: np.ndarray, tilt: np.ndarray, even: float, sr: int, chunk: int = 32768) -> np.ndarray:
    """Sum of harmonics with per-sample tilt, power-normalised, fading out below Nyquist."""
    n = len(f0)
    phase = np.cumsum(f0 / sr)  # cycles, float64
    phase -= np.floor(phase)
    k = np.arange(1, N_HARMONICS + 1, dtype=np.float32)
    logk = np.log(k)
    k_gain = np.where(k % 2 == 0, even, 1.0).astype(np.float32)
    nyq = sr / 2
    out = np.empty(n, dtype=np.float32)
    for s in range(0, n, chunk):
        e = min(s + chunk, n)
        f = f0[s:e, None].astype(np.float32)
        amps = np.exp(-tilt[s:e, None].astype(np.float32) * logk) * k_gain
        amps *= np.clip((0.95 * nyq - k * f) / (0.15 * nyq), 0.0, 1.0)
        amps /= np.sqrt((amps**2).sum(axis=1, keepdims=True)) + 1e-9
        ph = phase[s:e, None].astype(np.float32)
        out[s:e] = (amps * np.sin((2 * np.pi) * (ph * k))).sum(axis=1)
    return out


def _band_noise(n: int, timbre: Timbre, sr: int, rng: np.random.Generator) -> np.ndarray:
    """White noise through a log-frequency Gaussian band, unit RMS."""
    noise = rng.standard_normal(n)
    spec = np.fft.rfft(noise)
    freqs = np.fft.rfftfreq(n, 1 / sr)
    octaves = np.log2(np.maximum(freqs, 20.0) / timbre.noise_center)
    spec *= np.exp(-0.5 * (octaves / timbre.noise_width) ** 2)
    band = np.fft.irfft(spec, n)
    return band / (np.sqrt(np.mean(band**2)) + 1e-9)


def render(notes: list[Note], timbre: Timbre, seconds: float, sr: int, rng: np.random.Generator) -> Rendered:
    """Render `notes` with `timbre` into `seconds` of mono audio at `sr`."""
    n = int(round(seconds * sr))
    c = _controls(notes, timbre, n, sr)
    f0 = 440.0 * 2.0 ** ((c["pitch"] - 69.0) / 12.0)
    harm = _harmonic_part(f0, c["tilt"], timbre.even, sr)
    noise = _band_noise(n, timbre, sr, rng)
    noise_env = 10 ** (timbre.noise_db / 20) * c["env"] + c["chiff"]
    amp = c["gain"] * c["env"]
    audio = OUTPUT_GAIN * c["gain"] * (c["env"] * harm + noise_env * noise)
    return Rendered(audio.astype(np.float32), f0.astype(np.float32), amp.astype(np.float32))


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def random_timbre(rng: np.random.Generator) -> Timbre:
    return Timbre(
        tilt=float(rng.uniform(0.5, 2.6)),
        even=float(rng.uniform(0.05, 0.4) if rng.random() < 0.3 else rng.uniform(0.6, 1.0)),
        bright_env=float(rng.uniform(0.0, 1.5)),
        bright_vel=float(rng.uniform(0.0, 1.0)),
        noise_db=float(rng.uniform(-50.0, -6.0)),
        noise_center=_log_uniform(rng, 300.0, 9000.0),
        noise_width=float(rng.uniform(0.5, 2.5)),
        chiff_db=float(rng.uniform(-30.0, -3.0) if rng.random() < 0.6 else -80.0),
        chiff_time=_log_uniform(rng, 0.005, 0.06),
        attack=_log_uniform(rng, 0.003, 0.2),
        decay=_log_uniform(rng, 0.03, 0.8),
        sustain=float(rng.uniform(0.1, 1.0)),
        release=_log_uniform(rng, 0.02, 0.6),
        vib_rate=float(rng.uniform(4.0, 7.0)),
        vib_cents=float(rng.uniform(5.0, 50.0) if rng.random() < 0.6 else 0.0),
        vib_delay=float(rng.uniform(0.0, 0.4)),
        glide=_log_uniform(rng, 0.02, 0.15),
    )


def random_notes(rng: np.random.Generator, seconds: float) -> list[Note]:
    """A monophonic line on a step grid: steps, rests, leaps, legato glides, accents."""
    step = float(rng.uniform(0.09, 0.4))
    centre = float(rng.uniform(36.0, 76.0))
    spread = float(rng.uniform(3.0, 12.0))
    gate_frac = float(rng.uniform(0.3, 1.0))
    notes: list[Note] = []
    t = 0.0
    pitch = centre
    while t < seconds:
        length = step * int(rng.integers(1, 5))
        if rng.random() < 0.15 and notes:
            t += length
            continue
        pitch = float(np.clip(pitch + rng.normal(0.0, spread / 2), centre - spread, centre + spread))
        pitch = float(np.clip(np.round(pitch) if rng.random() < 0.8 else pitch, 33.0, 84.0))
        legato = bool(notes) and rng.random() < 0.2
        dur = length if legato else length * float(np.clip(gate_frac + rng.normal(0, 0.1), 0.15, 1.0))
        notes.append(Note(t, dur, pitch, float(rng.uniform(0.25, 1.0)), legato))
        t += length
    return notes


def random_phrase(rng: np.random.Generator, sr: int) -> Rendered:
    """One phrase (1.5..5 s of notes plus its release) with a freshly drawn timbre."""
    seconds = float(rng.uniform(1.5, 5.0))
    timbre = random_timbre(rng)
    notes = random_notes(rng, seconds)
    return render(notes, timbre, seconds + timbre.release + 0.05, sr, rng)
