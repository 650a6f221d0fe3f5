"""The performer's chain: what happens to a block around the model, in the engine thread.

    source -> input gain -> encoder -> z * scale + offsets + jitter -> decoder -> wet
    source -> input gain -> delayed by the model's own delay ---------------------> dry
    dry/wet mix -> (transfer off: the undelayed source) -> output gain -> limiter -> safety clip

Small classes, each with its buffers allocated when the processor is built (at load), each
stepped once per block by `BlockProcessor.next_block` (server/ravemap/audio/processor.py):

- `GainRamp`: a gain that glides over one block when it changes (input gain, output gain).
- `LatentShaper`: scale per latent dim (glided per latent frame like the offsets) and
  jitter, Gaussian noise of std `jitter` with a new draw per latent frame, from a seeded
  generator owned by the processor (the same render twice is the same sound).
- `DelayLine`: the dry path of live input, delayed by the model's delay (a loop needs none:
  it is read at `pos - delay`).
- `Mixer`: dry + mix * (wet - dry), gliding over a block on change; mix 0 is the dry
  block itself (bit-exact), mix 1 the wet one.
- `Limiter`: a look-ahead peak limiter with a smooth release (see its docstring).

`measure_model_delay` finds the model's delay at load: it plays the loop through the model
and cross-correlates the result with the loop.

Threads: built on the thread that loads the model (start-up, a loader thread); stepped by
the engine thread (or the renderer) only. None of this runs in the audio callback.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from ravemap.audio.source import AudioSource

LOOKAHEAD_MS = 5.0  # the limiter's look-ahead: what it adds to the latency when engine.limit_db is set
HOLD_MS = 20.0  # the limiter holds a reduction this long: a waveform peak per 50 Hz cycle does not modulate it
RELEASE_MS = 150.0  # ... then releases with this time constant once the loud part has passed
DELAY_SEARCH_S = 0.75  # the longest model delay looked for
DELAY_MEASURE_S = 4.0  # at most this much of the loop is played to measure it
ENVELOPE_HOP = 16  # hop of the loudness envelopes correlated to find the model's delay
ENVELOPE_WIDTH = 512  # samples each envelope value is the RMS of (longer than a low note's period)
RELEASE_GONE = 2.0 ** -26  # a release under this: 1 - it is 1.0 in float32, so the limiter has let go
FOLLOWS = 0.5  # envelopes matching at least this well (normalised correlation): the model follows its input
COHERENT = 0.3  # a waveform correlation peak at least this strong (normalised) is trusted


def db_to_gain(db: float) -> float:
    return 1.0 if db == 0.0 else float(10.0 ** (db / 20.0))


def glide(current: np.ndarray, goal: np.ndarray, coef: float, out: np.ndarray) -> bool:
    """One-pole glide of `current` towards `goal`, a step per column of `out[n, frames]` (both written in place).

    True when it has come to rest: every column was the same, and one more step would not move it in float32."""
    for f in range(out.shape[1]):
        current += coef * (goal - current)
        out[:, f] = current
    return bool((out[:, 0] == current).all() and (current + coef * (goal - current) == current).all())


class GainRamp:
    """A gain applied in place; a change glides linearly over one block."""

    def __init__(self, n: int, db: float = 0.0):
        self.gain = db_to_gain(db)
        self._ramp = np.linspace(0.0, 1.0, n, endpoint=False, dtype=np.float32)
        self._work = np.empty(n, dtype=np.float32)

    def follow(self, db: float) -> None:
        """A block this gain was not applied to (nothing needed it): the glide ends there, as `apply` ends it."""
        self.gain = db_to_gain(db)

    def apply(self, block: np.ndarray, db: float, axis: int) -> None:
        """`block` has `n` samples along `axis` (0: `[frames, channels]`, 1: `[channels, frames]`)."""
        gain = db_to_gain(db)
        if gain == self.gain:
            if gain != 1.0:
                block *= np.float32(gain)
            return
        np.multiply(self._ramp, gain - self.gain, out=self._work)
        self._work += self.gain
        block *= self._work[:, None] if axis == 0 else self._work[None, :]
        self.gain = gain


class LatentShaper:
    """`z = scale * z` (glided per latent frame), and after the offsets `z += jitter * N(0, 1)`.

    Once the glide has come to rest (one more step would not move it in float32) the block's factors
    are the same every block: `steps` then returns them without stepping again (`still` is the scale
    they rest at), so a steady chain costs nothing here. Reading `current` (a hot swap copies it) or
    `jump` makes the next block step again.
    """

    def __init__(self, latent_size: int, frames: int, frame_seconds: float, smoothing_ms: float, seed: int = 0):
        self.n = latent_size
        self._current = np.ones(latent_size, dtype=np.float32)
        tau = smoothing_ms / 1000.0
        self.coef = 1.0 if tau <= 0 else float(1.0 - math.exp(-frame_seconds / tau))
        self._goal = np.ones(latent_size, dtype=np.float32)
        self._steps = np.ones((latent_size, frames), dtype=np.float32)
        self._steps_t = torch.from_numpy(self._steps)
        self._noise = torch.empty(1, latent_size, frames)
        self.generator = torch.Generator().manual_seed(seed)
        self.still: tuple[float, ...] | None = None  # the scale the glide rests at (None: moving, or unknown)
        self._still_steps: np.ndarray | None = None  # ... and its factors then (None: all 1)

    @property
    def current(self) -> np.ndarray:
        """The factor each dim has reached (for a hot swap to carry over; reading it ends the rest)."""
        self.still = None
        return self._current

    def _target(self, scale: tuple[float, ...]) -> np.ndarray:
        goal = self._goal
        n = min(len(scale), self.n)
        goal[:n] = scale[:n]  # a model swap may leave `scale` sized for the other model for a block
        goal[n:] = 1.0
        return goal

    def steps(self, scale: tuple[float, ...]) -> np.ndarray | None:
        """This block's factors `[latent_size, frames]`, one glide step a frame; None while every one is and stays 1."""
        if scale == self.still:
            return self._still_steps
        goal = self._target(scale)
        current = self._current
        if (goal == 1.0).all() and (current == 1.0).all():
            self.still, self._still_steps = scale, None
            return None
        steps = self._steps
        at_rest = glide(current, goal, self.coef, steps)
        self.still, self._still_steps = (scale, steps) if at_rest else (None, None)
        return steps

    def scale(self, z: torch.Tensor, scale: tuple[float, ...]) -> None:
        """In place on `z[1, latent_size, frames]`; nothing to do while every factor is and stays 1."""
        if self.steps(scale) is not None:
            z[0].mul_(self._steps_t)

    def jump(self, scale: tuple[float, ...]) -> None:
        self._current[:] = self._target(scale)
        self.still = None

    def jitter(self, z: torch.Tensor, amount: float) -> None:
        if amount > 0.0:
            torch.randn(self._noise.shape, generator=self.generator, out=self._noise)
            z.add_(self._noise, alpha=amount)


