"""The sound server goes away mid-performance: ravemap says so once, keeps answering, keeps the
mapping, and retries the device.

With PortAudio's JACK API a stream whose server died cannot be stopped, closed, or released by
re-initialising PortAudio: each call blocks for good. ravemap therefore retries in a thread of its
own; when the retry is stuck there it says that a restart is needed to get sound back, and it
still stops cleanly. Where a backend lets go (a new stream opens), playing resumes by itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

from tests.conftest import JACK_RATE
from tests.osc_peer import Daemon, OscPeer

# Its own JACK server, taken away and brought back: it times nothing, so it runs beside other tests.
pytestmark = pytest.mark.jack


def _jackd(name: str) -> subprocess.Popen:
    proc = subprocess.Popen([shutil.which("jackd"), "-n", name, "--no-realtime", "-d", "dummy",
                             "-r", str(JACK_RATE), "-p", "512"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.5)
    return proc


def _wait_in_log(daemon: Daemon, *texts: str, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = daemon.stderr()
        for text in texts:
            if text in log:
                return text
        time.sleep(0.2)
    raise AssertionError(f"none of {texts} in the log: {daemon.stderr()[-1500:]}")


def test_a_vanished_jack_server_is_reported_and_retried_while_control_keeps_working(tmp_path, tiny_model, loop_file):
    name = f"ravemap-fault-{os.getpid()}"
    server = _jackd(name)
    peer = OscPeer(0)
    daemon = Daemon(tmp_path, tiny_model, loop_file, peer.port, "--audio", "system",
                    env={"JACK_DEFAULT_SERVER": name})
    peer.daemon = ("127.0.0.1", daemon.port)
    try:
        assert peer.status()["model"] == tiny_model.name, "playing through its JACK server"
        server.terminate()
        server.wait(5)
        _wait_in_log(daemon, "the audio device stopped")
        assert "the audio device stopped; retrying" in peer.wait_for("/ravemap/error")[0]
        peer.send("/ravemap/ping")
        peer.wait_for("/ravemap/pong", timeout=2)
        peer.send("/ravemap/latent", 1.0, 0.0, 0.0, 0.0)
        assert peer.status()["offsets"][0] == 1.0, "the control plane keeps working without a device"
        server = _jackd(name)
        _wait_in_log(daemon, "audio device back", "restart ravemap to get sound back")
        peer.send("/ravemap/ping")
        peer.wait_for("/ravemap/pong", timeout=2)
        asked = time.monotonic()
        assert daemon.stop() == 0
        assert time.monotonic() - asked < 3.0, "stops promptly even with a stuck device"
    finally:
        daemon.stop()
        server.terminate()
        server.wait(5)
        peer.close()
    assert (daemon.mappings / "default.json").is_file(), "the mapping is saved at exit"
    assert daemon.stderr().count("the audio device stopped") == 1, "reported once, not once per retry"
