"""What the page is shown: snapshots of the session, the examples, the learned field, the folders.

Every page renders only what the daemon pushes (the daemon owns the state), so these are
plain JSON-ready values built from what the session publishes for other threads: `Session.status()`
and the immutable `SessionView` (`Session.view`), whose regressor is never changed once trained.

Threads: `page_state`, `example_points` and `folder_lists` run on the web server's thread;
`field_picture` runs in its "ravemap-web-field" worker thread (a knn over many examples
takes tens of milliseconds; the event loop keeps serving meanwhile).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ravemap.config import Config
from ravemap.control import vocabulary
from ravemap.mapping.store import Mapping
from ravemap.names import check_name
from ravemap.offline import learned_field
from ravemap.session import LOOP_SUFFIXES, MODEL_SUFFIXES, Session, SessionView

FIELD_GRID = 32  # cells per side of the learned-field picture (`ravemap plot` draws 64)
MAX_POINTS = 1000  # examples drawn as dots: the newest ones
MAX_LISTED = 200  # names per folder listing
STATE_KEYS = ("mapping", "examples", "trained", "regressor", "recording", "running", "training", "inputs",
              "targets", "offsets", "transfer", "engine", "gain_db", "model", "loop", "underruns", "last_error",
              "latency_ms", "gestures", "gesture", "gesture_recording", "scenes", "scene", "bpm", "quantize")


def page_config(config: Config, pads: int) -> dict[str, Any]:
    """What the page needs to build itself: how many faders, their range, how many pad fingers, and the
    parameter controls the vocabulary declares (`params`: the page builds one per entry with `page` set)."""
    return {
        "inputs": config.inputs.size,
        "dims": list(config.latent.dims),
        "range": list(config.latent.range),
        "pads": pads,
        "params": vocabulary.page_params(),
    }


def page_state(session: Session) -> dict[str, Any]:
    """The session's state as the page shows it (numbers rounded: the page needs no more)."""
    view = session.view
    status = session.status()
    keys = (*STATE_KEYS, *(p["state"] for p in vocabulary.page_params() if p["state"]))
    state = {key: _finite(status[key]) for key in keys if key in status}
    for key in ("inputs", "targets", "offsets"):
        state[key] = [round(float(v), 5) for v in state[key]]
    fraction, loss = view.progress
    state["progress"] = [round(float(fraction), 4), float(loss) if np.isfinite(loss) else None]
    final = view.loss
    state["loss"] = float(final) if final is not None and np.isfinite(final) else None
    state["morph_unit"] = session.config.tempo.morph_unit  # what the page's morph time is in
    return state


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: a number that is not finite is shown as unknown (null)."""
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def example_points(view: SessionView) -> list[list[float]]:
    """The newest examples' positions on the pad (input dims 0 and 1)."""
    examples = view.examples[-MAX_POINTS:]
    return [[round(e.input[0], 4), round(e.input[1] if len(e.input) > 1 else 0.5, 4)] for e in examples]


def field_picture(view: SessionView, grid: int = FIELD_GRID) -> dict[str, Any] | None:
    """The field `ravemap plot` draws, on a coarser grid: per latent dim, grid x grid values, rows from
    y = 0 (bottom) up, each row from x = 0; None when the mapping is not trained."""
    if view.regressor is None:
        return None
    mapping = Mapping(view.name, view.input_size, view.output_dims, view.output_range, regressor=view.regressor)
    values = learned_field(mapping, grid)
    values = np.where(np.isfinite(values), values, 0.0)
    return {
        "grid": grid,
        "dims": list(mapping.output_dims),
        "range": list(mapping.output_range),
        "values": [[round(float(v), 3) for v in plane.ravel()] for plane in values],
    }


def _names(folder: Path, suffixes: tuple[str, ...]) -> list[str]:
    """Files in `folder` with one of `suffixes` whose names the session would accept (no hidden files)."""
    try:
        entries = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in suffixes and p.is_file())
    except OSError:
        return []
    names = []
    for name in entries:
        try:
            names.append(check_name(name))
        except ValueError:
            continue
        if len(names) >= MAX_LISTED:
            break
    return names


def folder_lists(config: Config, mappings_dir: Path) -> dict[str, list[str]]:
    """The pickers' contents: models, loops and mappings (names without `.json`)."""
    return {
        "models": _names(config.paths.models_dir, MODEL_SUFFIXES),
        "loops": _names(config.paths.loops_dir, LOOP_SUFFIXES),
        "mappings": [n[:-5] for n in _names(mappings_dir, (".json",))],
    }
