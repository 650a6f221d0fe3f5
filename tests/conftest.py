"""Shared test set-up: RAVE fixtures, a JACK dummy server, loops, configs, and tests that run alone.

Parallel runs: `./run-tests` runs the suite in three pytest-xdist workers (most tests wait on a
daemon, a socket or a child process, not on a core). Tests whose figures depend on having the machine
to themselves (audio through JACK counting xruns, timing blocks to choose a latency, floods measured
against audio) are marked `alone`: such a test waits until no other
test runs and no other test starts until it ends. A readers-writer lock across the workers does it:
two files locked with flock(2) in a folder of this run's own (`gate`, then `room`).
A worker keeps the room across consecutive `alone` tests, so a module of them waits for the others once.

JACK: one dummy-driver server per test session under a unique name, at 44100 Hz like the
RAVE fixtures. `JACK_DEFAULT_SERVER` points this process and its subprocesses at it, and
`JACK_NO_START_SERVER` keeps clients from starting a server of their own.
"""

from __future__ import annotations

import atexit
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from hypothesis import settings

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(os.environ.get("RAVEMAP_FIXTURES", REPO.parent / "shared" / "fixtures" / "rave"))
JACK_RATE = 44100

os.environ["JACK_NO_START_SERVER"] = "1"
os.environ["RAVEMAP_NO_ZEROCONF"] = "1"  # mDNS multicast must not leave the sandbox, whatever a test config says
# A developer's own config (RAVEMAP_CONFIG, ~/.config/ravemap/config.yaml) must not change what the tests
# run: the user folders of this process and the daemons it starts are empty ones of its own.
os.environ.pop("RAVEMAP_CONFIG", None)
_USER_DIRS = Path(tempfile.mkdtemp(prefix="ravemap-test-user-"))
os.environ["XDG_CONFIG_HOME"] = str(_USER_DIRS / "config")
os.environ["XDG_DATA_HOME"] = str(_USER_DIRS / "data")
atexit.register(shutil.rmtree, _USER_DIRS, ignore_errors=True)
# As the daemon does with engine.torch_threads: one intra-op thread. Two on a busy 2-core machine
# spin against each other and make a 0.2 s loop encode take 9 s.
torch.set_num_threads(1)

# Hypothesis profiles. Each property names how many examples it runs when searched thoroughly
# (`@settings(max_examples=examples(2000))`); a profile caps that number. "quick", the default, runs
# at most 100 (hypothesis's own default) per property; "thorough" runs each property's own number:
#   HYPOTHESIS_PROFILE=thorough ./run-tests
settings.register_profile("quick", max_examples=100)
settings.register_profile("thorough", max_examples=10_000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "quick"))


def examples(thorough: int) -> int:
    """A property's `max_examples`: `thorough` under the thorough profile, at most the loaded profile's
    `max_examples` under any other (100 in the quick default)."""
    return min(thorough, settings().max_examples)


_ALONE_LOCKS: dict[str, object] = {}


def _lock_file(name: str):
    """This worker's open file `name` in this run's lock folder (one open file per process: flock(2)
    locks belong to an open file, so two in one process would wait on each other)."""
    if name not in _ALONE_LOCKS:
        folder = Path(tempfile.gettempdir()) / f"ravemap-tests-{os.environ['PYTEST_XDIST_TESTRUNUID']}"
        folder.mkdir(exist_ok=True)
        _ALONE_LOCKS[name] = open(folder / name, "a+")  # noqa: SIM115 - held for the worker's lifetime
    return _ALONE_LOCKS[name]


