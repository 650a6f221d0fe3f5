"""OSC message -> offsets the engine sees: latency, and messages per second handled without loss.

    .venv/bin/python benchmarks/control_latency.py

Runs the real control plane in process (UDP server on 127.0.0.1, inbox, session thread,
engine controls) with a trained knn mapping in run mode, so each `/ravemap/xy` goes
through the regressor. Latency: from `sendto` to the moment `EngineControls.offsets` (what
the engine thread reads at its next block) holds the new prediction; median and 99th
percentile over a few thousand messages sent one at a time. Throughput: bursts at rising
rates; a rate counts as handled without loss when every datagram sent was received and
translated (the OSC thread's count) and nothing was dropped from the inbox.
"""

from __future__ import annotations

import socket
import statistics
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "server"))

from pythonosc.osc_message_builder import OscMessageBuilder  # noqa: E402

from ravemap.audio.controls import EngineControls  # noqa: E402
from ravemap.config import validate  # noqa: E402
from ravemap.control.events import Inbox  # noqa: E402
from ravemap.control.feedback import Feedback  # noqa: E402
from ravemap.control.osc import OscServer  # noqa: E402
from ravemap.mapping.regressor import RegressorSettings, fit  # noqa: E402
from ravemap.mapping.trainer import Trainer  # noqa: E402
from ravemap.session import Session, new_mapping  # noqa: E402


def message(address: str, *args: float) -> bytes:
    b = OscMessageBuilder(address=address)
    for a in args:
        b.add_arg(float(a), "f")
    return b.build().dgram


def main() -> None:
    config = validate({"osc": {"host": "127.0.0.1", "zeroconf": False, "queue_size": 1024}})
    controls = EngineControls(4, (-3.0, 3.0))
    inbox = Inbox(config.osc.queue_size)
    feedback = Feedback(config, feedback_port=9)  # discard port on loopback: replies go nowhere
    with TemporaryDirectory() as tmp:
        mapping = new_mapping(config, "bench")
        rng = np.random.default_rng(0)
        x = rng.uniform(0, 1, (16, 2))
        y = rng.uniform(-2, 2, (16, 4))
        mapping.regressor = fit(x, y, RegressorSettings(kind="knn")).regressor
        session = Session(config, controls, inbox, feedback, Trainer(), Path(tmp), mapping)
        session.running = True
        osc = OscServer(config, inbox, feedback.error, port=0)
        session.start()
        osc.start()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        dest = osc.address

        # Latency, one message at a time.
        latencies = []
        for k in range(3000):
            xy = (float(k % 97) / 97, float(k % 89) / 89)
            before = controls.offsets
            data = message("/ravemap/xy", *xy)
            start = time.perf_counter()
            sock.sendto(data, dest)
            while controls.offsets == before:
                if time.perf_counter() - start > 1.0:
                    break
            latencies.append(time.perf_counter() - start)
        lat_ms = sorted(1000 * v for v in latencies)
        median = statistics.median(lat_ms)
        p99 = lat_ms[int(0.99 * len(lat_ms)) - 1]

        # Throughput: bursts of 2 s at rising rates.
        best = 0
        results = []
        for rate in (1000, 2000, 5000, 10000, 20000, 40000):
            sent_before, dropped_before = osc.counters.messages, inbox.dropped
            n = rate * 2
            period = 1.0 / rate
            start = time.perf_counter()
            for i in range(n):
                sock.sendto(message("/ravemap/latent/0", (i % 100) / 50.0), dest)
                target = start + (i + 1) * period
                while time.perf_counter() < target:
                    pass
            time.sleep(0.5)
            received = osc.counters.messages - sent_before
            dropped = inbox.dropped - dropped_before
            results.append((rate, n, received, dropped))
            if received == n and dropped == 0:
                best = rate
        osc.stop()
        session.stop()
        feedback.close()

    print("OSC /ravemap/xy -> regressor (knn, run mode) -> EngineControls.offsets, real UDP on 127.0.0.1:")
    print(f"  latency over {len(lat_ms)} messages: median {median:.3f} ms, 99th percentile {p99:.3f} ms")
    print("  bursts of 2 s (rate: sent / received / dropped from inbox):")
    for rate, n, received, dropped in results:
        print(f"    {rate:6d}/s: {n} / {received} / {dropped}")
    print(f"  highest rate handled without loss: {best} messages/s")


if __name__ == "__main__":
    main()
