"""A performer plays a model's prior: `/ravemap/autopilot/prior 1` with an autopilot amount makes the
engine take its latents from the model's `prior` (temperature = amount) instead of the loop's, and
`prior 0` gives the loop back; a model without a prior refuses it with a reply.

No RAVE fixture (nor the default model) was exported with a prior, so these tests play a stand-in
(`tests.standins.WithPrior`): a TorchScript export in RAVE v2's method layout (`prior` in
`get_methods`, `prior_params = [1, ratio, latent_size, ratio]`, temperature `[1, 1, frames]` in,
latents `[1, latent_size, frames]` out) whose prior plays a recognisable latent, temperature x
(+3, -3, +3, ...), so the sound it decodes to is known exactly. The refusal for a model with no
`prior` at all is tested with the RAVE fixture in tests/test_performer_controls.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ravemap.audio.playback import make_controls, prepare_processor
from ravemap.config import validate
from tests.osc_peer import OscPeer, SharedDaemon
from tests.standins import ListsAPriorWithoutOne, WithPrior, prior_latent, save

LATENT = 8


@pytest.fixture(scope="module")
def prior_model(tmp_path_factory):
    return save(WithPrior(sr=44100, channels=1, latent=LATENT, ratio=256),
                tmp_path_factory.mktemp("prior") / "with_prior.ts")


def _processor(model, loop):
    config = validate({
        "engine": {"model": str(model), "loop": str(loop), "latency": "fixed", "limit_db": None},
        "audio": {"device": "none"},
    })
    controls = make_controls(config)
    return prepare_processor(config, controls), controls


def test_the_prior_is_found_at_load_and_an_empty_one_is_not(prior_model, tmp_path):
    from ravemap.audio.model import load_model

    model = load_model(prior_model)
    assert model.info.has_prior and "with a prior" in model.info.describe()
    with torch.inference_mode():
        z = model.prior(0.5, 6)
    assert list(z.shape) == [1, LATENT, 6]
    assert torch.allclose(z[0, :, 3], 0.5 * prior_latent(LATENT))
    empty = load_model(save(ListsAPriorWithoutOne(sr=44100, channels=1, latent=LATENT, ratio=256),
                            tmp_path / "empty_prior.ts"))
    assert "prior" in empty.info.methods and not empty.info.has_prior


def test_the_engine_plays_the_prior_and_then_the_loop_again(prior_model, loop_file):
    """Two processors in lockstep: one switches the prior on for three blocks, the other never does."""
    played, controls = _processor(prior_model, loop_file)
    reference, _ = _processor(prior_model, loop_file)
    model = played.model
    with torch.inference_mode():
        expected = model.decode(model.prior(0.8, played.frames_per_block))[0, 0].numpy()
    for block in range(8):
        controls.set_prior_temperature(0.8 if 2 <= block < 5 else None)
        out, loop_out = played.next_block()[:, 0], reference.next_block()[:, 0]
        if 2 <= block < 5:
            assert out == pytest.approx(expected, abs=1e-5), f"block {block}: the prior's sound"
            assert np.abs(out - loop_out).max() > 0.05, "the prior does not sound like the loop"
            assert played.chain_status()["prior_playing"]
        else:
            assert out == pytest.approx(loop_out, abs=1e-6), f"block {block}: the loop"
            assert not played.chain_status()["prior_playing"]


def test_offsets_and_scale_still_apply_to_the_prior(prior_model, loop_file):
    played, controls = _processor(prior_model, loop_file)
    controls.set_prior_temperature(1.0)
    controls.set_scale(0.0)
    played.set_offsets_now(controls.offsets)  # the scale jumps to 0 at once
    quiet = played.next_block()
    with torch.inference_mode():
        silence = played.model.decode(torch.zeros(1, LATENT, played.frames_per_block))[0, 0].numpy()
    assert quiet[:, 0] == pytest.approx(silence, abs=1e-5), "scale 0 removes the prior's part too"


@pytest.fixture(scope="module")
def shared(tmp_path_factory, prior_model, loop_file):
    d = SharedDaemon(tmp_path_factory.mktemp("prior-daemon"), prior_model, loop_file)
    yield d
    assert d.close() == 0, d.daemon.stderr()[-2000:]


@pytest.fixture
def live(shared) -> OscPeer:
    return shared.reset()


def test_prior_1_is_accepted_for_a_model_with_a_prior_and_status_reports_it(live):
    assert live.status()["autopilot_prior"] is False
    live.send("/ravemap/autopilot/prior", 1)
    state = live.status()
    assert state["autopilot_prior"] is True and state["prior_playing"] is False, "amount 0: the loop still plays"
    live.send("/ravemap/autopilot", 0.7)
    state = live.status()
    assert state["autopilot_prior"] is True and state["prior_playing"] is True
    assert state["autopilot"] == pytest.approx(0.7)
    live.send("/ravemap/autopilot/prior", 0)
    state = live.status()
    assert state["autopilot_prior"] is False and state["prior_playing"] is False, "prior 0: the loop again"
    assert "/ravemap/autopilot/prior" not in str(state["last_error"])


def test_a_model_listing_an_empty_prior_refuses_prior_1(tmp_path, loop_file):
    model = save(ListsAPriorWithoutOne(sr=44100, channels=1, latent=LATENT, ratio=256), tmp_path / "empty.ts")
    daemon = SharedDaemon(tmp_path, model, loop_file)
    try:
        peer = daemon.reset()
        peer.send("/ravemap/autopilot/prior", 1)
        error = peer.wait_for("/ravemap/error", timeout=5)[0]
        assert "empty.ts lists `prior`, but it did not return latents" in error, error
        assert peer.status()["autopilot_prior"] is False
    finally:
        assert daemon.close() == 0


def test_a_swap_to_a_model_without_a_prior_ends_prior_mode_and_says_so(tmp_path, prior_model, loop_file):
    daemon = SharedDaemon(tmp_path, prior_model, loop_file)  # its own: it ends on another model
    try:
        peer = daemon.reset()
        peer.send("/ravemap/autopilot", 0.5)
        peer.send("/ravemap/autopilot/prior", 1)
        assert peer.status()["prior_playing"] is True
        peer.drain()
        peer.send("/ravemap/model", "default")  # the embedded default model has no prior
        assert peer.wait_for("/ravemap/model", timeout=60) == ["default.ts"]
        state = peer.status()  # after the swap's messages, which came in order on one socket
        assert peer.last("/ravemap/autopilot/prior") == [0], "controllers see prior mode end"
        assert state["autopilot_prior"] is False and state["prior_playing"] is False
        assert state["autopilot"] == pytest.approx(0.5), "the walk plays on the new model"
    finally:
        assert daemon.close() == 0
