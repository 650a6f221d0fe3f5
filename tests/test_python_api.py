"""The workshop's steps in process: `ravemap.Ravemap`, the same objects `ravemap serve` runs."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from ravemap import Ravemap
from ravemap.audio.model import load_model
from ravemap.audio.source import load_loop
from tests.conftest import REPO, write_config

DEFAULT_MODEL = REPO / "models" / "default.ts"
POSES = [((0.1, 0.1), (-2.0, 1.0, 0.0, 0.5)), ((0.9, 0.1), (2.0, -1.0, 1.0, 0.0)),
         ((0.1, 0.9), (0.0, 2.0, -1.5, -0.5)), ((0.9, 0.9), (1.0, 0.0, 2.0, 1.5))]


@pytest.fixture
def ravemap_in_process(tmp_path, loop_file):
    config = write_config(tmp_path / "c.yaml", osc={"zeroconf": False, "wekinator_outputs": False},
                          midi={"enabled": False})
    rm = Ravemap(config, model=DEFAULT_MODEL, loop=loop_file, audio="none", mappings_dir=tmp_path / "maps")
    rm.start()
    yield rm
    rm.stop()


def _teach(rm: Ravemap) -> None:
    for inputs, targets in POSES:
        rm.set_inputs(inputs)
        rm.set_offsets(targets)
        rm.record_once()


def test_record_train_and_run_from_python(ravemap_in_process, tmp_path):
    rm = ravemap_in_process
    _teach(rm)
    result = rm.train()
    assert result is not None and result.examples == 4 and result.history, "the loss per epoch comes back"
    rm.run(True)
    for inputs, targets in POSES:
        rm.set_inputs(inputs)
        assert np.allclose(rm.offsets, targets, atol=0.1)
    rm.save_mapping("from-python")
    assert (tmp_path / "maps" / "from-python.json").is_file()
    assert rm.status()["trained"] is True


def test_pausing_and_resuming_the_engine_keeps_the_mapping_and_the_latent(ravemap_in_process):
    rm = ravemap_in_process
    _teach(rm)
    rm.set_offsets([1.0, -1.0, 0.5, 0.25])
    rm.pause()
    state = rm.status()
    assert state["engine"] is False and state["examples"] == 4
    assert rm.offsets == (1.0, -1.0, 0.5, 0.25)
    rm.resume()
    state = rm.status()
    assert state["engine"] is True and state["examples"] == 4 and rm.offsets == (1.0, -1.0, 0.5, 0.25)


def test_a_vector_captured_from_a_file_is_the_mean_of_its_encoding(ravemap_in_process, loop_file):
    vector = ravemap_in_process.capture_vector("phrase", loop_file)
    model = load_model(DEFAULT_MODEL)  # fresh, like the capture: a streaming encoder starts from rest
    audio = load_loop(loop_file, model.info.sr, model.info.in_channels, model.info.ratio)
    with torch.inference_mode():
        expected = model.encode(torch.from_numpy(audio.samples)[None])[0].mean(dim=-1).numpy()
    assert vector.shape == (model.info.latent_size,)
    assert np.allclose(vector, expected, atol=1e-5)
    assert "phrase" in ravemap_in_process.vectors


def test_applying_a_vector_moves_the_offsets_by_it_clamped(ravemap_in_process, loop_file):
    rm = ravemap_in_process
    vector = rm.capture_vector("phrase", loop_file)
    rm.set_offsets([0.0, 0.0, 0.0, 0.0])
    assert np.allclose(rm.apply_vector("phrase", 1.0), vector[:4], atol=1e-6)
    assert np.allclose(rm.offsets, vector[:4], atol=1e-6)
    rm.apply_vector("phrase", 100.0)
    assert np.allclose(rm.offsets, np.clip(101 * vector[:4], -3.0, 3.0), atol=1e-5), "clamped to latent.range"
    with pytest.raises(ValueError, match="no vector 'nothing'"):
        rm.apply_vector("nothing")


def test_early_stop_ends_training_before_the_epoch_limit_and_says_why(ravemap_in_process):
    rm = ravemap_in_process
    for x in np.linspace(0, 1, 6):  # an easy, linear mapping
        rm.set_inputs([float(x), 0.5])
        rm.set_offsets([2 * x - 1, 0.0, 0.0, 0.0])
        rm.record_once()
    result = rm.train(epochs=50_000)
    assert result.epochs < 50_000
    assert result.reason.startswith("early stop") and "stopped improving" in result.reason
    saved = rm.session.mapping.training
    assert saved["reason"] == result.reason and len(saved["history"]) > 10, "the loss history is in the mapping"


def test_vectors_over_osc(tmp_path, loop_file):
    from tests.osc_peer import Daemon, OscPeer

    peer = OscPeer(0)
    daemon = Daemon(tmp_path, DEFAULT_MODEL, loop_file, peer.port)
    peer.daemon = ("127.0.0.1", daemon.port)
    try:
        peer.send("/ravemap/vector/capture", "loop")
        vector = peer.wait_for("/ravemap/vector", timeout=20)
        assert vector[0] == "loop" and len(vector) == 5
        peer.send("/ravemap/vector/apply", "loop", 0.5)
        assert np.allclose(peer.status()["offsets"], np.clip(0.5 * np.array(vector[1:]), -3, 3), atol=1e-5)
        peer.send("/ravemap/vector/apply", "../x")
        assert "'../x'" in peer.wait_for("/ravemap/error")[0]
    finally:
        daemon.stop()
        peer.close()


def test_a_gesture_recorded_from_python_plays_back_and_stops(ravemap_in_process):
    rm = ravemap_in_process
    assert rm.record_gesture(True) == "gesture-1"
    for i in range(20):
        rm.set_inputs((0.1 + 0.04 * i, 0.5))
        time.sleep(0.02)
    assert rm.record_gesture(False) == "gesture-1"
    assert rm.gestures == ["gesture-1"]
    rm.set_inputs((0.5, 0.5))
    rm.play_gesture("gesture-1", speed=2.0, loop=False)
    deadline = time.monotonic() + 5
    while rm.status()["gesture"] is not None:
        assert time.monotonic() < deadline, "a gesture played once ends"
        time.sleep(0.02)
    assert rm.status()["inputs"] == pytest.approx([0.1 + 0.04 * 19, 0.5])  # it ended on its last vector
    with pytest.raises(ValueError, match="speed"):
        rm.play_gesture("gesture-1", speed=0.0)
    rm.record_gesture(True, "still")
    with pytest.raises(ValueError, match="no movement"):
        rm.record_gesture(False)
    rm.play_gesture("gesture-1")
    rm.stop_gesture()
    assert rm.status()["gesture"] is None
