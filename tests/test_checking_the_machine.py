"""`ravemap check`: before a gig, does this machine stall the engine's work for longer than the lead?

The counting is tested with stand-in work of known cost (a block that sleeps past the lead always
misses it, a quick one under a lead of seconds never does); the command itself runs for real on
the embedded default model. No wall-clock asserts: what the machine does is the figure reported.
"""

from __future__ import annotations

import re
import threading
import time

from ravemap.audio.machine_check import CheckResult, check, default_block, tick_frames
from tests.conftest import ravemap


def _check_in_a_thread(run_block, seconds: float, tick_s: float, lead_s: float) -> CheckResult:
    """`check` raises its thread's priority: run it on a thread of its own, not pytest's."""
    results: list[CheckResult] = []
    thread = threading.Thread(target=lambda: results.append(check(run_block, seconds, tick_s, lead_s)))
    thread.start()
    thread.join(60)
    return results[0]


def test_a_block_slower_than_the_lead_is_counted_every_time():
    calls = []

    def slow_block() -> None:
        calls.append(1)
        if len(calls) > 20:  # past the warm-up calls
            time.sleep(0.015)

    result = _check_in_a_thread(slow_block, seconds=0.1, tick_s=0.005, lead_s=0.010)
    assert result.blocks >= 5
    assert result.missed == result.blocks, "every block ended 15 ms or more after its tick, past a 10 ms lead"
    assert result.missed_on_cpu == 0, "a block that sleeps is not on the CPU"
    assert result.late_ms[0] >= 15.0


def test_a_quick_block_under_a_long_lead_misses_nothing():
    result = _check_in_a_thread(lambda: None, seconds=0.2, tick_s=0.005, lead_s=5.0)
    assert result.blocks >= 20
    assert result.missed == 0 and result.missed_on_cpu == 0
    assert "no block missed the lead" in result.describe()


def test_the_default_block_is_the_smallest_multiple_of_the_ratio_that_fills_a_period():
    assert default_block(256, 256) == 256
    assert default_block(2048, 256) == 2048
    assert default_block(64, 256) == 256
    assert default_block(96, 256) == 288


def test_blocks_longer_than_a_period_are_rendered_once_a_block_shorter_ones_every_period():
    assert tick_frames(2048, 256) == 2048, "a full-size RAVE block: one render per 46 ms, not per period"
    assert tick_frames(256, 256) == 256
    assert tick_frames(128, 256) == 256


def test_ravemap_check_times_the_default_model_and_gives_a_verdict():
    done = ravemap("check", "--seconds", "1")
    assert done.returncode in (0, 1), done.stderr  # 1 is the verdict "this machine stalled", not an error
    lines = done.stdout.splitlines()
    assert lines[0].startswith("ravemap check: default.ts: 44100 Hz"), done.stdout
    assert "blocks of 256 samples, rendered every 256 frames (5.8 ms)" in lines[1]
    assert "lead 512 frames (11.6 ms)" in lines[1]
    blocks = re.search(r"ravemap check: (\d+) blocks", done.stdout)
    assert blocks and int(blocks.group(1)) >= 100, done.stdout  # about 172 ticks in a second
    if done.returncode == 0:
        assert lines[-1] == "ravemap check: this machine kept every block inside the lead"
    else:
        assert "engine.ahead_blocks:" in lines[-1], "a machine that stalled gets a lead that would cover it"


def test_ravemap_check_refuses_a_block_the_model_cannot_play():
    done = ravemap("check", "--seconds", "1", "--block", "100")
    assert done.returncode == 2
    assert "--block 100: default.ts needs a multiple of its ratio 256, e.g. 256" in done.stderr
    done = ravemap("check", "--seconds", "0")
    assert done.returncode == 2 and "--seconds 0: give a duration above 0" in done.stderr
