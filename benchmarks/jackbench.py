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


def start_jack(name: str, log: Path, rate: int, period: int, who: str, realtime: bool = False) -> subprocess.Popen:
    """`jackd -d dummy` under `name`, ready when this returns; SystemExit if it cannot start.

    `realtime`: the server (and the process thread libjack gives each client, ravemap's callback
    thread included) runs SCHED_FIFO, as JACK runs on a musician's machine; it needs the right to
    (root, or an `audio` group with rtprio). Otherwise `--no-realtime`: ordinary threads, which
    any busy process on the machine can delay, so the server itself misses cycles (xruns).
    """
    jackd = shutil.which("jackd")
    if jackd is None:
        raise SystemExit(f"{who}: jackd is not installed (apt-get install jackd2)")
    mode = ["-R", "-P", "70"] if realtime else ["--no-realtime"]
    with open(log, "w") as out:
        proc = subprocess.Popen([jackd, "-n", name, *mode, "-d", "dummy", "-r", str(rate), "-p", str(period)],
                                stdout=out, stderr=subprocess.STDOUT)
    waiter = shutil.which("jack_wait")
    if waiter:
        subprocess.run([waiter, "-s", name, "-w", "-t", "10"], capture_output=True, timeout=15)
    else:
        time.sleep(2.0)
    if proc.poll() is not None:
        raise SystemExit(f"{who}: jackd did not start: {log.read_text()[-2000:]}")
    return proc
