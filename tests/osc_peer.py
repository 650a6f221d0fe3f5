"""A controller on loopback for end-to-end tests: sends OSC to a running `ravemap serve` and
reads its replies on a feedback port of its own. Also starts and stops that daemon."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_packet import OscPacket

from tests.conftest import REPO, write_config


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build(address: str, *args: object) -> bytes:
    builder = OscMessageBuilder(address=address)
    for arg in args:
        builder.add_arg(arg)
    return builder.build().dgram


def first_message(sock: socket.socket, address: str, timeout: float, others: list | None = None) -> list:
    """The arguments of the first message at `address` that `sock` receives within `timeout` seconds
    (AssertionError after that); the others are appended to `others`, when given."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data, _ = sock.recvfrom(65536)
        except TimeoutError:
            continue
        for timed in OscPacket(data).messages:
            if timed.message.address == address:
                return list(timed.message.params)
            if others is not None:
                others.append((timed.message.address, list(timed.message.params)))
    raise AssertionError(f"no {address} within {timeout} s")


class OscPeer:
    """Sends from `source` (127.0.0.1 unless told) and listens for feedback on its own port."""

    def __init__(self, daemon_port: int, source: str = "127.0.0.1"):
        self.daemon = ("127.0.0.1", daemon_port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((source, 0))
        self.port = self.sock.getsockname()[1]
        self.sock.settimeout(0.2)
        self.seen: list[tuple[str, list]] = []

    def send(self, address: str, *args: object) -> None:
        self.sock.sendto(build(address, *args), self.daemon)

    def send_raw(self, data: bytes) -> None:
        self.sock.sendto(data, self.daemon)

    def receive(self, timeout: float = 0.2) -> list[tuple[str, list]]:
        got = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data, _ = self.sock.recvfrom(65536)
            except TimeoutError:
                continue
            for timed in OscPacket(data).messages:
                got.append((timed.message.address, list(timed.message.params)))
        self.seen.extend(got)
        return got

    def wait_for(self, address: str, timeout: float = 10.0) -> list:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for addr, args in self.receive(0.1):
                if addr == address:
                    return args
        raise AssertionError(f"no {address} within {timeout} s (saw {[a for a, _ in self.seen[-20:]]})")

    def last(self, address: str) -> list | None:
        """The arguments of the newest message seen at `address`, whoever consumed it."""
        for addr, args in reversed(self.seen):
            if addr == address:
                return args
        return None

    def drain(self) -> None:
        self.receive(0.2)

    def status(self) -> dict:
        """Ask for the state, with replies to this peer's own port."""
        self.drain()
        self.send("/ravemap/status", self.port)
        return json.loads(self.wait_for("/ravemap/status")[0])

    def status_now(self, timeout: float = 2.0) -> dict:
        """One `/ravemap/status`, read as soon as it comes (no settling wait first, unlike `status`): for
        polling the state every few milliseconds. Other messages that come meanwhile go to `seen`."""
        self.send("/ravemap/status", self.port)
        return json.loads(first_message(self.sock, "/ravemap/status", timeout, self.seen)[0])

    def close(self) -> None:
        self.sock.close()


class Daemon:
    """`ravemap serve --audio none` (unless told otherwise) on free ports, in a subprocess."""

    def __init__(self, tmp: Path, model: Path, loop: Path, feedback_port: int, *extra: str,
                 config: dict | None = None, env: dict | None = None):
        self.port = free_udp_port()
        # Wekinator's fixed ports (6448 in, 12000 out) are off unless a test gives free ones; the page on any free port.
        # These daemons are about control, not latency: they play with the first release's 2048 x 3 lead (139 ms),
        # which several daemons, trainers and a JACK server on a shared 2-core machine cannot starve. The choice
        # `engine.latency: auto` makes is tested in test_choosing_latency.py and measured by benchmarks/latency.py.
        sections = {"engine": {"latency": "fixed"},
                    "osc": {"host": "127.0.0.1", "zeroconf": False, "wekinator_input_port": None,
                            "wekinator_outputs": False}, "midi": {"enabled": False},
                    "log": {"stats_interval_s": 0}, "web": {"port": 0}}
        for key, value in (config or {}).items():
            sections[key] = {**sections.get(key, {}), **value}
        self.config_path = write_config(tmp / f"serve-{self.port}.yaml", **sections)
        self.mappings = tmp / "mappings"
        args = ["--config", str(self.config_path), "--model", str(model), "--loop", str(loop),
                "--osc-port", str(self.port), "--feedback-port", str(feedback_port),
                "--mappings-dir", str(self.mappings), *extra]
        if "--audio" not in extra:
            args += ["--audio", "none"]
        self.log = tmp / f"serve-{self.port}.log"
        self._log_file = open(self.log, "w")  # noqa: SIM115 - held open for the subprocess's lifetime
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ravemap", "serve", *args], cwd=REPO,
            stdout=subprocess.PIPE, stderr=self._log_file, text=True, env={**os.environ, **(env or {})},
        )
        self.ready_line = self._wait_ready()

    def _wait_ready(self, timeout: float = 90) -> str:
        deadline = time.monotonic() + timeout
        self.web_url: str | None = None
        self.startup_lines: list[str] = []
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            self.startup_lines.append(line)
            if "control page on " in line:
                self.web_url = line.split("control page on ", 1)[1].split()[0]
            if "OSC control on" in line:
                return line
            if not line and self.proc.poll() is not None:
                raise AssertionError(f"serve exited {self.proc.returncode}: {self.log.read_text()[-3000:]}")
        raise AssertionError("serve never said it was ready")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log_file.close()
        return self.proc.returncode

    def stderr(self) -> str:
        return self.log.read_text()