class DelayLine:
    """Delays `[channels, n]` blocks by `delay` samples, with one buffer allocated at load."""

    def __init__(self, channels: int, delay: int, block: int):
        self.delay = int(delay)
        self.block = int(block)
        self._buf = np.zeros((channels, self.delay + self.block), dtype=np.float32)

    def process(self, x: np.ndarray, out: np.ndarray) -> None:
        d, n, buf = self.delay, self.block, self._buf
        buf[:, d:] = x
        out[:] = buf[:, :n]
        if d:
            if n >= d:
                buf[:, :d] = buf[:, n:]
            else:  # overlapping ranges: numpy copies through a temporary
                buf[:, :d] = buf[:, n:].copy()


class Mixer:
    """`dry + mix * (wet - dry)` into `out`; a change of `mix` glides over one block."""

    def __init__(self, frames: int, channels: int, mix: float):
        self.mix = mix
        self._ramp = np.linspace(0.0, 1.0, frames, endpoint=False, dtype=np.float32)[:, None]
        self._work = np.empty((frames, channels), dtype=np.float32)
        self._gains = np.empty((frames, 1), dtype=np.float32)

    def process(self, dry: np.ndarray, wet: np.ndarray, mix: float, out: np.ndarray) -> None:
        before, self.mix = self.mix, mix
        if before == mix == 0.0:
            out[:] = dry  # bit-exact
            return
        if before == mix == 1.0:
            out[:] = wet
            return
        np.subtract(wet, dry, out=self._work)
        if before == mix:
            self._work *= np.float32(mix)
        else:
            np.multiply(self._ramp, mix - before, out=self._gains)
            self._gains += before
            self._work *= self._gains
        np.add(dry, self._work, out=out)


