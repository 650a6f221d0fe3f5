"""Regressors that map a controller's input vector to latent offsets, Wekinator-style.

`fit(X, Y, settings)` trains one of three kinds on the performer's examples and returns a
`FitResult` holding an immutable `Regressor`:

- `mlp`: inputs -> hidden layers (ReLU) -> outputs, mean squared error, full-batch Adam, trained in
  torch; the weights are then exported to numpy.
- `linear`: least squares with a bias (numpy `lstsq`).
- `knn`: inverse-distance-weighted k nearest neighbours; exactly the target at an example input.

Inputs and outputs are normalised from the data (mean / standard deviation; a column that does not
vary keeps a scale of 1) and predictions are de-normalised, so losses are in normalised output units.
Everything is deterministic for a given `seed` (torch on one thread; run it where torch has one).

Threads: `fit` runs wherever it is called (the trainer's child process in the daemon) and calls
`progress` / `should_stop` on that thread. `Regressor.predict` is pure numpy, holds no mutable state
and may be called from any thread at once; it is what a control thread runs per gesture.

torch is imported by `fit` only when an MLP is trained, so loading a mapping and predicting never
needs it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from ravemap.mapping.settings import KINDS, Kind, RegressorSettings
from ravemap.validation import Number, Problems, Whole, explain, problem

__all__ = ["KINDS", "FitResult", "Regressor", "RegressorSettings", "RegressorState", "TrainingCancelled", "fit"]

STATE_VERSION = 1
MAX_HISTORY = 1000
PROGRESS_INTERVAL_S = 0.05  # progress at most 20 times a second
STOP_CHECK_INTERVAL_S = 0.01
LR_DROPS = 3  # MLP: times the learning rate is lowered on a plateau
LR_DROP_FACTOR = 0.2
_ZERO_DISTANCE2 = 1e-20  # squared normalised distance treated as "at an example"


class TrainingCancelled(Exception):
    """`should_stop()` returned True while fitting."""


# ----------------------------------------------------------------------------------------------
# Regressors


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=np.float64, order="C")  # a private copy
    a.flags.writeable = False
    return a


class Regressor:
    """A trained mapping from `n_in` inputs to `n_out` outputs. Immutable; `predict` is thread-safe."""

    kind: str = ""

    def __init__(self, x_mean: np.ndarray, x_std: np.ndarray, y_mean: np.ndarray, y_std: np.ndarray):
        self._x_mean = _frozen(x_mean)
        self._x_scale = _frozen(1.0 / np.asarray(x_std, dtype=np.float64))
        self._x_std = _frozen(x_std)
        self._y_mean = _frozen(y_mean)
        self._y_std = _frozen(y_std)

    @property
    def n_in(self) -> int:
        return int(self._x_mean.shape[0])

    @property
    def n_out(self) -> int:
        return int(self._y_mean.shape[0])

    def predict(self, x: np.ndarray) -> np.ndarray:
        """x [n_in] -> [n_out], or [n, n_in] -> [n, n_out] (float64). ValueError on a wrong shape or NaN/inf."""
        a = np.asarray(x, dtype=np.float64)
        if a.ndim not in (1, 2) or a.shape[-1] != self.n_in:
            raise ValueError(f"predict needs {self.n_in} inputs (shape [{self.n_in}] or [n, {self.n_in}]), "
                             f"got shape {list(a.shape)}")
        if not np.isfinite(a).all():
            raise ValueError("predict inputs must be finite numbers (got NaN or infinity)")
        z = (a - self._x_mean) * self._x_scale
        return self._predict_normalised(z)

    def _predict_normalised(self, z: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def to_state(self) -> dict:
        """A JSON-serialisable description (lists of floats), normalisation included."""
        return {
            "version": STATE_VERSION,
            "kind": self.kind,
            "n_in": self.n_in,
            "n_out": self.n_out,
            "x_mean": self._x_mean.tolist(),
            "x_std": self._x_std.tolist(),
            "y_mean": self._y_mean.tolist(),
            "y_std": self._y_std.tolist(),
            **self._own_state(),
        }

    def _own_state(self) -> dict:
        raise NotImplementedError

    @staticmethod
    def from_state(state: dict) -> Regressor:
        """Rebuild a regressor from `to_state`'s output. ValueError saying what is wrong otherwise."""
        try:
            return build(RegressorState.model_validate(state))
        except ValidationError as err:
            raise ValueError(explain(err.errors(), "regressor state", RegressorState)) from None
        except Problems as err:
            raise ValueError(explain(err.problems, "regressor state")) from None

    def __reduce__(self) -> tuple:  # pickled (to and from the trainer process) through its checked state
        return (Regressor.from_state, (self.to_state(),))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.n_in} -> {self.n_out}>"


