"""What the JACK benchmarks share: a private dummy JACK server, OSC datagrams, free loopback ports.

Imported by `soak.py` and `latency.py` (run as scripts, so this folder is on `sys.path`).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from pythonosc.osc_message_builder import OscMessageBuilder


def osc(address: str, *args: float | int | str) -> bytes:
    builder = OscMessageBuilder(address=address)
    for arg in args:
        builder.add_arg(arg)
    return builder.build().dgram


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_jack(name: str, log: Path, rate: int, period: int, who: str) -> subprocess.Popen:
    """`jackd --no-realtime -d dummy` under `name`, ready when this returns; SystemExit if it cannot start."""
    jackd = shutil.which("jackd")
    if jackd is None:
        raise SystemExit(f"{who}: jackd is not installed (apt-get install jackd2)")
    with open(log, "w") as out:
        proc = subprocess.Popen([jackd, "-n", name, "--no-realtime", "-d", "dummy", "-r", str(rate), "-p", str(period)],
                                stdout=out, stderr=subprocess.STDOUT)
    waiter = shutil.which("jack_wait")
    if waiter:
        subprocess.run([waiter, "-s", name, "-w", "-t", "10"], capture_output=True, timeout=15)
    else:
        time.sleep(2.0)
    if proc.poll() is not None:
        raise SystemExit(f"{who}: jackd did not start: {log.read_text()[-2000:]}")
    return proc
