"""The daemon at rest against its model's own work: process CPU time, side by side in one run.

    .venv/bin/python benchmarks/rest_cost.py [--seconds 20] [--rounds 3] [--model models/default.ts]

Each round:
(a) starts `ravemap serve --audio none` with the shipped engine settings (config.yaml's: `latency: auto`,
    the limiter at -1 dBFS, one torch thread), the given model and `loops/default.wav`, on free loopback
    ports (zeroconf, MIDI and Wekinator's input port off), lets it settle, and measures the CPU time
    (user + system, every thread) the process uses over `--seconds` of wall time; then stops it;
(b) runs, in a child process, a loop that only calls the model's `decode` once per block, on the
    block size the daemon chose, paced like playback (a deadline every block's duration, a sleep until
    it), on latents encoded from the same loop, with the same torch threads, and measures its own CPU
    time over the same seconds;
(c) the same paced loop doing the least any engine does per block beside decode (the floor): the offsets
    added into preallocated latents, decode, the output clipped into a ring. After each sleep the model
    runs on cold caches, and any other work between its calls makes that worse: (c)/(b) is the most a
    one-thread engine could reach here, before a second thread (the sound card's callback, or the
    headless clock standing in for it) wakes once a period.

Prints each as a share of one core, and (a)/(b): what the daemon costs per unit of its model's work at
rest (target <= 1.2), beside (c)/(b) and (a)/(c). The figure to read is the ratio from one round (all
measured minutes apart on the same machine); the median and spread over rounds is printed last. Only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml
from jackbench import free_udp_port

ROOT = Path(__file__).resolve().parent.parent
SETTLE_S = 3.0  # after the daemon says it is ready: start-up work (imports, the first GC) is not rest
TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of every thread of `pid` so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14 and 15 of stat)


def measure_daemon(model: Path, seconds: float, tmp: Path) -> tuple[float, int, str]:
    """CPU seconds the daemon used over `seconds` at rest, the block it chose, and its 'playing on' line."""
    port = free_udp_port()
    config = {
        "osc": {"host": "127.0.0.1", "zeroconf": False, "wekinator_input_port": None},
        "web": {"port": 0},
        "midi": {"enabled": False},
    }
    config_path = tmp / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "ravemap", "serve", "--config", str(config_path), "--model", str(model),
               "--loop", str(ROOT / "loops" / "default.wav"), "--audio", "none", "--osc-port", str(port),
               "--feedback-port", str(free_udp_port()), "--mappings-dir", str(tmp / "mappings")]
    log = open(tmp / "serve.log", "w")  # noqa: SIM115 - held for the daemon's lifetime
    env = {**os.environ, "RAVEMAP_NO_ZEROCONF": "1"}
    daemon = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
    assert daemon.stdout is not None
    playing = ""
    try:
        for line in daemon.stdout:
            if "playing on" in line:
                playing = line.strip()
            if "OSC control on" in line:
                break
        else:
            raise SystemExit(f"ravemap serve exited {daemon.wait()}: {(tmp / 'serve.log').read_text()[-3000:]}")
        threading.Thread(target=lambda: [None for _ in daemon.stdout], daemon=True).start()  # keep it drained
        chosen = re.search(r"block (\d+) samples", playing)
        if chosen is None:
            raise SystemExit(f"no block size in the daemon's 'playing on' line: {playing!r}")
        time.sleep(SETTLE_S)
        before = process_cpu_s(daemon.pid)
        time.sleep(seconds)
        used = process_cpu_s(daemon.pid) - before
        if daemon.poll() is not None:
            raise SystemExit(f"ravemap serve died while measured: {(tmp / 'serve.log').read_text()[-3000:]}")
        return used, int(chosen.group(1)), playing
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(15)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        log.close()


def paced_decode(model_path: str, block: int, seconds: float, threads: int, floor: bool = False) -> None:
    """The child: decode one block per block's duration, paced; prints its CPU seconds over `seconds`.
    `floor`: each block also adds the offsets into preallocated latents and clips the output into a ring."""
    import numpy as np

    sys.path.insert(0, str(ROOT / "server"))
    import torch

    from ravemap.audio.model import load_model
    from ravemap.audio.processor import encode_loop
    from ravemap.audio.source import load_loop

    torch.set_num_threads(threads)
    model = load_model(model_path)
    info = model.info
    loop = load_loop(ROOT / "loops" / "default.wav", info.sr, info.in_channels, info.ratio)
    z_all = encode_loop(model, loop)
    frames = block // info.ratio
    blocks = [z_all[:, :, k : k + frames].contiguous() for k in range(0, z_all.shape[2] - frames + 1, frames)]
    step = block / info.sr
    z = torch.zeros_like(blocks[0])
    z_np, blocks_np = z.numpy(), [b.numpy() for b in blocks]
    offsets = np.zeros_like(z_np)
    offsets[0, : min(4, info.latent_size)] = 0.5
    ring = np.zeros((1 << 17, info.out_channels), dtype=np.float32)
    ring_blocks = ring.shape[0] // block

    def one(k: int) -> None:
        if not floor:
            model.decode(blocks[k % len(blocks)])
            return
        np.add(blocks_np[k % len(blocks)], offsets, out=z_np)
        y = model.decode(z).numpy()[0].T
        at = (k % ring_blocks) * block
        np.clip(y, -1.0, 1.0, out=ring[at : at + block])

    with torch.inference_mode():
        for k in range(int(1.0 / step)):  # a second of warm-up, back to back (TorchScript's first calls)
            one(k)
        due = time.monotonic()
        end = due + seconds
        before = resource.getrusage(resource.RUSAGE_SELF)
        k = 0
        while due < end:
            one(k)
            k += 1
            due += step
            late = due - time.monotonic()
            if late > 0:
                time.sleep(late)
        after = resource.getrusage(resource.RUSAGE_SELF)
    used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(f"{used:.6f} {k}")


def measure_paced(model: Path, block: int, seconds: float, threads: int, floor: bool = False) -> float:
    out = subprocess.run([sys.executable, __file__, "--child", str(model), str(block), str(seconds), str(threads),
                          "floor" if floor else "decode"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    return float(out[0])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        paced_decode(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), sys.argv[6] == "floor")
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=ROOT / "models" / "default.ts")
    ap.add_argument("--seconds", type=float, default=20.0, help="wall seconds each side is measured over")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    model = args.model.resolve()
    threads = int(yaml.safe_load((ROOT / "config.yaml").read_text())["engine"]["torch_threads"])
    ratios, floors = [], []
    for r in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="ravemap-rest-") as tmp:
            daemon_s, block, playing = measure_daemon(model, args.seconds, Path(tmp))
        if r == 0:
            print(f"daemon: {playing}")
        paced_s = measure_paced(model, block, args.seconds, threads)
        floor_s = measure_paced(model, block, args.seconds, threads, floor=True)
        ratio = daemon_s / paced_s
        ratios.append(ratio)
        floors.append(floor_s / paced_s)
        print(f"round {r + 1}: (a) daemon at rest {100 * daemon_s / args.seconds:5.1f}% of a core, "
              f"(b) paced decode-only loop ({block}-sample blocks) {100 * paced_s / args.seconds:5.1f}%, "
              f"(c) paced floor {100 * floor_s / args.seconds:5.1f}%: (a)/(b) = {ratio:.2f}  (target <= 1.2), "
              f"(c)/(b) = {floor_s / paced_s:.2f}, (a)/(c) = {daemon_s / floor_s:.2f}", flush=True)
    print(f"(a)/(b) over {args.rounds} rounds of {args.seconds:g} s: median {statistics.median(ratios):.2f}, "
          f"min {min(ratios):.2f}, max {max(ratios):.2f}; (c)/(b) median {statistics.median(floors):.2f}")


if __name__ == "__main__":
    main()
