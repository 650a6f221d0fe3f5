"""Scenes and the tempo: a performer stores what they set as scenes, recalls them with a morph over
real OSC against `ravemap serve --audio none`, in time with the daemon's clock or a MIDI clock, and
finds them again after a restart."""

from __future__ import annotations

import json
import math
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from ravemap.errors import MappingError
from ravemap.mapping.store import Scene, load_mapping, save_mapping
from ravemap.session.keeper import new_mapping
from ravemap.session.tempo import Tempo
from tests.conftest import REPO, jack_midi_output
from tests.osc_peer import Daemon, OscPeer

A = [1.0, 1.0, 1.0, 1.0]
B = [-1.0, -2.0, 0.0, 2.0]
SR = 44100  # the tiny fixture's rate


def _start(tmp_path: Path, model: Path, loop: Path, **config: dict) -> tuple[Daemon, OscPeer]:
    peer = OscPeer(0)
    daemon = Daemon(tmp_path, model, loop, peer.port, config=config or None)
    peer.daemon = ("127.0.0.1", daemon.port)
    return daemon, peer


def _store_two_scenes(peer: OscPeer) -> None:
    peer.send("/ravemap/latent", *A)
    peer.send("/ravemap/mix", 1.0)
    peer.send("/ravemap/gain", 0.0)
    peer.send("/ravemap/scene/store", 1)
    peer.send("/ravemap/latent", *B)
    peer.send("/ravemap/mix", 0.5)
    peer.send("/ravemap/gain", -6.0)
    peer.send("/ravemap/jitter", 0.2)
    peer.send("/ravemap/limit/off")
    peer.send("/ravemap/scene/store", 2)


def _error_for(peer: OscPeer, address: str, *args: object) -> str:
    peer.drain()
    peer.send(address, *args)
    return peer.wait_for("/ravemap/error")[0]


def test_a_recall_morphs_from_one_scene_to_another_and_scenes_survive_a_restart(tmp_path, tiny_model, loop_file):
    daemon, peer = _start(tmp_path, tiny_model, loop_file)
    try:
        _store_two_scenes(peer)
        peer.send("/ravemap/scene/recall", 1)  # at once
        state = peer.status()
        assert state["scenes"] == [1, 2]
        assert state["targets"] == A and state["mix"] == 1.0 and state["gain_db"] == 0.0
        assert state["jitter"] == 0.0 and state["limit_db"] == -1.0, "scene 1 was stored before these changed"

        peer.send("/ravemap/scene/recall", 2, 1.0)
        seen = []
        deadline = time.monotonic() + 20
        while (state := peer.status())["scene"]["state"] != "idle" or not seen:
            assert time.monotonic() < deadline, "the morph never ended"
            if state["scene"]["state"] == "morphing":
                seen.append(state)
        halfway = [s for s in seen if 0.2 <= s["scene"]["progress"] <= 0.8]
        assert halfway, f"no status during the middle of the morph: {[s['scene'] for s in seen]}"
        for s in halfway:
            w = s["scene"]["progress"]
            assert s["targets"] == pytest.approx([a + w * (b - a) for a, b in zip(A, B, strict=True)], abs=2e-3)
            assert all(min(a, b) < t < max(a, b) for a, b, t in zip(A, B, s["targets"], strict=True) if a != b)
            assert 0.5 < s["mix"] < 1.0 and -6.0 < s["gain_db"] < 0.0
            assert s["limit_db"] == -1.0, "a switch (the limiter going off) flips at the end"
        assert state["scene"]["number"] == 2 and state["scene"]["ends_at"] - state["scene"]["starts_at"] == (
            pytest.approx(1.0, abs=1e-6))
        assert state["targets"] == B and state["offsets"] == B
        assert (state["mix"], state["gain_db"], state["limit_db"]) == (0.5, -6.0, None)
        assert state["jitter"] == pytest.approx(0.2)  # as an OSC float32 carried it
        assert daemon.stop() == 0
        saved = json.loads((daemon.mappings / "default.json").read_text())
        assert sorted(saved["scenes"]) == ["1", "2"] and saved["scenes"]["2"]["targets"] == B

        daemon, peer = _start(tmp_path, tiny_model, loop_file)
        state = peer.status()
        assert state["scenes"] == [1, 2]
        peer.send("/ravemap/scene/recall", 1, 0.0)
        state = peer.status()
        assert state["targets"] == A and state["mix"] == 1.0 and state["limit_db"] == -1.0
    finally:
        daemon.stop()
        peer.close()


