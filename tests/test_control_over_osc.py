"""A performer teaches ravemap a gesture over OSC and plays it: real UDP on 127.0.0.1 against
a running `ravemap serve`."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from tests.osc_peer import Daemon, OscPeer, SharedDaemon

EXAMPLES = [  # (x, y) -> four slider values
    ((0.1, 0.1), (-2.0, 1.0, 0.0, 0.5)),
    ((0.9, 0.1), (2.0, -1.0, 1.0, 0.0)),
    ((0.1, 0.9), (0.0, 2.0, -1.5, -0.5)),
    ((0.9, 0.9), (1.0, 0.0, 2.0, 1.5)),
    ((0.5, 0.5), (0.5, 0.5, 0.5, -1.0)),
]


@pytest.fixture
def peer():
    p = OscPeer(0)
    yield p
    p.close()


# One daemon for the tests that want one as it starts (put back between tests, see SharedDaemon): the
# k-nearest-neighbour regressor (exact at the examples) and, beside the XY and Wekinator routes these
# tests send to, a Max patch's route from 0..127.
ROUTES = [{"address": "/ravemap/xy", "dims": [0, 1], "range": [0, 1]},
          {"address": "/wek/inputs", "dims": None, "range": [0, 1]},
          {"address": "/max/xy", "dims": [0, 1], "range": [0, 127]}]


@pytest.fixture(scope="module")
def shared(tmp_path_factory, tiny_model, loop_file):
    d = SharedDaemon(tmp_path_factory.mktemp("shared"), tiny_model, loop_file,
                     config={"mapping": {"regressor": "knn"}, "osc": {"routes": ROUTES}})
    yield d
    assert d.close() == 0, d.daemon.stderr()[-2000:]


@pytest.fixture
def live(shared) -> OscPeer:
    """The shared daemon's controller, with the daemon as it started."""
    return shared.reset()


def _start(tmp_path, tiny_model, loop_file, peer, *extra, **kw) -> Daemon:
    daemon = Daemon(tmp_path, tiny_model, loop_file, peer.port, *extra, **kw)
    peer.daemon = ("127.0.0.1", daemon.port)
    return daemon


def _teach(peer: OscPeer) -> None:
    for (x, y), targets in EXAMPLES:
        peer.send("/ravemap/xy", x, y)
        peer.send("/ravemap/latent", *targets)
        peer.send("/ravemap/record/once")
    assert peer.status()["examples"] == len(EXAMPLES)


def _offsets_at_examples(peer: OscPeer) -> np.ndarray:
    found = []
    for (x, y), _ in EXAMPLES:
        peer.send("/ravemap/xy", x, y)
        found.append(peer.status()["offsets"])
    return np.array(found)


def test_ping_answers_pong_and_the_ready_line_names_the_port(shared, live):
    assert f"127.0.0.1:{shared.daemon.port} ready" in shared.daemon.ready_line
    live.send("/ravemap/ping")
    assert live.wait_for("/ravemap/pong") == []


def test_sliders_set_the_latent_outside_run_mode(live):
    live.send("/ravemap/latent", 1.0, -1.0, 0.5, 9.0)
    live.send("/ravemap/latent/2", -0.25)
    state = live.status()
    assert state["offsets"] == [1.0, -1.0, -0.25, 3.0], "clamped to latent.range"
    live.send("/ravemap/latent/0", 0.75)
    feedback = live.wait_for("/ravemap/latent")  # the rate-limited feed, unasked
    assert feedback == pytest.approx([0.75, -1.0, -0.25, 3.0])


def test_record_train_run_reproduces_the_examples_and_survives_a_restart(tmp_path, tiny_model, loop_file, peer):
    daemon = _start(tmp_path, tiny_model, loop_file, peer, "--mapping", "gesture")
    try:
        _teach(peer)
        peer.send("/ravemap/train")
        loss, examples, seconds = peer.wait_for("/ravemap/train/done", timeout=60)
        assert examples == len(EXAMPLES) and loss < 0.01 and seconds > 0
        peer.send("/ravemap/run", 1)
        assert peer.wait_for("/ravemap/run") == [1]
        offsets = _offsets_at_examples(peer)
    finally:
        assert daemon.stop() == 0
    targets = np.array([t for _, t in EXAMPLES])
    scale = targets.std(axis=0)
    assert np.all(np.abs(offsets - targets) / scale < 0.05), "MLP within 0.05 in normalised units"
    assert (daemon.mappings / "gesture.json").is_file()

    again = _start(tmp_path, tiny_model, loop_file, peer, "--mapping", "gesture")
    try:
        state = peer.status()
        assert state["mapping"] == "gesture" and state["examples"] == len(EXAMPLES) and state["trained"]
        peer.send("/ravemap/run", 1)
        assert np.allclose(_offsets_at_examples(peer), offsets, atol=1e-5), "the restart restores the mapping"
    finally:
        again.stop()


