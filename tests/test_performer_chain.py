"""The performer's chain: scale, jitter, dry/wet lined up with the model, input gain and the limiter.

Rendered offline through the engine's own block path (`ravemap.render.render`, what `ravemap
render` runs), with the default model and the RAVE fixtures; one TorchScript export that
reconstructs its input exactly, late by a known delay, where the test is whether dry and wet
line up (no RAVE model reconstructs a waveform that closely).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from torch import nn

from ravemap.audio.controls import EngineControls
from ravemap.audio.model import load_model
from ravemap.audio.source import load_loop
from ravemap.config import load_config, with_overrides
from ravemap.errors import ConfigError
from ravemap.render import render
from tests.conftest import REPO, ravemap, write_config, write_loop

SR = 44100
CEILING = 10 ** (-1 / 20)


def _config(tmp_path: Path, model: Path | None = None, loop: Path | None = None, **sections: dict):
    config = load_config(REPO / "config.yaml")
    for section, values in sections.items():
        config = with_overrides(config, **{f"{section}__{k}": v for k, v in values.items() if v is not None})
        for key in (k for k, v in values.items() if v is None):  # an explicit empty value
            part = getattr(config, section).model_copy(update={key: None})
            config = config.model_copy(update={section: part})
    return with_overrides(config, engine__model=model, engine__loop=loop)


def _render(tmp_path: Path, name: str, config, seconds: float = 3.0) -> np.ndarray:
    out = tmp_path / f"{name}.wav"
    render(config, out, seconds)
    audio, sr = soundfile.read(str(out), dtype="float32", always_2d=True)
    assert sr == SR
    return audio[:, 0]


def _spectrogram(x: np.ndarray, n: int = 2048) -> np.ndarray:
    """Log power per frame and bin: what a sound is, whatever the phase of its partials and noise."""
    frames = x[: x.size // n * n].reshape(-1, n) * np.hanning(n)
    return np.log10(np.abs(np.fft.rfft(frames, axis=1)) ** 2 + 1e-12).ravel()


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    return float(np.dot(a, b) / np.sqrt(np.dot(a, a) * np.dot(b, b)))


@pytest.fixture(scope="module")
def other_loop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_loop(tmp_path_factory.mktemp("chain") / "other.wav", seconds=3.1, sr=SR, channels=1, seed=7)


# -- scale -------------------------------------------------------------------------------------
def test_scale_zero_on_every_dim_plays_the_same_sound_whatever_the_loop(tmp_path, other_loop):
    zero = {"scale": 0.0}
    first = _render(tmp_path, "a0", _config(tmp_path, latent=zero))
    second = _render(tmp_path, "b0", _config(tmp_path, loop=other_loop, latent=zero))
    assert np.sqrt(np.mean(first[SR:] ** 2)) > 1e-3, "scale 0 still plays the model (its latent origin)"
    # The same sound: the decoder's oscillator keeps its own phase, so spectrograms are compared.
    assert _correlation(_spectrogram(first[SR:]), _spectrogram(second[SR:])) >= 0.95
    one = {"scale": 1.0}
    first = _render(tmp_path, "a1", _config(tmp_path, latent=one))
    second = _render(tmp_path, "b1", _config(tmp_path, loop=other_loop, latent=one))
    assert _correlation(_spectrogram(first[SR:]), _spectrogram(second[SR:])) < 0.5


def test_a_scale_list_must_have_one_value_per_latent_dim_of_the_model(tmp_path, tiny_model):
    config = write_config(tmp_path / "c.yaml", engine={"model": str(tiny_model)}, latent={"scale": [1, 0.5, 0]})
    result = ravemap("render", "--config", str(config), "--out", str(tmp_path / "x.wav"), "--seconds", "1")
    assert result.returncode != 0
    assert "latent.scale" in result.stderr and "3 values" in result.stderr and "8 latent dims" in result.stderr
    with pytest.raises(ConfigError, match="latent.scale"):
        _config(tmp_path, latent={"scale": 5.0})
    # One per dim is taken, and a dim at 0 plays differently from the same list with it at 1.
    per_dim = [1.0] * 8
    ones = _render(tmp_path, "ones", _config(tmp_path, tiny_model, latent={"scale": per_dim}), seconds=2)
    per_dim[0] = 0.0
    off = _render(tmp_path, "off", _config(tmp_path, tiny_model, latent={"scale": per_dim}), seconds=2)
    assert not np.array_equal(ones, off)


# -- jitter ------------------------------------------------------------------------------------
def test_jitter_changes_the_sound_and_stays_finite(tmp_path, streaming_model):
    still = _render(tmp_path, "j0", _config(tmp_path, latent={"jitter": 0.0}))
    again = _render(tmp_path, "j0b", _config(tmp_path, latent={"jitter": 0.0}))
    shaken = _render(tmp_path, "j1", _config(tmp_path, latent={"jitter": 1.0}))
    assert np.array_equal(still, again), "the default model is deterministic: without jitter a render repeats"
    assert np.isfinite(shaken).all() and np.abs(shaken).max() <= 1.0
    assert np.sqrt(np.mean((shaken - still) ** 2)) > 0.3 * np.sqrt(np.mean(still**2))
    assert _correlation(_spectrogram(shaken[SR:]), _spectrogram(still[SR:])) < 0.95
    # The engine's generator is seeded: the same jitter renders the same sound.
    assert np.array_equal(shaken, _render(tmp_path, "j1b", _config(tmp_path, latent={"jitter": 1.0})))
    # A RAVE export at the top of the range stays finite and within full scale.
    loud = _render(tmp_path, "j3", _config(tmp_path, streaming_model, latent={"jitter": 3.0}))
    assert np.isfinite(loud).all() and np.abs(loud).max() <= CEILING + 1e-6


# -- dry/wet -----------------------------------------------------------------------------------
def _loop_samples(model_path: Path, loop_path: Path) -> np.ndarray:
    info = load_model(model_path).info
    return load_loop(loop_path, info.sr, info.in_channels, info.ratio).samples[0]


def test_mix_zero_plays_the_loop_delayed_by_the_model_delay_sample_for_sample(tmp_path):
    from ravemap.audio.playback import make_controls, prepare_processor

    config = _config(tmp_path, engine={"mix": 0.0, "limit_db": None})
    processor = prepare_processor(config, make_controls(config), warm_up=False)
    delay = processor.model_delay
    assert 0 < delay < 2048, "the default model follows its input a few ms late"
    audio = _render(tmp_path, "dry", config, seconds=7)
    loop = _loop_samples(config.engine.model, config.engine.loop)
    expected = loop[(np.arange(audio.size) - delay) % loop.size]
    assert np.array_equal(audio, expected)


def test_engine_model_delay_overrides_the_measured_delay_and_the_limiter_adds_its_look_ahead(tmp_path, tiny_model):
    config = _config(tmp_path, tiny_model, engine={"mix": 0.0, "model_delay": 300})
    audio = _render(tmp_path, "dry300", config, seconds=2)
    loop = _loop_samples(tiny_model, config.engine.loop)
    lookahead = round(0.005 * SR)  # engine.limit_db is set: the limiter looks 5 ms ahead
    assert not audio[:lookahead].any()
    shifted = loop[(np.arange(audio.size) - 300 - lookahead) % loop.size]
    # The default loop peaks at -6 dBFS, under the -1 dBFS ceiling: the limiter only delays it.
    assert np.array_equal(audio[lookahead:], shifted[lookahead:])


class LateIdentity(nn.Module):
    """Reconstructs its input exactly, `delay` samples late (a streaming decoder with a delay line)."""

    def __init__(self, delay: int, ratio: int = 64):
        super().__init__()
        self.sr = SR
        self.latent_size = ratio
        self.full_latent_size = ratio
        self.ratio = ratio
        self.register_buffer("encode_params", torch.tensor([1, 1, ratio, ratio]))
        self.register_buffer("decode_params", torch.tensor([ratio, ratio, 1, 1]))
        self.register_buffer("cache_line", torch.zeros(1, 1, delay))

    @torch.jit.export
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], -1, self.ratio).transpose(1, 2).contiguous()

    @torch.jit.export
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        x = z[:, : self.ratio].transpose(1, 2).reshape(z.shape[0], 1, -1)
        joined = torch.cat([self.cache_line, x], 2)
        n = x.shape[2]
        self.cache_line.copy_(joined[:, :, n:])
        return joined[:, :, :n]


def _deepest_notch_db(mixed: np.ndarray, reference: np.ndarray, n: int = 4096) -> float:
    """How far (dB) the mix falls below the reference in its worst frequency band (20 Hz..16 kHz)."""

    def power(x):
        frames = x[: x.size // n * n].reshape(-1, n) * np.hanning(n)
        return (np.abs(np.fft.rfft(frames, axis=1)) ** 2).mean(axis=0)

    freqs = np.fft.rfftfreq(n, 1 / SR)
    band = (freqs > 20) & (freqs < 16000)
    ratio = power(mixed)[band] / np.maximum(power(reference)[band], 1e-20)
    smoothed = np.convolve(ratio, np.ones(5) / 5, mode="valid")
    return float(-10 * np.log10(smoothed.min()))


def test_mix_half_lines_up_dry_and_wet_with_no_comb_notch(tmp_path):
    model = tmp_path / "late.ts"
    torch.jit.script(LateIdentity(delay=700)).save(str(model))
    noise = write_loop(tmp_path / "noise.wav", seconds=3.0, sr=SR, channels=1, seed=3)
    config = _config(tmp_path, model, noise, engine={"mix": 0.5, "limit_db": None})
    from ravemap.audio.playback import make_controls, prepare_processor

    assert prepare_processor(config, make_controls(config), warm_up=False).model_delay == 700
    loop = _loop_samples(model, noise)
    t = np.arange(SR, 3 * SR)
    dry_at = loop[(t - 700) % loop.size]  # what the mix would be if dry and wet were one signal
    lined_up = _render(tmp_path, "half", config)
    assert _deepest_notch_db(lined_up[SR:], dry_at) < 0.5
    # The check sees a comb when dry and wet are 11 samples apart (notches every 4 kHz).
    apart = _render(tmp_path, "apart", with_overrides(config, engine__model_delay=711))
    assert _deepest_notch_db(apart[SR:], dry_at) > 10.0


def test_mix_half_on_the_default_model_is_half_of_dry_and_half_of_wet(tmp_path):
    dry = _render(tmp_path, "d", _config(tmp_path, engine={"mix": 0.0, "limit_db": None}))
    wet = _render(tmp_path, "w", _config(tmp_path, engine={"mix": 1.0, "limit_db": None}))
    half = _render(tmp_path, "h", _config(tmp_path, engine={"mix": 0.5, "limit_db": None}))
    assert np.allclose(half, 0.5 * (dry + wet), atol=1e-6)
    assert not np.allclose(dry, wet, atol=1e-2)


# -- input gain --------------------------------------------------------------------------------
def test_input_gain_turns_the_source_down_before_the_encoder(tmp_path, streaming_model):
    quiet = {"input_gain_db": -60.0, "encode": "live"}
    loud = _render(tmp_path, "in0", _config(tmp_path, streaming_model, engine={"encode": "live"}))
    hushed = _render(tmp_path, "in60", _config(tmp_path, streaming_model, engine=quiet))
    assert np.sqrt(np.mean((loud - hushed) ** 2)) > 0.1 * np.sqrt(np.mean(loud**2))
    dry = _render(tmp_path, "dry60", _config(tmp_path, engine={"input_gain_db": -20.0, "mix": 0.0,
                                                              "limit_db": None}))
    loop = _loop_samples(REPO / "models" / "default.ts", REPO / "loops" / "default.wav")
    assert np.isclose(np.abs(dry).max(), 0.1 * np.abs(loop).max(), rtol=1e-3)


# -- the limiter -------------------------------------------------------------------------------
def test_the_limiter_turns_a_loud_model_down_instead_of_clipping_it(tmp_path):
    limited = _render(tmp_path, "lim", _config(tmp_path, engine={"gain_db": 24.0}), seconds=6)
    assert np.isfinite(limited).all()
    assert np.abs(limited).max() <= CEILING + 1e-6
    at_ceiling = np.mean(np.abs(limited) >= 0.99 * CEILING)
    assert at_ceiling < 0.002, f"{100 * at_ceiling:.2f}% of samples sit at the ceiling: that is a clipper"
    assert np.sqrt(np.mean(limited**2)) > 0.1, "turned down, not silenced"
    clipped = _render(tmp_path, "clip", _config(tmp_path, engine={"gain_db": 24.0, "limit_db": None}), seconds=6)
    assert np.abs(clipped).max() <= 1.0
    assert np.mean(np.abs(clipped) >= 0.999) > 10 * max(at_ceiling, 1e-4), "the old clip, as before"


# -- controls ----------------------------------------------------------------------------------
def test_each_control_refuses_what_is_out_of_range_naming_the_range():
    controls = EngineControls(4, (-3.0, 3.0))
    controls.fit_latent_size(128)
    for setter, bad, allowed in ((controls.set_mix, 1.5, "0..1"), (controls.set_jitter, -0.1, "0..3"),
                                 (controls.set_input_gain_db, 30.0, "-60..24"),
                                 (controls.set_limit_db, 3.0, "-60..0"), (controls.set_scale, 4.5, "-4..4"),
                                 (controls.set_mix, float("nan"), "0..1")):
        with pytest.raises(ValueError, match=allowed):
            setter(bad)
    with pytest.raises(TypeError):
        controls.set_mix("0.5")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="0..127"):
        controls.set_scale_dim(128, 1.0)
    assert controls.set_scale_dim(127, -2.0) == -2.0 and controls.scale[127] == -2.0 and len(controls.scale) == 128
    controls.set_scale(0.5)
    assert controls.scale == (0.5,) * 128
    controls.set_limit_db(None)
    assert controls.limit_db is None


def test_the_python_api_sets_the_chain_and_status_reports_it(tmp_path):
    from ravemap import Ravemap

    rm = Ravemap(audio="none", mappings_dir=tmp_path / "mappings")
    try:
        rm.set_mix(0.25)
        rm.set_jitter(0.5)
        rm.set_scale(0.0, dim=2)
        rm.set_limit(-3.0)
        rm.set_input_gain(-6.0)
        with pytest.raises(ValueError, match="0..1"):
            rm.set_mix(2.0)
        status = rm.status()
        assert status["mix"] == 0.25 and status["jitter"] == 0.5 and status["limit_db"] == -3.0
        assert status["scale"] == [1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0]
        assert status["input_gain_db"] == -6.0 and rm.playback.newest.encoded_gain_db == -6.0
        assert status["model_delay_samples"] > 0 and status["gain_reduction_db"] >= 0.0
    finally:
        rm.stop(save=False)


def test_the_latents_each_block_decodes_are_the_loops_x_scale_plus_offsets_plus_jitter_step_by_step(streaming_model,
                                                                                                    loop_file):
    """The engine shapes the latents in place and steps a glide only while it moves; what the model
    decodes is still, block after block, the loop's latents x the scale glided per frame + the offsets
    glided per frame + jitter, computed here step by step with nothing skipped or cached."""
    from ravemap.audio.processor import BlockProcessor, OffsetSmoother, ProcessorSettings

    model = load_model(streaming_model)
    info = model.info
    loop = load_loop(loop_file, info.sr, info.in_channels, info.ratio)
    dims = (1, 3, 4)
    controls = EngineControls(len(dims), (-3.0, 3.0))
    controls.fit_latent_size(info.latent_size)
    block = 2 * info.ratio
    processor = BlockProcessor(model, loop, ProcessorSettings(block, dims, smoothing_ms=30.0, seed=7), controls)
    decoded: list[torch.Tensor] = []
    decode = model._decode
    model._decode = lambda z: (decoded.append(z.clone()), decode(z))[1]
    assert processor.latents is not None
    latents = processor.latents[0].numpy()
    n_frames, frames = latents.shape[1], processor.frames_per_block
    coef = processor.smoother.coef
    offsets = OffsetSmoother(len(dims), info.ratio / info.sr, 30.0)
    scale_now = np.ones(info.latent_size, dtype=np.float32)
    noise = torch.Generator().manual_seed(7)
    # At rest, a slider's jump and glide, the scale's, rest again, jitter on, offsets back to 0.
    phases = [((0.0, 0.0, 0.0), 1.0, 0.0), ((1.5, -2.0, 0.25), 1.0, 0.0), ((1.5, -2.0, 0.25), 0.5, 0.0),
              ((1.5, -2.0, 0.25), 0.5, 0.3), ((0.0, 0.0, 0.0), 1.0, 0.0)]
    rested = 0
    with torch.inference_mode():
        for target, scale, jitter in phases:
            controls.set_offsets(target)
            controls.set_scale(scale)
            controls.set_jitter(jitter)
            for _ in range(120):  # long enough for every glide to come to rest in float32
                first = processor.pos // info.ratio
                processor.next_block()
                rested += processor.smoother.still is not None and processor.shaper.still is not None
                expected = latents[:, (first + np.arange(frames)) % n_frames].copy()
                goal = np.full(info.latent_size, scale, dtype=np.float32)
                for f in range(frames):
                    scale_now += coef * (goal - scale_now)
                    expected[:, f] *= scale_now
                steps = offsets.frames(controls.offsets, frames, np.zeros((len(dims), frames), dtype=np.float32))
                expected[list(dims)] += steps
                if jitter:
                    expected += jitter * torch.randn((1, info.latent_size, frames), generator=noise)[0].numpy()
                np.testing.assert_allclose(decoded[-1][0].numpy(), expected, rtol=1e-6, atol=1e-6)
    assert len(decoded) == len(phases) * 120
    assert rested > len(phases) * 60, "most blocks took the path for a chain at rest, so that path was tested"


def test_the_limiter_plays_a_quiet_stretch_delayed_bit_for_bit_and_still_catches_the_next_peak():
    """The limiter's quiet path (a block within the ceiling once the history is clean) plays exactly what
    the full computation plays, and a peak after it is turned down from its look-ahead as before."""
    from ravemap.audio.chain import Limiter

    block, lookahead, ceiling_db = 256, 220, -1.0
    quiet_path, full_path = Limiter(SR, 1, block, lookahead), Limiter(SR, 1, block, lookahead)
    n_blocks = 1200  # the release lets go (under 2^-26) some 2.5 s after the loud start
    t = np.arange(block * n_blocks) / SR
    signal = (0.5 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)[:, None]
    signal[: block * 20] *= 3.0  # loud: the limiter works, then releases
    peak_at = block * 1100 + 100
    signal[peak_at] = 1.5  # one sample far over the ceiling, after a long quiet stretch
    quiet_blocks = 0
    out_quiet, out_full = [], []
    for k in range(n_blocks):
        a = signal[k * block : (k + 1) * block].copy()
        b = a.copy()
        quiet_blocks += quiet_path.process(a, ceiling_db)
        full_path._quiet_ceiling = None  # never the quiet path: every block computed in full
        assert full_path.process(b, ceiling_db) is False
        out_quiet.append(a)
        out_full.append(b)
    played, reference = np.concatenate(out_quiet)[:, 0], np.concatenate(out_full)[:, 0]
    assert quiet_blocks > 500, "the quiet stretch took the quiet path"
    assert np.array_equal(played, reference), "the quiet path plays what the full path plays, to the bit"
    assert quiet_path._rel_state == full_path._rel_state
    delayed = signal[:-lookahead, 0]
    quiet = slice(block * 900, block * 1090)
    assert np.array_equal(played[lookahead:][quiet], delayed[quiet]), "quiet: the loop itself, delayed"
    assert np.abs(played).max() <= CEILING
    out_peak = peak_at + lookahead
    assert played[out_peak] == pytest.approx(CEILING, rel=1e-3), "the peak is turned down to the ceiling"
    before = played[out_peak - lookahead // 2] / signal[peak_at - lookahead // 2, 0]
    assert before < 0.9, "the gain was already falling before the peak: the look-ahead's attack"