class Limiter:
    """A look-ahead peak limiter: the output's peak stays at or under the ceiling, turned down, not clipped.

    For each incoming sample the gain that would bring its peak (over channels) to the ceiling
    is `g = ceiling / max(peak, ceiling)`. Its running minimum over `HOLD_MS` (the hold), then
    averaged over the look-ahead window (`lookahead + 1` samples), is the attack: the gain
    starts falling `lookahead` samples before a peak and reaches that peak's gain exactly when
    it plays, since the output is the input delayed by `lookahead`. The hold follows, and then
    the release: a one-pole filter of the held gain (`RELEASE_MS`); the gain applied is the
    lower of attack and release, so a loud passage lets go smoothly and a lone peak lets go
    sooner. Vectorised per block (numpy; no per-sample Python), with state carried across
    blocks; a last clamp to the ceiling catches float rounding and is counted (`clamped`).

    `limit_db` None: no gain is computed and the delay stays, so switching it live does not
    jump. With `lookahead` 0 (no `engine.limit_db` at load) a live ceiling still holds, with an
    instant attack.

    The quiet path: once every gain in the hold's and the look-ahead's history is 1 and the release
    has let go (under `RELEASE_GONE`, where `1 - release` is 1 in float32), a block whose samples are
    all within the ceiling would be played at gain 1 everywhere; it is only delayed, and the release
    decays by the block's factor, with none of the above computed: the samples and the state are
    what the full path gives. The first block with a sample over the ceiling takes the full path.
    """

    def __init__(self, sr: int, channels: int, block: int, lookahead: int):
        self.lookahead = int(lookahead)
        self.block = int(block)
        self.hold = max(self.lookahead + 1, int(round(HOLD_MS / 1000.0 * sr)))
        self.release = float(math.exp(-1.0 / (RELEASE_MS / 1000.0 * sr)))
        self.reduction_db = 0.0  # the deepest gain reduction of the last block
        self.clamped = 0
        n, la, h = self.block, self.lookahead, self.hold
        self._delay = np.zeros((la + n, channels), dtype=np.float32)
        self._peak = np.empty((n, channels), dtype=np.float32)
        width = -(-(h - 1 + n) // h) * h  # the hold's input, padded to whole windows
        self._held_in = np.ones(width, dtype=np.float64)
        self._held = np.empty(n + la, dtype=np.float64)
        self._held[:la] = 1.0
        self._sums = np.empty(n + la + 1, dtype=np.float64)
        self._gain = np.empty(n, dtype=np.float64)
        self._rel = np.empty(n, dtype=np.float64)
        self._rel_state = 0.0  # the release filter's reduction (0: none)
        k = np.arange(n, dtype=np.float64)
        self._rel_up = self.release ** (k + 1)  # a^(k+1)
        self._rel_in = (1.0 - self.release) * self.release ** (-k)  # (1-a) a^-k (n is one block: stays finite)
        self._active = False
        self._quiet_ceiling: float | None = None  # the ceiling under which the history is all 1 (the quiet path)

    def reset(self) -> None:
        self._held_in.fill(1.0)
        self._held[: self.lookahead] = 1.0
        self._rel_state = 0.0
        self.reduction_db = 0.0
        self._quiet_ceiling = None

    def _play_delayed(self, block: np.ndarray) -> None:
        """`block` becomes the look-ahead's oldest samples, and the delay line moves on by a block."""
        n, la, delay = self.block, self.lookahead, self._delay
        if la:
            block[:] = delay[:n]
            delay[:la] = delay[n:].copy() if n < la else delay[n:]

    def process(self, block: np.ndarray, limit_db: float | None) -> bool:
        """In place on `block[frames, channels]`: delay by the look-ahead, then turn down what is over.

        True when the quiet path played it: every sample is finite and within the ceiling (each was
        checked on its way in), so the safety clip behind has nothing to do."""
        n, la, h = self.block, self.lookahead, self.hold
        if la:
            delay = self._delay
            delay[la:] = block
        if limit_db is None:
            if self._active:
                self.reset()
                self._active = False
            self._play_delayed(block)
            return False
        self._active = True
        ceiling = float(10.0 ** (limit_db / 20.0))
        if ceiling == self._quiet_ceiling and block.max() <= ceiling and block.min() >= -ceiling:  # NaN: no
            self.reduction_db = 0.0  # the quiet path (see the class): gain 1 everywhere, only the delay
            self._rel_state *= self._rel_up[-1]  # as the full path decays it over the block, to the bit
            self._play_delayed(block)
            return True
        # The gain each incoming sample needs, appended to the hold's history (h - 1 samples).
        np.abs(block, out=self._peak)
        need = self._held_in[h - 1 : h - 1 + n]
        np.maximum(self._peak.max(axis=1), np.float64(ceiling), out=need)  # in float64: a quiet sample needs 1.0
        np.divide(ceiling, need, out=need)
        # The hold: the minimum over the last h samples (van Herk / Gil-Werman, in whole windows).
        windows = self._held_in.reshape(-1, h)
        prefix = np.minimum.accumulate(windows, axis=1).ravel()
        suffix = np.minimum.accumulate(windows[:, ::-1], axis=1)[:, ::-1].ravel()
        held = self._held  # [la history | n new]
        np.minimum(suffix[:n], prefix[h - 1 : h - 1 + n], out=held[la:])
        # The attack: output k plays input k - la, at the held gain averaged over inputs k - la .. k.
        sums = self._sums
        sums[0] = 0.0
        np.cumsum(held, out=sums[1:])
        gain = self._gain
        np.subtract(sums[la + 1 : la + 1 + n], sums[:n], out=gain)
        if la:
            gain /= la + 1
        # The release: a one-pole filter of the held reduction (1 - gain), in closed form over the
        # block. Filtering the reduction keeps "no reduction" exactly 0, so a quiet block is bit-exact.
        rel = self._rel
        np.subtract(1.0, held[la:], out=rel)
        rel *= self._rel_in
        np.cumsum(rel, out=rel)
        rel *= self._rel_up / self.release
        rel += self._rel_state * self._rel_up
        self._rel_state = float(rel[-1])
        np.subtract(1.0, rel, out=rel)
        np.minimum(gain, rel, out=gain)
        # Keep the histories for the next block.
        tail = self._held_in[n : n + h - 1].copy()
        self._held_in[: h - 1] = tail
        if la:
            held[:la] = held[n : n + la].copy()
        # Play the delayed samples at that gain.
        self._play_delayed(block)
        block *= gain[:, None].astype(np.float32)
        lowest = float(gain.min())
        self.reduction_db = 0.0 if lowest >= 1.0 else float(-20.0 * math.log10(max(lowest, 1e-12)))
        over = np.count_nonzero(np.abs(block) > ceiling)
        if over:
            self.clamped += int(over)
            np.clip(block, -ceiling, ceiling, out=block)
        quiet = self._rel_state < RELEASE_GONE and (self._held_in[: h - 1] == 1.0).all() \
            and (held[:la] == 1.0).all()
        self._quiet_ceiling = ceiling if quiet else None
        return False


def lookahead_samples(sr: int, limit_db: float | None) -> int:
    """The limiter's look-ahead for a model at `sr`: none when no limiter was configured at load."""
    return 0 if limit_db is None else int(round(LOOKAHEAD_MS / 1000.0 * sr))


def measure_model_delay(play: Callable[[], np.ndarray], source: AudioSource, block: int,
                        max_lag: int | None = None) -> tuple[int, float]:
    """Samples by which the model's output lags its input, and how well (0..1) the two then match.

    `play()` returns the next block of the model's reconstruction of `source` (wet, from
    position 0, `[frames, channels]`). A generative decoder makes its own phase, so the two are
    first lined up by their loudness envelopes (a moving RMS, `ENVELOPE_HOP` apart), which any
    model that follows its input shares; then, when the waveforms match well (`COHERENT`) within
    two hops of that, to the sample by the waveforms' cross-correlation. The source is read
    circularly (a loop wraps round). A model whose envelope does not follow its input (match
    under `FOLLOWS`, e.g. an untrained one) has no delay to measure: 0, with that match.
    """
    sr = source.sr
    hop = ENVELOPE_HOP
    n_blocks = max(2, math.ceil(DELAY_MEASURE_S * sr / block))  # a short loop wraps round
    y = np.concatenate([play() for _ in range(n_blocks)]).mean(axis=1).astype(np.float64)
    n = y.size
    max_lag = min(max_lag if max_lag is not None else int(DELAY_SEARCH_S * sr), n // 2) // hop * hop
    ext = np.empty((source.samples.shape[0], n + max_lag), dtype=np.float32)
    source.read(-max_lag, n + max_lag, ext)
    x = ext.mean(axis=0).astype(np.float64)  # x[k] is the source at k - max_lag
    ex, ey = _envelope(x, hop), _envelope(y, hop)
    coarse, env_match = _best_lag(ex - ex.mean(), ey - ey.mean(), max_lag // hop)
    coarse *= hop
    if env_match < FOLLOWS:
        return 0, env_match
    wave = _lags(x, y, max_lag)
    low, high = max(0, coarse - 2 * hop), min(max_lag, coarse + 2 * hop)
    fine = low + int(np.argmax(wave[low : high + 1]))
    if wave[fine] >= COHERENT:
        return fine, float(wave[fine])
    return coarse, env_match


def _lags(x: np.ndarray, y: np.ndarray, max_lag: int) -> np.ndarray:
    """Normalised `sum_t y[t] x[t + max_lag - d]` for each lag d in 0..max_lag."""
    size = 1 << (x.size + y.size).bit_length()
    corr = np.fft.irfft(np.fft.rfft(x, size) * np.conj(np.fft.rfft(y, size)), size)[: max_lag + 1][::-1]
    energy = np.concatenate([[0.0], np.cumsum(x * x)])
    d = np.arange(max_lag + 1)
    seg = energy[max_lag - d + y.size] - energy[max_lag - d]  # energy of the x segment each lag uses
    norm = np.sqrt(np.maximum(seg * float(np.dot(y, y)), 1e-30))
    return corr / norm


def _best_lag(x: np.ndarray, y: np.ndarray, max_lag: int) -> tuple[int, float]:
    """The lag d in 0..max_lag maximising the normalised `sum_t y[t] x[t + max_lag - d]`, and that value."""
    lags = _lags(x, y, max_lag)
    d = int(np.argmax(lags))
    return d, float(lags[d])


def _envelope(x: np.ndarray, hop: int, width: int = ENVELOPE_WIDTH) -> np.ndarray:
    """RMS over `width` samples, every `hop` samples."""
    energy = np.concatenate([[0.0], np.cumsum(x * x)])
    ends = np.arange(width, x.size + 1, hop)
    return np.sqrt(np.maximum(energy[ends] - energy[ends - width], 0.0) / width)