def _enter(alone: bool) -> None:
    """Take the room shared (any test) or exclusive (an `alone` test). The gate keeps new tests out
    while an `alone` test waits for the room, so it is never starved."""
    gate, room = _lock_file("gate"), _lock_file("room")
    fcntl.flock(gate, fcntl.LOCK_EX)
    try:
        fcntl.flock(room, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
    finally:
        if not alone:
            fcntl.flock(gate, fcntl.LOCK_UN)


def _leave(alone: bool) -> None:
    fcntl.flock(_lock_file("room"), fcntl.LOCK_UN)
    if alone:
        fcntl.flock(_lock_file("gate"), fcntl.LOCK_UN)


def _is_alone(item: pytest.Item) -> bool:
    return item.get_closest_marker("alone") is not None


_holding_alone = False  # this worker keeps the room from one `alone` test to the next one it runs


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    """Set-up, call and tear-down of each test inside its turn (only in an xdist worker). A worker
    whose next test is `alone` too keeps the room: the others wait once for a module of them
    (tests of a module run in one worker), not once per test."""
    global _holding_alone
    if "PYTEST_XDIST_TESTRUNUID" not in os.environ:
        yield
        return
    alone = _is_alone(item)
    if not (alone and _holding_alone):
        _enter(alone)
    try:
        yield
    finally:
        _holding_alone = alone and nextitem is not None and _is_alone(nextitem)
        if not _holding_alone:
            _leave(alone)


def fixture_model(name: str) -> Path:
    path = FIXTURES / name
    if not path.is_file():
        pytest.fail(f"RAVE fixture {path} is missing: set RAVEMAP_FIXTURES to the folder holding {name}")
    return path


@pytest.fixture(scope="session")
def tiny_model() -> Path:
    return fixture_model("rave_v2_tiny.ts")


@pytest.fixture(scope="session")
def streaming_model() -> Path:
    return fixture_model("rave_v2_tiny_streaming.ts")


@pytest.fixture(scope="session")
def full_model() -> Path:
    return fixture_model("rave_v2_full.ts")


def write_loop(path: Path, seconds: float = 2.3, sr: int = 48000, channels: int = 2, seed: int = 1) -> Path:
    """A loop with pitch, rhythm and a little noise; noise makes every position unique."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    pitch = 220 * 2 ** (np.floor(t * 4) % 5 / 12)
    tone = 0.3 * np.sin(2 * np.pi * np.cumsum(pitch) / sr) * (0.5 + 0.5 * np.cos(2 * np.pi * 4 * t))
    audio = tone[:, None] + 0.02 * rng.standard_normal((t.size, channels))
    soundfile.write(str(path), audio.astype(np.float32), sr, subtype="FLOAT")
    return path


@pytest.fixture(scope="session")
def loop_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_loop(tmp_path_factory.mktemp("loops") / "phrase.wav")


def write_config(path: Path, **sections: dict) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(sections), encoding="utf-8")
    return path


def jack_midi_output(name: str):
    """A fixture's body: a virtual MIDI output named `name` through rtmidi's JACK API (the dummy JACK
    server must run), what a controller or a drum machine plugged in would be; closed at the end."""
    import mido

    port = mido.Backend("mido.backends.rtmidi/UNIX_JACK").open_output(name, virtual=True)
    yield port
    port.close()


@pytest.fixture(scope="session")
def jack_server(tmp_path_factory: pytest.TempPathFactory):
    """A JACK server with the dummy driver for this session; yields its name."""
    jackd = shutil.which("jackd")
    if jackd is None:
        pytest.fail("jackd is not installed: apt-get install jackd2 (the test command does this)")
    name = f"ravemap-test-{os.getpid()}"
    log = tmp_path_factory.mktemp("jack") / "jackd.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [jackd, "-n", name, "--no-realtime", "-d", "dummy", "-r", str(JACK_RATE), "-p", "512"],
            stdout=out, stderr=subprocess.STDOUT,
        )
    os.environ["JACK_DEFAULT_SERVER"] = name
    deadline = time.monotonic() + 10
    import sounddevice

    while True:
        sounddevice._terminate()
        sounddevice._initialize()
        names = [api["name"] for api in sounddevice.query_hostapis()]
        if any("JACK" in n and sounddevice.query_hostapis(i)["devices"] for i, n in enumerate(names)):
            break
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"jackd did not start: {log.read_text()[-2000:]}")
        time.sleep(0.2)
    yield name
    sounddevice._terminate()  # PortAudio must let go of JACK before the server goes away
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def peer():
    """A controller on loopback (tests/osc_peer.py) shared by a module's tests, beside a module's daemon.

    Modules whose tests each want a fresh one define their own `peer`."""
    from tests.osc_peer import OscPeer  # osc_peer imports this module

    p = OscPeer(0)
    yield p
    p.close()


def ravemap(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the real command line in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "ravemap", *args],
        cwd=REPO, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})},
    )
