"""`ravemap check`: does this machine stall a lone process for longer than the engine's lead?

ravemap's engine renders a block after each audio callback and has the lead (the frames kept
ready) to get it into the ring before the callback runs dry. Some machines stop a thread for
longer than that whatever it does: a virtual machine whose CPUs the host lends to others
("steal"), a laptop whose power management or a driver holds a core. No setting of ravemap's
can help there except a longer lead. This check tells whether a machine is one of them, before a
gig, without a sound card: one thread does the engine's work on a clock standing in for the
callbacks, and counts the blocks that end later than the lead after their tick.

Threads: everything runs on the caller's thread, which it raises to the engine's priority
(`realtime.raise_thread_priority`) for the run; no other thread is started.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ravemap.audio.model import RaveModel
from ravemap.audio.realtime import raise_thread_priority

WARM_UP_CALLS = 20  # TorchScript specialises on a new shape over its first calls
ON_CPU_SHARE = 0.5  # a late block whose own CPU time is over this share of its lateness was on the CPU


@dataclass(frozen=True)
class CheckResult:
    blocks: int
    lead_s: float
    late_ms: tuple[float, float, float, float]  # median, p99, p99.9, worst: how long after its tick a block ended
    missed: int  # blocks that ended later than the lead after their tick
    missed_on_cpu: int  # ... of which the thread was on the CPU most of the time (the core was slow or stolen)
    steal_ticks: int | None  # the machine's steal time meanwhile, in clock ticks (Linux)
    priority: str

    def describe(self) -> str:
        median, p99, p999, worst = self.late_ms
        verdict = ("no block missed the lead" if self.missed == 0 else
                   f"{self.missed} blocks ended later than the lead ({self.missed_on_cpu} on the CPU the whole time)")
        return (f"{self.blocks} blocks, {self.priority}; a block ended after its tick by median {median:.2f} ms, "
                f"p99 {p99:.2f}, p99.9 {p999:.2f}, worst {worst:.1f} ms; lead {1000 * self.lead_s:.1f} ms: {verdict}; "
                f"steal ticks {'-' if self.steal_ticks is None else self.steal_ticks}")


def steal_ticks() -> int | None:
    """The machine's steal time so far, in clock ticks, from /proc/stat (None where there is none)."""
    try:
        with open("/proc/stat") as f:
            return int(f.readline().split()[8])
    except (OSError, IndexError, ValueError):
        return None


def default_block(ratio: int, period: int) -> int:
    """The smallest multiple of the model's ratio that fills a device period (one render per callback)."""
    return ratio * max(1, math.ceil(period / ratio))


def tick_frames(block: int, period: int) -> int:
    """How often the engine renders: once a block when blocks are longer than a period, else each period."""
    return max(block, period)


def model_block(model: RaveModel, block: int, period: int) -> Callable[[], None]:
    """The engine's model work for one tick: encode `block` samples of quiet noise and decode them,
    as many times as blocks fit in a period (once when a block is a period or longer)."""
    rng = np.random.default_rng(1)
    audio = torch.from_numpy((0.05 * rng.standard_normal((1, model.info.in_channels, block))).astype(np.float32))
    calls = max(1, math.ceil(period / block))

    def run() -> None:
        with torch.inference_mode():
            for _ in range(calls):
                model.decode(model.encode(audio))

    return run


def check(run_block: Callable[[], None], seconds: float, tick_s: float, lead_s: float) -> CheckResult:
    """Call `run_block` once per `tick_s` for `seconds`, as the engine renders after a callback, and time it.

    A call that ends more than `lead_s` after its tick is one the engine could not have had ready:
    the ring held the lead less the period just taken, and the callback after next finds it short."""
    priority = raise_thread_priority()
    for _ in range(WARM_UP_CALLS):
        run_block()
    late_s: list[float] = []
    missed = missed_on_cpu = 0
    steal_start = steal_ticks()
    tick = time.perf_counter()
    end = tick + seconds
    while tick < end:
        tick += tick_s
        wait = tick - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        cpu = time.thread_time()
        run_block()
        late = time.perf_counter() - tick
        late_s.append(late)
        if late > lead_s:
            missed += 1
            if time.thread_time() - cpu > ON_CPU_SHARE * late:
                missed_on_cpu += 1
    steal_end = steal_ticks()
    ms = 1000.0 * np.asarray(late_s)
    return CheckResult(
        blocks=len(late_s), lead_s=lead_s,
        late_ms=(float(np.median(ms)), float(np.percentile(ms, 99)), float(np.percentile(ms, 99.9)), float(ms.max())),
        missed=missed, missed_on_cpu=missed_on_cpu,
        steal_ticks=None if steal_start is None or steal_end is None else steal_end - steal_start,
        priority=priority,
    )
