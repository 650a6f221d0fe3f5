"""A Wekinator user switches to ravemap and changes nothing: the same input program on Wekinator's
input port, the same `/wekinator/control/*` messages, `/wek/outputs` read by the same synth.

Real UDP on 127.0.0.1 against `ravemap serve`. Wekinator's fixed ports (6448 in, 12000 out) are
free ports here, set through `osc.wekinator_input_port` and `osc.wekinator_port`; the user sends
to the Wekinator port only, and only Wekinator's messages (ravemap's own `/ravemap/train/done` and
`/ravemap/error`, which reach the user's feedback port unasked, tell the test when to go on).
"""

from __future__ import annotations

import socket
import subprocess
import sys

import numpy as np
import pytest

from ravemap.config import validate
from ravemap.control.feedback import Feedback
from ravemap.control.osc import translator_for
from tests.conftest import REPO
from tests.osc_peer import Daemon, OscPeer, first_message, free_udp_port

EXAMPLES = [  # (inputs, outputs in Wekinator's 0..1 units)
    ((0.1, 0.1), (0.2, 0.8, 0.5, 0.1)),
    ((0.9, 0.1), (0.9, 0.3, 0.1, 0.6)),
    ((0.1, 0.9), (0.4, 0.0, 1.0, 0.7)),
    ((0.9, 0.9), (0.7, 0.5, 0.3, 1.0)),
]


class Synth:
    """What listens to Wekinator's outputs: `/wek/outputs` on a port of its own."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.sock.settimeout(0.1)

    def next_outputs(self, timeout: float = 10.0) -> list[float]:
        return first_message(self.sock, "/wek/outputs", timeout)

    def nothing_within(self, seconds: float) -> bool:
        try:
            self.next_outputs(seconds)
        except AssertionError:
            return True
        return False

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def user():
    p = OscPeer(0)
    yield p
    p.close()


@pytest.fixture
def synth():
    s = Synth()
    yield s
    s.close()


def _start(tmp_path, tiny_model, loop_file, user: OscPeer, synth: Synth, regressor: str = "mlp",
           **mapping: object) -> Daemon:
    port = free_udp_port()
    daemon = Daemon(tmp_path, tiny_model, loop_file, user.port, config={
        "osc": {"wekinator_input_port": port, "wekinator_outputs": True, "wekinator_port": synth.port},
        "mapping": {"regressor": regressor, **mapping}})
    user.daemon = ("127.0.0.1", port)  # the user sends to Wekinator's port only
    return daemon


def _record(user: OscPeer, examples) -> None:
    """As Wekinator's own trainOnData does: startRecording, then outputs and inputs for each example."""
    user.send("/wekinator/control/startRecording")
    for inputs, outputs in examples:
        user.send("/wekinator/control/outputs", *outputs)
        user.send("/wek/inputs", *inputs)
    user.send("/wekinator/control/stopRecording")


def _train(user: OscPeer) -> list:
    user.send("/wekinator/control/train")
    return user.wait_for("/ravemap/train/done", timeout=120)


def _run_at(user: OscPeer, synth: Synth, inputs_list) -> np.ndarray:
    user.send("/wekinator/control/startRunning")
    found = []
    for inputs in inputs_list:
        user.send("/wek/inputs", *inputs)
        found.append(synth.next_outputs())
    return np.array(found)


@pytest.mark.parametrize("regressor, tolerance", [("mlp", 0.05), ("knn", 1e-5)])
def test_a_wekinator_user_records_trains_and_runs_with_wekinator_messages_only(
        tmp_path, tiny_model, loop_file, user, synth, regressor, tolerance):
    daemon = _start(tmp_path, tiny_model, loop_file, user, synth, regressor)
    try:
        _record(user, EXAMPLES)
        loss, examples, _ = _train(user)
        assert examples == len(EXAMPLES)
        found = _run_at(user, synth, [inputs for inputs, _ in EXAMPLES])
        user.send("/wekinator/control/stopRunning")
        user.send("/wek/inputs", 0.5, 0.5)
        assert synth.nothing_within(0.5), "/wek/outputs only in run mode"
    finally:
        assert daemon.stop() == 0
    recorded = np.array([outputs for _, outputs in EXAMPLES])
    assert np.all(np.abs(found - recorded) <= tolerance), (found, recorded)


