"""`ravemap render` plays the engine's block path into a file, faster than real time."""

from __future__ import annotations

import numpy as np
import soundfile

from ravemap.audio.model import load_model
from ravemap.audio.source import load_loop
from tests.audio_checks import find_in_loop, spectral_distance
from tests.conftest import ravemap, write_config
from tests.standins import StandInRave, WithMethodList, save


def _render(tmp_path, name, *args):
    out = tmp_path / f"{name}.wav"
    result = ravemap("render", "--out", str(out), *args, timeout=120)
    assert result.returncode == 0, result.stderr
    audio, sr = soundfile.read(str(out), dtype="float32", always_2d=True)
    return audio, sr, result


def test_a_render_is_finite_limited_and_not_silent(tmp_path, streaming_model, loop_file):
    audio, sr, result = _render(tmp_path, "wet", "--seconds", "3", "--model", str(streaming_model),
                                "--loop", str(loop_file))
    assert sr == 44100 and audio.shape == (3 * 44100, 1)
    assert np.isfinite(audio).all() and np.abs(audio).max() <= 1.0
    assert np.sqrt(np.mean(audio**2)) > 1e-4
    assert "realtime" in result.stdout


def test_transfer_off_renders_the_dry_loop_bit_exact(tmp_path, tiny_model, loop_file):
    audio, sr, _ = _render(tmp_path, "dry", "--seconds", "5", "--model", str(tiny_model),
                           "--loop", str(loop_file), "--no-transfer")
    model = load_model(tiny_model)
    loop = load_loop(loop_file, model.info.sr, 1, model.info.ratio)
    assert loop.n_samples < audio.shape[0], "the render wraps round the loop at least once"
    lookahead = round(0.005 * model.info.sr)  # engine.limit_db's limiter looks 5 ms ahead; the loop stays under it
    expected = np.concatenate([np.zeros(lookahead, np.float32), np.tile(loop.samples[0], 3)])[: audio.shape[0]]
    assert np.array_equal(audio[:, 0], expected)


def test_latent_offsets_change_the_sound(tmp_path, tiny_model, loop_file):
    common = ("--seconds", "6", "--model", str(tiny_model), "--loop", str(loop_file))
    zero_a, _, _ = _render(tmp_path, "zero_a", *common, "--latent", "0,0,0,0")
    zero_b, _, _ = _render(tmp_path, "zero_b", *common, "--latent", "0,0,0,0")
    # The range's edge: the barely trained fixture's sound moves clearly there, at 2.5 only just.
    moved, _, _ = _render(tmp_path, "moved", *common, "--latent=-3,3,-3,3")
    noise_floor = spectral_distance(zero_a[:, 0], zero_b[:, 0])  # the decoder's own randomness
    assert spectral_distance(zero_a[:, 0], moved[:, 0]) > 1.5 * noise_floor


def test_a_48k_stereo_model_renders_stereo_at_48k(tmp_path, loop_file):
    model = save(WithMethodList(sr=48000, channels=2, latent=4, ratio=256), tmp_path / "stereo.ts")
    audio, sr, _ = _render(tmp_path, "st", "--seconds", "2", "--model", str(model), "--loop", str(loop_file))
    assert sr == 48000 and audio.shape == (96000, 2)
    assert np.isfinite(audio).all()


def test_a_mono_loop_feeds_a_stereo_model_and_stereo_feeds_mono(tmp_path, tiny_model):
    from tests.conftest import write_loop

    mono = write_loop(tmp_path / "mono.wav", channels=1, sr=22050)
    model = save(WithMethodList(sr=48000, channels=2, latent=4, ratio=256), tmp_path / "stereo.ts")
    audio, _, _ = _render(tmp_path, "m2s", "--seconds", "1", "--model", str(model), "--loop", str(mono),
                          "--no-transfer")
    assert np.array_equal(audio[:, 0], audio[:, 1])
    stereo = write_loop(tmp_path / "stereo.wav", channels=2, sr=44100)
    audio, _, _ = _render(tmp_path, "s2m", "--seconds", "1", "--model", str(tiny_model), "--loop", str(stereo),
                          "--no-transfer")
    assert audio.shape[1] == 1


def test_a_model_that_outputs_nan_renders_silence(tmp_path, loop_file):
    model = save(StandInRave(sr=44100, channels=1, nan_output=True), tmp_path / "nan.ts")
    audio, _, _ = _render(tmp_path, "nan", "--seconds", "1", "--model", str(model), "--loop", str(loop_file))
    assert np.isfinite(audio).all() and not audio.any()


def test_a_model_that_explodes_is_limited_to_full_scale(tmp_path, loop_file):
    model = save(StandInRave(sr=44100, channels=1, output_scale=1e6), tmp_path / "loud.ts")
    audio, _, _ = _render(tmp_path, "loud", "--seconds", "1", "--model", str(model), "--loop", str(loop_file))
    assert np.isfinite(audio).all() and np.abs(audio).max() == np.float32(10 ** (-1 / 20)), "the limiter's ceiling"


def test_render_reads_the_model_from_the_config(tmp_path, tiny_model, loop_file):
    config = write_config(tmp_path / "c.yaml", engine={"model": str(tiny_model), "loop": str(loop_file)})
    audio, sr, _ = _render(tmp_path, "cfg", "--seconds", "1", "--config", str(config))
    assert sr == 44100 and audio.shape[0] == 44100


def test_a_corrupt_loop_file_is_named(tmp_path, tiny_model):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF....WAVEfmt garbage")
    result = ravemap("render", "--out", str(tmp_path / "o.wav"), "--seconds", "1", "--model", str(tiny_model),
                     "--loop", str(bad), timeout=60)
    assert result.returncode == 3 and str(bad) in result.stderr and "cannot read" in result.stderr


def test_find_in_loop_helper_finds_exact_segments():
    loop = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    assert find_in_loop(np.concatenate([loop[990:], loop[:20]]), loop) == 990
    assert find_in_loop(loop[5:50] + 1e-3, loop) is None