class MLP(Regressor):
    kind = "mlp"

    def __init__(self, layers: list[tuple[np.ndarray, np.ndarray]], **norm: np.ndarray):
        super().__init__(**norm)
        # weights as [in, out] so that a row of inputs goes through as z @ W + b
        self._layers = tuple((_frozen(w), _frozen(b)) for w, b in layers)

    def _predict_normalised(self, z: np.ndarray) -> np.ndarray:
        h = z
        last = len(self._layers) - 1
        for i, (w, b) in enumerate(self._layers):
            h = h @ w
            h += b
            if i < last:
                np.maximum(h, 0.0, out=h)
        h *= self._y_std
        h += self._y_mean
        return h

    def _own_state(self) -> dict:
        return {"layers": [{"weight": w.tolist(), "bias": b.tolist()} for w, b in self._layers]}


class Linear(Regressor):
    kind = "linear"

    def __init__(self, weight: np.ndarray, bias: np.ndarray, **norm: np.ndarray):
        super().__init__(**norm)
        self._weight = _frozen(weight)  # [n_in, n_out], normalised units
        self._bias = _frozen(bias)

    def _predict_normalised(self, z: np.ndarray) -> np.ndarray:
        y = z @ self._weight
        y += self._bias
        y *= self._y_std
        y += self._y_mean
        return y

    def _own_state(self) -> dict:
        return {"weight": self._weight.tolist(), "bias": self._bias.tolist()}


class KNN(Regressor):
    """Inverse-distance weighting over the k nearest examples, in normalised input units.

    With no more than k examples every example takes part (Shepard: weight 1/d^p). With more, the
    weights are (R - d) / (R d) raised to p, R being the distance of the (k+1)-th nearest example,
    so an example's weight falls to zero as it leaves the k nearest and the output stays continuous.
    At an example's input (distance 0) the output is exactly its output (duplicates averaged at fit).
    """

    kind = "knn"
    CHUNK = 4096  # query rows per distance matrix in a batch predict

    def __init__(self, points: np.ndarray, outputs: np.ndarray, k: int, power: float, **norm: np.ndarray):
        super().__init__(**norm)
        self._points = _frozen(points)  # [m, n_in] normalised, distinct
        self._outputs = _frozen(outputs)  # [m, n_out] in output units
        self._k = int(k)
        self._power = float(power)

    def _predict_normalised(self, z: np.ndarray) -> np.ndarray:
        if z.ndim == 1:
            return self._rows(z[None, :])[0]
        return np.concatenate([self._rows(z[i:i + self.CHUNK]) for i in range(0, len(z), self.CHUNK)]) \
            if len(z) else np.zeros((0, self.n_out))

    def _rows(self, z: np.ndarray) -> np.ndarray:
        diff = z[:, None, :] - self._points[None, :, :]
        d2 = np.einsum("qmi,qmi->qm", diff, diff)  # [q, m] squared distances
        q, m = d2.shape
        shepard = m <= self._k
        if shepard:
            idx = np.broadcast_to(np.arange(m), d2.shape)
            near = d2
        else:
            part = np.argpartition(d2, self._k, axis=1)
            idx = part[:, : self._k]
            near = np.take_along_axis(d2, idx, axis=1)
            radius = np.sqrt(np.take_along_axis(d2, part[:, self._k: self._k + 1], axis=1))
        out = np.empty((q, self.n_out))
        exact = near.min(axis=1) <= _ZERO_DISTANCE2
        if exact.any():
            rows = np.flatnonzero(exact)
            out[rows] = self._outputs[idx[rows, np.argmin(near[rows], axis=1)]]
        rest = ~exact
        if rest.any():
            d = np.sqrt(near[rest])
            if shepard:
                w = d ** -self._power
            else:
                r = radius[rest]
                w = (np.maximum(r - d, 0.0) / (r * d)) ** self._power
                w[~(w.sum(axis=1) > 0)] = 1.0  # all k nearest as far as the (k+1)-th: plain average
            out[rest] = np.einsum("qk,qko->qo", w, self._outputs[idx[rest]]) / w.sum(axis=1, keepdims=True)
        return out

    def _own_state(self) -> dict:
        return {"k": self._k, "power": self._power, "points": self._points.tolist(),
                "outputs": self._outputs.tolist()}