def test_cancel_train_during_a_long_training_leaves_the_previous_regressor_running(
        tmp_path, tiny_model, loop_file, user, synth):
    daemon = _start(tmp_path, tiny_model, loop_file, user, synth, "mlp", epochs=1_000_000)
    try:
        _record(user, EXAMPLES)
        _train(user)
        inputs = [i for i, _ in EXAMPLES]
        before = _run_at(user, synth, inputs)
        rng = np.random.default_rng(3)  # 300 examples of noise: a training of minutes at this epoch limit
        _record(user, [(tuple(rng.uniform(0, 1, 2)), tuple(rng.uniform(0, 1, 4))) for _ in range(300)])
        user.drain()
        trainings_done = [address for address, _ in user.seen].count("/ravemap/train/done")
        user.send("/wekinator/control/train")
        user.wait_for("/ravemap/train/progress", timeout=60)  # it is running
        user.send("/wekinator/control/cancelTrain")
        cancelled = user.wait_for("/ravemap/train/cancelled", timeout=30)  # reported, not as an error
        assert "training cancelled, the previous mapping stays" in cancelled[0]
        after = _run_at(user, synth, inputs)
        user.drain()
        assert [address for address, _ in user.seen].count("/ravemap/train/done") == trainings_done, \
            "the cancelled training never lands"
    finally:
        assert daemon.stop() == 0
    assert np.array_equal(after, before)
    assert np.all(np.abs(after - np.array([o for _, o in EXAMPLES])) <= 0.05)


def test_a_3_feature_and_a_20_feature_sender_each_train_and_run_on_a_fresh_mapping(
        tmp_path, tiny_model, loop_file, user, synth):
    rng = np.random.default_rng(7)
    daemon = _start(tmp_path, tiny_model, loop_file, user, synth, "knn")
    try:
        for features in (3, 20):
            examples = [(tuple(rng.uniform(0, 1, features)), tuple(rng.uniform(0, 1, 4))) for _ in range(4)]
            _record(user, examples)
            assert _train(user)[1] == 4
            found = _run_at(user, synth, [i for i, _ in examples])
            assert np.allclose(found, [o for _, o in examples], atol=1e-5)
            user.drain()
            user.send("/wek/inputs", 0.5, 0.5)  # another size, now that the mapping holds examples
            refusal = user.wait_for("/ravemap/error")[0]
            assert "2 input values, but mapping" in refusal and f"takes {features}" in refusal
            assert "runNewProject" in refusal
            user.send("/wekinator/control/stopRunning")
            user.send("/wekinator/control/runNewProject")
        state = user.status()
        assert state["examples"] == 0 and state["trained"] is False
    finally:
        assert daemon.stop() == 0


def test_wekinator_port_taken_by_another_socket_warns_once_and_the_main_port_works(
        tmp_path, tiny_model, loop_file, user):
    holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    holder.bind(("127.0.0.1", 0))
    taken = holder.getsockname()[1]
    try:
        daemon = Daemon(tmp_path, tiny_model, loop_file, user.port,
                        config={"osc": {"wekinator_input_port": taken}})
        user.daemon = ("127.0.0.1", daemon.port)
        try:
            user.send("/ravemap/ping")
            assert user.wait_for("/ravemap/pong") == []
            user.send("/wekinator/control/outputs", 1.0, 0.5, 0.0, 0.5)  # Wekinator's messages on the main port
            assert user.status()["targets"] == [3.0, 0.0, -3.0, 0.0]
        finally:
            assert daemon.stop() == 0
    finally:
        holder.close()
    warnings = [line for line in daemon.stderr().splitlines() if f":{taken}" in line]
    assert len(warnings) == 1 and "WARNING" in warnings[0] and "Wekinator's input port" in warnings[0], warnings
    assert "everything else runs" in warnings[0]


