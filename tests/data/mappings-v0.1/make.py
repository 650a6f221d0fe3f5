"""Writes the mapping files in this folder with ravemap 0.1's own code (the `server` package, before the
rename to `ravemap`), and `expected.json`: what 0.1 loaded from each (examples, settings, predictions).

    cd <a checkout of 0.1> && .venv/bin/python <this file> <this folder>

tests/test_mapping_files.py loads each with today's code and compares. Kept for the record; run once."""

import json
import sys
from pathlib import Path

import numpy as np
from server.mapping.regressor import KINDS, RegressorSettings, fit
from server.mapping.store import Example, Mapping, load_mapping, save_mapping, training_arrays, training_report

folder = Path(sys.argv[1])
rng = np.random.default_rng(7)
QUERIES = [[0.1, 0.2], [0.5, 0.5], [0.9, 0.3], [0.33, 0.77]]


def poses(n: int, outputs: int = 4) -> list[Example]:
    x = rng.random((n, 2))
    y = np.tanh(x @ rng.normal(size=(2, outputs)) * 2.0) * 3.0
    return [Example(tuple(float(v) for v in a), tuple(float(v) for v in b)) for a, b in zip(x, y, strict=True)]


def mapping(name: str, **kw) -> Mapping:
    return Mapping(name=name, input_size=2, output_dims=(0, 1, 2, 3), output_range=(-3.0, 3.0),
                   model="rave_v2.ts", **kw)


made = [mapping("empty"), mapping("examples", examples=poses(12))]
for kind in KINDS:
    m = mapping(f"trained-{kind}", examples=poses(15),
                settings=RegressorSettings(kind=kind, hidden=(16, 8), epochs=300, seed=3, knn_k=3))
    result = fit(*training_arrays(m)[:2], m.settings)
    m.regressor, m.training = result.regressor, training_report(result)
    made.append(m)
partial = poses(10)
partial = [Example(e.input, tuple(None if (i + k) % 3 == 0 else v for k, v in enumerate(e.output)))
           for i, e in enumerate(partial)]
m = mapping("untaught-outputs", examples=partial, settings=RegressorSettings(kind="linear"))
m.regressor = fit(*training_arrays(m)[:2], m.settings).regressor
made.append(m)
made.append(mapping("named", examples=poses(6), input_names=("accel_x", "accel_y"),
                    output_names=("timbre", "pitch", "noise", "space"),
                    extras={"vectors": {"drums": [0.5, -1.25, 2.0, 0.0]}, "note": "é ✓",
                            "nested": [[1, 2], {"a": None}]}))
wide = Mapping(name="wide", input_size=5, output_dims=(7, 2), output_range=(-1.5, 4.0),
               examples=[Example(tuple(rng.random(5).tolist()), tuple(rng.random(2).tolist())) for _ in range(8)],
               settings=RegressorSettings(kind="knn", knn_k=2, knn_power=1.5, validation_fraction=0.0, patience=0))
wide.regressor = fit(*training_arrays(wide)[:2], wide.settings).regressor
made.append(wide)

expected = {}
for m in made:
    save_mapping(folder, m)
    back = load_mapping(folder, m.name)
    queries = np.array([q * (back.input_size // 2) + [0.5] * (back.input_size % 2) for q in QUERIES])
    expected[m.name] = {
        "examples": [[list(e.input), list(e.output)] for e in back.examples],
        "settings": back.settings.to_dict(),
        "predictions": None if back.regressor is None else back.regressor.predict(queries).tolist(),
        "queries": queries.tolist(),
        "input_names": list(back.input_names), "output_names": list(back.output_names),
        "extras": back.extras, "training": back.training, "model": back.model,
        "output_dims": list(back.output_dims), "output_range": list(back.output_range),
    }
(folder / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
