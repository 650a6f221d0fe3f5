"""A performer records a gesture (a stream of input vectors with its timing) and plays it back in time:
real UDP on 127.0.0.1 against a running `ravemap serve --audio none`, whose engine renders against a
real-time clock, so gestures are timed on the engine's sample clock as with a sound card.

Periods are measured on the daemon's side: from the inputs its `/ravemap/status` reports and the
performance clock it reports them at (the playing gesture's `clock`), never from when this test sent
anything."""

from __future__ import annotations

import json
import math
import time

import pytest

from ravemap.errors import MappingError
from ravemap.mapping.store import Gesture, Mapping, encode_mapping, from_text
from tests.osc_peer import Daemon, OscPeer, SharedDaemon

SWEEP_POINTS = 50
SWEEP_SPACING_S = 0.02  # 50 points 20 ms apart: a one-second gesture
SWEEP = [0.1 + 0.8 * i / (SWEEP_POINTS - 1) for i in range(SWEEP_POINTS)]


@pytest.fixture(scope="module")
def shared(tmp_path_factory, tiny_model, loop_file):
    d = SharedDaemon(tmp_path_factory.mktemp("gestures"), tiny_model, loop_file)
    yield d
    assert d.close() == 0, d.daemon.stderr()[-2000:]


@pytest.fixture
def live(shared) -> OscPeer:
    return shared.reset()


def _record_sweep(peer: OscPeer, name: str | None = None) -> list:
    """Record x sweeping from 0.1 to 0.9 over one second (y at 0.5): 50 points sent on a 20 ms grid,
    and the recording ended one spacing after the last. Returns `/ravemap/gesture/recorded`'s args."""
    peer.send("/ravemap/xy", 0.5, 0.5)
    t0 = time.monotonic()
    peer.send("/ravemap/gesture/record", 1, *([name] if name else []))
    for i, x in enumerate(SWEEP):
        time.sleep(max(0.0, t0 + i * SWEEP_SPACING_S - time.monotonic()))
        peer.send("/ravemap/xy", x, 0.5)
    time.sleep(max(0.0, t0 + SWEEP_POINTS * SWEEP_SPACING_S - time.monotonic()))
    peer.send("/ravemap/gesture/record", 0)
    return peer.wait_for("/ravemap/gesture/recorded")


def _trace(peer: OscPeer, seconds: float) -> list[tuple[float, float, dict]]:
    """(clock, x, status) as the daemon reports them, polled every few milliseconds for `seconds`."""
    samples = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        state = peer.status_now()
        playing = state["gesture"] or {}
        samples.append((playing.get("clock", math.nan), state["inputs"][0], state))
        time.sleep(0.004)
    return samples


def _rises(samples: list[tuple[float, float, dict]], level: float = 0.5) -> list[float]:
    """The daemon's clock at each report where x has just risen through `level`."""
    return [c1 for (_, x0, _), (c1, x1, _) in zip(samples, samples[1:], strict=False) if x0 < level <= x1]


def _period(rises: list[float]) -> float:
    return (rises[-1] - rises[0]) / (len(rises) - 1)


