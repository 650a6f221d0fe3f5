"""The daemon's audio path, for real: PortAudio callback against a JACK dummy server.

Each test plays 20 s in real time through the engine thread and the sounddevice
callback, records what the callback played (a preallocated tap inside the callback), and
checks what a listener would: no underruns, nothing non-finite or beyond full scale,
offsets change the sound, and transfer off is the dry loop sample for sample.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from server.audio.model import load_model
from server.audio.playback import Playback, make_controls, prepare_processor
from server.audio.ring import Tap
from server.audio.source import load_loop
from server.config import validate
from tests.audio_checks import find_in_loop, spectral_distance
from tests.conftest import JACK_RATE

pytestmark = pytest.mark.jack


def _config(model, loop):
    return validate({
        "engine": {"model": str(model), "loop": str(loop), "block_size": 2048, "ahead_blocks": 3},
        "audio": {"device": "system", "channels": 2},
    })


@pytest.mark.parametrize("model_name", ["streaming_model", "tiny_model"])
def test_twenty_seconds_through_jack(request, jack_server, loop_file, model_name):
    model_path = request.getfixturevalue(model_name)
    config = _config(model_path, loop_file)
    controls = make_controls(config)
    playback = Playback(config, prepare_processor(config, controls), controls)
    playback.start()
    try:
        assert playback.output.samplerate == JACK_RATE
        tap = Tap(22 * JACK_RATE, 2)
        playback.engine.ring.tap = tap
        marks = {}

        def at(seconds):
            time.sleep(max(0.0, seconds - tap.frames / JACK_RATE))
            marks[seconds] = tap.frames

        at(6.0)
        controls.set_offsets((2.5, -2.5, 2.5, -2.5))
        at(12.0)
        controls.set_offsets((0.0, 0.0, 0.0, 0.0))
        controls.set_transfer(False)
        at(20.0)
        underruns = playback.engine.ring.underruns
        xruns = playback.output.xruns
        errors = playback.output.callback_errors
    finally:
        playback.stop()

    played = tap.recorded()
    assert played.shape[0] >= 19.5 * JACK_RATE
    assert underruns == 0, f"{underruns} underruns"
    assert errors == 0
    assert xruns == 0, f"{xruns} PortAudio xruns"
    assert np.isfinite(played).all() and np.abs(played).max() <= 1.0
    assert np.array_equal(played[:, 0], played[:, 1]), "a mono model plays on both channels"

    mono = played[:, 0]
    sec = JACK_RATE
    base_a, base_b = mono[1 * sec : 3 * sec], mono[3 * sec : 5 * sec]
    moved = mono[marks[6.0] + sec : marks[6.0] + 3 * sec]
    noise_floor = spectral_distance(base_a, base_b)
    assert spectral_distance(base_a, moved) > 1.5 * noise_floor, "offsets change the sound"

    model = load_model(model_path)
    loop = load_loop(loop_file, model.info.sr, 1, model.info.ratio).samples[0]
    dry = mono[marks[12.0] + sec // 2 : marks[12.0] + 6 * sec]
    assert find_in_loop(dry, loop) is not None, "transfer off plays the dry loop, bit for bit"
