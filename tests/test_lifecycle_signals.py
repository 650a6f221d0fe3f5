"""Stopping ravemap, and what the speakers never get.

Ctrl-C (SIGINT) or SIGTERM stops `ravemap serve` within 2 s with exit code 0 and the mapping
saved; a second signal while it is stopping forces the exit at once, and even then the mapping
file is whole. A model that outputs NaN or a million never reaches the output: the safety stage
silences or limits it and the status line counts what it fixed.
"""

from __future__ import annotations

import re
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soundfile

from ravemap.config import validate
from ravemap.mapping.store import Example, Mapping, load_mapping, save_mapping
from ravemap.render import render
from tests.osc_peer import Daemon, OscPeer
from tests.standins import StandInRave, save

# Times how fast signals stop a daemon and counts its underruns: on a machine of its own.
pytestmark = pytest.mark.alone


def start_daemons(specs: list[dict]) -> list[tuple[Daemon, OscPeer]]:
    """Start several daemons side by side (startup is mostly waiting on imports); each spec holds
    Daemon's arguments: tmp, model, loop, and optionally extra and config."""

    def one(spec: dict) -> tuple[Daemon, OscPeer]:
        peer = OscPeer(0)
        daemon = Daemon(spec["tmp"], spec["model"], spec["loop"], peer.port, *spec.get("extra", ()),
                        config=spec.get("config"))
        peer.daemon = ("127.0.0.1", daemon.port)
        return daemon, peer

    with ThreadPoolExecutor(len(specs)) as pool:
        return list(pool.map(one, specs))


def stop_line(daemon: Daemon) -> str:
    lines = [ln for ln in daemon.stderr().splitlines() if "stopped: blocks" in ln]
    assert lines, daemon.stderr()[-2000:]
    return lines[-1]


def counter(line: str, name: str) -> int:
    return int(re.search(rf"{name} (\d+)", line).group(1))


