"""`engine.latency: auto` picks the block and lead a model can hold on this machine; live input keeps its delay.

Stand-in models of known cost: a real TorchScript stand-in, wrapped so that each decode also
waits a fixed time. A wait is never shorter than asked, so the assertions hold on any machine,
however busy: a model that takes 30 ms a call can never be given blocks shorter than 60 ms.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from ravemap.audio import latency
from ravemap.audio.engine import Engine
from ravemap.audio.live import LiveInput
from ravemap.audio.model import RaveModel, load_model
from ravemap.audio.playback import Playback, make_controls, prepare_processor
from ravemap.audio.ring import FrameRing
from ravemap.config import validate
from tests.standins import WithMethodList, save

# Times blocks to choose a latency and counts underruns: on a machine of its own.
pytestmark = pytest.mark.alone


class CostlyModel(RaveModel):
    """A real stand-in export whose every decode also takes `cost_s` more seconds."""

    def __init__(self, model: RaveModel, cost_s: float):
        super().__init__(model.module, model.info)
        self.cost_s = cost_s

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        time.sleep(self.cost_s)
        return super().decode(z)


@pytest.fixture(scope="module")
def standin(tmp_path_factory) -> str:
    """ratio 256 at 48 kHz: its smallest block is 5.3 ms."""
    return str(save(WithMethodList(sr=48000, channels=1, latent=4, ratio=256),
                    tmp_path_factory.mktemp("models") / "standin.ts"))


def _config(model: str, loop, **engine):
    return validate({"engine": {"model": model, "loop": str(loop), **engine},
                     "audio": {"device": "none", "channels": 1}})


def test_the_rule_takes_the_smallest_block_that_keeps_up_and_a_lead_that_covers_its_worst_time():
    sr = 48000
    seen = []

    def measure(block: int) -> latency.BlockTiming:  # a model costing 4 ms a call, 9 ms at worst
        seen.append(block)
        return latency.BlockTiming(block, median_s=0.004, worst_s=0.009, calls=20)

    choice = latency.choose(256, sr, measure)
    # 256 (5.3 ms: median over half of it) and 512 (10.7 ms: worst 9 ms fits, median 4 ms < 5.3) ...
    assert seen == [256, 512] and choice.block == 512 and choice.auto
    assert choice.lead_s == pytest.approx(latency.LEAD_SAFETY * 0.009 + latency.WAKE_MARGIN_S)
    assert latency.choose(256, sr, measure, block_size=1024).block == 1024, "an explicit block is timed, kept"
    fixed = latency.choose(256, sr, measure, block_size=1024, ahead_blocks=2)
    assert (fixed.block, fixed.ahead_blocks, fixed.lead_s, fixed.auto) == (1024, 2, None, False)


def test_a_size_slow_only_once_is_timed_again_and_kept_if_the_second_run_is_clean():
    runs = {256: [0.020, 0.002], 512: [0.002]}  # worst times: 256 once hit by a 20 ms hiccup, then clean
    seen = []

    def measure(block: int) -> latency.BlockTiming:
        seen.append(block)
        return latency.BlockTiming(block, median_s=0.001, worst_s=runs[block].pop(0), calls=20)

    choice = latency.choose(256, 48000, measure)
    assert seen == [256, 256] and choice.block == 256 and choice.timing.worst_s == 0.002


def test_a_model_that_never_keeps_up_gets_the_largest_block_tried():
    choice = latency.choose(2048, 44100, lambda b: latency.BlockTiming(b, 10.0, 10.0, 12))
    assert choice.block == latency.MAX_BLOCK


def test_a_fast_model_gets_its_smallest_block_and_a_slow_one_a_block_long_enough(standin, loop_file):
    fast = prepare_processor(_config(standin, loop_file), make_controls(_config(standin, loop_file)))
    assert fast.latency.auto and fast.block % 256 == 0
    slow_model = CostlyModel(load_model(standin), cost_s=0.030)
    config = _config(standin, loop_file)
    slow = prepare_processor(config, make_controls(config), model=slow_model)
    assert slow.block > fast.block
    assert slow.block / 48000 * latency.MEDIAN_SHARE >= 0.030, "its median fits half the block"
    assert slow.latency.lead_s >= latency.LEAD_SAFETY * 0.030, "the lead covers the slowest call"
    assert slow.latency.timing.median_s >= 0.030


def test_explicit_block_size_and_ahead_blocks_win(standin, loop_file):
    config = _config(standin, loop_file, block_size=1536, ahead_blocks=2)
    processor = prepare_processor(config, make_controls(config), model=CostlyModel(load_model(standin), 0.005))
    assert processor.block == 1536 and processor.latency.ahead_blocks == 2 and not processor.latency.auto
    engine = Engine(processor, 48000, 1, period_hint=256)
    assert engine.target_fill == 2 * 1536, "two whole blocks ahead, as asked"
    fixed = _config(standin, loop_file, latency="fixed")
    processor = prepare_processor(fixed, make_controls(fixed))
    assert (processor.block, processor.latency.ahead_blocks) == (2048, 3), "fixed: the first release's settings"


def test_the_lead_is_whole_device_periods_and_follows_the_period_the_callback_asks_for(standin, loop_file):
    config = _config(standin, loop_file)
    processor = prepare_processor(config, make_controls(config))
    engine = Engine(processor, 48000, 1, period_hint=64)
    assert engine.target_fill % 64 == 0 and engine.target_fill >= 64
    engine.ring.fill(np.zeros((1024, 1), dtype=np.float32))  # a device with 1024-frame periods
    engine._update_target(engine.processor)
    assert engine.target_fill % 1024 == 0 and engine.target_fill >= 1024
    assert engine.latency_frames == engine.target_fill + max(engine.block_out, 1024) + engine.lookahead_frames


def test_the_choice_is_made_again_for_a_swapped_model(standin, loop_file, tmp_path):
    config = _config(standin, loop_file)
    controls = make_controls(config)
    playback = Playback(config, prepare_processor(config, controls), controls)
    playback.start()
    try:
        before = playback.processor
        other = save(WithMethodList(sr=48000, channels=1, latent=4, ratio=1024), tmp_path / "other.ts")
        swapped = playback.swap_model(other)
        assert swapped.latency.auto and swapped.latency.timing is not None
        assert swapped.latency.timing is not before.latency.timing, "timed anew"
        assert swapped.block % 1024 == 0 and swapped.block >= 1024, "in blocks of the new model's ratio"
        deadline = time.monotonic() + 5
        while playback.engine.processor is not swapped:
            assert time.monotonic() < deadline, "the engine did not take the swap"
            time.sleep(0.01)
        assert playback.engine.block_out == swapped.block, "the engine plays the new block size"
    finally:
        playback.stop()


def test_an_underrun_on_a_busier_machine_adds_a_period_to_the_lead(standin, loop_file):
    config = _config(standin, loop_file)
    processor = prepare_processor(config, make_controls(config))
    engine = Engine(processor, 48000, 1, period_hint=256)
    lead = engine.target_fill
    engine.ring.started = True
    engine.ring.fill(np.zeros((256, 1), dtype=np.float32))  # nothing rendered yet: the callback finds it short
    engine.start()
    try:
        deadline = time.monotonic() + 5
        while engine.lead_raises == 0:
            assert time.monotonic() < deadline, "the engine did not react to the underrun"
            time.sleep(0.01)
        assert engine.target_fill == lead + 256 and "raised 1x after underruns" in engine.describe_latency()
    finally:
        engine.stop()


def _slow_for_a_moment(standin: str, loop_file, recovery_s: float):
    """Headless playback of a stand-in whose blocks take 40 ms for a moment (underruns: the lead is raised),
    then are fast again. Returns the playback (playing), the model and the lead chosen at start."""
    config = _config(standin, loop_file, lead_recovery_s=recovery_s)
    controls = make_controls(config)
    model = CostlyModel(load_model(standin), cost_s=0.0)
    playback = Playback(config, prepare_processor(config, controls, model=model), controls)
    playback.start()
    engine = playback.engine
    chosen = engine.target_fill
    model.cost_s = 0.040
    deadline = time.monotonic() + 10
    while engine.lead_raises < 2:
        assert time.monotonic() < deadline, "slow blocks did not raise the lead"
        time.sleep(0.005)
    model.cost_s = 0.0
    return playback, chosen


def test_a_raised_lead_comes_back_down_a_period_at_a_time_after_a_stretch_with_no_underrun(standin, loop_file):
    playback, chosen = _slow_for_a_moment(standin, loop_file, recovery_s=0.3)
    engine = playback.engine
    try:
        leads = [engine.target_fill]
        deadline = time.monotonic() + 30
        while engine.target_fill != chosen or engine.lead_lowerings == 0:
            assert time.monotonic() < deadline, f"the lead did not come back down: {leads}"
            if engine.target_fill != leads[-1]:
                leads.append(engine.target_fill)
            time.sleep(0.002)
        leads.append(engine.target_fill)
        assert leads[0] >= chosen + 2 * engine.period, "raised at least twice"
        steps = [int(d) for d in np.diff(leads) if d]
        # Down a period at a time (a busy machine may underrun again on the way, which raises it again).
        assert all(step == -engine.period or step % engine.period == 0 < step for step in steps), leads
        assert engine.lead_lowerings >= 2 and engine.lead_extra == 0
        later = _leads_for(engine, 1.0)  # several more stretches (a busy machine may underrun again meanwhile)
        assert min(later) == chosen, "never below the lead chosen for the model"
        status = playback.status()
        assert status["lead_lowerings"] == engine.lead_lowerings and status["lead_raises"] == engine.lead_raises
    finally:
        playback.stop()


def _leads_for(engine: Engine, seconds: float) -> list[int]:
    leads = [engine.target_fill]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        leads.append(engine.target_fill)
        time.sleep(0.002)
    return leads


def test_with_no_lead_recovery_a_raised_lead_stays(standin, loop_file):
    playback, chosen = _slow_for_a_moment(standin, loop_file, recovery_s=0.0)
    engine = playback.engine
    try:
        leads = _leads_for(engine, 1.5)
        assert leads[0] > chosen and leads == sorted(leads), "raised (again, on a busy machine), never lowered"
        assert engine.lead_lowerings == 0
    finally:
        playback.stop()


def _live_engine(standin: str, block: int):
    """An engine on live input driven by hand the way the duplex callback drives it."""
    config = validate({"engine": {"model": standin, "transfer": False, "block_size": block, "ahead_blocks": 1},
                       "audio": {"channels": 1}})
    in_ring = FrameRing(48000, 1)
    live = LiveInput(in_ring, 48000, 48000, 1, timeout=0.0)
    processor = prepare_processor(config, make_controls(config), model=load_model(standin), live=live)
    engine = Engine(processor, 48000, 1, period_hint=block)
    engine.ring.write(np.zeros((engine.live_delay_target, 1), dtype=np.float32))  # primed as `start` does
    engine.ring.started = True
    return engine, in_ring, live


def _cycle(engine: Engine, in_ring: FrameRing, captured: np.ndarray, period: int, render: bool = True):
    """One duplex callback (input pushed, output taken), then the engine catching up, if it may."""
    out = np.zeros((period, 1), dtype=np.float32)
    in_ring.push(captured)
    engine.ring.fill(out)
    while render and engine.ring.available() < engine.target_fill:
        engine.render_into_ring()
    return out[:, 0]


def _click_delay(engine, in_ring, period: int) -> int:
    """Frames from a click at the input to where it comes out."""
    heard = []
    for k in range(12):
        captured = np.zeros((period, 1), dtype=np.float32)
        if k == 0:
            captured[5] = 1.0
        heard.append(_cycle(engine, in_ring, captured, period))
    where = np.flatnonzero(np.concatenate(heard) > 0.5)
    assert where.size == 1, "the click comes out once"
    return int(where[0]) - 5


def test_live_input_goes_back_to_its_delay_after_an_underrun(standin):
    period = 256
    engine, in_ring, live = _live_engine(standin, period)
    silence = np.zeros((period, 1), dtype=np.float32)
    for _ in range(4):
        _cycle(engine, in_ring, silence, period)
    steady = _click_delay(engine, in_ring, period)
    assert steady == engine.live_delay_target + engine.lookahead_frames  # the limiter looks ahead
    # The engine misses three callbacks: the device plays silence and input piles up.
    for _ in range(3):
        _cycle(engine, in_ring, silence, period, render=False)
    assert engine.ring.underruns >= 2
    _cycle(engine, in_ring, silence, period)
    assert live.realignments == 1, "one re-alignment, counted"
    assert _click_delay(engine, in_ring, period) == steady, "the delay is what it was before the underrun"


def test_a_realignment_crossfades_from_what_would_have_played_instead_of_jumping():
    ring = FrameRing(48000, 1)
    live = LiveInput(ring, 48000, 48000, 1, timeout=0.0)
    tone = (0.5 * np.sin(np.arange(4096) * 2 * np.pi * 220 / 48000)).astype(np.float32)[:, None]
    ring.push(tone)
    first, second = np.zeros((1, 256), np.float32), np.zeros((1, 256), np.float32)
    live.read(0, 256, first)
    assert not live.keep_delay(output_frames=0, target_frames=4096, output_sr=48000), "on time: nothing to do"
    assert live.keep_delay(output_frames=0, target_frames=4096 - 256 - 100, output_sr=48000)
    live.read(256, 256, second)
    out = np.concatenate([first[0], second[0]])
    # 100 samples of a 220 Hz tone dropped: a cut would jump by about 0.5; the tone itself moves at
    # most 0.5 * 2 * pi * 220 / 48000 = 0.0144 a sample, and a 64-sample crossfade adds at most 1/64.
    assert np.abs(np.diff(out)).max() < 0.035
    assert np.allclose(second[0, 64:], tone[256 + 100 + 64 : 256 + 100 + 256, 0]), "then the newest input"
    assert live.realignments == 1


def test_blocks_are_timed_at_the_pace_playback_calls_them():
    """A block that follows a sleep is slower than one that follows another block; auto must see
    the slow one, so timing leaves a block's duration between calls as playback does."""
    calls: list[float] = []
    timing = latency.time_blocks(lambda: calls.append(time.perf_counter()), block=441, sr=44100)  # 10 ms blocks
    timed = calls[latency.UNTIMED_CALLS:]
    assert len(timed) == timing.calls
    assert timed[-1] - timed[0] >= 0.010 * (len(timed) - 1) * 0.99, "one call per block's duration, not back to back"


