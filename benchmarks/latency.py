"""Latency measured from outside, at ravemap's own JACK ports, in frames.

    .venv/bin/python benchmarks/latency.py [--trials 30] [--wet-seconds 60] [--quick]

Not a test and not run in CI. It starts a JACK server with the dummy driver (44.1 kHz,
256-frame periods) under a name of its own, two JACK clients of its own (the JACK-Client
package): "feed", whose output port drives ravemap's input port, and "capture", whose input
port reads ravemap's output port (two clients, so the graph has no loop and runs in one
cycle), and `ravemap serve` on the shipped config.yaml, changed only where a row says so.

- control to sound: `/ravemap/engine 0`, wait until the output is silent, then
  `/ravemap/engine 1` at a random phase of the JACK cycle; the latency is the JACK frame of
  the first non-zero sample at ravemap's output port minus `frame_time` read right after
  `sendto()`.
- live input to output: `engine.source: input`, transfer off; a one-sample click into
  ravemap's input port at a known frame; the latency is the frame where it comes out minus
  that frame. Measured dry, then again after `--wet-seconds` of transfer on (noise fed in).

Each row: median, p90 and max in ms over the trials, ravemap's own underrun count and the
latency it reports (`latency_ms` in `/ravemap/status`, the worst its settings imply). Rows run
one after another in the same run, so the shipped settings and the first release's (2048 x 3)
are measured side by side, for the embedded default and for `rave_v2_full.ts`.
Only 127.0.0.1 is used. Exit code 0 when every row ran, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml
from jackbench import free_udp_port, osc, start_jack
from pythonosc.osc_packet import OscPacket

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(os.environ.get("RAVEMAP_FIXTURES", ROOT.parent / "shared" / "fixtures" / "rave"))
RATE = 44100
PERIOD = 256
FIRST_RELEASE = {"latency": "fixed", "block_size": 2048, "ahead_blocks": 3}


def ms(frames: float) -> float:
    return 1000.0 * frames / RATE


@dataclass
class Row:
    name: str
    latencies: list[int] = field(default_factory=list)  # frames
    underruns: int | None = None
    reported_ms: float | None = None
    choice: str = ""
    failed: str = ""

    def line(self) -> str:
        if self.failed:
            return f"{self.name:<44} FAILED: {self.failed}"
        lat = np.array(self.latencies, dtype=float)
        if lat.size == 0:
            return f"{self.name:<44} no trials"
        return (f"{self.name:<44} median {ms(np.median(lat)):6.1f}  p90 {ms(np.percentile(lat, 90)):6.1f}  "
                f"max {ms(lat.max()):6.1f} ms  n={lat.size:<3} underruns {self.underruns}  "
                f"reports {self.reported_ms} ms  [{self.choice}]")


class Jack:
    """A private dummy JACK server with the feed and capture clients."""

    def __init__(self, name: str, log: Path):
        os.environ["JACK_DEFAULT_SERVER"] = name
        os.environ["JACK_NO_START_SERVER"] = "1"
        self.proc = start_jack(name, log, RATE, PERIOD, "latency")
        import jack  # the JACK-Client package

        deadline = time.monotonic() + 10
        while True:
            try:
                self.capture = jack.Client("capture", no_start_server=True)
                self.feed = jack.Client("feed", no_start_server=True)
                break
            except jack.JackError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise SystemExit(f"latency: jackd did not start: {log.read_text()[-2000:]}") from None
                time.sleep(0.2)
        self.inport = self.capture.inports.register("in")
        self.outport = self.feed.outports.register("out")
        self.lock = threading.Lock()
        self.armed_at: int | None = None  # look for the first sample after this frame
        self.threshold = 0.0
        self.found: int | None = None
        self.silent_since: int | None = None  # frame since which the output has been all zeros
        self.click_at: int | None = None
        self.noise = 0.0
        self._rng = np.random.default_rng(3)
        self.capture.set_process_callback(self._on_capture)
        self.feed.set_process_callback(self._on_feed)
        self.capture.activate()
        self.feed.activate()

    def _on_capture(self, frames: int) -> None:
        buf = self.inport.get_array()
        start = self.capture.last_frame_time
        loud = np.flatnonzero(np.abs(buf) > self.threshold)
        if loud.size:
            self.silent_since = None
        elif self.silent_since is None:
            self.silent_since = start
        armed = self.armed_at
        if armed is not None and self.found is None and loud.size:
            hits = loud[start + loud >= armed]
            if hits.size:
                self.found = start + int(hits[0])

    def _on_feed(self, frames: int) -> None:
        buf = self.outport.get_array()
        if self.noise > 0:
            buf[:] = self.noise * self._rng.standard_normal(frames).astype(np.float32)
        else:
            buf.fill(0.0)
        click = self.click_at
        start = self.feed.last_frame_time
        if click is not None and start <= click < start + frames:
            buf[click - start] = 1.0

    def connect(self, playback_port: str, capture_port: str | None) -> None:
        self.capture.connect(playback_port, self.inport)
        if capture_port is not None:
            self.feed.connect(self.outport, capture_port)

    def close(self) -> None:
        for client in (self.feed, self.capture):
            try:
                client.deactivate()
                client.close()
            except Exception:
                pass
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Daemon:
    """`ravemap serve` on the shipped config, with the given changes, playing into JACK."""

    def __init__(self, tmp: Path, engine: dict, model: Path | None, live: bool):
        config = yaml.safe_load((ROOT / "config.yaml").read_text())
        for key in ("model", "loop"):
            config["engine"][key] = str((ROOT / config["engine"][key]).resolve())
        if model is not None:
            config["engine"]["model"] = str(model)
        config["engine"].update(engine)
        if live:
            config["engine"]["source"] = "input"
            config["engine"]["transfer"] = False
        config["audio"].update({"device": "system", "input_device": "system"})
        config["osc"].update({"host": "127.0.0.1", "zeroconf": False})
        config["midi"]["enabled"] = False
        config["log"]["stats_interval_s"] = 0
        config["paths"]["mappings_dir"] = str(tmp / "mappings")
        path = tmp / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        self.port = free_udp_port()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(5.0)
        command = [sys.executable, "-m", "ravemap", "serve", "--config", str(path), "--osc-port", str(self.port),
                   "--feedback-port", str(self.sock.getsockname()[1])]
        self.log = open(tmp / "daemon.log", "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=self.log, text=True)
        deadline = time.monotonic() + 120
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if "ready" in line:
                break
            if time.monotonic() > deadline:
                break
        if self.proc.poll() is not None:
            raise RuntimeError(f"ravemap serve exited: {(tmp / 'daemon.log').read_text()[-1500:]}")
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()

    def send(self, address: str, *args: float | int | str) -> None:
        self.sock.sendto(osc(address, *args), ("127.0.0.1", self.port))

    def status(self) -> dict:
        self.send("/ravemap/status", self.sock.getsockname()[1])
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            data, _ = self.sock.recvfrom(65536)
            message = OscPacket(data).messages[0].message
            if message.address == "/ravemap/status":
                return json.loads(message.params[0])
        raise RuntimeError("no status reply")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        self.sock.close()


def wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


def control_to_sound(jack: Jack, daemon: Daemon, row: Row, trials: int) -> None:
    rng = random.Random(11)
    quiet_frames = int(0.15 * RATE)
    for _ in range(trials):
        daemon.send("/ravemap/engine", 0)
        jack.armed_at = None
        time.sleep(0.05)
        if not wait_for(lambda: jack.silent_since is not None
                        and jack.capture.frame_time - jack.silent_since > quiet_frames, 5.0):
            raise RuntimeError("the output did not go silent after /ravemap/engine 0")
        time.sleep(rng.uniform(0.0, 0.05))  # a random phase of the JACK cycle
        jack.found = None
        daemon.send("/ravemap/engine", 1)
        jack.armed_at = jack.capture.frame_time
        if not wait_for(lambda: jack.found is not None, 3.0):
            raise RuntimeError("no sound after /ravemap/engine 1")
        assert jack.found is not None and jack.armed_at is not None
        row.latencies.append(jack.found - jack.armed_at)


def click_to_sound(jack: Jack, row: Row, trials: int) -> None:
    jack.threshold = 0.5
    for _ in range(trials):
        jack.found = None
        at = jack.feed.frame_time + int(RATE * random.uniform(0.02, 0.05))
        jack.armed_at = at
        jack.click_at = at
        if not wait_for(lambda: jack.found is not None, 3.0):
            raise RuntimeError("the click never came out")
        assert jack.found is not None
        row.latencies.append(jack.found - at)
        time.sleep(0.15)
    jack.click_at = None
    jack.threshold = 0.0


def finish(row: Row, daemon: Daemon) -> None:
    status = daemon.status()
    row.underruns = status.get("underruns")
    row.reported_ms = status.get("latency_ms")
    row.choice = (f"block {status.get('block_size')}, lead {status.get('lead_frames')}, "
                  f"{status.get('latency_choice')}")


def run_row(jack: Jack, tmp: Path, name: str, engine: dict, model: Path | None, trials: int,
            live: bool = False, wet_seconds: float = 0.0) -> list[Row]:
    rows = [Row(name)]
    folder = Path(tempfile.mkdtemp(dir=tmp))
    daemon = None
    try:
        daemon = Daemon(folder, engine, model, live)
        jack.connect("PortAudio:out_0", "PortAudio:in_0" if live else None)
        time.sleep(1.0)
        if live:
            click_to_sound(jack, rows[0], trials)
            finish(rows[0], daemon)
            if wet_seconds > 0:
                after = Row(f"{name}, after {wet_seconds:g} s wet")
                rows.append(after)
                daemon.send("/ravemap/transfer", 1)
                jack.noise = 0.05
                time.sleep(wet_seconds)
                jack.noise = 0.0
                daemon.send("/ravemap/transfer", 0)
                time.sleep(1.0)
                click_to_sound(jack, after, trials)
                finish(after, daemon)
        else:
            control_to_sound(jack, daemon, rows[0], trials)
            finish(rows[0], daemon)
    except Exception as err:  # one row failing must not hide the others
        rows[-1].failed = str(err)[:300]
    finally:
        jack.armed_at = None
        if daemon is not None:
            daemon.stop()
    for row in rows:
        print(row.line(), flush=True)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--wet-seconds", type=float, default=60.0)
    ap.add_argument("--quick", action="store_true", help="the shipped settings on the default model only")
    args = ap.parse_args()
    full = FIXTURES / "rave_v2_full.ts"
    tmp = Path(tempfile.mkdtemp(prefix="ravemap-latency-"))
    jack = Jack(f"ravemap-latency-{os.getpid()}", tmp / "jackd.log")
    print(f"latency: JACK dummy at {RATE} Hz, {PERIOD}-frame periods; {args.trials} trials per row; "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)
    rows: list[Row] = []
    try:
        rows += run_row(jack, tmp, "control, default model, shipped (auto)", {}, None, args.trials)
        if not args.quick:
            rows += run_row(jack, tmp, "control, default model, 2048 x 3", FIRST_RELEASE, None, args.trials)
            if full.is_file():
                rows += run_row(jack, tmp, "control, rave_v2_full, shipped (auto)", {}, full, args.trials)
                rows += run_row(jack, tmp, "control, rave_v2_full, 2048 x 3", FIRST_RELEASE, full, args.trials)
            rows += run_row(jack, tmp, "live click, default model, 2048 x 3", FIRST_RELEASE, None, args.trials,
                            live=True)
        rows += run_row(jack, tmp, "live click, default model, shipped (auto)", {}, None, args.trials, live=True,
                        wet_seconds=0 if args.quick else args.wet_seconds)
    finally:
        jack.close()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nsummary (load average {os.getloadavg()[0]:.2f}):")
    for row in rows:
        print(row.line())
    return 1 if any(row.failed for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
