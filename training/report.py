"""Write measured figures into models/README.md, between marker comments, leaving the prose alone.

`<!-- figures:begin -->` .. `<!-- figures:end -->` holds the evaluation figures (rewritten by
`evaluate` and `all`); `<!-- timing:begin -->` .. `<!-- timing:end -->` holds the wall time of
the last `all` run (rewritten by `all` only).
"""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path

import torch

from training import spectral
from training.evaluate import DESCRIPTORS, FRAME_BUDGET, RECON_TARGET, RHO_TARGET, SPEED_TARGET


def _replace(text: str, name: str, body: str) -> str:
    pattern = re.compile(rf"(<!-- {name}:begin -->\n).*?(<!-- {name}:end -->)", re.S)
    if not pattern.search(text):
        return text
    return pattern.sub(lambda m: m.group(1) + body.rstrip("\n") + "\n" + m.group(2), text)


def figures_markdown(results: dict, seed: int) -> str:
    sp = results["speed"]
    sf = results["speed_frame"]
    budget = FRAME_BUDGET * sf["block_ms"]
    rc = results["reconstruction"]
    st = results["streaming"]
    lp = results["loop"]
    mark = {True: "pass", False: "**FAIL**"}
    lines = [
        f"Measured by `python -m training evaluate` on `models/default.ts` (seed {seed}, torch {torch.__version__}, "
        f"{platform.machine()}).",
        "",
        "| figure | measured | target | |",
        "|---|---|---|---|",
        f"| one latent frame per call ({sf['block']} samples, {sf['block_ms']:.2f} ms), 1 torch thread, median of "
        f"{sf['calls']} calls | decode **{sf['decode_median_ms']:.2f} ms**, encode + decode "
        f"**{sf['total_median_ms']:.2f} ms** | <= {budget:.2f} ms (a quarter of the block) "
        f"| decode {mark[sf['decode_median_ms'] <= budget]}, encode + decode {mark[sf['total_median_ms'] <= budget]} |",
        f"| encode + decode, 2048-sample blocks, 1 torch thread, median of {sp['calls']} calls "
        f"| {sp['encode_median_ms']:.2f} + {sp['decode_median_ms']:.2f} ms "
        f"= **{sp['realtime']:.0f}x realtime** (decode alone {sp['decode_only_realtime']:.0f}x; "
        f"mean {sp['total_ms']:.2f} ms, worst {sp['worst_ms']:.1f} ms) "
        f"| >= {SPEED_TARGET:.0f}x | {mark[sp['realtime'] >= SPEED_TARGET]} |",
        f"| reconstruction, held-out clips: MR-STFT log-magnitude distance | trained {rc['trained']:.3f}, "
        f"initial weights {rc['untrained']:.3f}: **ratio {rc['ratio']:.3f}** | <= {RECON_TARGET} "
        f"| {mark[rc['ratio'] <= RECON_TARGET]} |",
        *(
            f"| default loop decoded in {one['block']}-sample blocks vs in one call | max abs difference "
            f"{one['max_abs_diff']:.1e} (peak {one['peak']:.2f}); mean step at block seams "
            f"{one['seam_step_mean']:.4f}, elsewhere {one['step_mean']:.4f} | seamless "
            f"| {mark[one['seam_step_mean'] <= 1.5 * one['step_mean']]} |"
            for one in (st, results["streaming_frame"])
        ),
        f"| default loop seam | step at the wrap {lp['wrap_step']:.4f}, 99th percentile step {lp['p99_step']:.4f} "
        f"| no click | {mark[lp['wrap_step'] <= lp['p99_step']]} |",
        "",
        f"MR-STFT resolutions: FFT {', '.join(map(str, spectral.FFT_SIZES))} (hop 1/4), distance = mean "
        f"|ln(|X| + {spectral.LOG_EPS:g}) - ln(|Y| + {spectral.LOG_EPS:g})|.",
        "",
        f"Latent sweeps: each of dims 0..3 offset by -2..+2 (9 steps) on the encoding of `loops/default.wav`; "
        f"Spearman rho of each descriptor against the offset (target: |rho| >= {RHO_TARGET} for at least one).",
        "",
        "| dim | rho RMS (dB) | rho centroid | rho f0 | strongest: value at -2 .. +2 | |",
        "|---|---|---|---|---|---|",
    ]
    units = {"rms_db": "dB", "centroid_hz": "Hz", "f0_hz": "Hz"}
    for dim, rho in results["rho"].items():
        table = results["sweeps"]["table"][dim]
        best = max(DESCRIPTORS, key=lambda name: abs(rho[name]))
        lines.append(
            f"| {dim} | {rho['rms_db']:+.2f} | {rho['centroid_hz']:+.2f} | {rho['f0_hz']:+.2f} | "
            f"{best.split('_')[0]} {table[best][0]:.1f} .. {table[best][-1]:.1f} {units[best]} "
            f"| {mark[abs(rho[best]) >= RHO_TARGET]} |"
        )
    return "\n".join(lines) + "\n"


def timing_markdown(timings: dict[str, float], total: float, clean: bool, steps: str) -> str:
    parts = ", ".join(f"{k} {v:.0f} s" for k, v in timings.items())
    start = "a clean" if clean else "an existing"
    return (
        f"Last `python -m training all` from {start} `training/build/`: **{total / 60:.1f} min** wall time "
        f"({parts}; {steps} training steps) on {os.cpu_count()} CPU cores "
        f"({platform.processor() or platform.machine()}).\n"
    )


def update_readme(
    path: Path,
    results: dict,
    timings: dict[str, float] | None,
    total: float | None,
    seed: int,
    clean: bool = True,
    steps: str = "",
) -> bool:
    """Rewrite the marked blocks of `path`; return False if the file or its markers are missing."""
    if not path.exists():
        return False
    text = path.read_text()
    new = _replace(text, "figures", figures_markdown(results, seed))
    if timings is not None and total is not None:
        new = _replace(new, "timing", timing_markdown(timings, total, clean, steps))
    path.write_text(new)
    return new != text
