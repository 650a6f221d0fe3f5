"""A MIDI controller moves the input vector: rtmidi's JACK MIDI API against a dummy JACK server,
with a virtual controller port that a running `ravemap serve` connects to."""

from __future__ import annotations

import time

import mido
import pytest

from tests.conftest import jack_midi_output
from tests.osc_peer import Daemon, OscPeer

pytestmark = pytest.mark.jack


@pytest.fixture
def controller(jack_server):
    yield from jack_midi_output("fake-controller")


def _inputs_after(peer: OscPeer, port, *messages: mido.Message) -> list[float]:
    for msg in messages:
        port.send(msg)
    time.sleep(0.3)
    return peer.status()["inputs"]


def test_ccs_move_the_input_vector_14_bit_pairs_resolve_and_learn_binds(tmp_path, tiny_model, loop_file, controller):
    peer = OscPeer(0)
    midi = {"enabled": True, "api": "jack", "port": "fake-controller", "virtual_port": None,
            "cc": [{"cc": 1, "dim": 0}, {"cc": 2, "dim": 1, "channel": 3}, {"cc": 4, "dim": 1, "fine": True}]}
    daemon = Daemon(tmp_path, tiny_model, loop_file, peer.port, config={"midi": midi})
    peer.daemon = ("127.0.0.1", daemon.port)
    try:
        assert "MIDI input from RtMidiOut Client:fake-controller" in daemon.stderr()
        cc = lambda control, value, channel=0: mido.Message(  # noqa: E731
            "control_change", control=control, value=value, channel=channel)
        assert _inputs_after(peer, controller, cc(1, 127), cc(2, 0, channel=2)) == [1.0, 0.0]
        assert _inputs_after(peer, controller, cc(2, 127, channel=5))[1] == 0.0, "CC 2 listens on channel 3 only"
        inputs = _inputs_after(peer, controller, cc(4, 64), cc(36, 0))
        assert inputs[1] == pytest.approx(8192 / 16383), "MSB 64 + LSB 0 is the 14-bit centre"
        inputs = _inputs_after(peer, controller, cc(4, 127), cc(36, 127))
        assert inputs[1] == 1.0
        peer.send("/ravemap/learn", 0)
        peer.wait_for("/ravemap/learn")
        inputs = _inputs_after(peer, controller, cc(20, 0, channel=9))
        assert inputs[0] == 0.0
        assert peer.last("/ravemap/learn") == [0, "CC 20 on channel 10"]
        assert _inputs_after(peer, controller, cc(20, 127, channel=9))[0] == 1.0
        assert _inputs_after(peer, controller, cc(1, 0))[0] == 1.0, "CC 1 no longer drives dim 0 after learn"
    finally:
        daemon.stop()
        peer.close()


def test_notes_trigger_actions_and_pitch_bend_moves_its_dim(tmp_path, tiny_model, loop_file, controller):
    peer = OscPeer(0)
    midi = {"enabled": True, "api": "jack", "port": "fake-controller", "virtual_port": None, "pitchbend": 1,
            "actions": [{"action": "record_once", "note": 36}, {"action": "transfer", "cc": 64}]}
    daemon = Daemon(tmp_path, tiny_model, loop_file, peer.port, config={"midi": midi})
    peer.daemon = ("127.0.0.1", daemon.port)
    try:
        controller.send(mido.Message("note_on", note=36, velocity=100))
        controller.send(mido.Message("note_on", note=36, velocity=0))  # a note-off by velocity 0
        controller.send(mido.Message("control_change", control=64, value=127))
        time.sleep(0.3)
        state = peer.status()
        assert state["examples"] == 1 and state["transfer"] is False
        assert _inputs_after(peer, controller, mido.Message("pitchwheel", pitch=8191))[1] == 1.0
        assert _inputs_after(peer, controller, mido.Message("pitchwheel", pitch=-8192))[1] == 0.0
    finally:
        daemon.stop()
        peer.close()


def test_no_midi_port_is_one_info_line_and_the_rest_runs(tmp_path, tiny_model, loop_file, jack_server):
    peer = OscPeer(0)
    midi = {"enabled": True, "api": "jack", "port": "no-such-controller", "virtual_port": None}
    daemon = Daemon(tmp_path, tiny_model, loop_file, peer.port, config={"midi": midi})
    peer.daemon = ("127.0.0.1", daemon.port)
    try:
        peer.send("/ravemap/ping")
        peer.wait_for("/ravemap/pong")
        lines = [ln for ln in daemon.stderr().splitlines() if "MIDI" in ln]
        assert len(lines) == 1 and "no MIDI input port matches 'no-such-controller'" in lines[0]
    finally:
        daemon.stop()
        peer.close()


def test_a_cc_in_midi_controls_moves_a_chain_control_and_learn_binds_one(tmp_path, tiny_model, loop_file, controller):
    peer = OscPeer(0)
    midi = {"enabled": True, "api": "jack", "port": "fake-controller", "virtual_port": None,
            "controls": [{"cc": 7, "control": "mix"}, {"cc": 8, "control": "scale 2", "channel": 2},
                         {"cc": 9, "control": "limit"}]}
    daemon = Daemon(tmp_path, tiny_model, loop_file, peer.port, config={"midi": midi})
    peer.daemon = ("127.0.0.1", daemon.port)
    try:
        cc = lambda control, value, channel=0: mido.Message(  # noqa: E731
            "control_change", control=control, value=value, channel=channel)
        for msg in (cc(7, 0), cc(8, 0, channel=1), cc(9, 127)):
            controller.send(msg)
        time.sleep(0.3)
        state = peer.status()
        assert state["mix"] == 0.0 and state["scale"][2] == -4.0 and state["limit_db"] == 0.0
        controller.send(cc(7, 127))
        time.sleep(0.3)
        assert peer.status()["mix"] == 1.0, "0..127 across the control's range"
        peer.send("/ravemap/learn/control", "jitter")
        assert peer.wait_for("/ravemap/learn/control") == ["jitter", "waiting for a controller to move"]
        controller.send(cc(21, 127, channel=4))
        time.sleep(0.3)
        assert peer.status()["jitter"] == 3.0
        assert peer.last("/ravemap/learn/control") == ["jitter", "CC 21 on channel 5"]
        controller.send(cc(21, 0, channel=4))
        time.sleep(0.3)
        assert peer.status()["jitter"] == 0.0
    finally:
        daemon.stop()
        peer.close()