@pytest.mark.alone  # periods measured against the engine's real-time clock: no other test beside it
def test_a_recorded_sweep_loops_with_its_period_twice_as_fast_at_speed_2_until_a_controller_takes_over(live):
    name, length, points = _record_sweep(live)
    assert name == "gesture-1"
    assert abs(length - 1.0) <= 0.05, length  # timed on the daemon's clock
    assert points >= SWEEP_POINTS * 0.9
    state = live.status_now()
    assert state["gestures"] == ["gesture-1"] and state["gesture"] is None

    live.send("/ravemap/gesture/play", "gesture-1")  # speed 1, loop 1 by default
    assert live.wait_for("/ravemap/gesture/playing") == ["gesture-1"]
    samples = _trace(live, 3.2)
    xs = [x for _, x, _ in samples]
    assert min(xs) <= 0.1 + 0.05 and max(xs) >= 0.9 - 0.05, (min(xs), max(xs))  # the whole sweep, again and again
    assert all(s["gesture"]["name"] == "gesture-1" and s["gesture"]["loop"] for _, _, s in samples)
    rises = _rises(samples)
    assert len(rises) >= 3, rises
    period = _period(rises)
    assert abs(period - 1.0) <= 0.05, (period, rises)
    # Each loop on its own: a rise reported a block late (the session thread held up) moves one by a block.
    assert all(abs(b - a - period) <= 0.1 for a, b in zip(rises, rises[1:], strict=False)), rises
    assert max(s["gesture"]["cycle"] for _, _, s in samples) >= 2

    live.send("/ravemap/gesture/play", "gesture-1", 2.0, 1)
    time.sleep(0.1)
    fast = _period(_rises(_trace(live, 2.2)))
    assert abs(fast - period / 2) <= 0.025, (fast, period)
    assert abs(fast - 0.5) <= 0.025, fast

    live.send("/ravemap/xy", 0.3, 0.7)  # a controller takes over: the gesture stops
    assert live.wait_for("/ravemap/gesture/playing") == [""]
    held = _trace(live, 0.4)
    assert all(s["gesture"] is None and s["inputs"] == pytest.approx([0.3, 0.7], abs=1e-6) for _, _, s in held)

    live.send("/ravemap/gesture/play", "gesture-1", 1.0, 1)
    time.sleep(0.3)
    live.send("/ravemap/gesture/stop")
    live.receive(0.3)
    assert [args for address, args in live.seen if address == "/ravemap/gesture/playing"][-2:] == [["gesture-1"], [""]]
    stopped = _trace(live, 0.4)
    assert all(s["gesture"] is None for _, _, s in stopped)
    assert len({tuple(s["inputs"]) for _, _, s in stopped}) == 1  # stopped where it was


@pytest.mark.alone  # timed against the engine's real-time clock
def test_a_gesture_played_once_ends_on_its_last_point(live):
    _record_sweep(live, "once")
    live.send("/ravemap/gesture/play", "once", 1.0, 0)
    samples = _trace(live, 1.4)
    xs = [x for _, x, _ in samples]
    assert len(_rises(samples)) == 1
    assert samples[-1][2]["gesture"] is None and xs[-1] == pytest.approx(0.9, abs=1e-4)
    live.receive(0.2)
    assert [args for address, args in live.seen if address == "/ravemap/gesture/playing"] == [["once"], [""]]


def test_in_run_mode_a_gesture_plays_through_the_mapping(live):
    for x, value in ((0.1, -2.0), (0.9, 2.0)):  # latent 0 follows x
        live.send("/ravemap/xy", x, 0.5)
        live.send("/ravemap/latent", value, 0.0, 0.0, 0.0)
        live.send("/ravemap/record/once")
    live.send("/ravemap/train")
    live.wait_for("/ravemap/train/done", timeout=60)
    _record_sweep(live, "through")
    live.send("/ravemap/run", 1)
    live.send("/ravemap/gesture/play", "through")
    samples = _trace(live, 1.5)
    offsets = [s["offsets"][0] for _, _, s in samples]
    assert min(offsets) < -1.0 and max(offsets) > 1.0, (min(offsets), max(offsets))
    low = [s["offsets"][0] for _, x, s in samples if x < 0.2]
    high = [s["offsets"][0] for _, x, s in samples if x > 0.8]
    assert low and high and max(low) < min(high)


def test_bad_gestures_are_refused_with_a_reply_and_the_daemon_plays_on(live):
    live.send("/ravemap/gesture/record", 1, "../escape")
    assert "gesture name" in live.wait_for("/ravemap/error")[0]

    live.send("/ravemap/gesture/record", 1, "still")  # no movement at all
    time.sleep(0.2)
    live.send("/ravemap/gesture/record", 0)
    assert "no movement" in live.wait_for("/ravemap/error")[0]

    live.send("/ravemap/xy", 0.2, 0.2)
    live.send("/ravemap/gesture/record", 1, "still")  # the same vector again and again: no movement either
    for _ in range(5):
        live.send("/ravemap/xy", 0.4, 0.4)
    live.send("/ravemap/gesture/record", 0)
    assert "no movement" in live.wait_for("/ravemap/error")[0]
    assert live.status_now()["gestures"] == []

    _record_sweep(live, "fine")
    for speed in (0.0, math.nan, 11.0, -1.0):
        live.send("/ravemap/gesture/play", "fine", speed)
        error = live.wait_for("/ravemap/error")[0]
        assert "/ravemap/gesture/play" in error and ("speed" in error or "finite" in error), error
    live.send("/ravemap/gesture/play", "missing")
    assert "no gesture 'missing'" in live.wait_for("/ravemap/error")[0]
    live.send("/ravemap/gesture/play", "../fine")
    assert "gesture name" in live.wait_for("/ravemap/error")[0]
    live.send("/ravemap/gesture/play")
    assert "/ravemap/gesture/play" in live.wait_for("/ravemap/error")[0]
    state = live.status_now()
    assert state["gesture"] is None and state["gestures"] == ["fine"]
    live.send("/ravemap/gesture/delete", "fine")
    live.send("/ravemap/ping")
    assert live.wait_for("/ravemap/pong") == []
    assert live.status_now()["gestures"] == []


