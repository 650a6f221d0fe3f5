"""Command line of the default-model recipe: `python -m training <step>`, run from the repo root."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

from training import config

STEPS = ("data", "train", "export", "loop", "evaluate", "all")

DESCRIPTION = """\
Build ravemap's embedded default model (models/default.ts) and loop (loops/default.wav).

steps:
  data      synthesize the training stream and held-out clips   -> BUILD/data/
  train     train the VAE on them (fixed seed, 2 torch threads) -> BUILD/checkpoints/
  export    order the latents (PCA), script the nn~ interface   -> models/default.ts
  loop      render the default loop from the same synth         -> loops/default.wav
  evaluate  print the acceptance figures of models/default.ts   -> BUILD/evaluation.json
  all       all of the above in that order, timed, then write the figures into models/README.md

Intermediate files go to BUILD (default training/build/, git-ignored). The recipe is
deterministic for a given --seed (up to floating-point differences between machines) as long
as training finishes its --steps within --time-limit; on a busy machine the learning-rate
schedule follows the clock instead and training stops at the limit with fewer steps.
`all` takes at most about 20 minutes on a 2-core CPU, busy or not (training stops at --time-limit).
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m training", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("step", choices=STEPS, help="which step to run (see above)")
    p.add_argument("--seed", type=int, default=config.SEED, help=f"seed of everything (default {config.SEED})")
    p.add_argument("--build-dir", type=Path, default=config.BUILD_DIR, help="intermediate files (default %(default)s)")
    p.add_argument("--model", type=Path, default=config.MODEL_PATH, help="exported model (default %(default)s)")
    p.add_argument("--loop", type=Path, default=config.LOOP_PATH, help="default loop (default %(default)s)")
    p.add_argument("--steps", type=int, default=config.TRAIN.steps, help="training steps (default %(default)s)")
    p.add_argument(
        "--time-limit",
        type=float,
        default=config.TRAIN.time_limit_s,
        help="finish the training schedule within this many seconds, 0 for no limit (default %(default)s)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # Torch's OpenMP workers sleep instead of spinning while they wait: on a 2-core machine shared
    # with other processes, spinning workers made each training step 2-4x slower. Must be set
    # before torch loads.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    # Imported here so that --help answers without loading torch.
    from training import dataset, evaluate, export, loop, report, train

    build = args.build_dir
    data_dir = build / "data"
    ckpt_dir = build / "checkpoints"
    steps = STEPS[:-1] if args.step == "all" else (args.step,)
    timings: dict[str, float] = {}
    passed = True
    clean = not data_dir.exists() and not ckpt_dir.exists()
    trained_steps = ""
    t_all = time.perf_counter()
    for step in steps:
        print(f"=== {step}", flush=True)
        t0 = time.perf_counter()
        if step == "data":
            print(json.dumps(dataset.build(data_dir, args.seed)))
        elif step == "train":
            cfg = dataclasses.replace(config.TRAIN, steps=args.steps, time_limit_s=args.time_limit)
            summary = train.train(
                data_dir / dataset.TRAIN_FILE, ckpt_dir, args.seed, cfg, log=lambda line: print(line, flush=True)
            )
            print(f"trained {summary['steps']} steps in {summary['seconds']:.0f} s")
            trained_steps = f"{summary['steps']} of {cfg.steps}"
        elif step == "export":
            info = export.export(
                ckpt_dir / train.FINAL_CHECKPOINT, data_dir / dataset.TRAIN_FILE, args.model, args.seed
            )
            print(json.dumps(info))
        elif step == "loop":
            print(json.dumps(loop.write(args.loop, args.seed)))
        elif step == "evaluate":
            if not (data_dir / dataset.HELDOUT_FILE).exists():
                print(f"evaluate needs the synthesized data in {data_dir}: run `python -m training data` first")
                return 2
            results, passed = evaluate.run(
                args.model,
                args.loop,
                data_dir / dataset.HELDOUT_FILE,
                data_dir / dataset.TRAIN_FILE,
                ckpt_dir / train.INIT_CHECKPOINT,
                build / "evaluation.json",
                args.seed,
            )
            if args.step == "evaluate" and report.update_readme(
                config.MODEL_README, results, None, None, args.seed, clean
            ):
                print(f"figures written to {config.MODEL_README}")
        timings[step] = time.perf_counter() - t0
        print(f"--- {step} took {timings[step]:.1f} s", flush=True)
    if args.step == "all":
        total = time.perf_counter() - t_all
        print(
            f"=== all took {total:.1f} s ({total / 60:.1f} min): "
            + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items())
        )
        if report.update_readme(config.MODEL_README, results, timings, total, args.seed, clean, trained_steps):
            print(f"figures and wall time written to {config.MODEL_README}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
