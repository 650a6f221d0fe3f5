"""Soak: a long performance on the full-size model through a real (dummy) sound card.

    .venv/bin/python benchmarks/soak.py [--minutes 10]

Not a test and not run in CI: it takes as long as it is told to. It starts a JACK server with
the dummy driver under a name of its own (real-time paced callbacks, no sound card needed),
runs `ravemap serve` through it on `rave_v2_full.ts` with 2048-sample blocks, and plays the
performer from 127.0.0.1: 200 control messages a second (XY moves, slider moves and a recorded
example now and then; `--rate` changes it), a retrain every 30 s, run mode once a mapping is trained. Every 30 s it
prints a line; at the end it stops the daemon with SIGTERM and prints underruns, xruns, dropped
messages (in the kernel and in ravemap's inbox), trainings, and the daemon's resident memory
(VmRSS) at start, at its peak and at the end, plus the trainer process's.

`--shipped` plays what a fresh checkout plays instead: config.yaml's engine settings
(`engine.latency: auto`), the embedded model and loop, JACK at 256-frame periods.

`--probe` runs `machine_probe.py` beside the daemon for the same minutes: a lone process doing
the engine's work (same model, block and lead, no GIL to share) that counts the blocks this
machine would have made late anyway, so ravemap's underruns can be read against the machine's.

`--phase big-mapping` plays a performer recording all the time into a big mapping instead: the
daemon starts on a mapping of `--examples` (100k) examples, record mode is on, and the same 200
messages a second each add an example (no training). A ping every 100 ms on a socket of its own
measures how long control takes to answer while the mapping grows and is saved again and again;
the report adds ping p50 / p99 / worst and how many times the file was written (targets: 0
underruns, ping p99 under 50 ms).

Only loopback addresses are used. Exit code 0 when the run went through (the figures are for a
person to judge), 1 when the daemon or the JACK server did not start or died on the way.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import soundfile
import yaml
from jackbench import free_udp_port, osc, start_jack
from pythonosc.osc_packet import OscPacket

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(os.environ.get("RAVEMAP_FIXTURES", ROOT.parent / "shared" / "fixtures" / "rave"))
RATE = 44100  # the RAVE fixtures' rate: no resampling to the device
MESSAGES_PER_SECOND = 200
RETRAIN_S = 30.0
REPORT_S = 30.0


def rss_kib(pid: int | None) -> int | None:
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/status") as f:
            match = re.search(r"VmRSS:\s+(\d+) kB", f.read())
    except OSError:
        return None
    return int(match.group(1)) if match else None


def trainer_pid(pid: int) -> int | None:
    """The daemon's trainer process (its child running `python -m ravemap.mapping.trainer_worker`)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return None
    for child in children:
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"ravemap.mapping.trainer_worker" in cmdline:
            return int(child)
    return None


def mib(kib: int | None) -> str:
    return "-" if kib is None else f"{kib / 1024:.0f} MiB"


def write_loop(path: Path, seconds: float = 4.0) -> Path:
    """A phrase with pitch, rhythm and a little noise, at the model's rate."""
    rng = np.random.default_rng(7)
    t = np.arange(int(seconds * RATE)) / RATE
    pitch = 220 * 2 ** (np.floor(t * 4) % 5 / 12)
    tone = 0.3 * np.sin(2 * np.pi * np.cumsum(pitch) / RATE) * (0.5 + 0.5 * np.cos(2 * np.pi * 4 * t))
    audio = tone + 0.02 * rng.standard_normal(t.size)
    soundfile.write(str(path), audio.astype(np.float32), RATE, subtype="FLOAT")
    return path


