"""A performer points ravemap at a model file: real exports load, anything else is refused clearly."""

from __future__ import annotations

import pytest
import torch

from ravemap.audio.model import load_model
from ravemap.errors import ModelError
from tests.conftest import fixture_model, ravemap
from tests.standins import LyingShapes, NoEncodeDecode, StandInRave, WithMethodList, save


@pytest.mark.parametrize(
    "name, ratio, streaming",
    [("rave_v2_tiny.ts", 512, False), ("rave_v2_tiny_streaming.ts", 512, True), ("rave_v2_full.ts", 2048, False)],
)
def test_rave_exports_load_with_what_their_files_say(name, ratio, streaming):
    model = load_model(fixture_model(name))
    info = model.info
    assert (info.sr, info.in_channels, info.out_channels) == (44100, 1, 1)
    assert (info.latent_size, info.full_latent_size, info.ratio) == (8, 128, ratio)
    assert info.streaming is streaming
    assert {"encode", "decode", "forward"} <= set(info.methods)


def test_a_48k_stereo_export_loads(tmp_path):
    model = load_model(save(WithMethodList(sr=48000, channels=2, latent=6, ratio=128), tmp_path / "st.ts"))
    assert (model.info.sr, model.info.in_channels, model.info.out_channels) == (48000, 2, 2)
    assert (model.info.latent_size, model.info.ratio) == (6, 128)
    z = model.encode(torch.zeros(1, 2, 128 * 3))
    assert list(z.shape) == [1, 6, 3]


def test_a_rave_v1_style_export_without_get_methods_loads(tmp_path):
    model = load_model(save(StandInRave(sr=22050, channels=1, v1_names=True), tmp_path / "v1.ts"))
    assert model.info.sr == 22050
    assert model.info.methods == ("encode", "decode", "forward")


def _refusal(path) -> str:
    with pytest.raises(ModelError) as caught:
        load_model(path)
    message = str(caught.value)
    assert str(path) in message, "the error names the file"
    return message


def test_random_bytes_are_not_a_model(tmp_path):
    path = tmp_path / "noise.ts"
    path.write_bytes(bytes(range(256)) * 40)
    assert "not a TorchScript model" in _refusal(path)


def test_an_empty_file_is_not_a_model(tmp_path):
    path = tmp_path / "empty.ts"
    path.touch()
    assert "empty" in _refusal(path)


def test_a_missing_file_is_named(tmp_path):
    assert "no such model file" in _refusal(tmp_path / "nowhere.ts")


def test_a_torchscript_module_without_encode_and_decode_is_refused(tmp_path):
    message = _refusal(save(NoEncodeDecode(), tmp_path / "plain.ts"))
    assert "no encode or decode method" in message


def test_a_model_whose_encoder_breaks_its_params_is_refused(tmp_path):
    message = _refusal(save(LyingShapes(), tmp_path / "liar.ts"))
    assert "encode" in message and "[1, 4, 2]" in message and "[1, 3, 2]" in message


def test_a_model_without_params_is_refused(tmp_path):
    class NoParams(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.sr = 44100

        @torch.jit.export
        def encode(self, x: torch.Tensor) -> torch.Tensor:
            return x

        @torch.jit.export
        def decode(self, z: torch.Tensor) -> torch.Tensor:
            return z

    assert "encode_params" in _refusal(save(NoParams(), tmp_path / "noparams.ts"))


def test_serve_refuses_to_start_with_a_broken_model(tmp_path, loop_file):
    bad = tmp_path / "broken.ts"
    bad.write_bytes(b"\x00garbage" * 100)
    result = ravemap("serve", "--model", str(bad), "--loop", str(loop_file), "--audio", "none", timeout=60)
    assert result.returncode == 3
    assert str(bad) in result.stderr and "not a TorchScript model" in result.stderr
    assert "playing" not in result.stdout