def test_the_engine_sleeps_until_the_callback_takes_frames_and_then_renders_at_once(standin, loop_file):
    """No polling: the engine waits on the ring's doorbell, and a period taken wakes it."""
    config = _config(standin, loop_file)
    processor = prepare_processor(config, make_controls(config))
    engine = Engine(processor, 48000, 1, period_hint=256)
    engine.start()
    try:
        engine.ring.started = True
        blocks = engine.stats.blocks
        time.sleep(0.1)
        assert engine.stats.blocks == blocks, "a full ring: the engine renders nothing while it waits"
        engine.ring.fill(np.zeros((engine.target_fill, 1), dtype=np.float32))  # the callback takes the lead
        deadline = time.monotonic() + 5
        while engine.ring.available() < engine.target_fill:
            assert time.monotonic() < deadline, "the engine did not wake when the callback took frames"
            time.sleep(0.001)
        assert engine.ring.underruns == 0
    finally:
        engine.stop()


def test_the_doorbell_wakes_a_waiting_thread_once_for_any_number_of_rings():
    bell = FrameRing(16, 1).doorbell
    assert bell.wait(0.0) is False
    for _ in range(1000):  # more rings than a pipe would hold, where there is no eventfd
        bell.ring()
    assert bell.wait(0.0) is True
    assert bell.wait(0.0) is False, "one wait takes every ring so far"
    woke = []
    waiter = threading.Thread(target=lambda: woke.append(bell.wait(5.0)))
    waiter.start()
    time.sleep(0.05)
    bell.ring()
    waiter.join(5.0)
    assert woke == [True]