def test_knn_is_exact_at_the_examples(live):
    assert live.status()["regressor"] == "knn"
    _teach(live)
    live.send("/ravemap/train")
    live.wait_for("/ravemap/train/done", timeout=60)
    live.send("/ravemap/run", 1)
    offsets = _offsets_at_examples(live)
    assert np.allclose(offsets, [t for _, t in EXAMPLES], atol=1e-6)


def test_wekinator_control_messages_do_the_same(live):
    live.send("/wekinator/control/startRecording")
    for (x, y), targets in EXAMPLES[:4]:
        live.send("/ravemap/latent", *targets)
        live.send("/wek/inputs", x, y)
    live.send("/wekinator/control/stopRecording")
    assert live.status()["examples"] == 4
    live.send("/wekinator/control/train")
    live.wait_for("/ravemap/train/done", timeout=60)
    live.send("/wekinator/control/startRunning")
    assert live.status()["running"] is True
    live.send("/wekinator/control/deleteAllExamples")
    assert live.status()["examples"] == 0


def test_a_route_range_scales_a_max_patch_sending_0_to_127(live):
    live.send("/max/xy", 127, 0)  # a route of the shared daemon's, ROUTES
    assert live.status()["inputs"] == [1.0, 0.0]


def test_training_with_no_examples_is_refused_and_run_needs_training(live):
    live.send("/ravemap/train")
    assert "no examples" in live.wait_for("/ravemap/error")[0]
    live.send("/ravemap/run", 1)
    assert "train first" in live.wait_for("/ravemap/error")[0]
    assert live.status()["running"] is False


def test_mapping_save_load_and_new_by_name(shared, live):
    _teach(live)
    live.send("/ravemap/mapping/save", "set-one")
    assert live.wait_for("/ravemap/mapping") == ["set-one"]
    live.send("/ravemap/mapping/new", "blank")
    assert live.status()["examples"] == 0
    live.send("/ravemap/mapping/load", "set-one")  # read beside control: switched when it says so
    assert live.wait_for("/ravemap/mapping") == ["set-one"]
    assert live.status()["examples"] == len(EXAMPLES)
    live.send("/ravemap/mapping/load", "../etc/passwd")
    refusal = live.wait_for("/ravemap/error")[0]
    assert "'../etc/passwd'" in refusal and "letters, digits" in refusal
    assert live.status()["mapping"] == "set-one"
    # set-one written by its save, blank (changed: it is new) as the load switched away from it
    mappings = shared.daemon.mappings
    assert (mappings / "set-one.json").is_file() and (mappings / "blank.json").is_file()


def test_transfer_gain_and_status_over_osc(live):
    live.send("/ravemap/transfer", 0)
    live.send("/ravemap/gain", -6.0)
    state = live.status()
    assert state["transfer"] is False and state["gain_db"] == -6.0
    live.send("/ravemap/gain", 99.0)
    assert "gain" in live.wait_for("/ravemap/error")[0]


def test_a_model_swap_by_name_stays_inside_the_models_folder(tmp_path, tiny_model, streaming_model, loop_file, peer):
    import shutil

    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(streaming_model, models / "other.ts")
    (models / "broken.ts").write_bytes(b"nope")
    daemon = _start(tmp_path, tiny_model, loop_file, peer, config={"paths": {"models_dir": str(models)}})
    try:
        peer.send("/ravemap/model", "other")
        assert peer.wait_for("/ravemap/model", timeout=30) == ["other.ts"]
        assert peer.status()["model"] == "other.ts"
        peer.send("/ravemap/model", "broken")
        assert "still playing the previous one" in peer.wait_for("/ravemap/error", timeout=30)[0]
        assert peer.status()["model"] == "other.ts"
        peer.send("/ravemap/model", "/etc/passwd")
        assert "model '/etc/passwd' contains '/'" in peer.wait_for("/ravemap/error")[0]
        (models / "escape.ts").symlink_to(streaming_model)
        peer.send("/ravemap/model", "escape")
        assert "points outside" in peer.wait_for("/ravemap/error")[0]
        assert peer.status()["model"] == "other.ts"
    finally:
        daemon.stop()


