"""`ravemap serve` as a performer runs it: starts, says where it plays, stops cleanly on a signal."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, ravemap, write_config


def _serve(*args: str, env: dict | None = None, latency: str = "fixed") -> subprocess.Popen:
    """`ravemap serve` on a free control port, with mappings in a temporary folder.

    At the first release's fixed 2048 x 3 unless told (see tests/osc_peer.py: these tests are not about latency)."""
    import tempfile

    from tests.osc_peer import free_udp_port

    scratch = tempfile.mkdtemp(prefix="ravemap-serve-")
    config = write_config(Path(scratch) / "serve.yaml",
                          engine={"latency": latency},
                          osc={"host": "127.0.0.1", "zeroconf": False, "wekinator_input_port": None},
                          midi={"enabled": False}, web={"port": 0})
    args = ("--config", str(config), "--osc-port", str(free_udp_port()), "--feedback-port", str(free_udp_port()),
            "--mappings-dir", scratch, *args)
    return subprocess.Popen(
        [sys.executable, "-m", "ravemap", "serve", *args],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **(env or {})},
    )


def _wait_for_line(proc: subprocess.Popen, needle: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if needle in line:
            return line
        if not line and proc.poll() is not None:
            raise AssertionError(f"serve exited {proc.returncode}: {proc.stderr.read()}")
    raise AssertionError(f"no line with {needle!r} within {timeout} s")


@pytest.mark.alone  # a flood or a stopwatch measured against audio: no other test beside it
def test_serve_on_auto_latency_says_what_it_chose_and_the_latency_it_implies(tiny_model, loop_file):
    proc = _serve("--model", str(tiny_model), "--loop", str(loop_file), "--audio", "none", latency="auto")
    try:
        playing = _wait_for_line(proc, "playing")
        block = int(re.search(r"block (\d+) samples", playing).group(1))
        lead = int(re.search(r"lead (\d+) frames", playing).group(1))
        assert block % 512 == 0, "a multiple of the model's ratio"
        assert lead % 256 == 0, "whole periods of the clock"
        assert "(auto, block time median" in playing
        lookahead = int(re.search(r"limiter look-ahead (\d+) samples", playing).group(1))  # the default -1 dBFS
        implied = float(re.search(r"latency ([\d.]+) ms", playing).group(1))
        assert implied == pytest.approx(1000 * (lead + max(block, 256) + lookahead) / 44100, abs=0.05)
        ready = _wait_for_line(proc, "OSC control on")
        # The lead only grows after start (a period per underrun on a busy machine), never shrinks.
        assert float(re.search(r"latency ([\d.]+) ms", ready).group(1)) >= implied
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert "latency" in proc.stderr.read().split("stopped: blocks", 1)[1], "and the status lines say it too"
    finally:
        proc.kill()


@pytest.mark.alone  # a flood or a stopwatch measured against audio: no other test beside it
def test_serve_headless_plays_and_stops_on_sigterm_within_two_seconds(tiny_model, loop_file):
    proc = _serve("--model", str(tiny_model), "--loop", str(loop_file), "--audio", "none")
    try:
        line = _wait_for_line(proc, "playing")
        assert "no audio device" in line
        _wait_for_line(proc, "OSC control on")
        time.sleep(1.0)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
        assert time.monotonic() - sent < 2.0
        err = proc.stderr.read()
        assert "stopped: blocks" in err and "underruns 0" in err
    finally:
        proc.kill()


def test_serve_on_jack_names_the_device(jack_server, tiny_model, loop_file):
    proc = _serve("--model", str(tiny_model), "--loop", str(loop_file), "--audio", "system")
    try:
        line = _wait_for_line(proc, "playing")
        assert "system (JACK Audio Connection Kit) at 44100 Hz" in line
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=5) == 0
    finally:
        proc.kill()


def test_with_no_audio_device_serve_says_so_and_how_to_choose(tiny_model, loop_file):
    result = ravemap("serve", "--model", str(tiny_model), "--loop", str(loop_file),
                     env={"JACK_DEFAULT_SERVER": "no-such-server"}, timeout=60)
    assert result.returncode == 4
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("ravemap:")]
    assert len(lines) == 1
    assert "no audio output device found" in lines[0] and "ravemap devices" in lines[0] and "--audio none" in lines[0]


def test_an_unknown_device_name_lists_what_there_is(jack_server, tiny_model, loop_file):
    result = ravemap("serve", "--model", str(tiny_model), "--loop", str(loop_file), "--audio", "Fireface", timeout=60)
    assert result.returncode == 4
    assert "no audio output device matches 'Fireface'" in result.stderr and "system" in result.stderr


def test_devices_lists_audio_devices_and_midi_ports(jack_server):
    result = ravemap("devices", timeout=60)
    assert result.returncode == 0
    assert "system [JACK Audio Connection Kit]" in result.stdout
    assert "MIDI input ports" in result.stdout and "jack:" in result.stdout


def test_python_dash_m_server_is_the_same_command():
    result = subprocess.run([sys.executable, "-m", "ravemap", "--help"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0 and "serve" in result.stdout and "render" in result.stdout


def test_zeroconf_advertises_only_addresses_a_controller_can_reach(caplog):
    """A control port bound to 127.0.0.1 is advertised nowhere (it used to be advertised at the LAN
    address, where nothing answers); 0.0.0.0 is advertised at every LAN address, one address alone."""
    import logging

    from ravemap.control.advertise import Advertiser, reachable_addresses

    lan = ["192.168.1.20", "10.0.0.5", "fe80::1"]
    assert reachable_addresses("127.0.0.1", lan) == []
    assert reachable_addresses("::1", lan) == []
    assert reachable_addresses("localhost", lan) == []
    assert reachable_addresses("0.0.0.0", lan) == ["192.168.1.20", "10.0.0.5"]
    assert reachable_addresses("::", lan) == ["fe80::1"]
    assert reachable_addresses("10.0.0.5", lan) == ["10.0.0.5"]
    with caplog.at_level(logging.INFO, logger="ravemap.zeroconf"):
        advertiser = Advertiser("ravemap", 9000, "127.0.0.1")
        advertiser._register()  # what the zeroconf thread runs; with loopback it must stop before any multicast
        advertiser.close()
    assert advertiser._zc is None
    said = [r.getMessage() for r in caplog.records]
    assert any("127.0.0.1 is reachable at no network address; not advertised" in s for s in said), said