def test_bad_scene_numbers_and_morph_times_are_refused_with_a_reply(tmp_path, tiny_model, loop_file):
    daemon, peer = _start(tmp_path, tiny_model, loop_file)
    try:
        peer.send("/ravemap/scene/store", 1)
        assert "1..128, got 0" in _error_for(peer, "/ravemap/scene/recall", 0)
        assert "1..128, got 129" in _error_for(peer, "/ravemap/scene/store", 129)
        assert "1..128, got 2.5" in _error_for(peer, "/ravemap/scene/recall", 2.5)
        assert "scene must be a number, got str" in _error_for(peer, "/ravemap/scene/recall", "one")
        assert "finite" in _error_for(peer, "/ravemap/scene/recall", 1, math.nan)
        assert "0..600" in _error_for(peer, "/ravemap/scene/recall", 1, -1.0)
        assert "seconds or beats, got 'bars'" in _error_for(peer, "/ravemap/scene/recall", 1, 1.0, "bars")
        text = _error_for(peer, "/ravemap/scene/recall", 7)
        assert "no scene 7 is stored (stored: 1)" in text and "/ravemap/scene/store" in text
        assert "20..300" in _error_for(peer, "/ravemap/tempo", 5.0)
        assert "off, beat, bar" in _error_for(peer, "/ravemap/quantize", "bars")
        state = peer.status()
        assert state["scene"]["state"] == "idle" and state["scenes"] == [1]
        peer.send("/ravemap/ping")
        peer.wait_for("/ravemap/pong")
    finally:
        daemon.stop()
        peer.close()


def test_with_quantize_a_recall_waits_for_the_beat_and_a_morph_in_beats_follows_the_tempo(
        tmp_path, tiny_model, loop_file):
    daemon, peer = _start(tmp_path, tiny_model, loop_file, tempo={"quantize": "bar", "bpm": 60})
    try:
        _store_two_scenes(peer)
        peer.send("/ravemap/tempo", 150.0)
        peer.send("/ravemap/quantize", "beat")
        state = peer.status()
        assert (state["bpm"], state["quantize"]) == (150.0, "beat")
        assert state["tempo"]["source"] == "internal" and state["tempo"]["running"]
        block_s = state["block_size"] / SR
        peer.send("/ravemap/scene/recall", 1, 2.0, "beats")  # two beats at 150 bpm: 0.8 s
        deadline = time.monotonic() + 20
        while (state := peer.status())["scene"]["state"] != "idle":
            assert time.monotonic() < deadline
        scene, tempo = state["scene"], state["tempo"]
        assert scene["ends_at"] - scene["starts_at"] == pytest.approx(0.8, abs=1e-6)
        beat_at_start = tempo["beat"] + (scene["starts_at"] - tempo["clock_s"]) * 150.0 / 60.0
        assert beat_at_start == pytest.approx(round(beat_at_start), abs=1e-3), "the recall is due on a beat"
        assert 0.0 <= scene["began_at"] - scene["starts_at"] <= block_s, "... and begins within a block of it"
        assert state["targets"] == A
    finally:
        daemon.stop()
        peer.close()