# Status fields that count what happened (and the last error's text) rather than say what the daemon is
# set to: a reset leaves them as they are.
COUNTERS = ("events_dropped", "last_error", "nonfinite_silenced", "clipped", "underruns", "lead_raises",
            "lead_lowerings", "live_realignments", "gain_reduction_db", "limiter_clamped",
            "tempo", "scene")  # the beat grid moves with the clock; `scene` is the last one recalled


def settings_of(state: dict) -> dict:
    """A `/ravemap/status` without its counters: what the daemon is set to."""
    return {k: v for k, v in state.items() if k not in COUNTERS}


class SharedDaemon:
    """One `Daemon` for the tests of a module that each want a daemon as it starts, and its own peer.

    Between tests `reset` puts it back through its OSC surface, as a performer's controller could:
    training cancelled, run and record off, a new empty mapping under the name it started with (the
    one before is saved, and every output records and runs again), inputs, sliders, transfer, engine
    and gain as at start. It then checks that `/ravemap/status` says everything but the counters is
    what it said at start (the performer's chain and the autopilot too), and forgets the replies of the
    test before. Tests that need their own
    config, a restart, a signal or a crash start a `Daemon` of their own."""

    def __init__(self, tmp: Path, model: Path, loop: Path, *extra: str, config: dict | None = None):
        self.peer = OscPeer(0)
        self.daemon = Daemon(tmp, model, loop, self.peer.port, *extra, config=config)
        self.peer.daemon = ("127.0.0.1", self.daemon.port)
        self.at_start = settings_of(self.peer.status())
        self.peer.seen.clear()

    def reset(self) -> OscPeer:
        peer, start = self.peer, self.at_start
        peer.daemon = ("127.0.0.1", self.daemon.port)
        # In order on one socket, applied in order by the session: all sent at once, then one status.
        peer.send("/ravemap/autopilot", float(start["autopilot"]))
        peer.send("/ravemap/autopilot/rate", float(start["autopilot_rate"]))
        peer.send("/ravemap/autopilot/prior", int(start["autopilot_prior"]))
        peer.send("/ravemap/train/cancel")
        peer.send("/ravemap/run", 0)
        peer.send("/ravemap/record", 0)
        peer.send("/ravemap/mapping/new", start["mapping"])
        peer.send("/ravemap/xy", *start["inputs"])
        peer.send("/ravemap/latent", *start["offsets"])
        peer.send("/ravemap/transfer", int(start["transfer"]))
        peer.send("/ravemap/engine", int(start["engine"]))
        peer.send("/ravemap/gain", float(start["gain_db"]))
        peer.send("/ravemap/scale", *[float(v) for v in start["scale"]])
        for name, key in (("jitter", "jitter"), ("mix", "mix"), ("input/gain", "input_gain_db")):
            peer.send(f"/ravemap/{name}", float(start[key]))
        peer.send("/ravemap/tempo", float(start["bpm"]))  # refused (and answered) while MIDI clock sets it
        peer.send("/ravemap/quantize", start["quantize"])
        if start["limit_db"] is None:
            peer.send("/ravemap/limit/off")
        else:
            peer.send("/ravemap/limit", float(start["limit_db"]))
        deadline = time.monotonic() + 30
        while (now := settings_of(peer.status()))["training"]:  # a cancelled training reports within ~2 s
            assert time.monotonic() < deadline, "the shared daemon's training did not stop within 30 s"
        assert now == start, f"the shared daemon is not back as it started: {now} != {start}"
        peer.drain()  # the rate-limited feeds of the reset itself
        peer.seen.clear()
        return peer

    def close(self) -> int:
        code = self.daemon.stop()
        self.peer.close()
        return code


def serve_for(peer: OscPeer, tmp: Path, model: Path, loop: Path, *extra: str,
              config: dict | None = None) -> Iterator[Daemon]:
    """A module fixture's body: a `Daemon` that `peer` talks to, stopped at the end (exit 0 asserted).
    Use as `yield from serve_for(peer, tmp_path_factory.mktemp("name"), tiny_model, loop_file)`."""
    daemon = Daemon(tmp, model, loop, peer.port, *extra, config=config)
    peer.daemon = ("127.0.0.1", daemon.port)
    yield daemon
    assert daemon.stop() == 0, daemon.stderr()[-3000:]