def test_a_button_release_does_not_delete_every_example(tmp_path, tiny_model, loop_file, user):
    """Issue 11, item 10: `/wekinator/control/deleteAllExamples 0` (a TouchOSC button's release) cleared
    every example. Releases of Wekinator's actions are ignored like ravemap's own momentary actions."""
    daemon = Daemon(tmp_path, tiny_model, loop_file, user.port)
    user.daemon = ("127.0.0.1", daemon.port)
    try:
        for (x, y), _ in EXAMPLES:
            user.send("/ravemap/xy", x, y)
            user.send("/ravemap/record/once")
        user.send("/wekinator/control/deleteAllExamples", 0)
        user.send("/wekinator/control/deleteExamplesForOutput", 0)
        user.send("/wekinator/control/runNewProject", 0.0)
        user.send("/wekinator/control/train", False)
        state = user.status()
        assert state["examples"] == len(EXAMPLES) and state["mapping"] == "default" and not state["training"]
        user.send("/wekinator/control/deleteAllExamples", 1)  # the press
        assert user.status()["examples"] == 0
    finally:
        daemon.stop()


def test_per_output_recording_running_and_deleting_as_on_wekinators_model_rows(
        tmp_path, tiny_model, loop_file, user, synth):
    daemon = _start(tmp_path, tiny_model, loop_file, user, synth, "knn")
    try:
        _record(user, EXAMPLES[:2])
        user.send("/wekinator/control/disableModelRecording", 2)
        _record(user, [((0.2, 0.3), (0.5, 0.9, 0.5, 0.5))])  # does not teach output 2
        user.send("/wekinator/control/enableModelRecording", 2)
        user.send("/wekinator/control/deleteExamplesForOutput", 4)  # no example teaches output 4
        assert _train(user)[1] == 3
        user.send("/wekinator/control/outputs", 0.25, 0.25, 0.25, 0.25)  # the manual values
        user.send("/wekinator/control/disableModelRunning", 1)
        found = _run_at(user, synth, [(0.2, 0.3), EXAMPLES[1][0]])
        # output 1: manual (running off); 2: from the nearest example teaching it; 3: learned; 4: manual
        assert np.allclose(found[0], [0.25, EXAMPLES[0][1][1], 0.5, 0.25], atol=1e-5)
        assert np.allclose(found[1], [0.25, *EXAMPLES[1][1][1:3], 0.25], atol=1e-5)
        user.send("/wekinator/control/enableModelRunning", 1)
        user.send("/wek/inputs", *EXAMPLES[1][0])
        assert synth.next_outputs()[0] == pytest.approx(EXAMPLES[1][1][0], abs=1e-5)
        for output in (1, 2, 3):  # every output deleted: no example is left
            user.send("/wekinator/control/deleteExamplesForOutput", output)
        assert user.status()["examples"] == 0
    finally:
        assert daemon.stop() == 0