def test_gestures_are_kept_with_the_mapping_and_survive_a_restart(tmp_path, tiny_model, loop_file):
    peer = OscPeer(0)
    try:
        daemon = Daemon(tmp_path, tiny_model, loop_file, peer.port, "--mapping", "kept")
        peer.daemon = ("127.0.0.1", daemon.port)
        _record_sweep(peer, "sweep")
        peer.send("/ravemap/xy", 0.2, 0.8)
        peer.send("/ravemap/gesture/record", 1)
        for i in range(10):
            peer.send("/ravemap/xy", 0.2 + 0.05 * i, 0.8)
            time.sleep(0.01)
        peer.send("/ravemap/gesture/record", 0)
        assert peer.wait_for("/ravemap/gesture/recorded")[0] == "gesture-1"
        assert daemon.stop() == 0
        saved = json.loads((daemon.mappings / "kept.json").read_text())
        assert [g["name"] for g in saved["gestures"]] == ["sweep", "gesture-1"]

        daemon = Daemon(tmp_path, tiny_model, loop_file, peer.port, "--mapping", "kept")
        peer.daemon = ("127.0.0.1", daemon.port)
        assert peer.status()["gestures"] == ["sweep", "gesture-1"]
        peer.send("/ravemap/gesture/play", "sweep", 1.0, 0)
        assert peer.wait_for("/ravemap/gesture/playing") == ["sweep"]
        assert peer.wait_for("/ravemap/gesture/playing", timeout=5) == [""]  # played once, to its end
        assert peer.status()["inputs"][0] == pytest.approx(0.9, abs=1e-4)
        peer.send("/ravemap/mapping/new", "empty")  # a new mapping holds no gestures
        assert peer.status()["gestures"] == []
        assert daemon.stop() == 0
        assert "gestures" not in json.loads((daemon.mappings / "empty.json").read_text())
    finally:
        peer.close()


# -- the mapping file --------------------------------------------------------------------------------
def _mapping(*gestures: Gesture) -> Mapping:
    return Mapping("with gestures", 2, (0, 1), (-3.0, 3.0), gestures=gestures)


def test_a_mapping_file_keeps_its_gestures_and_checks_them():
    gesture = Gesture("wave", 1.5, (0.0, 0.25, 1.0), ((0.1, 0.5), (0.5, 0.9), (0.9, 0.5)))
    text = encode_mapping(_mapping(gesture), "test")
    assert from_text(text, "test").gestures == (gesture,)
    assert '"gestures"' not in encode_mapping(_mapping(), "test")

    data = json.loads(text)
    for change, said in (
        (lambda g: g.update(times=[0.0, 1.0, 0.5]), "gestures[0].times"),
        (lambda g: g.update(times=[0.0, 0.5, 2.0]), "gestures[0].times"),
        (lambda g: g.update(times=[0.0, 0.5]), "one time per input vector"),
        (lambda g: g.update(inputs=[[0.1, 0.5], [0.5], [0.9, 0.5]]), "one size"),
        (lambda g: g.update(name="../wave"), "gesture name"),
        (lambda g: g.update(length=0), "gestures[0].length"),
    ):
        bad = json.loads(text)
        change(bad["gestures"][0])
        with pytest.raises(MappingError, match=said.replace("[", r"\[").replace("]", r"\]")):
            from_text(json.dumps(bad), "test")
    twice = dict(data, gestures=data["gestures"] * 2)
    with pytest.raises(MappingError, match="each gesture name once"):
        from_text(json.dumps(twice), "test")


