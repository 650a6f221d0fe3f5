"""The embedded default model (models/default.ts) keeps the nn~/RAVE interface the engine relies on.

These check the exported file only; training it (`python -m training all`) is too slow for CI.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "models" / "default.ts"
LOOP = ROOT / "loops" / "default.wav"
BLOCK = 2048
SCRIPT_ERRORS = (RuntimeError, torch.jit.Error)  # how a scripted `raise RuntimeError` reaches Python


@pytest.fixture(scope="module")
def shared() -> torch.jit.ScriptModule:
    return torch.jit.load(str(MODEL))


@pytest.fixture
def model(shared: torch.jit.ScriptModule) -> torch.jit.ScriptModule:
    """The loaded model with its streaming state cleared, as if freshly loaded."""
    torch.manual_seed(0)  # the random inputs below are the same on every run
    shared.reset()
    return shared


def ratio_of(model: torch.jit.ScriptModule) -> int:
    return int(model.encode_params[3])


def test_default_model_is_a_small_file_that_plain_torch_jit_load_opens():
    assert MODEL.stat().st_size <= 20 * 1024 * 1024
    assert isinstance(torch.jit.load(str(MODEL)), torch.jit.ScriptModule)


def test_default_model_lists_the_nn_tilde_methods_and_attributes(model):
    assert list(model.get_methods()) == ["encode", "decode", "forward"]
    assert list(model.get_attributes()) == []
    assert model.sr == 44100
    assert model.n_channels == 1
    latent = model.latent_size
    assert latent == 8
    assert model.full_latent_size >= latent
    ratio = ratio_of(model)
    assert ratio > 0 and BLOCK % ratio == 0  # the engine's block sizes are multiples of the ratio
    for name, want in (
        ("encode_params", [1, 1, latent, ratio]),
        ("decode_params", [latent, ratio, 1, 1]),
        ("forward_params", [1, 1, 1, 1]),
    ):
        params = getattr(model, name)
        assert params.dtype == torch.int64, name
        assert params.tolist() == want, name


@pytest.mark.parametrize("frames", [1, 2, 3, 64])
def test_encode_gives_one_latent_frame_per_ratio_samples(model, frames):
    x = 0.1 * torch.randn(1, 1, frames * ratio_of(model))
    z = model.encode(x)
    assert z.shape == (1, model.latent_size, frames)
    assert torch.isfinite(z).all()


@pytest.mark.parametrize("frames", [1, 2, 5, 64])
def test_decode_gives_ratio_samples_per_latent_frame(model, frames):
    y = model.decode(torch.randn(1, model.latent_size, frames))
    assert y.shape == (1, 1, frames * ratio_of(model))
    assert torch.isfinite(y).all()


def test_forward_plays_audio_through_the_model(model):
    ratio = ratio_of(model)
    x = 0.1 * torch.randn(2, 1, 8 * ratio)
    y = model.forward(x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("dims", [1, 4])
def test_decode_with_fewer_latent_dims_fills_the_rest_with_zeros(model, dims):
    z = torch.randn(1, dims, 4)
    y_short = model.decode(z)
    model.reset()
    padded = torch.cat([z, torch.zeros(1, model.full_latent_size - dims, 4)], 1)
    y_full = model.decode(padded)
    assert y_short.shape == (1, 1, 4 * ratio_of(model))
    assert torch.allclose(y_short, y_full, atol=1e-6)


def test_decode_rejects_more_dims_than_the_model_has(model):
    with pytest.raises(SCRIPT_ERRORS, match="latent dims"):
        model.decode(torch.zeros(1, model.full_latent_size + 1, 2))


def test_encode_rejects_a_length_that_is_not_a_multiple_of_the_ratio(model):
    with pytest.raises(SCRIPT_ERRORS, match="multiple of"):
        model.encode(torch.zeros(1, 1, ratio_of(model) + 1))


@pytest.mark.parametrize("block", ["one latent frame", "2048 samples"])
def test_decoding_block_by_block_plays_the_same_as_one_call(model, block):
    """What the engine does: consecutive blocks, one call each, no reset in between; at its
    smallest block (one latent frame) and at the 2048 samples of the shipped config."""
    ratio = ratio_of(model)
    size = ratio if block == "one latent frame" else BLOCK
    per_block = size // ratio
    z = torch.randn(1, model.latent_size, 16 * BLOCK // ratio).cumsum(-1) * 0.3 / (BLOCK // ratio) ** 0.5
    whole = model.decode(z)[0, 0]  # a wandering latent path, 16 x 2048 samples long
    model.reset()
    blocks = torch.cat([model.decode(z[..., i : i + per_block]) for i in range(0, z.shape[-1], per_block)], -1)
    blocks = blocks[0, 0]
    # Equal up to float rounding (a reset or a lost state would differ by the signal itself).
    assert torch.allclose(whole, blocks, atol=1e-2 * float(whole.abs().max()) + 1e-6)
    steps = (blocks[1:] - blocks[:-1]).abs()
    seam_steps = steps[size - 1 :: size]
    assert float(seam_steps.max()) <= 2.0 * float(steps.quantile(0.999)) + 1e-6


@pytest.mark.parametrize("block", ["one latent frame", "2048 samples"])
def test_encoding_block_by_block_gives_the_same_latents_as_one_call(model, block):
    audio, _ = soundfile.read(str(LOOP), dtype="float32")
    size = ratio_of(model) if block == "one latent frame" else BLOCK
    x = torch.from_numpy(audio[: 16 * BLOCK])[None, None]
    whole = model.encode(x)
    model.reset()
    blocks = torch.cat([model.encode(x[..., i : i + size]) for i in range(0, x.shape[-1], size)], -1)
    assert torch.allclose(whole, blocks, atol=1e-4)


def test_default_loop_encodes_to_unit_scale_latents_and_plays_back_finite_audio(model):
    audio, _ = soundfile.read(str(LOOP), dtype="float32")
    with torch.inference_mode():  # as the engine runs it
        z = model.encode(torch.from_numpy(audio)[None, None])
        y = model.decode(z)
    assert z.abs().max() < 10.0
    assert 0.1 < float(z[0, :4].std(-1).mean()) < 3.0
    assert torch.isfinite(y).all()
    assert 1e-3 < float(y.abs().max()) < 4.0


def test_extreme_latents_still_give_finite_audio(model):
    for scale in (0.0, 3.0, 10.0):
        y = model.decode(scale * torch.randn(1, model.latent_size, 8))
        assert torch.isfinite(y).all()


def test_a_change_of_batch_size_starts_fresh_streams(model):
    ratio = ratio_of(model)
    assert model.forward(torch.zeros(1, 1, 2 * ratio)).shape == (1, 1, 2 * ratio)
    assert model.forward(torch.zeros(3, 1, 2 * ratio)).shape == (3, 1, 2 * ratio)


def test_default_loop_is_a_seamless_mono_loop_aligned_to_the_model_ratio(model):
    audio, sr = soundfile.read(str(LOOP), dtype="float32", always_2d=True)
    assert sr == model.sr
    assert audio.shape[1] == 1
    assert 4.0 <= len(audio) / sr <= 8.0
    assert len(audio) % ratio_of(model) == 0
    mono = audio[:, 0]
    wrap = abs(float(mono[0]) - float(mono[-1]))
    assert wrap <= float(np.quantile(np.abs(np.diff(mono)), 0.99))


def test_engine_loader_accepts_the_default_model():
    model_module = pytest.importorskip("ravemap.audio.model")
    info = model_module.load_model(MODEL).info
    assert (info.sr, info.latent_size, info.in_channels, info.out_channels) == (44100, 8, 1, 1)
