"""Trying the API from a shell: `ravemap send`, `ravemap status`, `ravemap train`, `ravemap plot`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ravemap.mapping.regressor import RegressorSettings
from ravemap.mapping.store import Example, Mapping, load_mapping, save_mapping
from tests.conftest import ravemap
from tests.osc_peer import Daemon, OscPeer


def _mapping_with_examples(folder, name="sketch", kind="mlp") -> Mapping:
    rng = np.random.default_rng(1)
    examples = [Example((float(x), float(y)), tuple(float(v) for v in rng.uniform(-2, 2, 4)))
                for x, y in [(0.1, 0.1), (0.9, 0.1), (0.1, 0.9), (0.9, 0.9), (0.5, 0.5)]]
    mapping = Mapping(name=name, input_size=2, output_dims=(0, 1, 2, 3), output_range=(-3.0, 3.0),
                      examples=examples, settings=RegressorSettings(kind=kind, epochs=1500))
    save_mapping(folder, mapping)
    return mapping


def test_send_and_status_talk_to_a_running_daemon(tmp_path, tiny_model, loop_file):
    peer = OscPeer(0)
    daemon = Daemon(tmp_path, tiny_model, loop_file, peer.port)
    try:
        port = str(daemon.port)
        sent = ravemap("send", "/ravemap/latent", "1", "0.5", "-1", "0", "--port", port)
        assert sent.returncode == 0, sent.stderr
        status = ravemap("status", "--port", port)
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["offsets"] == [1.0, 0.5, -1.0, 0.0]
        pong = ravemap("send", "/ravemap/ping", "--port", port, "--wait", "1")
        assert pong.stdout.strip() == "/ravemap/pong"
    finally:
        daemon.stop()
        peer.close()


def test_status_with_no_daemon_says_so(tmp_path):
    from tests.osc_peer import free_udp_port

    result = ravemap("status", "--port", str(free_udp_port()))
    assert result.returncode == 4 and "no reply from ravemap" in result.stderr


def test_train_offline_shows_progress_and_saves_the_trained_mapping(tmp_path):
    _mapping_with_examples(tmp_path)
    result = ravemap("train", "sketch", "--mappings-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "100.0%" in result.stderr and "[###" in result.stderr
    assert "trained 'sketch': 5 examples" in result.stdout
    trained = load_mapping(tmp_path, "sketch")
    assert trained.regressor is not None and trained.training["examples"] == 5


def test_train_refuses_a_mapping_without_examples(tmp_path):
    save_mapping(tmp_path, Mapping(name="empty", input_size=2, output_dims=(0, 1, 2, 3), output_range=(-3, 3)))
    result = ravemap("train", "empty", "--mappings-dir", str(tmp_path))
    assert result.returncode == 5 and "no examples" in result.stderr


@pytest.mark.parametrize("kind", ["mlp", "knn"])
def test_plot_draws_the_examples_and_one_heatmap_per_latent_dim(tmp_path, kind):
    from ravemap.offline import learned_field

    _mapping_with_examples(tmp_path, kind=kind)
    assert ravemap("train", "sketch", "--mappings-dir", str(tmp_path)).returncode == 0
    out = tmp_path / "sketch.png"
    result = ravemap("plot", "sketch", "--out", str(out), "--mappings-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    import matplotlib.image

    image = matplotlib.image.imread(str(out))
    assert image.shape[1] > 4 * image.shape[0], "five panels side by side: examples + 4 heatmaps"
    mapping = load_mapping(tmp_path, "sketch")
    field = learned_field(mapping, grid=41)  # step 0.025: every example input lies on the grid
    assert field.shape == (4, 41, 41)
    for example in mapping.examples:  # the field passes through the examples (knn exactly)
        i, j = round(example.input[1] * 40), round(example.input[0] * 40)
        assert np.allclose(field[:, i, j], example.output, atol=0.3 if kind == "mlp" else 1e-6)
