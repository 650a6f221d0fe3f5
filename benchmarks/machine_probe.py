"""How often this machine stalls a lone process doing the engine's work: the floor under any soak.

    .venv/bin/python benchmarks/machine_probe.py [--seconds 60] [--block 256] [--lead 512]

Not a test and not run in CI. One process of its own, no JACK, no OSC, no other Python thread
(so no GIL to share), one torch thread, nice -10 where the OS allows (as ravemap's engine
thread): every device period (256 frames at 44.1 kHz) it sleeps to the next tick of a clock,
then encodes and decodes one block of the model, as the engine does after each audio callback.
A block that ends later than `--lead` frames after its tick is one the engine, on the same
machine at the same moment, could not have had ready in time: the callback would have found the
ring short. `soak.py --probe` runs it beside the daemon, so the two counts come from the same
minutes.

It prints how late blocks ended (median, p99, p99.9, worst), how many missed the lead, how many of
those spent most of the time on the CPU (their own thread CPU time over half the wall time: the
virtual CPU was taken away mid-block, the hypervisor's "steal", rather than the thread waiting to
be woken), and the steal ticks /proc/stat counted meanwhile. The last line is the same as JSON,
for `soak.py`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RATE = 44100
PERIOD = 256


def steal_ticks() -> int | None:
    """The machine's steal time so far, in clock ticks (Linux; None elsewhere)."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
        return int(fields[8])
    except (OSError, IndexError, ValueError):
        return None


def probe(model_path: Path, seconds: float, block: int, lead: int, period: int = PERIOD) -> dict:
    import torch  # here, so that soak.py can import `describe` without torch

    torch.set_num_threads(1)
    try:
        os.setpriority(os.PRIO_PROCESS, 0, -10)
        priority = "nice -10"
    except OSError:
        priority = "normal"
    model = torch.jit.load(str(model_path), map_location="cpu").eval()
    rng = np.random.default_rng(1)
    audio = torch.from_numpy((0.1 * rng.standard_normal((1, 1, block))).astype(np.float32))

    def one_block() -> None:
        with torch.inference_mode():
            model.decode(model.encode(audio))

    for _ in range(20):  # TorchScript specialises over its first calls
        one_block()
    tick_s, lead_s = period / RATE, lead / RATE
    late_ms: list[float] = []
    missed, missed_on_cpu = 0, 0
    steal_start = steal_ticks()
    tick = time.perf_counter()
    end = tick + seconds
    while tick < end:
        tick += tick_s
        wait = tick - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        cpu = time.thread_time()
        one_block()
        done = time.perf_counter()
        late = done - tick
        late_ms.append(1000.0 * late)
        if late > lead_s:
            missed += 1
            if time.thread_time() - cpu > 0.5 * late:
                missed_on_cpu += 1
    steal_end = steal_ticks()
    late = np.array(late_ms)
    return {
        "blocks": int(late.size), "block": block, "lead": lead, "priority": priority,
        "p50_ms": float(np.median(late)), "p99_ms": float(np.percentile(late, 99)),
        "p999_ms": float(np.percentile(late, 99.9)), "worst_ms": float(late.max()),
        "missed": missed, "missed_on_cpu": missed_on_cpu,
        "steal_ticks": None if steal_start is None or steal_end is None else steal_end - steal_start,
    }


def describe(result: dict) -> str:
    lead_ms = 1000.0 * result["lead"] / RATE
    return (f"machine probe: {result['blocks']} blocks of {result['block']} ({result['priority']}); ended after "
            f"their tick by median {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f}, p99.9 "
            f"{result['p999_ms']:.2f}, worst {result['worst_ms']:.1f} ms; {result['missed']} later than the "
            f"lead ({result['lead']} frames, {lead_ms:.1f} ms), {result['missed_on_cpu']} of them on the CPU "
            f"the whole time; steal ticks {result['steal_ticks']}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--model", type=Path, default=ROOT / "models" / "default.ts")
    ap.add_argument("--block", type=int, default=256, help="samples per block (the engine's block size)")
    ap.add_argument("--lead", type=int, default=512, help="frames the engine keeps ready (its lead)")
    args = ap.parse_args()
    if args.seconds <= 0 or args.block <= 0 or args.lead <= 0:
        ap.error("--seconds, --block and --lead must be above 0")
    if not args.model.is_file():
        print(f"machine_probe: no model at {args.model}", file=sys.stderr)
        return 1
    result = probe(args.model, args.seconds, args.block, args.lead)
    print(describe(result))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