def test_names_are_kept_in_the_mapping_saved_by_name_and_shown_by_plot(tmp_path, tiny_model, loop_file, user, synth):
    daemon = _start(tmp_path, tiny_model, loop_file, user, synth, "knn")
    try:
        user.send("/wekinator/control/setInputNames", "mouth", "brow", "tilt")  # a new mapping: 3 inputs
        user.send("/wekinator/control/setOutputNames", "pitch", "bright", "air", "wobble")
        _record(user, [((0.1, 0.2, 0.3), (0.1, 0.2, 0.3, 0.4)), ((0.7, 0.8, 0.9), (0.9, 0.8, 0.7, 0.6)),
                       ((0.7, 0.8, 0.9), (0.9, 0.8, 0.7, 0.5)),  # same input, new outputs: recorded
                       ((0.7, 0.8, 0.9), (0.9, 0.8, 0.7, 0.5))])  # the same example again: not
        _train(user)
        user.send("/wekinator/control/saveModelToFile", "face")
        assert user.wait_for("/ravemap/mapping") == ["face"]
        user.send("/wekinator/control/saveModelToFile", "../face")
        assert "'../face'" in user.wait_for("/ravemap/error")[0]
        user.send("/wekinator/control/runNewProject")
        assert user.status()["inputs"] == [0.5, 0.5], "a new mapping starts at inputs.size"
        user.send("/wekinator/control/loadModelFromFile", "face")
        state = user.status()
        assert state["mapping"] == "face" and state["examples"] == 3 and len(state["inputs"]) == 3
        user.send("/wekinator/control/startDtwRecording", 1)
        assert "no dynamic time warping" in user.wait_for("/ravemap/error")[0]
    finally:
        assert daemon.stop() == 0
    shown = subprocess.run([sys.executable, "-m", "ravemap", "plot", "face", "--out", str(tmp_path / "face.png"),
                            "--mappings-dir", str(daemon.mappings)], cwd=REPO, capture_output=True, text=True,
                           timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert "inputs: mouth, brow, tilt; outputs: pitch (latent dim 0), bright (latent dim 1)" in shown.stdout
    assert (tmp_path / "face.png").stat().st_size > 0


@pytest.mark.parametrize("units, sent, recorded", [
    ("unit", [0.0, 0.5, 1.0, 0.25], (-3.0, 0.0, 3.0, -1.5)),
    ("latent", [-3.0, 0.0, 3.0, -1.5], (-3.0, 0.0, 3.0, -1.5)),
])
def test_wekinator_units_map_0_to_1_onto_the_latent_range_both_ways(synth, units, sent, recorded):
    config = validate({"osc": {"wekinator_units": units, "wekinator_port": synth.port}})
    targets = translator_for(config).translate("/wekinator/control/outputs", sent)
    assert targets.values == pytest.approx(recorded)
    feedback = Feedback(config)
    try:
        feedback.wekinator_outputs(recorded)
        assert synth.next_outputs() == pytest.approx(sent)
    finally:
        feedback.close()


def test_names_and_untaught_outputs_survive_a_save_and_a_file_teaching_nothing_is_refused(tmp_path):
    from ravemap.errors import MappingError
    from ravemap.mapping.store import Example, Mapping, load_mapping, save_mapping, training_arrays

    mapping = Mapping("face", input_size=3, output_dims=(0, 1), output_range=(-3.0, 3.0),
                      examples=[Example((0.1, 0.2, 0.3), (1.0, None)), Example((0.9, 0.9, 0.9), (None, -2.0)),
                                Example((0.8, 0.8, 0.8), (2.0, None))],
                      input_names=("mouth", "brow", "tilt"), output_names=("pitch", "bright"))
    path = save_mapping(tmp_path, mapping)
    assert load_mapping(tmp_path, "face") == mapping
    x, y, taught = training_arrays(mapping)
    assert taught == (True, True)
    assert y.tolist() == [[1.0, -2.0], [2.0, -2.0], [2.0, -2.0]], "filled from the nearest example teaching it"
    path.write_text(path.read_text().replace("[1.0, null]", "[null, null]"))
    with pytest.raises(MappingError, match=r"examples\[0\]\.output: .* must teach at least one output"):
        load_mapping(tmp_path, "face")


@pytest.mark.parametrize("osc, expected", [
    ({"feedback_port": 6448}, "feedback_port 6448 is the Wekinator input port"),
    ({"wekinator_port": 6448}, "wekinator_port 6448 on 127.0.0.1 is one of this daemon's own control ports"),
    ({"wekinator_port": 8000, "wekinator_host": "localhost"}, "one of this daemon's own control ports"),
])
def test_wekinator_ports_that_would_answer_ravemap_itself_are_refused(osc, expected):
    from ravemap.errors import ConfigError

    with pytest.raises(ConfigError, match=expected):
        validate({"osc": osc})