def test_the_python_api_stores_and_recalls_scenes_in_time(tmp_path, tiny_model, loop_file):
    from ravemap import Ravemap
    from tests.conftest import write_config

    config = write_config(tmp_path / "c.yaml", osc={"zeroconf": False, "wekinator_outputs": False},
                          midi={"enabled": False}, tempo={"bpm": 240, "quantize": "beat"})
    rm = Ravemap(config, model=tiny_model, loop=loop_file, audio="none", mappings_dir=tmp_path / "maps")
    rm.start()
    try:
        rm.set_offsets(A)
        assert rm.store_scene(5) == [5]
        rm.set_offsets(B)
        starts_at = rm.recall_scene(5, 2, "beats")  # two beats at 240 bpm: half a second
        assert rm.status()["scene"]["state"] in ("waiting", "morphing")
        beat = rm.session.tempo.beat_at(starts_at)
        assert beat == pytest.approx(round(beat), abs=1e-6), "due on a beat"
        deadline = time.monotonic() + 10
        while rm.status()["scene"]["state"] != "idle":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert rm.offsets == tuple(A)
        assert rm.status()["scene"]["ends_at"] - starts_at == pytest.approx(0.5)
        rm.set_tempo(bpm=90, quantize="off")
        assert (rm.status()["bpm"], rm.status()["quantize"]) == (90.0, "off")
        with pytest.raises(ValueError, match="no scene 6 is stored"):
            rm.recall_scene(6)
        with pytest.raises(ValueError, match="1..128"):
            rm.store_scene(0)
        assert rm.session.tempo.trim(1.2) == pytest.approx(2 * 60 / 90), "whole beats"
    finally:
        rm.stop()


# -- the tempo, from MIDI clock ----------------------------------------------------------------------
def test_the_tempo_fits_jittery_midi_clock_and_keeps_its_grid_through_stop_and_continue():
    rng = np.random.default_rng(3)
    tempo = Tempo(source="midi", quantize="bar")
    interval = 60.0 / 120.0 / 24
    tempo.midi("start", 0, 100.0, -100.0)
    for k in range(96):
        jitter = rng.uniform(-0.003, 0.003) + (0.012 if k == 60 else 0.0)  # and one tick late by 12 ms
        tempo.midi("tick", k, 100.0 + k * interval + jitter, -100.0 + rng.uniform(0, 0.04))
    now = 95 * interval + 0.02
    assert tempo.bpm == pytest.approx(120.0, abs=0.5)
    assert tempo.beat_at(now) == pytest.approx(now / 0.5, abs=0.06)
    assert tempo.next_boundary(now) == pytest.approx(2.0 + 0.02, abs=0.03), "the next bar line: beat 4 at 2 s"
    tempo.midi("stop", 0, 100.0 + 96 * interval, -100.0)
    held = tempo.beat_at(96 * interval)
    assert not tempo.running(now + 1) and tempo.next_boundary(now + 1) == now + 1, "stopped: no waiting"
    tempo.midi("continue", 0, 110.0, -100.0)
    for k in range(96, 110):
        tempo.midi("tick", k, 110.0 + (k - 96) * interval, -100.0)
    assert tempo.beat_at(10.0 + 13 * interval) == pytest.approx(held + 13 / 24, abs=0.05)
    assert tempo.trim(1.3) == pytest.approx(1.5) and tempo.trim(0.1) == pytest.approx(0.5)


@pytest.fixture
def clock_port(jack_server):
    yield from jack_midi_output("fake-drum-machine")


class MidiClockSender:
    """A drum machine: start, then 24 clocks per quarter note at `bpm`, on deadlines (no drift)."""

    def __init__(self, port, bpm: float):
        self.port, self.interval, self.sent = port, 60.0 / bpm / 24, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import mido

        self.port.send(mido.Message("start"))
        self.started = time.monotonic()
        while not self._stop.is_set():
            self.port.send(mido.Message("clock"))
            self.sent += 1
            delay = self.started + self.sent * self.interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    def beats(self) -> float:
        """The drum machine's position now, in beats."""
        return (time.monotonic() - self.started) / (self.interval * 24)

    def __enter__(self) -> MidiClockSender:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        import mido

        self._stop.set()
        self._thread.join()
        self.port.send(mido.Message("stop"))


