"""One block of audio: source -> input gain -> latents (x scale + offsets + jitter) -> decode
-> dry/wet mix -> gain -> limiter -> safety.

`BlockProcessor.next_block()` is the single code path that makes sound: the engine
thread calls it ahead of the audio callback, and `ravemap render` calls it in a plain loop.

Encoding. With `encode: cached` (the default) the loop is encoded once, when the
processor is built, in overlapping chunks that wrap around the loop's ends, so every
latent frame, the seam's included, is computed with real context on both sides; a
variational export then plays one fixed sample of its posterior. With `encode: live`
each block is encoded as it plays (a variational export samples anew every block).

Streaming exports keep state between calls. Before the first block the decoder (and in
live mode the encoder) is run over the loop's last blocks, so the state at the seam is
the state it will have every time the loop comes round.

Offsets are smoothed per latent frame with a one-pole filter, so a jump in a slider
glides over `smoothing_ms` instead of clicking.

The performer's chain (server/ravemap/audio/chain.py): the input gain multiplies the source
before the encoder (with `encode: cached` the loop was encoded at load with the gain of that
moment: a later change moves the dry path at once and the model's input when the loop is encoded
again, e.g. by `Playback.reencode`); the model's latents are scaled per dim, offset, jittered;
the dry source, delayed by the model's own delay (`settings.model_delay`), is mixed with the
model's output; transfer off plays the undelayed source as before; the limiter (look-ahead
`lookahead` samples, present when `engine.limit_db` was set at load) turns the output down to
its ceiling, and `make_safe` stays behind it as the last resort (a block the limiter's quiet path
played was checked sample by sample on its way in: finite and within the ceiling, nothing to clip).

The prior: while `controls.prior_temperature` is a number and the model has a prior, each
block's latents come from `model.prior(temperature, frames)` instead of the cache or the
encoder (into a buffer allocated here), and scale, offsets and jitter apply after as they do to
the loop's; the dry path stays the source. None again: the next block is the loop's, where the
loop has played on to.

Threads: built on any thread (start-up, a loader thread for hot swaps); `next_block`
is called by one thread only (the engine thread, or the renderer). Reads
`EngineControls` once per block.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ravemap.audio.chain import DelayLine, GainRamp, LatentShaper, Limiter, Mixer, db_to_gain, glide, lookahead_samples
from ravemap.audio.controls import EngineControls
from ravemap.audio.latency import LatencyChoice
from ravemap.audio.model import RaveModel
from ravemap.audio.safety import SafetyCounters, make_safe
from ravemap.audio.source import AudioSource, adapt_channels
from ravemap.errors import ConfigError

ENCODE_MODES = ("cached", "live")
ENCODE_CHUNK_FRAMES = 64
MIN_CONTEXT_SAMPLES = 16384
WARMUP_SAMPLES = 16384
SAFE_LATENT = 1e30  # cached latents and offsets under this: x 4 plus each other, still far from float32's inf


@dataclass(frozen=True)
class ProcessorSettings:
    block_size: int
    latent_dims: tuple[int, ...]
    encode: str = "cached"
    smoothing_ms: float = 50.0
    model_delay: int = 0  # samples the dry path is delayed by, to line up with the model's output
    limiter: bool = False  # a look-ahead limiter (engine.limit_db set at load); off: no look-ahead
    seed: int = 0  # the jitter's generator


def check_settings(settings: ProcessorSettings, model: RaveModel) -> None:
    """Raise ConfigError if these settings cannot work with this model."""
    info = model.info
    if settings.block_size <= 0 or settings.block_size % info.ratio:
        multiples = ", ".join(str(info.ratio * k) for k in (1, 2, 4, 8))
        raise ConfigError(
            f"engine.block_size: {settings.block_size} is not a multiple of the model's compression "
            f"ratio {info.ratio} ({info.path.name}); use one of {multiples}, ..."
        )
    bad = [d for d in settings.latent_dims if not 0 <= d < info.latent_size]
    if bad:
        raise ConfigError(
            f"latent.dims: {list(settings.latent_dims)} names dims {bad} but {info.path.name} has "
            f"latent dims 0..{info.latent_size - 1}"
        )
    if settings.encode not in ENCODE_MODES:
        raise ConfigError(f"engine.encode: {settings.encode!r} is not one of {', '.join(ENCODE_MODES)}")


def encode_loop(model: RaveModel, loop: AudioSource, gain_db: float = 0.0) -> torch.Tensor:
    """Encode a whole loop once, circularly, at an input gain: returns `z[1, latent_size, n_frames]`."""
    gain = db_to_gain(gain_db)
    ratio = model.info.ratio
    n_frames = loop.n_samples // ratio
    context = max(8, math.ceil(MIN_CONTEXT_SAMPLES / ratio))
    out = torch.empty(1, model.info.latent_size, n_frames)
    with torch.inference_mode():
        for f0 in range(0, n_frames, ENCODE_CHUNK_FRAMES):
            f1 = min(n_frames, f0 + ENCODE_CHUNK_FRAMES)
            span = f1 - f0 + 2 * context
            x = np.empty((loop.samples.shape[0], span * ratio), dtype=np.float32)
            loop.read((f0 - context) * ratio, span * ratio, x)
            if gain != 1.0:
                x *= np.float32(gain)
            z = model.encode(torch.from_numpy(x)[None])
            out[:, :, f0:f1] = z[:, :, context : context + f1 - f0]
    return out


class OffsetSmoother:
    """One-pole glide of the offsets, stepped once per latent frame.

    `still` is the target the glide has come to rest at (one more step would not move it in
    float32, and the last block's frames all had that value): until the target changes, `frames`
    would write what it wrote last time, so the processor need not call it. Reading `current` (a hot
    swap copies it) or `jump` ends the rest.
    """

    def __init__(self, n: int, frame_seconds: float, smoothing_ms: float):
        self._current = np.zeros(n, dtype=np.float32)
        tau = smoothing_ms / 1000.0
        self.coef = 1.0 if tau <= 0 else float(1.0 - math.exp(-frame_seconds / tau))
        self.still: tuple[float, ...] | None = None

    @property
    def current(self) -> np.ndarray:
        self.still = None
        return self._current

    def frames(self, target: tuple[float, ...], n_frames: int, out: np.ndarray) -> np.ndarray:
        at_rest = glide(self._current, np.asarray(target, dtype=np.float32), self.coef, out[:, :n_frames])
        self.still = target if at_rest else None
        return out

    def jump(self, target: tuple[float, ...]) -> None:
        self._current[:] = np.asarray(target, dtype=np.float32)
        self.still = None


class BlockProcessor:
    """Turns the loop into blocks of `block_size` frames at the model's rate, `[frames, channels]`."""

    def __init__(self, model: RaveModel, loop: AudioSource, settings: ProcessorSettings,
                 controls: EngineControls, latents: torch.Tensor | None = None, warm_up: bool = True,
                 latency: LatencyChoice | None = None, encoded_gain_db: float | None = None):
        check_settings(settings, model)
        if loop.sr != model.info.sr or loop.samples.shape[0] != model.info.in_channels:
            raise ValueError("the loop must be prepared at the model's rate and input channels")
        info = model.info
        self.model = model
        self.loop = loop
        self.settings = settings
        self.controls = controls
        self.block = settings.block_size
        # How the block size was chosen and the lead the engine keeps (server/ravemap/audio/latency.py).
        self.latency = latency or LatencyChoice(self.block, None, 1, auto=False)
        self.frames_per_block = self.block // info.ratio
        self.block_s = self.block / info.sr  # a block's seconds: what it adds to the sample clock (controls.rendered_s)
        self.out_channels = info.out_channels
        self.dims = torch.tensor(settings.latent_dims, dtype=torch.long)
        self.safety = SafetyCounters()
        self.pos = 0
        self.blocks = 0
        self.model_errors = 0
        self.latents: torch.Tensor | None
        if settings.encode == "cached":
            self.latents = latents if latents is not None else encode_loop(model, loop)
        else:
            self.latents = None
        self.smoother = OffsetSmoother(len(settings.latent_dims), info.ratio / info.sr, settings.smoothing_ms)
        self._src = np.zeros((info.in_channels, self.block), dtype=np.float32)
        self._offsets = np.zeros((len(settings.latent_dims), self.frames_per_block), dtype=np.float32)
        self._frame_index = torch.arange(self.frames_per_block)
        self._ramp = np.linspace(0.0, 1.0, self.block, endpoint=False, dtype=np.float32)[:, None]
        self._transfer = controls.transfer
        self._gain = db_to_gain(controls.gain_db)
        # The performer's chain, its buffers allocated here.
        block, in_ch, out_ch = self.block, info.in_channels, info.out_channels
        self.model_delay = int(settings.model_delay)
        # The input gain the cached latents were encoded with (`encode: cached` only).
        self.encoded_gain_db = controls.input_gain_db if encoded_gain_db is None else encoded_gain_db
        self.shaper = LatentShaper(info.latent_size, self.frames_per_block, info.ratio / info.sr,
                                   settings.smoothing_ms, seed=settings.seed)
        self.input_gain = GainRamp(block, controls.input_gain_db)
        self.dry_gain = GainRamp(block, controls.input_gain_db)
        self.mixer = Mixer(block, out_ch, controls.mix)
        self.limiter = Limiter(info.sr, out_ch, block,
                               lookahead_samples(info.sr, 0.0 if settings.limiter else None))
        self._dry = np.zeros((in_ch, block), dtype=np.float32)  # the source, delayed by the model's delay
        self._mixed = np.empty((block, out_ch), dtype=np.float32)
        self._dry_line = None if loop.seekable else DelayLine(in_ch, self.model_delay, block)
        self._prior_z: torch.Tensor | None = None
        if info.has_prior:  # the prior's temperature signal and latents, allocated at load
            model.prepare_prior(self.frames_per_block)
            self._prior_z = torch.zeros(1, info.latent_size, self.frames_per_block)
        # The latents a block decodes (cached encoding), shaped in place; its numpy view shares its memory.
        frames = self.frames_per_block
        self._z = torch.zeros(1, info.latent_size, frames)
        self._zn = self._z.numpy()[0]
        # The offsets as one addend over every latent dim, rebuilt while they glide, kept while they rest.
        self._addend = torch.zeros(info.latent_size, frames)
        self._addend_np = self._addend.numpy()
        self._addend_for: tuple[float, ...] | None = None  # the offsets it rests at (None: rebuild next block)
        self._addend_zero = True  # every offset is 0: nothing to add
        self._addend_bounded = True  # every value well inside float32's range
        self._cache: np.ndarray | None = None
        self._cache_safe = False
        if self.latents is not None:
            self._set_cache(self.latents)
        if warm_up:
            self._warm_up()

    @property
    def n_frames(self) -> int:
        return self.loop.n_samples // self.model.info.ratio

    def _warm_up(self) -> None:
        """Run the model over the blocks before the loop's start so streaming state is settled.

        This also takes TorchScript's slow first calls (it profiles and optimises them) off the clock.
        """
        blocks = max(2, math.ceil(WARMUP_SAMPLES / self.block))  # TorchScript also optimises on first calls
        scale = self.controls.scale
        self.shaper.jump(scale)  # the state settles with the latents scaled as they will play
        with torch.inference_mode():
            for k in range(blocks, 0, -1):
                start = self.pos - k * self.block
                if self.latents is None:
                    if self.loop.seekable:
                        self.loop.read(start, self.block, self._src)
                        self._src *= np.float32(db_to_gain(self.controls.input_gain_db))
                    else:  # live input has no past: settle on silence
                        self._src.fill(0.0)
                z = self._latents_for(start)
                self.shaper.scale(z, scale)
                self.model.decode(z)

    def _latents_for(self, start: int) -> torch.Tensor:
        """Latent frames for the block at sample `start`: from the cache, or by encoding `_src` (warm-up)."""
        if self.latents is not None:
            first = (start // self.model.info.ratio) % self.n_frames
            index = (self._frame_index + first) % self.n_frames
            return self.latents.index_select(2, index)  # a copy: offsets never touch the cache
        return self.model.encode(torch.from_numpy(self._src)[None])

    def _set_cache(self, latents: torch.Tensor) -> None:
        """The cached latents as numpy `[latent_size, n_frames + frames_per_block]`: the loop's first frames
        again after its last, so a block's frames are one slice wherever it starts. `_cache_safe`: every
        value finite and far from float32's limits, so scale and offsets cannot make a NaN or an infinity."""
        lat = latents[0].numpy()
        n = lat.shape[1]
        self._cache = np.ascontiguousarray(np.take(lat, np.arange(n + self.frames_per_block) % n, axis=1))
        self._cache_safe = bool(np.isfinite(lat).all()) and float(np.abs(lat).max(initial=0.0)) < SAFE_LATENT

    def next_block(self) -> np.ndarray:
        """Make the next block; always returns finite samples in [-1, 1] (a new array each call).

        Work nothing hears is skipped: the source is read only for the encoder, the dry path or
        transfer off; the delayed dry path only while the mix is not all wet (live input always feeds
        its delay line); the offsets and scale are stepped only while they glide. Each skipped gain
        still takes its new value (`GainRamp.follow`), so what plays is what the full chain plays."""
        controls = self.controls
        offsets, transfer, gain_db = controls.offsets, controls.transfer, controls.gain_db
        scale, jitter, mix = controls.scale, controls.jitter, controls.mix
        input_db, limit_db = controls.input_gain_db, controls.limit_db
        steady = transfer and self._transfer  # transfer on, and not switching: the undelayed source is not heard
        if self.latents is None or self._dry_line is not None or not steady:
            self.loop.read(self.pos, self.block, self._src)
            self.input_gain.apply(self._src, input_db, axis=1)
        else:
            self.input_gain.follow(input_db)
        wet = self._decode_block(offsets, scale, jitter, controls.prior_temperature)
        if mix != 1.0 or self.mixer.mix != 1.0:
            self.mixer.process(self._delayed_dry(input_db), wet, mix, self._mixed)
            wet = self._mixed
        elif self._dry_line is not None:
            self._dry_line.process(self._src, self._dry)  # live input: the line is fed every block
        else:
            self.dry_gain.follow(input_db)
        if steady:  # a new array: the caller keeps it (render, a swap's tail), the model's output stays its own
            out = np.array(wet, dtype=np.float32, copy=True)
        else:
            out = self._mix(adapt_channels(self._src.T, self.out_channels).T, wet, transfer)
        # Paused is gain 0: the ramp fades out (and back in) over one block. The model keeps
        # running, so its state, the offsets and the mapping are as they were on resume.
        self._apply_gain(out, 0.0 if controls.paused else db_to_gain(gain_db))
        if not self.limiter.process(out, limit_db):  # its quiet path checked every sample already
            make_safe(out, self.safety)
        self.pos = (self.pos + self.block) % self.loop.n_samples
        self.blocks += 1
        controls.rendered_s += self.block_s
        return out

    def _delayed_dry(self, input_db: float) -> np.ndarray:
        """The source `model_delay` samples ago, at the input gain, `[frames, out_channels]`."""
        if self._dry_line is None:  # a loop: read it where it was
            self.loop.read(self.pos - self.model_delay, self.block, self._dry)
            self.dry_gain.apply(self._dry, input_db, axis=1)
        else:  # live input: the source already had its gain
            self._dry_line.process(self._src, self._dry)
        if self._dry.shape[0] == self.out_channels:
            return self._dry.T
        return adapt_channels(self._dry.T, self.out_channels).T

    def _offset_addend(self, offsets: tuple[float, ...]) -> np.ndarray | None:
        """The offsets of this block's frames over every latent dim `[latent_size, frames]`; None: all 0."""
        if offsets == self._addend_for and offsets == self.smoother.still:
            return None if self._addend_zero else self._addend_np
        if len(offsets) != len(self.settings.latent_dims) or not offsets:
            self._addend_for = None
            return None
        steps = self.smoother.frames(offsets, self.frames_per_block, self._offsets)
        addend = self._addend
        addend.zero_()
        addend.index_add_(0, self.dims, torch.from_numpy(steps))
        self._addend_for = offsets if self.smoother.still is not None else None
        self._addend_zero = not steps.any()
        self._addend_bounded = float(np.abs(steps).max()) < SAFE_LATENT
        return None if self._addend_zero else self._addend_np

    def _decode_block(self, offsets: tuple[float, ...], scale: tuple[float, ...], jitter: float,
                      temperature: float | None = None) -> np.ndarray:
        """The model's output for this block `[frames, channels]` (a view of the model's output tensor).

        The latents: the cache's frames (or the prior's, or the encoder's) x scale + offsets + jitter,
        done in place with numpy on `z`'s memory; NaN and infinities become 0 unless they cannot occur
        (cached latents checked at load, bounded scale and offsets). The engine thread and the renderer
        run with inference mode on already: entering it again costs more than a small block's chain."""
        if torch.is_inference_mode_enabled():
            return self._decode(offsets, scale, jitter, temperature)
        with torch.inference_mode():
            return self._decode(offsets, scale, jitter, temperature)

    def _decode(self, offsets: tuple[float, ...], scale: tuple[float, ...], jitter: float,
                temperature: float | None) -> np.ndarray:
        factors = self.shaper.steps(scale)
        addend = self._offset_addend(offsets)
        if temperature is not None and self._prior_z is not None:
            z = self._prior_z
            z.copy_(self.model.prior(temperature, self.frames_per_block))
            zn, safe = z.numpy()[0], False
            if factors is not None:
                zn *= factors
        elif self._cache is not None:
            z, zn, safe = self._z, self._zn, self._cache_safe and self._addend_bounded
            first = (self.pos // self.model.info.ratio) % self.n_frames
            cached = self._cache[:, first : first + self.frames_per_block]
            if factors is not None:
                np.multiply(cached, factors, out=zn)
            elif addend is not None:
                np.add(cached, addend, out=zn)  # the same sum as a copy then +=, in one pass
                addend = None
            else:
                np.copyto(zn, cached)
        else:
            z = self.model.encode(torch.from_numpy(self._src)[None])
            zn, safe = z.numpy()[0], False
            if factors is not None:
                zn *= factors
        if addend is not None:
            zn += addend
        self.shaper.jitter(z, jitter)
        if not safe:
            torch.nan_to_num_(z, nan=0.0, posinf=0.0, neginf=0.0)
        return self.model.decode(z).numpy()[0].T

    def _mix(self, dry: np.ndarray, wet: np.ndarray, transfer: bool) -> np.ndarray:
        """Transfer on: the dry/wet mix; off: the undelayed source; a one-block crossfade when switched."""
        if transfer == self._transfer:
            return np.array(wet if transfer else dry, dtype=np.float32, copy=True)
        self._transfer = transfer
        start, end = (dry, wet) if transfer else (wet, dry)
        return (start + (end - start) * self._ramp).astype(np.float32)

    def _apply_gain(self, out: np.ndarray, gain: float) -> None:
        if gain == self._gain:
            if gain != 1.0:
                out *= gain
            return
        out *= (self._gain + (gain - self._gain) * self._ramp)
        self._gain = gain

    def set_offsets_now(self, offsets: tuple[float, ...]) -> None:
        """Skip the glide: the next block starts at these offsets and the current scale (for renders)."""
        self.smoother.jump(offsets)
        self.shaper.jump(self.controls.scale)

    def chain_status(self) -> dict:
        """The performer's chain as it plays, for status replies (any thread: plain values)."""
        controls = self.controls
        return {
            "model_delay_samples": self.model_delay,
            "limit_db": controls.limit_db,
            "limiter_lookahead_samples": self.limiter.lookahead,
            "gain_reduction_db": round(self.limiter.reduction_db, 2),
            "limiter_clamped": self.limiter.clamped,
            "mix": controls.mix,
            "jitter": controls.jitter,
            "input_gain_db": controls.input_gain_db,
            "scale": list(controls.scale),
            "prior_playing": controls.prior_temperature is not None and self._prior_z is not None,
        }
