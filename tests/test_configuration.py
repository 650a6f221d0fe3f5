"""A wrong config stops ravemap before anything plays, with a line that says how to fix it."""

from __future__ import annotations

import pytest

from ravemap.config import config_reference, load_config, validate
from ravemap.errors import ConfigError
from tests.conftest import REPO, ravemap, write_config


def _error(raw) -> str:
    with pytest.raises(ConfigError) as caught:
        validate(raw)
    return str(caught.value)


def test_the_shipped_config_is_valid_and_complete():
    config = load_config(REPO / "config.yaml")
    assert config.engine.latency == "auto" and config.engine.block_size is None, "the machine chooses"
    text = (REPO / "config.yaml").read_text()
    for key, _, _ in config_reference():
        assert f"{key.split('.')[1]}:" in text, f"config.yaml documents {key}"


def test_an_unknown_key_gets_a_did_you_mean():
    message = _error({"engine": {"blok_size": 2048}})
    assert "engine.blok_size" in message and "did you mean engine.block_size" in message


def test_a_wrong_type_names_key_value_and_what_is_allowed():
    message = _error({"engine": {"block_size": "big"}})
    assert "engine.block_size" in message and "'big'" in message and "whole number" in message


def test_a_choice_lists_the_choices():
    message = _error({"engine": {"encode": "sometimes"}})
    assert "engine.encode" in message and "'cached'" in message and "'live'" in message


def test_a_value_out_of_range_says_the_range():
    assert "less than or equal to 24" in _error({"engine": {"gain_db": 100}})


def test_serve_exits_2_on_a_bad_config(tmp_path):
    config = write_config(tmp_path / "bad.yaml", audio={"chanels": 2})
    result = ravemap("serve", "--config", str(config), timeout=60)
    assert result.returncode == 2
    assert "audio.chanels" in result.stderr and "did you mean audio.channels" in result.stderr


def test_a_missing_config_file_exits_2(tmp_path):
    result = ravemap("render", "--config", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "o.wav"),
                     "--seconds", "1", timeout=60)
    assert result.returncode == 2 and "no such config file" in result.stderr


def test_a_block_size_that_is_not_a_multiple_of_the_ratio_is_explained(tmp_path, tiny_model, loop_file):
    config = write_config(tmp_path / "c.yaml", engine={"block_size": 1000})
    result = ravemap("render", "--config", str(config), "--model", str(tiny_model), "--loop", str(loop_file),
                     "--out", str(tmp_path / "o.wav"), "--seconds", "1", timeout=60)
    assert result.returncode == 2
    assert "engine.block_size: 1000 is not a multiple of the model's compression ratio 512" in result.stderr


def test_the_readme_documents_every_setting():
    readme = (REPO / "README.md").read_text()
    for key, _, _ in config_reference():
        assert f"`{key}`" in readme, f"README config reference lists {key}"


def test_the_mapping_section_allows_what_a_mapping_file_allows():
    """`mapping.hidden`, `mapping.seed`, ... are checked with the mapping file's own limits, at load."""
    assert "mapping.hidden[0]: 0 is not allowed" in _error({"mapping": {"hidden": [0]}})
    assert "mapping.hidden: [] is not allowed" in _error({"mapping": {"hidden": []}})
    assert "mapping.hidden: [32, 32, 32, 32, 32, 32, ...] is not allowed" in _error({"mapping": {"hidden": [32] * 9}})
    assert "mapping.seed: -1 is not allowed" in _error({"mapping": {"seed": -1}})
    assert "mapping.epochs: True is not allowed: a whole number" in _error({"mapping": {"epochs": True}})
    assert "mapping.regressor: 'svm' is not allowed: use one of 'mlp', 'linear' or 'knn'" in _error(
        {"mapping": {"regressor": "svm"}})
    assert validate({"mapping": {"hidden": [1024] * 8, "seed": 2**63 - 1}}).mapping.hidden == (1024,) * 8


def test_serve_stops_at_start_on_a_mapping_setting_no_mapping_could_train_with(tmp_path):
    config = write_config(tmp_path / "bad.yaml", mapping={"hidden": [0]})
    result = ravemap("serve", "--config", str(config), timeout=60)
    assert result.returncode == 2
    assert f"{config}: mapping.hidden[0]: 0 is not allowed" in result.stderr, result.stderr


def test_a_midi_control_must_name_a_chain_control():
    message = _error({"midi": {"controls": [{"cc": 7, "control": "volume"}]}})
    assert "midi.controls" in message and "unknown chain control 'volume'" in message and "scale N" in message
    config = validate({"midi": {"controls": [{"cc": 7, "control": "scale  3"}, {"cc": 8, "control": "input gain"}]}})
    assert [c.control for c in config.midi.controls] == ["scale 3", "input gain"]
