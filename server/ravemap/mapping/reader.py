"""Big mapping files are parsed and checked in a child process, so that no thread of the daemon
holds the GIL for long.

Why: parsing JSON (`json.loads`, pydantic-core) is one C call that holds the GIL from the first
byte to the last: 60 ms for a 15 MB mapping of 100k examples on an idle machine, 0.4 s for an
80 MB list of numbers, seconds on a busy one, and meanwhile no ping is answered and the engine
may underrun. A file larger than `CHILD_BYTES` is therefore read by `python -m
ravemap.mapping.reader PATH` (started with `subprocess` from the folder holding this `ravemap`
package, at nice +10, as the trainer is): it runs `store.from_text` (the same checks, so the same
error messages) and writes back one pickle on its stdout: the mapping without its examples (a
regressor's arrays pickle as binary buffers), and the examples as two float64 arrays (an untaught
output is NaN: a mapping's values are finite). The parent rebuilds the examples in slices of
`REBUILD_ROWS` (Python code between small C calls: the GIL changes hands every few ms), with the
cyclic garbage collector paused meanwhile (its full passes over the new objects stalled 40 ms).

The child is a program, not a multiprocessing child: it never imports the caller's main module.

Threads: `load_in_child` runs on the caller's thread (the mapping reader thread, or the main
thread at start-up) and waits for the child; nothing here keeps state.
"""

from __future__ import annotations

import contextlib
import gc
import math
import os
import pickle
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from ravemap.errors import MappingError

MODULE = "ravemap.mapping.reader"
CHILD_BYTES = 1 << 20  # files larger than this are parsed in the child
REBUILD_ROWS = 2048
TIMEOUT_S = 300.0  # a 256 MB file on a slow, busy machine
PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder holding this `ravemap` package


def load_in_child(path: Path, where: str):  # -> store.Mapping (store imports this module)
    """The mapping in `path`, parsed and checked by a child process; MappingError as `store.from_text`
    gives for a bad file, or naming the file when the child fails."""
    from ravemap.mapping.store import Example

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(PACKAGE_ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env["OMP_NUM_THREADS"] = "1"
    if not sys.executable:
        raise MappingError(f"{where}: cannot start a reader process (this Python does not know its executable)")
    try:
        done = subprocess.run([sys.executable, "-m", MODULE, str(path), where], cwd=PACKAGE_ROOT, env=env,
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise MappingError(f"{where}: reading it took more than {TIMEOUT_S:.0f} s; not loaded") from None
    except OSError as err:
        raise MappingError(f"{where}: cannot start a reader process: {err}") from err
    try:
        if done.returncode != 0:
            raise ValueError(f"exit code {done.returncode}")
        answer = pickle.loads(done.stdout)  # our own child's answer
    except Exception as err:  # noqa: BLE001 - a child that died says why on stderr
        said = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["nothing"]
        raise MappingError(f"{where}: the reader process failed ({err}; it said: {said[0]})") from None
    if answer[0] == "error":
        raise MappingError(answer[1])
    _, mapping, x, y = answer
    examples = []
    # A full collection walks every object the process holds; 700k new ones would start several,
    # each longer than the last (40 ms stalls): none while they are made.
    collecting = gc.isenabled()
    gc.disable()
    try:
        for start in range(0, len(x), REBUILD_ROWS):
            inputs = x[start:start + REBUILD_ROWS].tolist()
            outputs = y[start:start + REBUILD_ROWS].tolist()
            examples += [Example(tuple(a), tuple(None if math.isnan(v) else v for v in b))
                         for a, b in zip(inputs, outputs, strict=True)]
    finally:
        if collecting:
            gc.enable()
    mapping.examples = examples
    return mapping


def _answer(path: str, where: str) -> tuple:
    from ravemap.mapping.store import from_text

    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8-sig")
    except UnicodeDecodeError:
        return ("error", f"{where}: not a ravemap mapping file (not UTF-8 text)")
    except OSError as err:
        return ("error", f"cannot read {where}: {err.strerror or err}")
    try:
        mapping = from_text(text, where)
    except MappingError as err:
        return ("error", str(err))
    n_in, n_out = mapping.input_size, len(mapping.output_dims)
    x = np.array([e.input for e in mapping.examples], dtype=np.float64).reshape(-1, n_in)
    y = np.array([[math.nan if v is None else v for v in e.output] for e in mapping.examples],
                 dtype=np.float64).reshape(-1, n_out)
    return ("ok", replace(mapping, examples=[]), x, y)


def main(argv: list[str]) -> int:
    path, where = argv
    with contextlib.suppress(AttributeError, OSError):  # no os.nice on Windows
        os.nice(10)  # below the daemon, as the trainer
    answer = _answer(path, where)
    sys.stdout.buffer.write(pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL))
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
