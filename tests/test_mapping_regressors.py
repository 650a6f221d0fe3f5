"""A performer's examples become a mapping that hits them and moves smoothly between them."""

from __future__ import annotations

import contextlib
import functools
import json
import pickle
import subprocess
import sys
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ravemap.mapping.regressor import KINDS, Regressor, RegressorSettings, TrainingCancelled, fit
from tests.conftest import REPO, examples

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


def xy_poses(n: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """n distinct XY pad positions, each with a random latent pose of 4 offsets in [-3, 3]."""
    rng = np.random.default_rng(seed)
    return rng.random((n, 2)), rng.uniform(-3.0, 3.0, (n, 4))


def normalised_error(reg: Regressor, x: np.ndarray, y: np.ndarray) -> float:
    y_std = np.asarray(reg.to_state()["y_std"])
    return float(np.abs((reg.predict(x) - y) / y_std).max())


@pytest.mark.parametrize("n", range(4, 11))
def test_an_mlp_hits_every_one_of_four_to_ten_xy_poses_within_005(n):
    x, y = xy_poses(n)
    result = fit(x, y, RegressorSettings())
    assert normalised_error(result.regressor, x, y) < 0.05, result.reason
    assert result.examples == n and result.epochs <= 2000


def test_an_mlp_learns_the_four_corners_of_an_xy_pad():
    x = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    y = np.array([[3.0, 0, 0, 0], [0, 3.0, 0, 0], [0, 0, 3.0, 0], [0, 0, 0, 3.0]])
    reg = fit(x, y, RegressorSettings()).regressor
    assert normalised_error(reg, x, y) < 0.05
    centre = reg.predict(np.array([0.5, 0.5]))
    assert centre.shape == (4,) and np.all(np.abs(centre) < 4.0)


def test_ten_examples_with_a_held_out_part_still_all_shape_the_mapping():
    x, y = xy_poses(10, seed=3)
    result = fit(x, y, RegressorSettings())
    assert result.val_loss is not None and result.val_history
    assert "validation" in result.reason and "all 10 examples" in result.reason
    assert normalised_error(result.regressor, x, y) < 0.05


def test_the_same_seed_gives_the_same_mapping_and_another_seed_a_different_one():
    x, y = xy_poses(6)
    a = fit(x, y, RegressorSettings(seed=1)).regressor.to_state()
    b = fit(x, y, RegressorSettings(seed=1)).regressor.to_state()
    c = fit(x, y, RegressorSettings(seed=2)).regressor.to_state()
    assert a == b
    assert a != c


def test_training_stops_early_on_an_easy_dataset_and_says_why():
    x, y = xy_poses(4)
    result = fit(x, y, RegressorSettings(epochs=5000))
    assert result.epochs < 5000
    assert result.reason == "early stop: training loss stopped improving for 200 epochs"
    assert result.val_loss is None and result.val_history == []
    assert len(result.history) == result.epochs and result.loss < 1e-3


def test_with_enough_examples_validation_decides_when_to_stop_and_says_so():
    rng = np.random.default_rng(0)
    x = rng.random((60, 2))
    y = np.column_stack([x[:, 0] + x[:, 1], x[:, 0] - x[:, 1], 2 * x[:, 0], -x[:, 1]])  # easy: linear
    result = fit(x, y, RegressorSettings(epochs=20000, patience=100))
    assert result.epochs < 20000
    assert result.reason.startswith("early stop: validation loss stopped improving for 100 epochs")
    assert result.val_loss is not None and result.val_loss < 0.05 and result.loss < 0.05


def test_a_long_training_keeps_at_most_a_thousand_history_points():
    x, y = xy_poses(12)
    result = fit(x, y, RegressorSettings(epochs=3000, patience=0))
    assert result.epochs == 3000 and result.reason.endswith("(epoch limit)")
    assert 0 < len(result.history) <= 1000 and 0 < len(result.val_history) <= 1000


def test_progress_goes_from_zero_to_one_a_few_times_a_second():
    calls: list[tuple[float, float]] = []
    x, y = xy_poses(8)
    result = fit(x, y, RegressorSettings(epochs=1500, patience=0), progress=lambda f, loss: calls.append((f, loss)))
    fractions = [f for f, _ in calls]
    assert fractions[-1] == 1.0 and calls[-1][1] == result.loss
    assert all(0.0 <= f <= 1.0 for f in fractions) and fractions == sorted(fractions)
    assert len(calls) <= result.seconds * 20 + 2  # at most ~20 a second, plus the first and the last


def test_should_stop_cancels_a_training():
    x, y = xy_poses(8)
    polls = []

    def should_stop() -> bool:
        polls.append(1)
        return len(polls) > 3

    with pytest.raises(TrainingCancelled):
        fit(x, y, RegressorSettings(epochs=1_000_000, patience=0), should_stop=should_stop)


def test_linear_recovers_a_linear_mapping_exactly():
    rng = np.random.default_rng(1)
    x = rng.random((20, 3))
    w, b = rng.normal(size=(3, 2)), np.array([0.5, -1.0])
    result = fit(x, x @ w + b, RegressorSettings(kind="linear"))
    q = rng.random((5, 3))
    np.testing.assert_allclose(result.regressor.predict(q), q @ w + b, atol=1e-9)
    assert result.loss < 1e-20 and result.reason == "exact least squares (linear)"


@pytest.mark.parametrize("n", [3, 30])  # every example weighted (n <= k), and the k nearest only
def test_knn_is_exact_at_the_examples_and_smooth_between(n):
    x, y = xy_poses(n, seed=5)
    result = fit(x, y, RegressorSettings(kind="knn", knn_k=4))
    reg = result.regressor
    assert np.array_equal(reg.predict(x), y)  # exactly, not nearly
    assert result.reason == "exact (knn)" and result.loss == 0.0
    # along a line across the pad, the output never jumps (neighbour sets change on the way when n > k)
    t = np.linspace(0, 1, 4001)[:, None]
    line = reg.predict((1 - t) * np.array([0.02, 0.1]) + t * np.array([0.97, 0.9]))
    assert np.all(np.isfinite(line))
    assert np.abs(np.diff(line, axis=0)).max() < 0.05
    assert np.all(line.min(axis=0) >= y.min(axis=0) - 1e-9) and np.all(line.max(axis=0) <= y.max(axis=0) + 1e-9)


def test_knn_half_way_between_two_examples_is_their_average():
    reg = fit([[0.0], [1.0]], [[0.0, 2.0], [4.0, -2.0]], RegressorSettings(kind="knn")).regressor
    np.testing.assert_allclose(reg.predict([0.5]), [2.0, 0.0])


def test_knn_averages_duplicate_inputs_with_different_outputs():
    x = [[0.0, 0.0], [0.0, 0.0], [1.0, 1.0]]
    y = [[1.0], [3.0], [10.0]]
    result = fit(x, y, RegressorSettings(kind="knn"))
    assert result.regressor.predict(np.array([0.0, 0.0]))[0] == 2.0
    assert "1 duplicate" in result.reason and result.loss > 0


@pytest.mark.parametrize("kind", KINDS)
def test_an_input_or_output_that_never_varies_is_handled(kind):
    x = np.array([[0.0, 5.0], [1.0, 5.0], [0.5, 5.0], [0.2, 5.0]])  # second input constant
    y = np.column_stack([x[:, 0] * 2, np.full(4, 7.0)])  # second output constant
    reg = fit(x, y, RegressorSettings(kind=kind)).regressor
    out = reg.predict(x)
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out[:, 1], 7.0, atol=1e-3)


