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
