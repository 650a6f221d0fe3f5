"""A performer plays the chain and the autopilot over OSC: real UDP on 127.0.0.1 against `ravemap serve`
with a RAVE fixture. Each new address moves the daemon's value (in `/ravemap/status` and in OSCQuery's
VALUE) and refuses NaN, a wrong type and an out-of-range value with an `/ravemap/error` reply; the
autopilot walks smoothly and in range, a touch takes over, and amount 0 stops it."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from pythonosc.osc_packet import OscPacket

from ravemap.session.autopilot import HOLD_S
from tests.osc_peer import OscPeer, SharedDaemon

requests = pytest.importorskip("requests")


@pytest.fixture(scope="module")
def shared(tmp_path_factory, tiny_model, loop_file):
    d = SharedDaemon(tmp_path_factory.mktemp("performer"), tiny_model, loop_file,
                     config={"mapping": {"regressor": "knn"}})
    yield d
    assert d.close() == 0, d.daemon.stderr()[-2000:]


@pytest.fixture
def live(shared) -> OscPeer:
    return shared.reset()


# address, a value to send, the status field, the value it then holds
MOVES = [
    ("/ravemap/mix", 0.3, "mix", 0.3),
    ("/ravemap/jitter", 1.5, "jitter", 1.5),
    ("/ravemap/input/gain", -6.0, "input_gain_db", -6.0),
    ("/ravemap/limit", -3.0, "limit_db", -3.0),
    ("/ravemap/scale", 0.5, "scale", [0.5] * 8),
    ("/ravemap/scale/3", -2.0, "scale", [1.0, 1.0, 1.0, -2.0, 1.0, 1.0, 1.0, 1.0]),
    ("/ravemap/autopilot/rate", 2.0, "autopilot_rate", 2.0),
    ("/ravemap/autopilot", 0.5, "autopilot", 0.5),
]
OSCQUERY = {"mix": "/ravemap/mix", "jitter": "/ravemap/jitter", "input_gain_db": "/ravemap/input/gain",
            "limit_db": "/ravemap/limit", "autopilot_rate": "/ravemap/autopilot/rate",
            "autopilot": "/ravemap/autopilot"}


def _approx(value):
    return pytest.approx(value, abs=1e-6) if value is not None else None


@pytest.mark.parametrize(("address", "value", "field", "held"), MOVES, ids=[m[0] for m in MOVES])
def test_each_chain_address_moves_the_daemons_value(live, shared, address, value, field, held):
    live.send(address, value)
    assert live.status()[field] == _approx(held)
    query = OSCQUERY.get(field)
    if query is not None:
        url = shared.daemon.web_url.rstrip("/") + query + "?VALUE"
        assert requests.get(url).json()["VALUE"] == [_approx(held)]


def test_scale_takes_one_value_per_latent_dim_and_the_limiter_switches_off(live):
    live.send("/ravemap/scale", *[float(v) for v in np.linspace(-4, 4, 8)])
    assert live.status()["scale"] == pytest.approx(list(np.linspace(-4, 4, 8)))
    live.send("/ravemap/limit/off")
    assert live.status()["limit_db"] is None
    live.send("/ravemap/limit", -12.0)
    assert live.status()["limit_db"] == -12.0


BAD = {  # address -> an out-of-range value
    "/ravemap/mix": 1.5, "/ravemap/jitter": 3.5, "/ravemap/input/gain": 30.0, "/ravemap/limit": 1.0,
    "/ravemap/scale": 4.5, "/ravemap/scale/2": -5.0, "/ravemap/autopilot": 1.1, "/ravemap/autopilot/rate": 20.0,
    "/ravemap/autopilot/prior": 2,
}


@pytest.mark.parametrize("address", list(BAD))
def test_each_chain_address_refuses_nan_a_wrong_type_and_out_of_range_and_keeps_its_value(live, address):
    before = live.status()
    for args, said in (([float("nan")], "finite"), (["loud"], "number"), ([BAD[address]], "must be in")):
        live.drain()
        live.send(address, *args)
        error = live.wait_for("/ravemap/error", timeout=5)[0]
        assert address in error and said in error, error
    after = live.status()
    for field in ("mix", "jitter", "input_gain_db", "limit_db", "scale", "autopilot", "autopilot_rate",
                  "autopilot_prior"):
        assert after[field] == before[field], field


def test_a_scale_dim_the_model_lacks_and_an_unknown_learn_name_are_refused(live):
    live.send("/ravemap/scale/8", 1.0)
    assert "scale dim must be in range 0..7, got 8" in live.wait_for("/ravemap/error", timeout=5)[0]
    live.drain()
    live.send("/ravemap/learn/control", "volume")
    assert "unknown chain control 'volume'" in live.wait_for("/ravemap/error", timeout=5)[0]


def test_the_prior_is_refused_for_a_model_that_exports_none(live):
    live.send("/ravemap/autopilot/prior", 1)
    error = live.wait_for("/ravemap/error", timeout=5)[0]
    assert "rave_v2_tiny.ts exports no `prior` method" in error, error
    assert live.status()["autopilot_prior"] is False


def _watch(peer: OscPeer, key: str, seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """`key` of `/ravemap/status`, asked every 50 ms or so for `seconds`: (times, values)."""
    peer.drain()
    times, values = [], []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        peer.send("/ravemap/status", peer.port)
        deadline = time.monotonic() + 5
        while True:
            assert time.monotonic() < deadline, "no status reply"
            try:
                data, _ = peer.sock.recvfrom(65536)
            except TimeoutError:
                continue
            replies = [m.message for m in OscPacket(data).messages if m.message.address == "/ravemap/status"]
            if replies:
                values.append(json.loads(replies[0].params[0])[key])
                times.append(time.monotonic())
                break
        time.sleep(0.04)
    return np.asarray(times), np.asarray(values, dtype=float)


def _check_smooth_walk(times: np.ndarray, values: np.ndarray, low: float, high: float, speed: float) -> None:
    """It moved, stayed in [low, high], and moved like a slow signal: no step faster than `speed`
    per second allows (over the time between two replies, plus their jitter), and successive steps
    alike (a random jump each time would make them opposite)."""
    assert values.min() >= low - 1e-9 and values.max() <= high + 1e-9
    assert np.ptp(values, axis=0).max() > 0.05 * (high - low), "the autopilot did not move"
    steps = np.diff(values, axis=0)
    allowed = speed * (np.diff(times) + 0.05)
    assert (np.abs(steps).max(axis=1) <= allowed).all(), "a jump"
    a, b = steps[:-1].ravel(), steps[1:].ravel()
    assert np.corrcoef(a, b)[0, 1] > 0.5, "steps are not smooth"


def test_the_autopilot_walks_the_latent_targets_smoothly_in_range_a_touch_takes_over_and_0_stops_it(live):
    live.send("/ravemap/autopilot/rate", 0.5)
    live.send("/ravemap/autopilot", 1.0)
    times, targets = _watch(live, "targets", 3.0)
    # amount 1 x half of latent.range (3), sinusoids up to 1.5 x the rate
    _check_smooth_walk(times, targets, -3.0, 3.0, speed=2 * np.pi * 1.5 * 0.5 * 3.0)

    touched = time.monotonic()
    live.send("/ravemap/latent", 1.0, -1.0, 0.5, 0.0)  # the performer takes over at once
    assert live.status()["targets"] == [1.0, -1.0, 0.5, 0.0]
    time.sleep(0.1)
    held = live.status()["targets"]
    if time.monotonic() - touched < HOLD_S:  # (a machine this slow is not asked about the hold)
        assert held == [1.0, -1.0, 0.5, 0.0], "the walk waits a second after a touch"
    time.sleep(1.5)
    resumed = np.asarray(live.status()["targets"])
    assert not np.allclose(resumed, [1.0, -1.0, 0.5, 0.0]), "the walk starts again from there"
    assert np.abs(resumed - [1.0, -1.0, 0.5, 0.0]).max() < 3.0

    live.send("/ravemap/autopilot", 0.0)
    stopped = live.status()["targets"]
    time.sleep(0.6)
    assert live.status()["targets"] == stopped, "amount 0 stops the walk where it is"


def test_in_run_mode_the_autopilot_walks_the_inputs_between_the_recorded_examples(live):
    corners = [((0.2, 0.3), (-1.0, 0.0, 1.0, 0.0)), ((0.8, 0.3), (1.0, 0.0, -1.0, 0.0)),
               ((0.5, 0.7), (0.0, 1.0, 0.0, -1.0))]
    for (x, y), targets in corners:
        live.send("/ravemap/xy", x, y)
        live.send("/ravemap/latent", *targets)
        live.send("/ravemap/record/once")
    live.send("/ravemap/train")
    live.wait_for("/ravemap/train/done", timeout=60)
    live.send("/ravemap/run", 1)
    live.send("/ravemap/autopilot/rate", 1.0)
    live.send("/ravemap/autopilot", 1.0)
    time.sleep(1.2)  # the run command took over: the walk starts a second later
    times, inputs = _watch(live, "inputs", 3.0)
    # inside the examples' convex hull (and so inside their bounding box), moving smoothly
    assert inputs[:, 0].min() >= 0.2 - 1e-6 and inputs[:, 0].max() <= 0.8 + 1e-6
    assert inputs[:, 1].min() >= 0.3 - 1e-6 and inputs[:, 1].max() <= 0.7 + 1e-6
    _check_smooth_walk(times, inputs, 0.0, 1.0, speed=20.0)
    offsets = live.status()["offsets"]
    assert offsets != [0.0] * 4, "the mapping plays the walked inputs"

    live.send("/ravemap/xy", 0.25, 0.35)
    assert live.status()["inputs"] == pytest.approx([0.25, 0.35]), "a touch takes over at once"
