"""Engine throughput against two bare loops, measured side by side in one run.

    .venv/bin/python benchmarks/engine_throughput.py [--model PATH] [--block 2048] [--threads 1]

(a) the engine: `Engine.render_into_ring` (processor block, offsets, safety, ring write)
    plus the callback's copy out of the ring, block after block as fast as it goes;
(b) the ADC24 workshop app's loop: numpy block -> torch.Tensor -> encode -> add offsets
    -> decode -> numpy, every block;
(c) decode alone on latents computed beforehand;
(f) the floor: the least any engine does per block beside decode: the offsets added into preallocated
    latents (numpy, in place), decode, the output clipped into a ring (one numpy call). On a small
    model at a small block the model runs slower as soon as anything else runs between its calls (its
    caches are no longer warm), so (f)/(c) is the most (a)/(c) can reach here; (a)/(f) is what the
    engine's own work costs on top of that floor;
(d) the model alone at one latent frame per call (its smallest block): median encode + decode
    and decode times against a quarter of the block's duration (a printed figure, no target).

(a), (b) and (c) run in interleaved rounds so that machine noise hits them alike; each figure is
the median over rounds, in seconds of audio per second of wall time. The same ratios are printed
again in seconds of audio per second of the thread's CPU time: on a machine shared with other jobs,
wall time also counts the moments this process was not running at all. Targets:
(a)/(b) >= 1.5 and (a)/(c) >= 0.9. Also prints the engine's worst block time and the
process's peak RSS. Default model: the full-size RAVE fixture in ../shared/fixtures/rave.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "server"))

from ravemap.audio.controls import EngineControls  # noqa: E402
from ravemap.audio.engine import Engine  # noqa: E402
from ravemap.audio.model import load_model  # noqa: E402
from ravemap.audio.processor import BlockProcessor, ProcessorSettings  # noqa: E402
from ravemap.audio.source import load_loop  # noqa: E402

DEFAULT_MODEL = ROOT.parent / "shared" / "fixtures" / "rave" / "rave_v2_full.ts"


def synth_loop(path: Path, sr: int, seconds: float = 8.0) -> Path:
    import soundfile

    t = np.arange(int(sr * seconds)) / sr
    pitch = 110 * 2 ** (np.floor(t * 4) % 7 / 12)
    audio = 0.3 * np.sin(2 * np.pi * np.cumsum(pitch) / sr) * (0.6 + 0.4 * np.cos(2 * np.pi * 2 * t))
    soundfile.write(str(path), audio.astype(np.float32), sr)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("--loop", type=Path, help="loop file (default: a synthesized 8 s phrase)")
    ap.add_argument("--block", type=int, default=2048)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--blocks", type=int, default=40, help="blocks per round and contender")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--frame-calls", type=int, default=500, help="timed calls at one latent frame per block")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    model = load_model(args.model)
    info = model.info
    loop_path = args.loop or synth_loop(Path("/tmp/ravemap-bench-loop.wav"), info.sr)
    loop = load_loop(loop_path, info.sr, info.in_channels, info.ratio)
    dims = tuple(range(min(4, info.latent_size)))
    controls = EngineControls(len(dims), (-3.0, 3.0))
    controls.set_offsets([0.5] * len(dims))
    processor = BlockProcessor(model, loop, ProcessorSettings(args.block, dims), controls)
    engine = Engine(processor, info.sr, info.out_channels)
    period = np.zeros((args.block, info.out_channels), dtype=np.float32)
    block_s = args.block / info.sr
    offsets = torch.zeros(1, info.latent_size, args.block // info.ratio)
    offsets[0, : len(dims)] = 0.5

    # (c) needs latents computed beforehand: encode every block of the loop once.
    n_loop_blocks = loop.n_samples // args.block
    blocks_np = [
        np.ascontiguousarray(loop.samples[:, k * args.block : (k + 1) * args.block]) for k in range(n_loop_blocks)
    ]
    with torch.inference_mode():
        latents = [model.encode(torch.from_numpy(b)[None]) for b in blocks_np]

    def run_engine(n: int) -> None:
        with torch.inference_mode():
            for _ in range(n):
                engine.render_into_ring()
                engine.ring.fill(period)

    def run_workshop(n: int) -> None:
        with torch.no_grad():
            for k in range(n):
                buf = blocks_np[k % n_loop_blocks]
                x = torch.Tensor(buf).unsqueeze(0)
                z = model.encode(x)
                z = z + offsets
                y = model.decode(z)
                y.squeeze(0).numpy().T.copy()

    def run_decode(n: int) -> None:
        with torch.inference_mode():
            for k in range(n):
                model.decode(latents[k % n_loop_blocks])

    # (f) the floor: preallocated latents, the offsets added in place, decode, a clip into a ring.
    z_floor = torch.zeros_like(latents[0])
    z_floor_np = z_floor.numpy()
    offsets_np = offsets.numpy()
    latents_np = [z.numpy() for z in latents]
    ring = np.zeros((1 << 17, info.out_channels), dtype=np.float32)
    ring_blocks = ring.shape[0] // args.block
    floor_k = [0]

    def run_floor(n: int) -> None:
        with torch.inference_mode():
            for _ in range(n):
                k = floor_k[0]
                floor_k[0] = k + 1
                np.add(latents_np[k % n_loop_blocks], offsets_np, out=z_floor_np)
                y = model.decode(z_floor).numpy()[0].T
                at = (k % ring_blocks) * args.block
                np.clip(y, -1.0, 1.0, out=ring[at : at + args.block])

    # (e) the chain, all off against all on, on the same model and block size.
    def chain_processor(on: bool) -> BlockProcessor:
        chain_controls = EngineControls(len(dims), (-3.0, 3.0), scale=0.9 if on else 1.0, jitter=0.5 if on else 0.0,
                                        mix=0.5 if on else 1.0, input_gain_db=-3.0 if on else 0.0,
                                        limit_db=-1.0 if on else None)
        chain_controls.fit_latent_size(info.latent_size)
        chain_controls.set_offsets([0.5] * len(dims))
        settings = ProcessorSettings(args.block, dims, model_delay=1000 if on else 0, limiter=on)
        return BlockProcessor(model, loop, settings, chain_controls)

    chain_off, chain_on = chain_processor(False), chain_processor(True)

    def run_chain(processor: BlockProcessor) -> Callable[[int], None]:
        def run(n: int) -> None:
            with torch.inference_mode():
                for _ in range(n):
                    processor.next_block()
        return run

    contenders = {"engine": run_engine, "workshop": run_workshop, "decode": run_decode, "floor": run_floor,
                  "chain off": run_chain(chain_off), "chain on": run_chain(chain_on)}
    for fn in contenders.values():  # warm-up: TorchScript optimises on first calls
        fn(3)
    engine.stats.worst_block_s = 0.0
    speeds: dict[str, list[float]] = {name: [] for name in contenders}
    cpu_speeds: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(args.rounds):
        for name, fn in contenders.items():
            start, cpu = time.perf_counter(), time.thread_time()
            fn(args.blocks)
            cpu_speeds[name].append(args.blocks * block_s / (time.thread_time() - cpu))
            speeds[name].append(args.blocks * block_s / (time.perf_counter() - start))

    a, b, c = (statistics.median(speeds[k]) for k in ("engine", "workshop", "decode"))
    off, on = (statistics.median(speeds[k]) for k in ("chain off", "chain on"))
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"model {info.describe()}")
    print(f"block {args.block} samples ({1000 * block_s:.1f} ms), torch threads {args.threads}, "
          f"{args.rounds} rounds x {args.blocks} blocks, medians in seconds of audio per second:")
    print(f"  (a) engine                       {a:6.2f}x realtime")
    print(f"  (b) workshop loop (enc+dec)      {b:6.2f}x realtime")
    print(f"  (c) decode alone                 {c:6.2f}x realtime")
    print(f"  (a)/(b) = {a / b:.2f}  (target >= 1.5)")
    print(f"  (a)/(c) = {a / c:.2f}  (target >= 0.9)")
    f = statistics.median(speeds["floor"])
    print(f"  (f) floor (offsets, decode, clip)  {f:6.2f}x realtime: (f)/(c) = {f / c:.2f}, the most any engine "
          f"reaches here; (a)/(f) = {a / f:.2f}")
    a_cpu, c_cpu = (statistics.median(cpu_speeds[k]) for k in ("engine", "decode"))
    print(f"  in CPU time: (a) {a_cpu:.2f}x, (c) {c_cpu:.2f}x, (a)/(c) = {a_cpu / c_cpu:.2f}")
    print(f"  engine worst block {1000 * engine.stats.worst_block_s:.1f} ms (budget {1000 * block_s:.1f} ms), "
          f"peak RSS {peak_rss:.0f} MiB")
    cost_ms = 1000 * block_s * (1 / on - 1 / off)
    print(f"  (e) chain all off {off:6.2f}x realtime, all on {on:6.2f}x realtime: the chain costs "
          f"{cost_ms:.3f} ms per block ({100 * cost_ms / (1000 * block_s):.1f}% of the block's "
          f"{1000 * block_s:.1f} ms)")

    # (d) The model alone at its smallest block, one latent frame per call: what a low-latency
    # engine pays per block. Medians over --frame-calls calls after a warm-up.
    ratio = info.ratio
    frame_s = ratio / info.sr
    frames_np = np.resize(loop.samples, (loop.samples.shape[0], (args.frame_calls + 100) * ratio))
    enc_t, dec_t = [], []
    with torch.inference_mode():
        for k in range(args.frame_calls + 100):
            x = torch.from_numpy(np.ascontiguousarray(frames_np[:, k * ratio : (k + 1) * ratio]))[None]
            t0 = time.perf_counter()
            z = model.encode(x)
            t1 = time.perf_counter()
            model.decode(z)
            t2 = time.perf_counter()
            if k >= 100:
                enc_t.append(t1 - t0)
                dec_t.append(t2 - t1)
    dec_ms = 1000 * statistics.median(dec_t)
    total_ms = 1000 * statistics.median([e + d for e, d in zip(enc_t, dec_t, strict=True)])
    print(f"  (d) one latent frame per call ({ratio} samples, {1000 * frame_s:.2f} ms), median of "
          f"{args.frame_calls} calls: decode {dec_ms:.2f} ms, encode+decode {total_ms:.2f} ms "
          f"(a quarter of the block: {250 * frame_s:.2f} ms)")


if __name__ == "__main__":
    main()