_CLASSES: dict[str, type[Regressor]] = {"mlp": MLP, "linear": Linear, "knn": KNN}


def _not_newer(version: int) -> int:
    if version > STATE_VERSION:
        raise ValueError(f"regressor state version {version} was made by a newer ravemap "
                         f"(this one reads up to {STATE_VERSION})")
    return version


Positive = Annotated[Number, Field(gt=0)]
Rows = list[list[Number]]


class Layer(BaseModel):
    model_config = ConfigDict(frozen=True)

    weight: Rows
    bias: list[Number]


class RegressorState(BaseModel):
    """A regressor's `to_state()` as stored in a mapping file. The types are checked here; the
    shapes (which depend on `n_in`, `n_out` and `kind`) by `build`. Keys of other kinds are ignored."""

    model_config = ConfigDict(frozen=True)

    version: Annotated[Whole, Field(ge=1), AfterValidator(_not_newer)]
    kind: Kind
    n_in: Annotated[Whole, Field(ge=1, le=100_000)]
    n_out: Annotated[Whole, Field(ge=1, le=100_000)]
    x_mean: list[Number]
    x_std: list[Positive]
    y_mean: list[Number]
    y_std: list[Positive]
    layers: Annotated[list[Layer], Field(min_length=2, max_length=9)] | None = None  # mlp
    weight: Rows | None = None  # linear
    bias: list[Number] | None = None  # linear
    k: Annotated[Whole, Field(ge=1, le=1024)] | None = None  # knn
    power: Positive | None = None  # knn
    points: Annotated[Rows, Field(min_length=1, max_length=10_000_000)] | None = None  # knn
    outputs: Rows | None = None  # knn


_NEEDS = {"mlp": ("layers",), "linear": ("weight", "bias"), "knn": ("k", "power", "points", "outputs")}


def build(state: RegressorState) -> Regressor:
    """The regressor `state` describes; `Problems` (keys relative to the state) if a shape is wrong."""
    missing = [problem((key,), None, "", "missing") for key in _NEEDS[state.kind] if getattr(state, key) is None]
    if missing:
        raise Problems(missing)
    n_in, n_out = state.n_in, state.n_out

    def array(loc: tuple[str | int, ...], value: Any, shape: tuple[int, ...]) -> np.ndarray:
        try:
            a = np.array(value, dtype=np.float64)
        except ValueError:  # ragged
            a = None
        if a is None or a.shape != shape:
            want = "x".join(str(s) for s in shape)
            raise Problems([problem(loc, value, f"{want} numbers (nested lists), for {n_in} inputs and "
                                                f"{n_out} outputs")])
        return a

    norm = {"x_mean": array(("x_mean",), state.x_mean, (n_in,)), "x_std": array(("x_std",), state.x_std, (n_in,)),
            "y_mean": array(("y_mean",), state.y_mean, (n_out,)), "y_std": array(("y_std",), state.y_std, (n_out,))}
    if state.kind == "linear":
        return Linear(array(("weight",), state.weight, (n_in, n_out)), array(("bias",), state.bias, (n_out,)), **norm)
    if state.kind == "knn":
        assert state.points is not None and state.k is not None and state.power is not None
        m = len(state.points)
        return KNN(array(("points",), state.points, (m, n_in)), array(("outputs",), state.outputs, (m, n_out)),
                   state.k, state.power, **norm)
    assert state.layers is not None
    layers: list[tuple[np.ndarray, np.ndarray]] = []
    fan_in = n_in
    for i, layer in enumerate(state.layers):
        units = n_out if i == len(state.layers) - 1 else len(layer.bias)
        if not 1 <= units <= 100_000:
            raise Problems([problem(("layers", i, "bias"), layer.bias, "1 to 100000 units")])
        layers.append((array(("layers", i, "weight"), layer.weight, (fan_in, units)),
                       array(("layers", i, "bias"), layer.bias, (units,))))
        fan_in = units
    return MLP(layers, **norm)