@pytest.mark.alone  # timed against the engine's real-time clock
def test_playback_lands_each_vector_within_one_latent_frame_of_its_recorded_time(shared, live, tiny_model):
    from ravemap.audio.model import load_model

    info = load_model(tiny_model).info
    frame_s = info.ratio / info.sr
    _record_sweep(live, "timed")
    live.send("/ravemap/mapping/save")
    live.wait_for("/ravemap/mapping")
    saved = json.loads((shared.daemon.mappings / f"{live.status_now()['mapping']}.json").read_text())
    gesture = next(g for g in saved["gestures"] if g["name"] == "timed")
    # What the engine heard while recording: the last vector of each block (vectors that came within one
    # block share its time, and the block played only the last of them).
    heard = {t: x for t, (x, _) in zip(gesture["times"], gesture["inputs"], strict=True)}

    live.send("/ravemap/gesture/play", "timed", 1.0, 0)
    samples = []
    deadline = time.monotonic() + 5.0
    while (state := live.status_now())["gesture"] is not None and time.monotonic() < deadline:
        playing = state["gesture"]
        samples.append((playing["clock"] - playing["position"], playing["clock"], state))
        time.sleep(0.003)
    assert state["gesture"] is None, "a gesture played once ends"
    start = samples[0][0]  # the clock at which the gesture's time 0 played
    errors = []
    for t, x in heard.items():
        seen = [clock for _, clock, state in samples if abs(state["inputs"][0] - x) < 1e-6]
        if seen:
            errors.append(min(seen) - start - t)
    assert len(errors) >= 0.8 * len(heard), (len(errors), len(heard))
    assert max(abs(e) for e in errors) <= frame_s + 1e-6, (frame_s, sorted(errors))


# -- the quantize hooks, on a clock this test sets ----------------------------------------------------
def test_a_tempo_clock_can_trim_a_recording_and_choose_when_playback_starts():
    from ravemap.config import validate
    from ravemap.control.events import Command
    from ravemap.control.feedback import Feedback
    from ravemap.session.gestures import GestureCommands

    mapping = Mapping("hooks", 1, (0,), (-3.0, 3.0))
    changes = []
    gestures = GestureCommands(Feedback(validate({"osc": {"zeroconf": False}})), lambda: mapping,
                               lambda: changes.append(1))
    gestures.trim = lambda seconds: round(seconds * 2) / 2  # to the nearest half second (a beat at 120 bpm)
    gestures.record(Command("gesture_record"), True, "beat", now=10.0)
    for i in range(9):
        gestures.moved(10.0 + 0.1 * i, (0.1 * i,))  # 0.0 .. 0.8, at 10.0 .. 10.8 s
    assert gestures.record(Command("gesture_record"), False, None, now=10.7) == "beat"
    (kept,) = mapping.gestures
    assert kept.length == 0.5 and kept.times[-1] <= 0.5  # trimmed: what came after the trimmed end is dropped
    assert [v for (v,) in kept.inputs] == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4, 0.5])
    assert changes, "the mapping is marked changed (saved later)"

    gestures.play("beat", 1.0, True, now=20.0, input_size=1, start_at=21.0)  # starts on the next beat
    assert gestures.wait(20.5) == pytest.approx(0.01)  # nothing due yet: steps a tick at a time
    assert gestures.step(20.99) is None
    assert gestures.step(21.0) == (0.0,)
    assert gestures.step(21.25) == (0.2,)
    assert gestures.step(21.55) == (0.0,)  # the second loop, 0.5 s later
    assert gestures.report(21.55)["cycle"] == 1


@pytest.mark.alone  # the start is read on the engine's real-time clock: no other test beside it
def test_under_quantize_bar_a_recording_keeps_whole_beats_and_playback_starts_on_a_bar_line(live):
    live.send("/ravemap/tempo", 100.0)  # a beat of 0.6 s, a bar of 2.4 s
    live.send("/ravemap/quantize", "bar")
    name, length, _ = _record_sweep(live)
    assert length == pytest.approx(1.2, abs=1e-6), "a second of movement is kept as two whole beats"
    live.send("/ravemap/gesture/play", name)
    deadline = time.monotonic() + 10
    while True:
        state = live.status_now()
        playing = state["gesture"]
        assert playing is not None, "it plays (or waits for its bar line)"
        if playing["cycle"] or playing["position"] > 0:
            break
        assert time.monotonic() < deadline, "it started within a bar"
        time.sleep(0.01)
    started = playing["clock"] - (playing["cycle"] * playing["length"] + playing["position"]) / playing["speed"]
    tempo = state["tempo"]
    beat = tempo["beat"] - (tempo["clock_s"] - started) * tempo["bpm"] / 60.0  # the beat its playback began on
    assert min(beat % 4, 4 - beat % 4) < 0.05, f"started on beat {beat:.3f}, not on a bar line"
    live.send("/ravemap/gesture/stop")