@pytest.mark.parametrize("kind", KINDS)
def test_one_input_vector_or_a_batch_give_the_same_answer(kind):
    x, y = xy_poses(8)
    reg = fit(x, y, RegressorSettings(kind=kind, epochs=300)).regressor
    q = np.random.default_rng(2).random((7, 2))
    batch = reg.predict(q)
    assert batch.shape == (7, 4) and reg.predict(q[0]).shape == (4,)
    np.testing.assert_allclose(np.array([reg.predict(row) for row in q]), batch, rtol=1e-12, atol=1e-12)
    assert (reg.kind, reg.n_in, reg.n_out) == (kind, 2, 4)


@pytest.mark.parametrize("bad, message", [
    (np.zeros(3), "needs 2 inputs"),
    (np.zeros((2, 3)), "needs 2 inputs"),
    (np.zeros((1, 1, 2)), "needs 2 inputs"),
    (np.array([0.1, np.nan]), "finite"),
    (np.array([np.inf, 0.0]), "finite"),
])
def test_predict_refuses_a_wrong_shape_or_nan(bad, message):
    reg = fit(*xy_poses(4), RegressorSettings(kind="linear")).regressor
    with pytest.raises(ValueError, match=message):
        reg.predict(bad)


@pytest.mark.parametrize("kind", KINDS)
def test_a_regressor_survives_json_and_pickle_with_identical_predictions(kind):
    x, y = xy_poses(12)
    reg = fit(x, y, RegressorSettings(kind=kind, epochs=300)).regressor
    q = np.random.default_rng(3).random((50, 2))
    state = json.loads(json.dumps(reg.to_state()))
    assert state["kind"] == kind and state["x_mean"] and state["y_std"]  # normalisation included
    assert np.array_equal(Regressor.from_state(state).predict(q), reg.predict(q))
    assert np.array_equal(pickle.loads(pickle.dumps(reg)).predict(q), reg.predict(q))