# ----------------------------------------------------------------------------------------------
# Fitting


@dataclass
class FitResult:
    """What `fit` made and how it went.

    `loss` is the final training MSE over all examples, in normalised output units. `val_loss` is the
    lowest loss on the held-out examples while they were held out (None without validation).
    `history` / `val_history` hold one loss per epoch, thinned to every s-th epoch (s = ceil(epochs /
    1000)) when there are more than 1000.
    """

    regressor: Regressor
    loss: float
    val_loss: float | None
    epochs: int
    seconds: float
    examples: int
    history: list[float] = field(default_factory=list)
    val_history: list[float] = field(default_factory=list)
    reason: str = ""


def check_examples(X: Any, Y: Any) -> tuple[np.ndarray, np.ndarray]:
    """X, Y as float64 arrays [n, n_in], [n, n_out]; ValueError with a clear message otherwise."""
    arrays = []
    for what, data in (("inputs", X), ("outputs", Y)):
        try:
            a = np.array(data, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise ValueError(f"training {what} must be rows of numbers of equal length ({err})") from err
        if a.size == 0 and a.ndim <= 2:
            raise ValueError("no examples to train on: record at least one example first")
        if a.ndim != 2:
            raise ValueError(f"training {what} must be a 2-D array [examples, {what[:-1]} size], "
                             f"got shape {list(a.shape)}")
        bad = np.flatnonzero(~np.isfinite(a).all(axis=1))
        if bad.size:
            listed = ", ".join(str(i) for i in bad[:10]) + (" ..." if bad.size > 10 else "")
            raise ValueError(f"training {what} of example(s) {listed} are not finite numbers (NaN or infinity)")
        arrays.append(a)
    x, y = arrays
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"got {x.shape[0]} input rows but {y.shape[0]} output rows: one of each per example")
    return x, y


