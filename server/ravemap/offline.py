"""`ravemap train NAME` and `ravemap plot NAME`: work on a saved mapping without a daemon.

`train_mapping` fits the mapping's regressor on its examples in this process, with a
progress bar on stderr, and saves the result atomically (the same file format and store as
the daemon). `plot_mapping` draws the examples on the input plane and, for each latent dim,
the learned field as a heatmap, because performers would rather look than read numbers.

Threads: the caller's only (matplotlib with the Agg backend, no window).
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import TextIO

import numpy as np

from ravemap.errors import MappingError
from ravemap.mapping.regressor import FitResult, fit
from ravemap.mapping.store import Mapping, load_mapping, save_mapping, training_arrays, training_report

GRID = 64


class ProgressBar:
    """A one-line text bar, redrawn at most 20 times a second."""

    def __init__(self, out: TextIO, width: int = 30):
        self.out = out
        self.width = width
        self._last = 0.0

    def __call__(self, fraction: float, loss: float) -> None:
        now = time.monotonic()
        if fraction < 1.0 and now - self._last < 0.05:
            return
        self._last = now
        filled = int(round(self.width * min(max(fraction, 0.0), 1.0)))
        bar = "#" * filled + "-" * (self.width - filled)
        self.out.write(f"\r[{bar}] {100 * fraction:5.1f}%  loss {loss:.5f}")
        if fraction >= 1.0:
            self.out.write("\n")
        self.out.flush()


def train_mapping(folder: Path, name: str, epochs: int | None = None, out: TextIO = sys.stderr) -> FitResult:
    mapping = load_mapping(folder, name)
    if not mapping.examples:
        raise MappingError(f"mapping {name!r} in {folder} has no examples to train on; record some first")
    x, y, taught = training_arrays(mapping)
    settings = mapping.settings if epochs is None else replace(mapping.settings, epochs=epochs)
    result = fit(x, y, settings, progress=ProgressBar(out))
    mapping.regressor = result.regressor
    mapping.training = training_report(result)
    if not all(taught):
        mapping.training["taught"] = list(taught)
    save_mapping(folder, mapping)
    return result


def learned_field(mapping: Mapping, grid: int = GRID) -> np.ndarray:
    """Predictions over the input plane of dims 0 and 1 (others at 0.5): [n_out, grid, grid]."""
    assert mapping.regressor is not None
    axis = np.linspace(0.0, 1.0, grid)
    xx, yy = np.meshgrid(axis, axis)
    points = np.full((grid * grid, mapping.input_size), 0.5)
    points[:, 0] = xx.ravel()
    if mapping.input_size > 1:
        points[:, 1] = yy.ravel()
    predicted = np.asarray(mapping.regressor.predict(points))
    low, high = mapping.output_range
    return np.clip(predicted, low, high).T.reshape(-1, grid, grid)


def _input_label(mapping: Mapping, index: int, fallback: str) -> str:
    """`input 0 (x)`, or with Wekinator's setInputNames `input 0 (name)`."""
    if index < len(mapping.input_names):
        return f"input {index} ({mapping.input_names[index]})"
    return f"input {index} ({fallback})" if index < mapping.input_size else ""


def output_title(mapping: Mapping, k: int) -> str:
    """`latent dim 2`, or with Wekinator's setOutputNames `name (latent dim 2)`."""
    dim = f"latent dim {mapping.output_dims[k]}"
    return f"{mapping.output_names[k]} ({dim})" if k < len(mapping.output_names) else dim


def describe_names(mapping: Mapping) -> str:
    """The names a Wekinator user gave (setInputNames, setOutputNames), for `ravemap plot` to print."""
    inputs = ", ".join(mapping.input_names) if mapping.input_names else f"{mapping.input_size} unnamed"
    outputs = ", ".join(output_title(mapping, k) for k in range(len(mapping.output_dims)))
    return f"inputs: {inputs}; outputs: {outputs}"


def plot_mapping(folder: Path, name: str, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mapping = load_mapping(folder, name)
    inputs = np.array([e.input for e in mapping.examples], dtype=float).reshape(-1, mapping.input_size)
    n_out = len(mapping.output_dims)
    panels = 1 + (n_out if mapping.regressor is not None else 0)
    fig, axes = plt.subplots(1, panels, figsize=(3.4 * panels, 3.6), squeeze=False)
    ax = axes[0, 0]
    ys = inputs[:, 1] if mapping.input_size > 1 else np.zeros(len(inputs))
    ax.scatter(inputs[:, 0], ys, c=np.arange(len(inputs)), cmap="viridis", edgecolors="black", s=40)
    for i, (x, y) in enumerate(zip(inputs[:, 0], ys, strict=True)):
        ax.annotate(str(i + 1), (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    xlabel, ylabel = _input_label(mapping, 0, "x"), _input_label(mapping, 1, "y")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel=xlabel, ylabel=ylabel, aspect="equal", title=f"{len(inputs)} examples")
    if mapping.regressor is not None:
        field = learned_field(mapping)
        low, high = mapping.output_range
        for k in range(n_out):
            ax = axes[0, k + 1]
            image = ax.imshow(field[k], origin="lower", extent=(0, 1, 0, 1), cmap="coolwarm",
                              vmin=min(low, -abs(field[k]).max()), vmax=max(-low, abs(field[k]).max()))
            ax.scatter(inputs[:, 0], ys, c="black", s=12)
            ax.set(title=output_title(mapping, k), xlabel=xlabel, aspect="equal")
            fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
        kind = mapping.settings.kind
        loss = mapping.training.get("loss")
        subtitle = f"{kind}, loss {loss:.4f}" if isinstance(loss, float) else kind
    else:
        subtitle = "not trained yet: `ravemap train` or /ravemap/train draws the learned field"
    fig.suptitle(f"mapping {mapping.name!r} ({subtitle})", fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
