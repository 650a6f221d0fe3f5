"""Model swaps while playing: underruns, late clock periods and the lead, per swap (issue 23, fault 7).

    .venv/bin/python benchmarks/swaps.py [--swaps 10] [--full ../shared/fixtures/rave/rave_v2_full.ts]

Not a test and not run in CI. What a fresh checkout plays (config.yaml: the default model and loop,
`engine.latency: auto`) on the `--audio none` clock, in process through the Python API (the session's
loader thread, as `/ravemap/model` swaps), first 10 s without a swap (the machine's own underruns),
then `--swaps` swaps back and forth between the default model and `--full` (the 128-dim fixture). Each
row: seconds to prepare, underruns and the clock's late periods (xruns: a period the clock thread
could not take on time, e.g. while `torch.jit.load` held the GIL) from the request until the swap has
been heard and its held lead has drained, then the lead and what auto chose for the model now playing.
Read the swap rows against the first line; nothing here is asserted (tests/test_swapping_while_playing.py
is the acceptance test).
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "server"))

from ravemap import Ravemap, locations  # noqa: E402


def chosen_lead(engine) -> int:
    period, choice = engine.period, engine.processor.latency
    return max(1, math.ceil((choice.lead_s or 0.0) * engine.out_sr / period)) * period


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--swaps", type=int, default=10)
    parser.add_argument("--full", type=Path, default=ROOT.parent / "shared" / "fixtures" / "rave" / "rave_v2_full.ts")
    parser.add_argument("--calm", type=float, default=10.0, help="seconds played without a swap first")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rm = Ravemap(audio="none", mappings_dir=Path(tmp) / "mappings")
        rm.start()
        engine = rm.playback.engine
        ring, output = engine.ring, rm.playback.output
        try:
            time.sleep(1.0)
            u, x = ring.underruns, output.xruns
            time.sleep(args.calm)
            print(f"no swap, {args.calm:.0f} s: {ring.underruns - u} underruns, {output.xruns - x} late clock periods; "
                  f"lead {engine.target_fill} frames")
            for i in range(args.swaps):
                target = args.full if i % 2 == 0 else locations.embedded_model()
                u, x, start, swaps = ring.underruns, output.xruns, time.monotonic(), engine.stats.swaps
                rm.load_model(target)
                prepared = time.monotonic() - start
                while (engine.stats.swaps == swaps or engine._fade is not None or engine.holding
                       or ring.read < (engine.last_swap_frame or 0)):
                    time.sleep(0.005)
                time.sleep(0.05)
                print(f"swap {i} to {target.name}: prepared in {prepared:.2f} s, {ring.underruns - u} underruns, "
                      f"{output.xruns - x} late clock periods; lead {engine.target_fill} frames "
                      f"({1000 * engine.target_fill / engine.out_sr:.1f} ms), auto chose {chosen_lead(engine)}")
                time.sleep(1.0)
        finally:
            rm.stop(save=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
