"""The engine thread keeps playing whatever happens: device rates, hot swaps, bad models."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from ravemap.audio.controls import EngineControls
from ravemap.audio.engine import SWAP_CROSSFADE_S
from ravemap.audio.playback import Playback, make_controls, prepare_processor
from ravemap.audio.processor import OffsetSmoother
from ravemap.audio.ring import FrameRing, Tap
from ravemap.config import validate
from ravemap.errors import ModelError
from tests.standins import WithMethodList, save


def _headless(model, loop, rate=48000, **engine):
    """A headless playback at the first release's 2048 x 3 unless told (not about latency: see tests/osc_peer.py)."""
    config = validate({
        "engine": {"model": str(model), "loop": str(loop), "latency": "fixed", **engine},
        "audio": {"device": "none", "samplerate": rate, "channels": 2},
    })
    controls = make_controls(config)
    return Playback(config, prepare_processor(config, controls), controls), controls


def _until(condition, timeout: float = 5.0) -> None:
    """Wait for the engine thread to take a swap at its next block boundary."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the engine did not take the swap"
        time.sleep(0.01)


def test_a_44k_model_plays_on_a_48k_clock_without_underruns(tiny_model, loop_file):
    playback, _ = _headless(tiny_model, loop_file, rate=48000)
    playback.start()
    tap = Tap(48000 * 3, 2)
    playback.engine.ring.tap = tap
    time.sleep(2.5)
    playback.stop()
    played = tap.recorded()
    assert playback.engine.ring.underruns == 0
    assert played.shape[0] > 48000 * 2
    assert np.isfinite(played).all() and np.abs(played).max() <= 1.0 and np.abs(played).max() > 0


def test_a_failed_model_swap_keeps_the_old_model_playing(tmp_path, tiny_model, loop_file):
    playback, _ = _headless(tiny_model, loop_file)
    playback.start()
    try:
        before = playback.processor
        bad = tmp_path / "bad.ts"
        bad.write_bytes(b"not a model")
        with pytest.raises(ModelError):
            playback.swap_model(bad)
        time.sleep(0.5)
        assert playback.processor is before
        blocks = playback.engine.stats.blocks
        time.sleep(0.5)
        assert playback.engine.stats.blocks > blocks, "still playing"
    finally:
        playback.stop()
    assert playback.engine.ring.underruns == 0


def test_a_model_and_a_loop_swap_take_effect_between_blocks(tmp_path, tiny_model, streaming_model, loop_file):
    from tests.conftest import write_loop

    playback, _ = _headless(tiny_model, loop_file)
    playback.start()
    try:
        playback.swap_model(streaming_model)
        _until(lambda: playback.processor.model.info.streaming)
        other = write_loop(tmp_path / "other.wav", seconds=1.0, seed=7)
        playback.swap_loop(other)
        _until(lambda: playback.processor.loop.path == other)
        stereo = save(WithMethodList(sr=48000, channels=2, latent=4, ratio=256), tmp_path / "st.ts")
        playback.swap_model(stereo)
        _until(lambda: playback.processor.model.info.sr == 48000)
        time.sleep(0.5)
    finally:
        playback.stop()
    assert playback.engine.stats.swaps == 3
    assert playback.engine.stats.errors == 0
    assert playback.engine.ring.underruns == 0


def test_live_encoding_encodes_every_block_and_keeps_up(tiny_model, loop_file):
    playback, _ = _headless(tiny_model, loop_file, encode="live")
    model = playback.processor.model
    calls = []
    encode = model._encode
    model._encode = lambda x: (calls.append(x.shape[-1]), encode(x))[1]
    playback.start()
    time.sleep(1.0)
    playback.stop()
    blocks = playback.engine.stats.blocks
    assert playback.processor.latents is None
    assert len(calls) >= blocks > 10 and set(calls) == {playback.processor.block}
    assert playback.engine.ring.underruns == 0


def test_a_jump_in_a_slider_glides_instead_of_clicking():
    smoother = OffsetSmoother(2, frame_seconds=512 / 44100, smoothing_ms=50)
    out = np.zeros((2, 8), dtype=np.float32)
    smoother.frames((1.0, -1.0), 8, out)
    assert 0 < out[0, 0] < out[0, -1] < 1.0, "rises over several frames"
    assert np.all(np.diff(out[0]) > 0) and np.all(np.diff(out[1]) < 0)
    for _ in range(40):
        smoother.frames((1.0, -1.0), 8, out)
    assert out[0, -1] == pytest.approx(1.0, abs=1e-3)


def test_offsets_are_clamped_and_non_finite_ones_refused():
    controls = EngineControls(4, (-3.0, 3.0))
    assert controls.set_offsets((10, -10, 0.5, 0)) == (3.0, -3.0, 0.5, 0.0)
    with pytest.raises(ValueError):
        controls.set_offsets((float("nan"), 0, 0, 0))
    with pytest.raises(ValueError):
        controls.set_offset(0, float("inf"))
    assert controls.offsets == (3.0, -3.0, 0.5, 0.0)


def test_the_callback_plays_silence_and_counts_when_the_engine_is_late():
    ring = FrameRing(1024, 2)
    ring.started = True
    ring.write(np.ones((100, 2), dtype=np.float32))
    out = np.full((256, 2), 7.0, dtype=np.float32)
    ring.fill(out)
    assert np.all(out[:100] == 1.0) and np.all(out[100:] == 0.0)
    assert ring.underruns == 1
    ring.write(np.full((300, 2), 0.5, dtype=np.float32))
    ring.fill(out)
    assert np.all(out == 0.5) and ring.underruns == 1


def test_live_input_plays_through_the_model_and_dry_is_the_input(tiny_model):
    from ravemap.audio.live import LiveInput
    from ravemap.audio.model import load_model
    from ravemap.audio.playback import prepare_processor

    config = validate({"engine": {"model": str(tiny_model), "transfer": False, "block_size": 2048}})
    controls = make_controls(config)
    ring = FrameRing(44100, 2)
    live = LiveInput(ring, 44100, 44100, 1, timeout=0.05)
    processor = prepare_processor(config, controls, model=load_model(tiny_model), live=live)
    assert processor.settings.encode == "live"
    played = np.random.default_rng(3).uniform(-0.5, 0.5, (2048 * 4, 2)).astype(np.float32)
    ring.push(played)
    out = np.concatenate([processor.next_block() for _ in range(4)])
    la = processor.limiter.lookahead  # engine.limit_db's look-ahead delays everything; the input stays under it
    assert np.array_equal(out[la:, 0], played.mean(axis=1)[:-la]), "a stereo input is mixed for a mono model"
    assert live.late_blocks == 0
    late = np.concatenate([processor.next_block() for _ in range(2)])
    assert not late[la:].any() and live.late_blocks == 2, "input that never came plays as silence, counted"
    controls.set_transfer(True)
    ring.push(played)
    wet = np.concatenate([processor.next_block() for _ in range(4)])
    assert np.isfinite(wet).all() and not np.array_equal(wet[2048:, 0], played[2048 : 4 * 2048].mean(axis=1))


def test_pausing_fades_to_silence_and_resuming_keeps_the_offsets(tiny_model, loop_file):
    config = validate({"engine": {"model": str(tiny_model), "loop": str(loop_file), "block_size": 2048}})
    controls = make_controls(config)
    processor = prepare_processor(config, controls)
    controls.set_offsets((1.0, -1.0, 0.5, 0.0))
    processor.next_block()
    controls.set_paused(True)
    fade = processor.next_block()
    assert np.abs(fade[-256:]).max() < np.abs(fade[:256]).max(), "a fade, not a cut"
    after = processor.next_block()
    la = processor.limiter.lookahead  # the limiter's look-ahead still held the fade's last samples
    assert not after[la:].any() and np.abs(after[:la]).max() <= np.abs(fade[-256:]).max(), "then silence"
    controls.set_paused(False)
    processor.next_block()
    assert np.abs(processor.next_block()).max() > 0
    assert controls.offsets == (1.0, -1.0, 0.5, 0.0)
    assert processor.smoother.current == pytest.approx([1.0, -1.0, 0.5, 0.0], abs=0.02), "the glide went on"


def test_hot_swaps_release_the_models_they_replace(tiny_model, streaming_model, loop_file):
    """Six swaps: every model that stopped playing is freed (the first one used to stay held by the
    playback for good, a whole model's memory; RSS grew from 278 to 500+ MB over 20 swaps)."""
    import gc
    import weakref

    playback, _ = _headless(tiny_model, loop_file)
    playback.start()
    try:
        replaced = []
        for i in range(6):
            replaced.append(weakref.ref(playback.newest.model))
            playback.swap_model(streaming_model if i % 2 == 0 else tiny_model)
            _until(lambda: playback.engine._pending is None)
        gc.collect()
        alive = [i for i, ref in enumerate(replaced) if ref() is not None and ref() is not playback.newest.model]
        assert alive == [], f"models replaced by swaps {alive} are still held"
    finally:
        playback.stop()


def test_a_loop_swap_right_after_a_model_swap_builds_on_the_new_model(tiny_model, streaming_model, loop_file,
                                                                       tmp_path):
    """The loop swap starts from the processor handed over last, not the one the engine plays this
    instant (it used to read the engine's, so a loop swap made before the engine's next block put
    the old model back); and the other way round."""
    from tests.conftest import write_loop

    other_loop = write_loop(tmp_path / "other.wav", seconds=1.3, seed=5)
    playback, _ = _headless(tiny_model, loop_file)
    playback.start()
    try:
        for _ in range(3):
            playback.swap_model(streaming_model)
            playback.swap_loop(other_loop)  # at once: the engine has not taken the model yet
            assert playback.newest.model.info.path == streaming_model
            _until(lambda: playback.engine._pending is None)
            assert playback.processor.model.info.path == streaming_model
            assert playback.processor.loop.path == other_loop
            playback.swap_loop(loop_file)
            playback.swap_model(tiny_model)
            _until(lambda: playback.engine._pending is None)
            assert (playback.processor.model.info.path, playback.processor.loop.path) == (tiny_model, loop_file)
    finally:
        playback.stop()


class _MarkedTap(Tap):
    """A `Tap` that knows where in the ring's timeline its recording starts."""

    def __init__(self, ring: FrameRing, frames: int, channels: int):
        super().__init__(frames, channels)
        self.ring = ring
        self.start: int | None = None

    def capture(self, out: np.ndarray) -> None:
        if self.start is None:
            self.start = self.ring.read - out.shape[0]  # inside `fill`, after it took these frames
        super().capture(out)


def _chosen_lead(engine) -> int:
    """The lead `auto` chose for what plays, in whole periods, with no raise."""
    period, choice = engine.period, engine.processor.latency
    return max(1, math.ceil(choice.lead_s * engine.out_sr / period)) * period


@pytest.mark.alone
def test_ten_model_swaps_crossfade_without_a_step_an_underrun_or_a_raised_lead(tiny_model, loop_file):
    """Default model and the tiny fixture, swapped back and forth at the shipped latency (auto): across each
    swap the output moves no more from one sample to the next than the signal itself does plus what a
    20 ms equal-power fade adds; no underrun; the lead is the one auto chose for the model now playing."""
    from tests.conftest import REPO

    default = REPO / "models" / "default.ts"
    config = validate({"engine": {"model": str(default), "loop": str(loop_file)},
                       "audio": {"device": "none", "samplerate": 48000, "channels": 2}})
    controls = make_controls(config)
    playback = Playback(config, prepare_processor(config, controls), controls)
    playback.start()
    engine = playback.engine
    tap = _MarkedTap(engine.ring, 48000 * 120, 2)
    engine.ring.tap = tap
    fade = round(SWAP_CROSSFADE_S * 48000)
    try:
        time.sleep(0.5)
        swaps, added = [], []
        for i in range(10):
            playback.swap_model(tiny_model if i % 2 == 0 else default)  # loaded, timed, warmed: handed over
            underruns = engine.ring.underruns
            _until(lambda: engine.stats.swaps == i + 1 and engine._fade is None  # noqa: B023 - called here only
                   and engine.ring.read >= engine.last_swap_frame + fade  # the fade has been heard
                   and not engine.holding)  # and the lead held while the model was prepared let go
            time.sleep(0.05)  # the first blocks after the fade
            added.append(engine.ring.underruns - underruns)
            swaps.append(engine.last_swap_frame)
            assert engine.lead_extra == 0 and engine.target_fill == _chosen_lead(engine), f"swap {i}"
            time.sleep(0.3)  # the new model plays on a while (the audio after the swap, measured below)
        assert added == [0] * 10, "no underrun from the hand-over to the end of the crossfade"
        assert engine.stats.swaps == 10 and engine.stats.errors == 0
    finally:
        playback.stop()
    played = tap.recorded()
    assert tap.start is not None and played.shape[0] < tap.buffer.shape[0], "the recording holds every swap"
    step = np.abs(np.diff(played, axis=0)).max(axis=1)
    # What a fade adds to a sample's step: the gains' own change times the signals, at most pi / (2 N) * sqrt(2).
    fade_allows = math.pi / (2 * fade) * math.sqrt(2) * np.abs(played).max()
    for i, at in enumerate(swaps):
        at -= tap.start
        around = step[at - 256 : at + fade + 256]
        own = max(step[at - 9600 : at - 512].max(), step[at + fade + 2048 : at + fade + 9600].max())
        assert around.max() <= math.sqrt(2) * own + fade_allows, (
            f"swap {i}: a step of {around.max():.3f} where the signal's own steps reach {own:.3f}")