@pytest.mark.jack
@pytest.mark.alone
def test_midi_clock_at_120_bpm_sets_the_tempo_and_a_recall_starts_on_the_bar_line(tmp_path, tiny_model, loop_file,
                                                                                 clock_port):
    midi = {"enabled": True, "api": "jack", "port": "fake-drum-machine", "virtual_port": None,
            "actions": [{"action": "scene", "note": 48, "scene": 2, "morph": 1}]}
    daemon, peer = _start(tmp_path, tiny_model, loop_file, midi=midi,
                          tempo={"source": "midi", "quantize": "bar", "morph_unit": "beats"})
    try:
        assert peer.status()["tempo"]["running"] is False, "no clock yet: the grid stands"
        _store_two_scenes(peer)
        with MidiClockSender(clock_port, 120.0) as drums:
            time.sleep(2.5)
            peer.drain()
            peer.send("/ravemap/status", peer.port)
            asked = drums.beats()  # the daemon answers within milliseconds; the peer reads replies 0.1 s at a time
            state = json.loads(peer.wait_for("/ravemap/status")[0])
            tempo = state["tempo"]
            assert tempo["source"] == "midi" and tempo["running"]
            assert tempo["bpm"] == pytest.approx(120.0, abs=1.0)
            assert tempo["beat"] == pytest.approx(asked, abs=0.1), "the grid is the drum machine's"
            block_s = state["block_size"] / SR
            while drums.beats() % 4 < 1.0 or drums.beats() % 4 > 3.0:  # ask in the middle of a bar
                time.sleep(0.05)
            asked_at = drums.beats()
            peer.send("/ravemap/scene/recall", 1, 0.0)
            state = peer.status()
            assert state["scene"]["state"] == "waiting" and state["targets"] == B, "it waits for the bar line"
            deadline = time.monotonic() + 10
            while (state := peer.status())["scene"]["state"] != "idle":
                assert time.monotonic() < deadline
            scene, tempo = state["scene"], state["tempo"]
            bar_at_start = (tempo["beat"] + (scene["starts_at"] - tempo["clock_s"]) * tempo["bpm"] / 60) / 4
            assert bar_at_start == pytest.approx(math.ceil(asked_at / 4), abs=0.05), "due on the next bar line"
            assert 0.0 <= scene["began_at"] - scene["starts_at"] <= block_s, "and begun within a block of it"
            assert state["targets"] == A

            clock_port.send(__import__("mido").Message("note_on", note=48, velocity=100))  # scene 2, 1 beat
            deadline = time.monotonic() + 10
            while (state := peer.status())["scene"]["number"] != 2 or state["scene"]["state"] != "idle":
                assert time.monotonic() < deadline
            assert state["scene"]["ends_at"] - state["scene"]["starts_at"] == pytest.approx(0.5, abs=0.01)
            assert state["targets"] == B
        time.sleep(0.3)
        assert peer.status()["tempo"]["running"] is False, "stop holds the grid"
    finally:
        daemon.stop()
        peer.close()


# -- the mapping file --------------------------------------------------------------------------------
def test_scenes_are_kept_in_the_mapping_file_and_a_bad_one_is_named(tmp_path):
    config = __import__("ravemap.config", fromlist=["load_config"]).load_config(REPO / "config.yaml")
    mapping = new_mapping(config, "scenes")
    mapping.scenes[3] = Scene((0.5, -0.5, 0.0, 1.0), running=False, transfer=False, gain_db=-3.0,
                              scale=(1.0,) * 8, jitter=0.1, mix=0.25, limit_db=None, autopilot=0.5,
                              autopilot_rate=2.0)
    path = save_mapping(tmp_path, mapping)
    assert load_mapping(tmp_path, "scenes").scenes == mapping.scenes
    data = json.loads(path.read_text())
    data["scenes"]["3"]["mix"] = 2.0
    data["scenes"]["200"] = data["scenes"]["3"]
    path.write_text(json.dumps(data))
    with pytest.raises(MappingError, match=r"scenes\.3\.mix") as err:
        load_mapping(tmp_path, "scenes")
    assert "scenes.200" in str(err.value)
    mapping.scenes.clear()
    assert "\"scenes\":" not in save_mapping(tmp_path, mapping).read_text(), "no scenes: no key"


