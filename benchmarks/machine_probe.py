"""How often this machine stalls a lone process doing the engine's work: the floor under any soak.

    .venv/bin/python benchmarks/machine_probe.py [--seconds 60] [--block 256] [--lead 512]

Not a test and not run in CI. `ravemap check` (server/ravemap/audio/machine_check.py) in a process of
its own: no JACK, no OSC, no other Python thread (so no GIL to share), one torch thread, the
engine's priority. At every tick of a clock (a 256-frame device period at the model's rate, or a
block where blocks are longer) it encodes and decodes the model's work for that tick, as the
engine does after an audio callback. A block that ends later than `--lead` frames after its tick is one the engine,
on the same machine at the same moment, could not have had ready in time: the callback would
have found the ring short. `soak.py --probe` runs it beside the daemon, so the two counts come
from the same minutes.

It prints how late blocks ended (median, p99, p99.9, worst), how many missed the lead, how many of
those spent most of the time on the CPU (their own thread CPU time over half the lateness: the
virtual CPU was taken away mid-block, the hypervisor's "steal", rather than the thread waiting to
be woken), and the steal ticks /proc/stat counted meanwhile. The last line is the same as JSON
(the printed line included), for `soak.py`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PERIOD = 256


def probe(model_path: Path, seconds: float, block: int, lead: int, period: int = PERIOD) -> dict:
    sys.path.insert(0, str(ROOT / "server"))
    import torch

    from ravemap.audio.machine_check import check, model_block, tick_frames
    from ravemap.audio.model import load_model

    torch.set_num_threads(1)
    model = load_model(model_path)
    sr = model.info.sr
    result = check(model_block(model, block, period), seconds, tick_frames(block, period) / sr, lead / sr)
    median, p99, p999, worst = result.late_ms
    return {"line": f"machine probe: blocks of {block}, lead {lead} frames: {result.describe()}",
            "blocks": result.blocks, "block": block, "lead": lead, "priority": result.priority, "p50_ms": median,
            "p99_ms": p99, "p999_ms": p999, "worst_ms": worst, "missed": result.missed,
            "missed_on_cpu": result.missed_on_cpu, "steal_ticks": result.steal_ticks}


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
    print(result["line"])
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