def test_predict_is_pure_numpy_and_never_loads_torch(tmp_path):
    states = {kind: fit(*xy_poses(6), RegressorSettings(kind=kind, epochs=50)).regressor.to_state() for kind in KINDS}
    (tmp_path / "states.json").write_text(json.dumps(states))
    code = (
        "import json, sys, numpy as np\n"
        "from ravemap.mapping.regressor import Regressor\n"
        f"states = json.load(open({str(tmp_path / 'states.json')!r}))\n"
        "for s in states.values(): Regressor.from_state(s).predict(np.array([0.3, 0.6]))\n"
        "print('torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_many_threads_can_predict_at_once():
    x, y = xy_poses(10)
    regs = [fit(x, y, RegressorSettings(kind=kind, epochs=200)).regressor for kind in KINDS]
    q = np.random.default_rng(4).random((200, 2))
    expected = [np.array([r.predict(row) for row in q]) for r in regs]
    failures = []

    def hammer() -> None:
        for _ in range(5):
            for reg, want in zip(regs, expected, strict=True):
                got = np.array([reg.predict(row) for row in q])
                if not np.array_equal(got, want):
                    failures.append(reg.kind)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


@pytest.mark.parametrize("x, y, message", [
    ([], [], "no examples"),
    (np.zeros((0, 2)), np.zeros((0, 4)), "no examples"),
    (np.zeros((3, 2)), np.zeros((2, 4)), "3 input rows but 2 output rows"),
    (np.zeros(3), np.zeros((3, 4)), "2-D"),
    ([[0.0, np.nan], [1.0, 1.0]], [[0.0], [1.0]], "example(s) 0 are not finite"),
    ([[0.0, 0.0], [1.0, 1.0]], [[0.0], [np.inf]], "outputs of example(s) 1"),
    ([[0.0, 1.0], [1.0]], [[0.0], [1.0]], "rows of numbers of equal length"),
    ([["a", "b"]], [[1.0]], "rows of numbers"),
])
@pytest.mark.parametrize("kind", KINDS)
def test_fit_refuses_bad_data_with_a_clear_message(x, y, message, kind):
    with pytest.raises(ValueError) as caught:
        fit(x, y, RegressorSettings(kind=kind))
    assert message in str(caught.value)


def test_settings_round_trip_and_refuse_bad_values_naming_the_field():
    s = RegressorSettings(kind="knn", hidden=[16, 8], epochs=10, knn_k=2)
    assert s.hidden == (16, 8)
    assert RegressorSettings.from_dict(json.loads(json.dumps(s.to_dict()))) == s
    assert RegressorSettings.from_dict({}) == RegressorSettings()
    with pytest.raises(ValueError, match="kind: 'svm' is not allowed: use one of 'mlp', 'linear' or 'knn'"):
        RegressorSettings.from_dict({"kind": "svm"})
    with pytest.raises(ValueError, match=r"epoch: unknown setting \(did you mean epochs\?\)"):
        RegressorSettings.from_dict({"epoch": 5})
    for field, value in [("epochs", 0), ("epochs", 1.5), ("learning_rate", 0.0), ("learning_rate", float("nan")),
                         ("hidden", []), ("hidden", [0]), ("hidden", "32"), ("validation_fraction", 1.0),
                         ("patience", -1), ("knn_k", 0), ("knn_power", -1.0), ("seed", True), ("min_delta", -1)]:
        with pytest.raises(ValueError, match=field):
            RegressorSettings.from_dict({field: value})


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.text(max_size=10), json_values, max_size=6))
def test_settings_from_random_json_are_valid_or_a_value_error(d):
    with contextlib.suppress(ValueError):
        RegressorSettings.from_dict(d)


@functools.cache
def valid_states() -> dict[str, dict]:
    return {kind: fit(*xy_poses(5), RegressorSettings(kind=kind, epochs=20)).regressor.to_state() for kind in KINDS}


@pytest.mark.parametrize("change, message", [
    (lambda s: {"weights": [1, 2]}, "version: missing"),
    (lambda s: [s], "is not allowed: an object"),
    (lambda s: {**s, "version": 2}, "newer ravemap"),
    (lambda s: {**s, "kind": "svm"}, "kind: 'svm' is not allowed: use one of"),
    (lambda s: {**s, "n_in": 3}, "x_mean: .* is not allowed: 3 numbers"),
    (lambda s: {**s, "x_std": [1.0, 0.0]}, "x_std\\[1\\]: 0.0 is not allowed: input should be greater than 0"),
    (lambda s: {**s, "y_mean": [0.0, 0.0, float("nan"), 0.0]}, "y_mean\\[2\\]: nan is not allowed: a finite number"),
    (lambda s: {**s, "layers": s["layers"][:1]}, "layers: .* is not allowed: list should have at least 2 items"),
    (lambda s: {**s, "layers": [s["layers"][0], {"weight": [[1.0]] * 32, "bias": [1.0]}]}, "layers\\[1\\].weight"),
])
def test_a_bad_or_foreign_regressor_state_says_what_is_wrong(change, message):
    with pytest.raises(ValueError, match=message):
        Regressor.from_state(change(valid_states()["mlp"]))


@settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(KINDS), key=st.sampled_from(
    ["version", "kind", "n_in", "n_out", "x_mean", "x_std", "y_mean", "y_std", "layers", "weight", "bias", "k",
     "power", "points", "outputs"]), value=json_values)
def test_a_regressor_state_with_any_field_replaced_loads_or_raises_value_error(kind, key, value):
    state = dict(valid_states()[kind])
    state[key] = value
    with contextlib.suppress(ValueError):
        Regressor.from_state(state).predict(np.array([0.5, 0.5]))