def _swap_folders(tmp_path, tiny_model, streaming_model, loop_file):
    import shutil

    from tests.conftest import write_loop

    models, loops = tmp_path / "models", tmp_path / "loops"
    models.mkdir()
    loops.mkdir()
    shutil.copy(streaming_model, models / "other.ts")
    shutil.copy(tiny_model, models / "tiny.ts")
    shutil.copy(streaming_model, models / "third.ts")
    shutil.copy(loop_file, loops / "first.wav")
    write_loop(loops / "second.wav", seconds=1.7, seed=2)
    write_loop(loops / "third.wav", seconds=1.1, seed=3)
    return {"paths": {"models_dir": str(models), "loops_dir": str(loops)}}


def test_a_loop_swap_right_after_a_model_swap_keeps_both_and_the_other_way_round(tmp_path, tiny_model,
                                                                                streaming_model, loop_file, peer):
    daemon = _start(tmp_path, tiny_model, loop_file, peer,
                    config=_swap_folders(tmp_path, tiny_model, streaming_model, loop_file))
    try:
        for model, loop in (("other", "second"), ("tiny", "third"), ("other", "first")):
            peer.send("/ravemap/model", model)
            assert peer.wait_for("/ravemap/model", timeout=60) == [f"{model}.ts"]
            peer.send("/ravemap/loop", loop)  # as soon as the model's confirmation arrives
            assert peer.wait_for("/ravemap/loop", timeout=60) == [f"{loop}.wav"]
            state = peer.status()
            assert (state["model"], state["loop"]) == (f"{model}.ts", f"{loop}.wav"), state
        for loop, model in (("second", "tiny"), ("third", "other")):
            peer.send("/ravemap/loop", loop)
            assert peer.wait_for("/ravemap/loop", timeout=60) == [f"{loop}.wav"]
            peer.send("/ravemap/model", model)
            assert peer.wait_for("/ravemap/model", timeout=60) == [f"{model}.ts"]
            state = peer.status()
            assert (state["model"], state["loop"]) == (f"{model}.ts", f"{loop}.wav"), state
    finally:
        assert daemon.stop() == 0, daemon.stderr()[-2000:]


def test_swaps_sent_while_one_loads_are_kept_and_the_newest_of_each_kind_wins(tmp_path, tiny_model,
                                                                             streaming_model, loop_file, peer):
    daemon = _start(tmp_path, tiny_model, loop_file, peer,
                    config=_swap_folders(tmp_path, tiny_model, streaming_model, loop_file))
    try:
        peer.drain()
        peer.send("/ravemap/model", "other")  # loads for a while: the rest arrive meanwhile
        peer.send("/ravemap/model", "tiny")
        peer.send("/ravemap/loop", "second")
        peer.send("/ravemap/model", "third")
        confirmed: list[tuple[str, list]] = []
        deadline = time.monotonic() + 120
        while not (["third.ts"] in [a for k, a in confirmed if k == "/ravemap/model"]
                   and ["second.wav"] in [a for k, a in confirmed if k == "/ravemap/loop"]):
            assert time.monotonic() < deadline, confirmed
            confirmed += [(k, a) for k, a in peer.receive(0.1) if k in ("/ravemap/model", "/ravemap/loop",
                                                                          "/ravemap/error")]
        errors = [a[0] for k, a in confirmed if k == "/ravemap/error"]
        assert errors == ["/ravemap/model: replaced by a newer request before it started loading"], confirmed
        assert [a for k, a in confirmed if k == "/ravemap/model"] == [["other.ts"], ["third.ts"]]
        state = peer.status()
        assert (state["model"], state["loop"]) == ("third.ts", "second.wav"), state
    finally:
        assert daemon.stop() == 0, daemon.stderr()[-2000:]


def test_capturing_a_vector_encodes_beside_control(tmp_path, tiny_model, peer):
    """The encode runs on the loader thread: a ping sent right after the capture is answered before
    the vector is (it used to run on the session thread, so the pong waited for the encode)."""
    from tests.conftest import write_loop

    long_loop = write_loop(tmp_path / "long.wav", seconds=40.0, sr=44100, channels=1, seed=4)
    daemon = _start(tmp_path, tiny_model, long_loop, peer)
    try:
        peer.drain()
        peer.send("/ravemap/vector/capture", "whole")
        peer.send("/ravemap/ping", peer.port)
        order: list[str] = []
        deadline = time.monotonic() + 120
        while "/ravemap/vector" not in order:
            assert time.monotonic() < deadline, order
            order += [k for k, _ in peer.receive(0.1) if k in ("/ravemap/pong", "/ravemap/vector", "/ravemap/error")]
        assert order[:2] == ["/ravemap/pong", "/ravemap/vector"], order
        assert peer.last("/ravemap/vector")[0] == "whole"
    finally:
        assert daemon.stop() == 0, daemon.stderr()[-2000:]
    assert "whole" in json.loads((daemon.mappings / "default.json").read_text())["extras"]["vectors"]