@pytest.fixture(scope="module")
def bad_models(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad-models")
    return {"nan": save(StandInRave(nan_output=True), folder / "nan.ts"),
            "huge": save(StandInRave(output_scale=1e6), folder / "huge.ts")}


STOP_WITH = {"nan": signal.SIGINT, "huge": signal.SIGTERM}
RECORDED = Example((0.25, 0.75), (1.5, -0.5, 0.25, 0.0))


@pytest.fixture(scope="module")
def playing(tmp_path_factory, bad_models, loop_file):
    """Two performances, side by side: one on a model that outputs NaN, one on a model that outputs
    a million. Each has recorded one example that only the stop saves (save_delay_s is 60)."""
    folders = {kind: tmp_path_factory.mktemp(kind) for kind in bad_models}
    started = dict(zip(bad_models, start_daemons(
        [{"tmp": folders[kind], "model": path, "loop": loop_file, "extra": ("--mapping", "set"),
          # No limiter: these daemons check the last resort behind it (silence for NaN, the clip at
          # [-1, 1]), which a limiter at its default ceiling would never let a million reach.
          "config": {"mapping": {"save_delay_s": 60}, "engine": {"limit_db": None}}}
         for kind, path in bad_models.items()]), strict=True))
    try:
        for _, peer in started.values():
            peer.send("/ravemap/latent", *RECORDED.output)
            peer.send("/ravemap/xy", *RECORDED.input)
            peer.send("/ravemap/record/once")
            assert peer.status()["examples"] == 1
        yield started
    finally:
        for daemon, peer in started.values():
            daemon.stop(signal.SIGKILL)
            peer.close()


def test_a_model_that_outputs_nan_or_a_million_is_silenced_or_limited_and_counted(playing):
    time.sleep(0.5)
    nan, huge = playing["nan"][1].status(), playing["huge"][1].status()
    assert nan["underruns"] == huge["underruns"] == 0, "the safety stage costs no underruns"
    assert nan["nonfinite_silenced"] >= 10 * 2048 and nan["clipped"] == 0, nan
    assert huge["clipped"] > 0 and huge["nonfinite_silenced"] == 0, huge


def test_sigint_and_sigterm_stop_within_two_seconds_with_exit_0_and_the_mapping_saved(playing):
    for kind, (daemon, _) in playing.items():
        assert not (daemon.mappings / "set.json").exists(), "nothing saved it before the stop"
        sent = time.monotonic()
        daemon.proc.send_signal(STOP_WITH[kind])
        code = daemon.proc.wait(timeout=10)
        took = time.monotonic() - sent
        log = daemon.stderr()
        assert code == 0, (STOP_WITH[kind].name, log[-2000:])
        assert took < 2.0, f"{STOP_WITH[kind].name}: stopped in {took:.2f} s"
        assert load_mapping(daemon.mappings, "set").examples == [RECORDED], STOP_WITH[kind].name
        assert "mapping saved to" in log and "Traceback" not in log, log[-2000:]
    nan_line, huge_line = stop_line(playing["nan"][0]), stop_line(playing["huge"][0])
    blocks = counter(nan_line, "blocks")
    assert blocks > 10
    assert counter(nan_line, "non-finite samples silenced") >= blocks * 2048, nan_line
    assert counter(nan_line, "clipped") == 0, nan_line
    assert counter(huge_line, "non-finite samples silenced") == 0, huge_line
    assert counter(huge_line, "clipped") > 0, huge_line
    assert counter(nan_line, "block errors") == counter(huge_line, "block errors") == 0


@pytest.mark.parametrize("kind,limit_db", [("nan", None), ("huge", None), ("nan", -1.0), ("huge", -1.0)])
def test_what_the_engine_hands_to_the_output_is_finite_and_within_one(tmp_path, bad_models, loop_file, kind,
                                                                      limit_db):
    """The block path the engine plays, rendered: every sample the device would get, with the limiter
    at its default ceiling and without one (the last resort alone)."""
    config = validate({"engine": {"model": str(bad_models[kind]), "loop": str(loop_file), "limit_db": limit_db}})
    result = render(config, tmp_path / "out.wav", 1.0)
    audio, _ = soundfile.read(str(result.path), dtype="float32")
    assert audio.size and np.all(np.isfinite(audio)) and np.abs(audio).max() <= 1.0
    if kind == "nan":
        assert not audio.any(), "non-finite samples become silence"
    elif limit_db is None:
        assert np.abs(audio).max() == 1.0, "a million is clipped to full scale"
    else:
        ceiling = 10 ** (limit_db / 20)
        assert np.abs(audio).max() <= ceiling * 1.0001, "a million is turned down to the limiter's ceiling"


def test_a_second_signal_while_stopping_forces_the_exit_and_the_mapping_file_stays_whole(tmp_path, tiny_model,
                                                                                         loop_file):
    """A mapping of 100,000 examples takes over a second to save at exit: the performer who presses
    Ctrl-C again does not wait for it, and the file on disk is the old one, whole."""
    n = 100_000
    big = Mapping("big", 2, (0, 1, 2, 3), (-3.0, 3.0),
                  examples=[Example((i / n, 0.5), (0.1, 0.2, 0.3, 0.4)) for i in range(n)])
    save_mapping(tmp_path / "mappings", big)
    before = (tmp_path / "mappings" / "big.json").read_bytes()
    [(daemon, peer)] = start_daemons([{"tmp": tmp_path, "model": tiny_model, "loop": loop_file,
                                       "extra": ("--mapping", "big")}])
    try:
        assert peer.status()["examples"] == n
        peer.send("/ravemap/examples/undo")  # the mapping in memory now differs from the file
        assert peer.status()["examples"] == n - 1
        daemon.proc.send_signal(signal.SIGINT)
        time.sleep(0.3)
        sent = time.monotonic()
        daemon.proc.send_signal(signal.SIGINT)
        code = daemon.proc.wait(timeout=10)
        took = time.monotonic() - sent
    finally:
        daemon.stop(signal.SIGKILL)
        peer.close()
    log = daemon.stderr()
    assert code == 130 and "second signal, exiting now" in log, (code, log[-2000:])
    assert took < 1.0, f"the second signal took {took:.2f} s to end it (saving alone takes over 1.3 s)"
    after = (daemon.mappings / "big.json").read_bytes()
    assert after == before or len(load_mapping(daemon.mappings, "big").examples) == n - 1, \
        "the old file or the new one, never a part of one"