def _scale(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = a.mean(axis=0)
    std = a.std(axis=0)
    flat = ~(std > 1e-9 * np.maximum(1.0, np.abs(mean)))  # a column that does not vary
    std[flat] = 1.0
    return mean, std


def _thin(values: list[float]) -> list[float]:
    if len(values) <= MAX_HISTORY:
        return values
    step = math.ceil(len(values) / MAX_HISTORY)
    return values[::step]


class _Ticker:
    """Rate-limits `progress` and `should_stop` calls."""

    def __init__(self, progress: Callable[[float, float], None] | None, should_stop: Callable[[], bool] | None):
        self.progress = progress
        self.should_stop = should_stop
        self.next_progress = 0.0
        self.next_stop = 0.0

    def check(self) -> None:
        if self.should_stop is not None and self.should_stop():
            raise TrainingCancelled("training cancelled")

    def tick(self, fraction: float, loss: float) -> None:
        now = time.perf_counter()
        if self.should_stop is not None and now >= self.next_stop:
            self.next_stop = now + STOP_CHECK_INTERVAL_S
            self.check()
        if self.progress is not None and now >= self.next_progress:
            self.next_progress = now + PROGRESS_INTERVAL_S
            self.progress(fraction, loss)

    def done(self, loss: float) -> None:
        if self.progress is not None:
            self.progress(1.0, loss)


def fit(X: np.ndarray, Y: np.ndarray, settings: RegressorSettings,
        progress: Callable[[float, float], None] | None = None,
        should_stop: Callable[[], bool] | None = None) -> FitResult:
    """Train `settings.kind` on examples X [n, n_in] -> Y [n, n_out].

    progress(fraction 0..1, current loss) is called at most 20 times a second and once at the end;
    should_stop() is polled about every 10 ms and True raises `TrainingCancelled`.

    MLP and validation: with at least `min_validation_examples` examples, a seeded
    `validation_fraction` of them is held out while the network trains on the rest, until the
    held-out loss stops improving for `patience` epochs (or 3/4 of the epoch budget is spent). Then
    the held-out examples join the others and training goes on over all of them until the training
    loss stops improving for `patience` epochs, or the epoch limit. So every recorded example shapes
    the mapping (a performer's handful of poses are all hit), and `val_loss` still reports how well
    the network did on examples it had not seen.

    MLP and plateaus: when the watched loss has not improved for half of `patience` epochs, the
    learning rate is multiplied by 0.2 (at most 3 times per phase), which gets full-batch Adam out
    of the small oscillation it settles into; early stopping then counts on as before.
    `patience` 0 trains for exactly `epochs` epochs. A loss that turns NaN/inf raises ValueError.
    """
    if not isinstance(settings, RegressorSettings):
        raise ValueError(f"settings must be RegressorSettings, got {type(settings).__name__}")
    x, y = check_examples(X, Y)
    ticker = _Ticker(progress, should_stop)
    ticker.check()
    start = time.perf_counter()
    x_mean, x_std = _scale(x)
    y_mean, y_std = _scale(y)
    xn = (x - x_mean) * (1.0 / x_std)
    yn = (y - y_mean) / y_std
    norm = {"x_mean": x_mean, "x_std": x_std, "y_mean": y_mean, "y_std": y_std}
    if settings.kind == "mlp":
        result = _fit_mlp(xn, yn, settings, norm, ticker)
    elif settings.kind == "linear":
        result = _fit_linear(xn, yn, norm)
    else:
        result = _fit_knn(xn, yn, y, settings, norm)
    result.seconds = time.perf_counter() - start
    ticker.done(result.loss)
    return result


def _fit_linear(xn: np.ndarray, yn: np.ndarray, norm: dict) -> FitResult:
    a = np.hstack([xn, np.ones((len(xn), 1))])
    coef, *_ = np.linalg.lstsq(a, yn, rcond=None)
    reg = Linear(coef[:-1], coef[-1], **norm)
    loss = float(np.mean((a @ coef - yn) ** 2))
    return FitResult(reg, loss, None, 0, 0.0, len(xn), [loss], [], "exact least squares (linear)")


def _fit_knn(xn: np.ndarray, yn: np.ndarray, y: np.ndarray, settings: RegressorSettings, norm: dict) -> FitResult:
    points, inverse = np.unique(xn, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    counts = np.bincount(inverse, minlength=len(points)).astype(np.float64)
    outputs = np.zeros((len(points), y.shape[1]))
    np.add.at(outputs, inverse, y)
    outputs /= counts[:, None]
    reg = KNN(points, outputs, settings.knn_k, settings.knn_power, **norm)
    # at each example the prediction is its group's average: the loss is the spread of duplicates
    loss = float(np.mean(((y - outputs[inverse]) / norm["y_std"]) ** 2))
    reason = "exact (knn)" if len(points) == len(xn) else \
        f"exact (knn); {len(xn) - len(points)} duplicate input(s) averaged"
    return FitResult(reg, loss, None, 0, 0.0, len(xn), [loss], [], reason)


def _fit_mlp(xn: np.ndarray, yn: np.ndarray, settings: RegressorSettings, norm: dict, ticker: _Ticker) -> FitResult:
    import torch

    n = len(xn)
    rng = np.random.default_rng(settings.seed)
    n_val = 0
    if settings.validation_fraction > 0 and n >= settings.min_validation_examples:
        n_val = min(n - 1, max(1, round(n * settings.validation_fraction)))
    order = rng.permutation(n) if n_val else np.arange(n)
    val_idx, train_idx = order[:n_val], order[n_val:]

    x_all = torch.from_numpy(xn.astype(np.float32))
    y_all = torch.from_numpy(yn.astype(np.float32))
    x_tr, y_tr = x_all[torch.from_numpy(train_idx)], y_all[torch.from_numpy(train_idx)]
    x_val, y_val = x_all[torch.from_numpy(val_idx)], y_all[torch.from_numpy(val_idx)]

    gen = torch.Generator().manual_seed(settings.seed)
    sizes = [xn.shape[1], *settings.hidden, yn.shape[1]]
    params: list[tuple[torch.Tensor, torch.Tensor]] = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        last = i == len(sizes) - 2
        bound = math.sqrt((3.0 if last else 6.0) / fan_in)  # He-uniform into a ReLU, LeCun for the output
        w = (torch.rand(fan_in, fan_out, generator=gen) * 2 - 1) * bound
        b = torch.zeros(fan_out) if last else (torch.rand(fan_out, generator=gen) * 2 - 1) / math.sqrt(fan_in)
        params.append((w.requires_grad_(), b.requires_grad_()))
    flat = [p for pair in params for p in pair]
    try:  # the fused CPU kernel: a third less time per epoch on these tiny tensors
        optimiser = torch.optim.Adam(flat, lr=settings.learning_rate, fused=True)
    except (RuntimeError, TypeError):
        optimiser = torch.optim.Adam(flat, lr=settings.learning_rate)
    mse = torch.nn.functional.mse_loss

    def forward(h: torch.Tensor) -> torch.Tensor:
        for w, b in params[:-1]:
            h = torch.relu(torch.addmm(b, h, w))
        w, b = params[-1]
        return torch.addmm(b, h, w)

    history: list[float] = []
    val_history: list[float] = []
    patience, min_delta, epochs = settings.patience, settings.min_delta, settings.epochs
    validating = n_val > 0
    phase1_limit = epochs - epochs // 4 if validating else epochs
    best = math.inf
    since_best = 0
    best_val = math.inf
    phase1_reason = ""
    phase1_epoch = 0
    lr_drops = 0
    reason = "epoch limit"
    epoch = 0
    while epoch < epochs:
        optimiser.zero_grad(set_to_none=True)
        loss_t = mse(forward(x_tr), y_tr)
        loss_t.backward()
        optimiser.step()
        epoch += 1
        loss = loss_t.item()
        history.append(loss)
        if validating:
            with torch.no_grad():
                watched = mse(forward(x_val), y_val).item()
            val_history.append(watched)
            best_val = min(best_val, watched)
        else:
            watched = loss
        if not math.isfinite(loss) or not math.isfinite(watched):
            raise ValueError(f"training diverged (loss {loss}) at epoch {epoch}: lower the learning rate "
                             f"(now {settings.learning_rate})")
        if best - watched > min_delta:
            best, since_best = watched, 0
        else:
            since_best += 1
            if since_best == patience // 2 and lr_drops < LR_DROPS:
                # halfway to giving up: a smaller step often gets out of Adam's oscillation
                lr_drops += 1
                for group in optimiser.param_groups:
                    group["lr"] *= LR_DROP_FACTOR
        plateau = patience > 0 and since_best >= patience
        if validating and (plateau or epoch >= phase1_limit):
            phase1_reason = (f"early stop: validation loss stopped improving for {patience} epochs" if plateau
                             else "validation loss still improving at 3/4 of the epoch limit")
            validating = False  # the held-out examples join the training set
            x_tr, y_tr = x_all, y_all
            best, since_best = math.inf, 0
            phase1_epoch = epoch
            lr_drops = 0
            for group in optimiser.param_groups:
                group["lr"] = settings.learning_rate
        elif plateau:
            reason = f"early stop: training loss stopped improving for {patience} epochs"
            break
        ticker.tick(epoch / epochs, loss)

    with torch.no_grad():
        final = mse(forward(x_all), y_all).item()
    if phase1_reason:
        how = "epoch limit" if reason == "epoch limit" else "training loss stopped improving"
        extra = epoch - phase1_epoch
        reason = (f"{phase1_reason}; then {extra} epochs over all {n} examples ({how})" if extra else
                  f"{phase1_reason}; epoch limit before the {n_val} held-out example(s) could be trained on")
    layers = [(w.detach().numpy().astype(np.float64), b.detach().numpy().astype(np.float64)) for w, b in params]
    reg = MLP(layers, **norm)
    return FitResult(reg, final, best_val if n_val else None, epoch, 0.0, n, _thin(history), _thin(val_history),
                     reason)
