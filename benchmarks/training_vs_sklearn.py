"""Our MLP training beside scikit-learn's MLPRegressor, measured side by side in one run.

    .venv/bin/python benchmarks/training_vs_sklearn.py [--epochs 2000] [--rounds 3]

Needs scikit-learn (for this script only: pip install scikit-learn).

For 100, 1000 and 10000 examples of a smooth synthetic 2 -> 4 mapping (seed 0), both fit a
2-32-4 ReLU network with Adam, full batch, the same epochs and learning rate, no early stopping,
no weight decay, on the same normalised arrays; the MSE is measured the same way for both, on the
training data in normalised output units. Each figure is the median over interleaved rounds so
that machine noise hits both alike. Then the time of one `Regressor.predict` call (one input
vector) for each kind, with sklearn's `predict` on one row for reference.

Everything runs on one thread: torch.set_num_threads(1), and one BLAS thread for numpy.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy loads its BLAS

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "server"))

from ravemap.mapping.regressor import KINDS, RegressorSettings, fit  # noqa: E402


def synthetic(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A smooth 2 -> 4 mapping over the unit square, normalised (mean 0, std 1 per column)."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, 2))
    y = np.column_stack([
        np.sin(6 * x[:, 0]) * np.cos(3 * x[:, 1]),
        x[:, 0] * x[:, 1],
        np.exp(-4 * ((x - 0.5) ** 2).sum(axis=1)),
        np.tanh(3 * (x[:, 0] - x[:, 1])),
    ])
    return (x - x.mean(0)) / x.std(0), (y - y.mean(0)) / y.std(0)


def ours(x: np.ndarray, y: np.ndarray, epochs: int, lr: float) -> tuple[float, float, int]:
    settings = RegressorSettings(kind="mlp", hidden=(32,), epochs=epochs, learning_rate=lr,
                                 validation_fraction=0.0, patience=0)
    start = time.perf_counter()
    result = fit(x, y, settings)
    seconds = time.perf_counter() - start
    mse = float(np.mean((result.regressor.predict(x) - y) ** 2))
    return seconds, mse, result.epochs


def sklearn_mlp(x: np.ndarray, y: np.ndarray, epochs: int, lr: float):
    from sklearn.neural_network import MLPRegressor

    return MLPRegressor(hidden_layer_sizes=(32,), activation="relu", solver="adam", learning_rate_init=lr,
                        max_iter=epochs, batch_size=len(x), shuffle=False, alpha=0.0, tol=0.0,
                        n_iter_no_change=epochs + 1, early_stopping=False, random_state=0)


def theirs(x: np.ndarray, y: np.ndarray, epochs: int, lr: float) -> tuple[float, float, int]:
    model = sklearn_mlp(x, y, epochs, lr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: max_iter reached, as intended
        start = time.perf_counter()
        model.fit(x, y)
        seconds = time.perf_counter() - start
    mse = float(np.mean((model.predict(x) - y) ** 2))
    return seconds, mse, int(model.n_iter_)


def per_call(fn, x: np.ndarray, calls: int) -> float:
    """Median seconds per call over 5 batches."""
    times = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(calls):
            fn(x)
        times.append((time.perf_counter() - start) / calls)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=2000)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    try:
        import sklearn
    except ImportError:
        raise SystemExit("this benchmark needs scikit-learn: pip install scikit-learn") from None

    print(f"torch {torch.__version__}, scikit-learn {sklearn.__version__}, numpy {np.__version__}; "
          f"2-32-4 ReLU, Adam lr {args.lr}, full batch, {args.epochs} epochs, median of {args.rounds} rounds")
    ours(*synthetic(20), epochs=10, lr=args.lr)  # warm-up: torch import and first-call costs
    theirs(*synthetic(20), epochs=10, lr=args.lr)

    print(f"\n{'examples':>8} | {'ours s':>8} {'ours MSE':>10} | {'sklearn s':>9} {'sk MSE':>10} | "
          f"{'time ours/sk':>12} {'MSE ours/sk':>11}")
    for n in (100, 1000, 10000):
        x, y = synthetic(n)
        runs: dict[str, list[tuple[float, float, int]]] = {"ours": [], "sklearn": []}
        for _ in range(args.rounds):
            runs["ours"].append(ours(x, y, args.epochs, args.lr))
            runs["sklearn"].append(theirs(x, y, args.epochs, args.lr))
        (a_s, a_mse), (b_s, b_mse) = (
            (statistics.median(r[0] for r in runs[k]), statistics.median(r[1] for r in runs[k])) for k in runs)
        epochs_seen = {r[2] for k in runs for r in runs[k]}
        assert epochs_seen == {args.epochs}, f"both must run every epoch, ran {epochs_seen}"
        print(f"{n:>8} | {a_s:>8.3f} {a_mse:>10.2e} | {b_s:>9.3f} {b_mse:>10.2e} | "
              f"{a_s / b_s:>12.2f} {a_mse / b_mse:>11.2f}")

    print("\nRegressor.predict, one input vector (2 -> 4):")
    one = np.array([0.123, -0.456])  # between examples (normalised units)
    for n in (100, 1000):
        x, y = synthetic(n)
        for kind in KINDS:
            reg = fit(x, y, RegressorSettings(kind=kind, epochs=200, validation_fraction=0.0)).regressor
            seconds = per_call(reg.predict, one, 2000)
            print(f"  {kind:<7} fitted on {n:>5} examples: {seconds * 1e6:7.1f} us")
        model = sklearn_mlp(x, y, 200, args.lr)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(x, y)
        seconds = per_call(model.predict, one[None, :], 2000)
        print(f"  sklearn MLPRegressor.predict (1 row), {n:>5} examples: {seconds * 1e6:7.1f} us")


if __name__ == "__main__":
    main()
