"""What the GIL, the scheduler and the garbage collector do to small blocks, measured side by side.

    .venv/bin/python benchmarks/python_realtime.py [--seconds 10] [--block 256]

Not a test and not run in CI. The engine plays the embedded default model in blocks of
`--block` samples (default: one latent frame) with a one-block lead, to a real-time clock
standing in for the sound card (the `--audio none` output, 256-frame periods), while another
thread of the same process does what a daemon's control side may do: serialise a mapping of
60,000 examples to JSON over and over, one example at a time (Python code that wants the GIL all
the time). Each row runs `--seconds` and reports underruns, the clock's own late periods, and
the engine's worst block:

- Python's default GIL switch interval (5 ms), no priority;
- ravemap's 0.5 ms switch interval;
- 0.5 ms and the engine thread's raised priority (what `ravemap serve` runs with).

The same rows with no background work show the floor.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "server"))

from ravemap.audio import engine as engine_module  # noqa: E402
from ravemap.audio import headless as headless_module  # noqa: E402
from ravemap.audio.engine import Engine  # noqa: E402
from ravemap.audio.headless import HeadlessOutput  # noqa: E402
from ravemap.audio.model import load_model  # noqa: E402
from ravemap.audio.playback import make_controls, prepare_processor  # noqa: E402
from ravemap.config import load_config, with_overrides  # noqa: E402


def hog(stop: threading.Event) -> None:
    """Python-level work: one example at a time, as a GIL-friendly saver does. (One `json.dumps` of
    the whole list is a single C call that holds the GIL for its whole length, whatever the switch
    interval: that is why ravemap never serialises a big mapping in one call.)"""
    examples = [{"inputs": [i / 6e4, 1 - i / 6e4], "targets": [0.1 * (i % 7), 0.2, -0.3, 0.4]} for i in range(60000)]
    while not stop.is_set():
        ",".join(json.dumps(example) for example in examples)


def run(config, seconds: float, switch: float, priority: bool, background: bool) -> str:
    sys.setswitchinterval(switch)
    normal = lambda: "normal"  # noqa: E731
    saved = engine_module.raise_thread_priority, headless_module.raise_thread_priority
    if not priority:
        engine_module.raise_thread_priority = headless_module.raise_thread_priority = normal
    controls = make_controls(config)
    processor = prepare_processor(config, controls)
    engine = Engine(processor, processor.model.info.sr, 1, period_hint=HeadlessOutput.PERIOD)
    output = HeadlessOutput(engine.ring, processor.model.info.sr)
    stop = threading.Event()
    worker = threading.Thread(target=hog, args=(stop,), daemon=True)
    try:
        engine.start()
        output.start()
        if background:
            worker.start()
        time.sleep(seconds)
    finally:
        stop.set()
        output.stop()
        engine.stop()
        engine_module.raise_thread_priority, headless_module.raise_thread_priority = saved
    return (f"underruns {engine.ring.underruns:4d}  clock late {output.xruns:4d}  "
            f"worst block {1000 * engine.stats.worst_block_s:6.2f} ms of {1000 * engine.block_seconds:.2f} ms  "
            f"({engine.stats.blocks} blocks)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--block", type=int, default=None, help="default: the model's compression ratio")
    args = ap.parse_args()
    torch.set_num_threads(1)
    shipped = load_config(ROOT / "config.yaml")
    block = args.block or load_model(shipped.engine.model).info.ratio
    config = with_overrides(shipped, engine__block_size=block, engine__ahead_blocks=1, audio__device="none")
    rows = [
        ("5 ms switch interval, normal priority", 0.005, False),
        ("0.5 ms switch interval, normal priority", 0.0005, False),
        ("0.5 ms switch interval, raised priority", 0.0005, True),
    ]
    for background in (False, True):
        print(f"-- {'a thread serialising 60k examples beside it' if background else 'nothing else running'}")
        for name, switch, priority in rows:
            print(f"{name:<42} {run(config, args.seconds, switch, priority, background)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