# -- no click across a morph -----------------------------------------------------------------------------
@pytest.mark.alone
def test_a_morph_played_through_the_engine_has_no_step_larger_than_the_models_own(tmp_path, tiny_model, loop_file):
    """The engine's own block path (`BlockProcessor.next_block`, as `ravemap render` runs it), a block at a
    time on its sample clock, with the session's scene morph stepped once before each block."""
    import torch

    from ravemap.audio.playback import make_controls, prepare_processor
    from ravemap.config import load_config, with_overrides
    from ravemap.control.events import Inbox
    from ravemap.control.feedback import Feedback
    from ravemap.session.autopilot import Autopilot
    from ravemap.session.chain import ChainCommands
    from ravemap.session.engine import EngineCommands
    from ravemap.session.jobs import Jobs
    from ravemap.session.keeper import MappingKeeper
    from ravemap.session.scenes import Scenes

    config = with_overrides(load_config(REPO / "config.yaml"), engine__model=str(tiny_model),
                            engine__loop=str(loop_file), engine__latency="fixed")
    controls = make_controls(config)
    processor = prepare_processor(config, controls)
    feedback = Feedback(config)
    keeper = MappingKeeper(config, tmp_path, new_mapping(config, "morph"), Jobs(Inbox()), feedback)
    autopilot = Autopilot()
    chain = ChainCommands(controls, feedback, autopilot, None)
    engine = EngineCommands(config, controls, feedback, keeper, None, chain.model_swapped)
    scenes = Scenes(controls, feedback, autopilot, chain, engine, keeper, Tempo(), "seconds",
                    lambda: controls.rendered_s, lambda: (controls.offsets, False),
                    lambda: processor.block / processor.model.info.sr)
    keeper.mapping.scenes[1] = Scene(tuple(A), gain_db=0.0, scale=(1.0,) * 8, mix=1.0, limit_db=-1.0)
    keeper.mapping.scenes[2] = Scene(tuple(B), gain_db=-6.0, scale=(0.5,) * 8, mix=0.3, jitter=0.3, limit_db=-1.0)
    sr = processor.model.info.sr

    def play(seconds: float) -> np.ndarray:
        blocks = []
        for _ in range(int(seconds * sr / processor.block)):
            step = scenes.step(controls.rendered_s)
            if step is not None and step.targets is not None:
                controls.set_offsets(step.targets)  # what the session does with the targets in manual mode
            blocks.append(processor.next_block()[:, 0])
        return np.concatenate(blocks)

    try:
        with torch.inference_mode():
            scenes.recall(1, 0.0, None)
            play(1.0)  # the model settles
            steady_a = play(2.0)
            scenes.recall(2, 1.0, None)
            morph = play(1.5)
            steady_b = play(2.0)
    finally:
        keeper.close()
        feedback.close()
    assert controls.offsets == tuple(B) and controls.mix == 0.3 and controls.gain_db == -6.0
    own = max(np.abs(np.diff(steady_a)).max(), np.abs(np.diff(steady_b)).max())
    across = np.abs(np.diff(morph)).max()
    assert np.abs(morph).max() > 1e-3, "the morph plays sound"
    assert across <= 1.05 * own, f"largest sample step across the morph {across:.4f}, in steady playing {own:.4f}"