class Listener:
    """Reads the daemon's replies and feedback on the controller's port, in a thread."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.counts: dict[str, int] = {}
        self.errors: list[str] = []
        self.trained: list[tuple[float, int, float]] = []
        self.status: dict | None = None
        self.status_seen = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-listener", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, _ = self.sock.recvfrom(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                messages = [(t.message.address, list(t.message.params)) for t in OscPacket(data).messages]
            except Exception:
                continue
            for address, args in messages:
                self.counts[address] = self.counts.get(address, 0) + 1
                if address == "/ravemap/error" and args:
                    self.errors.append(str(args[0]))
                elif address == "/ravemap/train/done" and len(args) == 3:
                    self.trained.append((float(args[0]), int(args[1]), float(args[2])))
                elif address == "/ravemap/status" and args:
                    self.status = json.loads(args[0])
                    self.status_seen.set()

    def ask_status(self, send, timeout: float = 5.0) -> dict | None:
        self.status_seen.clear()
        send(osc("/ravemap/status", self.port))
        return self.status if self.status_seen.wait(timeout) else None

    def close(self) -> None:
        self._stop.set()
        self._thread.join(1.0)
        self.sock.close()


class Pinger:
    """`/ravemap/ping` every `period` seconds from a socket of its own; keeps every round trip."""

    def __init__(self, target: tuple[str, int], period: float = 0.1) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(2.0)
        self.target, self.period = target, period
        self.rtt_ms: list[float] = []
        self.lost = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-pinger", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        port = self.sock.getsockname()[1]
        while not self._stop.wait(self.period):
            sent = time.perf_counter()
            self.sock.sendto(osc("/ravemap/ping", port), self.target)
            try:
                while not self.sock.recv(2048).startswith(b"/ravemap/pong\x00"):
                    pass
            except OSError:
                self.lost += 1
                continue
            self.rtt_ms.append(1000 * (time.perf_counter() - sent))

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.rtt_ms, q)) if self.rtt_ms else math.nan

    def close(self) -> None:
        self._stop.set()
        self._thread.join(3.0)
        self.sock.close()


def write_big_mapping(folder: Path, name: str, n: int) -> Path:
    """A mapping of `n` examples spread over the XY pad, written as ravemap writes it."""
    sys.path.insert(0, str(ROOT / "server"))
    from ravemap.mapping.store import Example, Mapping, save_mapping

    rng = np.random.default_rng(3)
    xy = rng.random((n, 2))
    z = rng.uniform(-2.5, 2.5, (n, 4))
    examples = [Example(tuple(map(float, a)), tuple(map(float, b))) for a, b in zip(xy, z, strict=True)]
    return save_mapping(folder, Mapping(name, 2, (0, 1, 2, 3), (-3.0, 3.0), examples=examples))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to play (default 10)")
    parser.add_argument("--model", type=Path, default=FIXTURES / "rave_v2_full.ts", help="model to play")
    parser.add_argument("--phase", choices=("perform", "big-mapping"), default="perform",
                        help="perform: moves, records and retrains; big-mapping: records all the time into a "
                             "mapping that starts with --examples examples")
    parser.add_argument("--examples", type=int, default=100_000, help="examples the big mapping starts with")
    parser.add_argument("--shipped", action="store_true",
                        help="play what a fresh checkout plays: config.yaml's engine settings (engine.latency: auto), "
                             "the embedded model and loop, JACK at 256-frame periods")
    parser.add_argument("--jack-realtime", action="store_true",
                        help="run the JACK server realtime (SCHED_FIFO), as on a musician's machine; needs the "
                             "right to (root or rtprio); default --no-realtime")
    parser.add_argument("--rate", type=float, default=MESSAGES_PER_SECOND,
                        help=f"control messages a second (default {MESSAGES_PER_SECOND}; "
                             "a finger on a phone's XY pad sends about 60)")
    parser.add_argument("--probe", action="store_true",
                        help="run benchmarks/machine_probe.py beside the daemon: how many blocks a lone process "
                             "doing the engine's work finishes later than the lead on this machine meanwhile")
    args = parser.parse_args()
    if args.rate <= 0:
        parser.error("--rate must be above 0")
    big = args.phase == "big-mapping"
    if args.shipped:
        args.model = ROOT / "models" / "default.ts"
    if not args.model.is_file():
        print(f"soak: no model at {args.model} (set RAVEMAP_FIXTURES or --model)", file=sys.stderr)
        return 1
    seconds = args.minutes * 60.0

    tmp = Path(tempfile.mkdtemp(prefix="ravemap-soak-"))
    jack_name = f"ravemap-soak-{os.getpid()}"
    env = {**os.environ, "JACK_DEFAULT_SERVER": jack_name, "JACK_NO_START_SERVER": "1", "RAVEMAP_NO_ZEROCONF": "1"}
    os.environ.update({"JACK_DEFAULT_SERVER": jack_name, "JACK_NO_START_SERVER": "1"})
    jack = start_jack(jack_name, tmp / "jackd.log", RATE, 256 if args.shipped else 512, "soak",
                      realtime=args.jack_realtime)
    listener = Listener()
    daemon: subprocess.Popen | None = None
    probe: subprocess.Popen | None = None
    daemon_log = tmp / "serve.log"
    try:
        port = free_udp_port()
        config = {
            "engine": {} if args.shipped else {"latency": "fixed", "block_size": 2048},
            "osc": {"host": "127.0.0.1", "zeroconf": False, "wekinator_input_port": None},
            "web": {"port": 0},
            "midi": {"enabled": False},
            "log": {"stats_interval_s": 60},
        }
        (tmp / "config.yaml").write_text(yaml.safe_dump(config))
        loop = ROOT / "loops" / "default.wav" if args.shipped else write_loop(tmp / "loop.wav")
        if big:
            made = time.monotonic()
            path = write_big_mapping(tmp / "mappings", "soak", args.examples)
            print(f"soak: wrote {path.name} with {args.examples} examples ({path.stat().st_size / 1e6:.1f} MB) in "
                  f"{time.monotonic() - made:.1f} s")
        command = [sys.executable, "-m", "ravemap", "serve", "--config", str(tmp / "config.yaml"),
                   "--model", str(args.model.resolve()), "--loop", str(loop), "--audio", "system",
                   "--osc-port", str(port), "--feedback-port", str(listener.port),
                   "--mappings-dir", str(tmp / "mappings"), "--mapping", "soak"]
        with open(daemon_log, "w") as err:
            daemon = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=err, text=True, env=env)
        assert daemon.stdout is not None
        started = time.monotonic()
        chosen = None
        for line in daemon.stdout:
            if "playing on" in line:
                print(f"soak: {line.strip()}")
                chosen = re.search(r"block (\d+) samples, lead (\d+) frames", line)
            if "OSC control on" in line:
                break
        else:
            print(f"soak: ravemap serve exited {daemon.wait()}: {daemon_log.read_text()[-3000:]}", file=sys.stderr)
            return 1
        threading.Thread(target=lambda: [None for _ in daemon.stdout], daemon=True).start()  # keep stdout drained
        if big:
            print(f"soak: ready in {time.monotonic() - started:.1f} s; playing {args.minutes:g} min with "
                  f"{args.rate:g} messages/s, recording all the time, a ping every 100 ms")
        else:
            print(f"soak: ready in {time.monotonic() - started:.1f} s; playing {args.minutes:g} min with "
                  f"{args.rate:g} messages/s and a retrain every {RETRAIN_S:.0f} s")

        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        target = ("127.0.0.1", port)

        sent = 0

        def send(data: bytes) -> None:
            nonlocal sent
            sock.sendto(data, target)
            sent += 1

        trains_asked = 0
        running = False
        first = listener.ask_status(send)
        mapping_file = tmp / "mappings" / "soak.json"
        writes, last_write = 0, mapping_file.stat().st_mtime_ns if mapping_file.exists() else 0
        pinger: Pinger | None = None
        if big:
            send(osc("/ravemap/record", 1))
            pinger = Pinger(target)
        trainer = trainer_pid(daemon.pid)
        rss_start = rss_kib(daemon.pid)
        trainer_start = rss_kib(trainer)
        rss_peak = rss_start or 0
        load_start = os.getloadavg()[0]
        if args.probe:
            block, lead = (chosen.group(1), chosen.group(2)) if chosen else ("2048", "6144")
            probe = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "machine_probe.py"), "--seconds",
                                      str(seconds), "--model", str(args.model.resolve()), "--block", block,
                                      "--lead", lead], stdout=subprocess.PIPE, text=True)
        print(f"soak: start: ravemap RSS {mib(rss_start)}, trainer RSS {mib(trainer_start)}, "
              f"underruns {first and first['underruns']}, load average {load_start:.2f} on {os.cpu_count()} cores")
        begin = time.perf_counter()
        paced = 0  # messages of the steady stream, which sets the pace
        next_train = begin + RETRAIN_S
        next_report = begin + REPORT_S
        while (now := time.perf_counter()) - begin < seconds:
            if daemon.poll() is not None:
                print(f"soak: ravemap serve died with exit code {daemon.returncode}", file=sys.stderr)
                return 1
            # one tick of 10 messages every 50 ms: 8 moves (XY and sliders) and, every 4th tick, a record
            for k in range(10):
                i = paced
                paced += 1
                t = i / args.rate
                if k == 9 and (i // 10) % 4 == 0 and not big:
                    send(osc("/ravemap/record/once"))
                elif k % 2 == 0:
                    send(osc("/ravemap/xy", 0.5 + 0.45 * math.sin(t * 0.9), 0.5 + 0.45 * math.sin(t * 1.3 + 1.0)))
                else:
                    dim = (i // 2) % 4
                    send(osc(f"/ravemap/latent/{dim}", 2.5 * math.sin(t * (0.3 + 0.2 * dim))))
            if big and mapping_file.exists() and mapping_file.stat().st_mtime_ns != last_write:
                writes, last_write = writes + 1, mapping_file.stat().st_mtime_ns
            if now >= next_train and not big:
                next_train += RETRAIN_S
                send(osc("/ravemap/train"))
                trains_asked += 1
            if listener.trained and not running:
                send(osc("/ravemap/run", 1))
                running = True
            if now >= next_report:
                next_report += REPORT_S
                state = listener.ask_status(send, timeout=2.0) or {}
                rss = rss_kib(daemon.pid)
                rss_peak = max(rss_peak, rss or 0)
                pings = (f", ping p99 {pinger.percentile(99):.1f} ms, file written {writes} times"
                         if pinger is not None else "")
                print(f"soak: {now - begin:5.0f} s: sent {sent}, underruns {state.get('underruns')}, "
                      f"events dropped {state.get('events_dropped')}, examples {state.get('examples')}, "
                      f"trainings {len(listener.trained)}/{trains_asked}, RSS {mib(rss)}{pings}", flush=True)
            delay = begin + paced / args.rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        played = time.perf_counter() - begin
        probed = None
        if probe is not None:
            out, _ = probe.communicate(timeout=60)
            lines = out.strip().splitlines()
            probed = json.loads(lines[-1]) if probe.returncode == 0 and lines else None
        if pinger is not None:
            pinger.close()
        time.sleep(0.5)
        final = listener.ask_status(send) or {}
        rss_end = rss_kib(daemon.pid)
        rss_peak = max(rss_peak, rss_end or 0)
        trainer_end = rss_kib(trainer_pid(daemon.pid) or trainer)
        stop_sent = time.monotonic()
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(30)
        stop_took = time.monotonic() - stop_sent
        log = daemon_log.read_text()
        stopped = [ln for ln in log.splitlines() if "stopped: blocks" in ln]
        stop_line = stopped[-1] if stopped else ""

        def field(name: str) -> int | None:
            match = re.search(rf"{name} (\d+)", stop_line)
            return int(match.group(1)) if match else None

        received = field("OSC messages")
        worst = re.search(r"worst ([\d.]+) ms \(budget ([\d.]+) ms\)", stop_line)
        print()
        blocks = "the shipped engine settings" if args.shipped else "2048-sample blocks"
        server = "realtime" if args.jack_realtime else "--no-realtime"
        print(f"soak: played {played / 60:.1f} min on {args.model.name}, {blocks}, JACK dummy ({server}) at {RATE} Hz")
        print(f"  underruns          {field('underruns')}   (status said {final.get('underruns')})")
        print(f"  xruns              {field('xruns')}")
        if worst:
            print(f"  worst block        {worst.group(1)} ms of a {worst.group(2)} ms budget")
        print(f"  messages sent      {sent}   ({paced / played:.0f} a second, plus trains and status requests)")
        pings = 0 if pinger is None else len(pinger.rtt_ms) + pinger.lost
        print(f"  received by OSC    {received}   (lost in the kernel: "
              f"{'-' if received is None else sent + pings - received}{', pings included' if pings else ''})")
        print(f"  events dropped     {field('events dropped')}   (inbox full; status said "
              f"{final.get('events_dropped')})")
        print(f"  bad messages       {field('bad messages')}, errors replied {len(listener.errors)}"
              + (f" (last: {listener.errors[-1][:100]})" if listener.errors else ""))
        print(f"  trainings          {len(listener.trained)} done of {trains_asked} asked"
              + (f", last on {listener.trained[-1][1]} examples in {listener.trained[-1][2]:.2f} s, loss "
                 f"{listener.trained[-1][0]:.4f}" if listener.trained else ""))
        print(f"  examples           {final.get('examples')}")
        if pinger is not None:
            print(f"  ping               {len(pinger.rtt_ms)} answered, {pinger.lost} lost; p50 "
                  f"{pinger.percentile(50):.1f} ms, p99 {pinger.percentile(99):.1f} ms, worst "
                  f"{max(pinger.rtt_ms, default=math.nan):.1f} ms")
            print(f"  mapping file       written {writes} times while recording "
                  f"({mapping_file.stat().st_size / 1e6:.1f} MB at the end)")
        if probe is not None:
            print("  " + (probed["line"] if probed else f"machine probe failed (exit code {probe.returncode})"))
        print(f"  ravemap RSS        start {mib(rss_start)}, peak {mib(rss_peak)}, end {mib(rss_end)}")
        print(f"  trainer RSS        start {mib(trainer_start)}, end {mib(trainer_end)}")
        print(f"  stop               exit code {code} in {stop_took:.2f} s")
        print(f"  machine            {os.cpu_count()} cores, load average {load_start:.2f} at start, "
              f"{os.getloadavg()[0]:.2f} at the end (this run's own processes included)")
        return 0 if code == 0 else 1
    finally:
        if probe is not None and probe.poll() is None:
            probe.kill()
            probe.wait()
        if daemon is not None and daemon.poll() is None:
            daemon.kill()
            daemon.wait()
        listener.close()
        jack.terminate()
        try:
            jack.wait(5)
        except subprocess.TimeoutExpired:
            jack.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
