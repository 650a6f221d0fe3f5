"""The Python side of realtime: what keeps the engine thread and the audio callback on time.

At blocks of a few milliseconds, three things in the interpreter can make a block late
(benchmarks/latency.py measures them):
- the GIL: a thread running Python code keeps it for up to `sys.getswitchinterval()` at a time
  (5 ms by default, a whole 256-sample block); `prepare_process` shortens it to `SWITCH_INTERVAL_S`;
- the OS scheduler: on a busy machine the engine thread waits behind other processes;
  `raise_thread_priority` asks for a negative nice value (a larger share of the CPU, which
  it gets on Linux with CAP_SYS_NICE or an RLIMIT_NICE, as `audio` group set-ups grant), else
  leaves it and says so. Not SCHED_FIFO: a FIFO engine thread would pre-empt a sound server
  that runs without realtime priority (JACK's `--no-realtime`, PulseAudio, PipeWire's default
  user set-up), and the callback waits on that server;
- the garbage collector: a full collection walks every object the daemon holds (a big
  mapping's examples included); `freeze_startup_objects` moves what start-up made out of its way.

Threads: `prepare_process` and `freeze_startup_objects` on the thread that builds a `Ravemap`;
`raise_thread_priority` on the thread it is for (the engine thread, the headless clock, and
once on the first audio callback, for PortAudio's thread).
"""

from __future__ import annotations

import gc
import os
import sys
import threading

SWITCH_INTERVAL_S = 0.0005
NICE = -10


def prepare_process() -> None:
    """Shorten how long one thread may hold the GIL while others wait for it."""
    if sys.getswitchinterval() > SWITCH_INTERVAL_S:
        sys.setswitchinterval(SWITCH_INTERVAL_S)


def raise_thread_priority() -> str:
    """Give the calling thread a raised priority where the OS allows; say which it got."""
    if sys.platform.startswith("linux"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)  # per thread on Linux
            return f"nice {NICE}"
        except (OSError, AttributeError):
            pass
    return "normal (the OS did not allow a raised priority; see the README)"


def freeze_startup_objects() -> None:
    """Collect once, then keep everything made so far out of later collections (Python 3.7+)."""
    gc.collect()
    gc.freeze()
