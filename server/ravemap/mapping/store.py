"""Mapping files: one human-readable, versioned JSON file per mapping, `<folder>/<name>.json`.

A file holds the input and output spec, the examples, the regressor settings and trained state,
the model it was made with, the last training report and `extras` (kept as-is for later features):

    {
     "format": "ravemap-mapping",
     "version": 1,
     "name": "xy pad",
     "model": "rave_v2_full.ts",
     "input": {"size": 2},                          (+ "names": [...] once named)
     "output": {"dims": [0, 1, 2, 3], "range": [-3.0, 3.0]},   (+ "names": [...])
     "examples": [{"input": [0.1, 0.9], "output": [1.5, -2.0, null, 0.3]}, ...],
     "regressor": {"settings": {"kind": "mlp", ...}, "state": {...} or null},
     "training": {"loss": ..., "reason": ..., ...},
     "extras": {}
    }

An output value `null` is an output this example does not teach (recorded while that output's
recording was off, or deleted for that output, as Wekinator does per output): `training_arrays`
fills it from the nearest example that teaches that output.

Examples are written one per line, so a file of 100k examples is written in a fraction of
a second, and reads as a list in any editor. Saving is atomic (a temp file in the same folder,
fsync, rename, fsync of the folder), so a crash or a full disk leaves the old file whole; the
temp files of killed saves are removed by a later save once they are old. A file larger than
`MAX_FILE_BYTES` is refused before it is read. Every problem is a `MappingError` naming the file
and what is wrong; loading never raises anything else for a bad file. Names are names, never paths.

One process at a time holds a mapping: `MappingLock` takes an OS lock (flock, or msvcrt's
locking on Windows) on `<folder>/.<name>.lock`, which the OS releases when the process ends
however it ends, so a crashed daemon never leaves a mapping locked.

Threads: any; nothing here keeps state but a `MappingLock`. Two threads saving the same name at
once each write a whole file; the last rename wins (ravemap's session saves from one thread).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import stat
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ravemap import names
from ravemap.errors import MappingError
from ravemap.mapping.regressor import FitResult, Regressor, RegressorSettings

FORMAT = "ravemap-mapping"
VERSION = 1
SUFFIX = ".json"
MAX_SIZE = 1024  # inputs, or output dims
MAX_EXAMPLES = 1_000_000
STALE_TEMP_S = 600.0  # a temp file this old is a save that was killed, never one still running
# 1,000,000 examples of 2 inputs and 4 outputs take about 150 MB; a file larger than this is
# not a mapping ravemap wrote, and parsing it would take seconds and gigabytes.
MAX_FILE_BYTES = 256 << 20
LOCK_SUFFIX = ".lock"


@dataclass(frozen=True)
class Example:
    """One recorded pose: controller input -> latent offsets (for `Mapping.output_dims`); an output
    that is None is one this example does not teach."""

    input: tuple[float, ...]
    output: tuple[float | None, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "input", tuple(self.input))
        object.__setattr__(self, "output", tuple(self.output))


@dataclass
class Mapping:
    name: str
    input_size: int
    output_dims: tuple[int, ...]  # which latent dims the outputs drive
    output_range: tuple[float, float]
    examples: list[Example] = field(default_factory=list)
    settings: RegressorSettings = RegressorSettings()
    regressor: Regressor | None = None
    model: str | None = None  # model file name it was made with
    training: dict = field(default_factory=dict)  # the last training report (see `training_report`)
    extras: dict = field(default_factory=dict)  # room for later features; saved and loaded as-is (JSON)
    input_names: tuple[str, ...] = ()  # empty, or one per input (Wekinator's setInputNames)
    output_names: tuple[str, ...] = ()  # empty, or one per output dim (setOutputNames)


MAX_NAME = 64  # characters in an input or output name


def training_arrays(mapping: Mapping) -> tuple[np.ndarray, np.ndarray, tuple[bool, ...]]:
    """(X, Y, taught) to fit one regressor on. An output an example does not teach (None) takes the
    value of the nearest example (in input space) that teaches it; `taught[k]` is False for an output
    no example teaches (filled with the neutral offset, 0 clamped to the range: in run mode such an
    output keeps its manual value)."""
    x = np.array([e.input for e in mapping.examples], dtype=float).reshape(-1, mapping.input_size)
    y = np.array([[np.nan if v is None else v for v in e.output] for e in mapping.examples],
                 dtype=float).reshape(-1, len(mapping.output_dims))
    low, high = mapping.output_range
    taught = []
    for k in range(y.shape[1]):
        have = ~np.isnan(y[:, k])
        taught.append(bool(have.any()))
        if have.all():
            continue
        if not have.any():
            y[:, k] = min(max(0.0, low), high)
            continue
        missing = np.flatnonzero(~have)
        sources = np.flatnonzero(have)
        for start in range(0, len(missing), 1024):  # bounded memory for big mappings
            rows = missing[start:start + 1024]
            distances = ((x[rows, None, :] - x[None, sources, :]) ** 2).sum(axis=2)
            y[rows, k] = y[sources[distances.argmin(axis=1)], k]
    return x, y, tuple(taught)


def training_report(result: FitResult) -> dict:
    """`Mapping.training` from a `FitResult`: everything but the regressor, as JSON values."""
    return {
        "loss": float(result.loss),
        "val_loss": None if result.val_loss is None else float(result.val_loss),
        "epochs": int(result.epochs),
        "seconds": float(result.seconds),
        "examples": int(result.examples),
        "reason": str(result.reason),
        "history": [float(v) for v in result.history],
        "val_history": [float(v) for v in result.val_history],
    }


# ----------------------------------------------------------------------------------------------
# Names and paths


def check_name(name: str) -> str:
    """`name` if it is a safe mapping name, else MappingError saying what is allowed."""
    try:
        return names.check_name(name, "mapping name")
    except ValueError as err:
        raise MappingError(str(err)) from None


def mapping_path(folder: Path, name: str) -> Path:
    """`<folder>/<name>.json` (folder resolved); MappingError for a bad name or a link out of the folder."""
    check_name(name)
    try:
        base = Path(folder).resolve()
        path = base / f"{name}{SUFFIX}"
        real = path.resolve()
    except (OSError, RuntimeError) as err:  # a symlink loop
        raise MappingError(f"cannot resolve mapping {name!r} in {folder}: {_reason(err)}") from err
    if not real.is_relative_to(base) or real == base:
        raise MappingError(f"mapping {name!r}: {path} leads to {real}, outside the mapping folder {base}")
    return path


def list_mappings(folder: Path) -> list[str]:
    """Names of the mapping files in `folder` (sorted); [] when it does not exist."""
    try:
        entries = list(Path(folder).iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as err:
        raise MappingError(f"cannot list the mapping folder {folder}: {_reason(err)}") from err
    names = []
    for entry in entries:
        if entry.suffix != SUFFIX:
            continue
        try:
            mapping_path(folder, entry.stem)
            if entry.is_file():
                names.append(entry.stem)
        except (MappingError, OSError):
            continue  # temp files, odd names, links out of the folder
    return sorted(names)


# ----------------------------------------------------------------------------------------------
# JSON


def to_json(mapping: Mapping) -> dict:
    """The file's content as a JSON-ready dict. TypeError / ValueError if a field can't be written."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "name": mapping.name,
        "model": mapping.model,
        "input": {"size": mapping.input_size, **({"names": list(mapping.input_names)} if mapping.input_names else {})},
        "output": {"dims": list(mapping.output_dims), "range": list(mapping.output_range),
                   **({"names": list(mapping.output_names)} if mapping.output_names else {})},
        "examples": [{"input": [float(v) for v in e.input],
                      "output": [None if v is None else float(v) for v in e.output]}
                     for e in mapping.examples],
        "regressor": {
            "settings": mapping.settings.to_dict(),
            "state": None if mapping.regressor is None else mapping.regressor.to_state(),
        },
        "training": mapping.training,
        "extras": mapping.extras,
    }


def from_json(d: Any, where: str) -> Mapping:
    """A Mapping from `to_json`'s output; MappingError starting with `where` for anything else."""
    return _Reader(where).mapping(d)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:  # an int too large for a float
        return False


def _kind(v: Any) -> str:
    names = {dict: "an object", list: "a list", str: "text", bool: "true/false", type(None): "null",
             int: "a number", float: "a number"}
    return names.get(type(v), type(v).__name__)


class _Reader:
    def __init__(self, where: str):
        self.where = where

    def fail(self, what: str) -> MappingError:
        return MappingError(f"{self.where}: {what}")

    def obj(self, d: dict, key: str, label: str) -> dict:
        if key not in d:
            raise self.fail(f"missing field {label!r}")
        v = d[key]
        if not isinstance(v, dict):
            raise self.fail(f"field {label!r} must be an object, got {_kind(v)}")
        return v

    def count(self, d: dict, key: str, label: str, low: int, high: int) -> int:
        if key not in d:
            raise self.fail(f"missing field {label!r}")
        v = d[key]
        if not _is_int(v) or not low <= v <= high:
            raise self.fail(f"field {label!r} must be a whole number in {low}..{high}, got {_short(v)}")
        return v

    def numbers(self, v: Any, label: str, size: int | None = None) -> tuple[float, ...]:
        if not isinstance(v, list):
            raise self.fail(f"field {label!r} must be a list of numbers, got {_kind(v)}")
        if size is not None and len(v) != size:
            raise self.fail(f"field {label!r} must hold {size} numbers, got {len(v)}")
        for i, x in enumerate(v):
            if not _is_number(x):
                raise self.fail(f"field {label}[{i}] must be a finite number, got {_short(x)}")
        return tuple(float(x) for x in v)

    def outputs(self, v: Any, label: str, size: int) -> tuple[float | None, ...]:
        """Output values: numbers, or null for an output the example does not teach (not all null)."""
        if isinstance(v, list) and len(v) == size and any(x is None for x in v):
            if all(x is None for x in v):
                raise self.fail(f"field {label!r} must teach at least one output, got only nulls")
            numbers = self.numbers([0.0 if x is None else x for x in v], label, size)
            return tuple(None if x is None else n for x, n in zip(v, numbers, strict=True))
        return self.numbers(v, label, size)

    def names(self, d: dict, label: str, size: int) -> tuple[str, ...]:
        v = d.get("names", [])
        if not isinstance(v, list) or (v and len(v) != size):
            raise self.fail(f"field {label!r} must be a list of {size} names, got {_short(v)}")
        for i, name in enumerate(v):
            if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME or not name.isprintable():
                raise self.fail(f"field {label}[{i}] must be printable text of 1 to {MAX_NAME} characters, "
                                f"got {_short(name)}")
        return tuple(v)

    def mapping(self, d: Any) -> Mapping:
        if not isinstance(d, dict) or "format" not in d:
            raise self.fail(f"not a ravemap mapping file (holds {_kind(d)} without \"format\": \"{FORMAT}\")")
        if d["format"] != FORMAT:
            raise self.fail(f"not a ravemap mapping file (format is {_short(d['format'])}, not {FORMAT!r})")
        version = d.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise self.fail(f"field 'version' must be a whole number >= 1, got {_short(version)}")
        if version > VERSION:
            raise self.fail(f"made by a newer ravemap (file version {version}; this ravemap reads up to "
                            f"version {VERSION}): update ravemap to load it")
        if "name" not in d:
            raise self.fail("missing field 'name'")
        try:
            name = check_name(d["name"])
        except MappingError as err:
            raise self.fail(f"field 'name': {err}") from None
        model = d.get("model")
        if model is not None and not isinstance(model, str):
            raise self.fail(f"field 'model' must be text or null, got {_kind(model)}")

        inp = self.obj(d, "input", "input")
        input_size = self.count(inp, "size", "input.size", 1, MAX_SIZE)
        out = self.obj(d, "output", "output")
        dims_raw = out.get("dims")
        if not isinstance(dims_raw, list) or not 1 <= len(dims_raw) <= MAX_SIZE:
            raise self.fail(f"field 'output.dims' must be a list of 1 to {MAX_SIZE} latent dimensions")
        for i, v in enumerate(dims_raw):
            if not _is_int(v) or not 0 <= v < 100_000:
                raise self.fail(f"field output.dims[{i}] must be a latent dimension (whole number >= 0), "
                                f"got {_short(v)}")
        if len(set(dims_raw)) != len(dims_raw):
            raise self.fail(f"field 'output.dims' lists a dimension twice: {_short(dims_raw)}")
        output_dims = tuple(dims_raw)
        low, high = self.numbers(out.get("range"), "output.range", 2)
        if not low < high:
            raise self.fail(f"field 'output.range' must be [low, high] with low < high, got {[low, high]}")

        raw_examples = d.get("examples")
        if not isinstance(raw_examples, list) or len(raw_examples) > MAX_EXAMPLES:
            raise self.fail(f"field 'examples' must be a list (of at most {MAX_EXAMPLES}), got {_kind(raw_examples)}")
        examples = []
        for i, e in enumerate(raw_examples):
            if not isinstance(e, dict):
                raise self.fail(f"field examples[{i}] must be an object with 'input' and 'output', got {_kind(e)}")
            examples.append(Example(self.numbers(e.get("input"), f"examples[{i}].input", input_size),
                                    self.outputs(e.get("output"), f"examples[{i}].output", len(output_dims))))

        reg = self.obj(d, "regressor", "regressor")
        try:
            settings = RegressorSettings.from_dict(reg.get("settings"))
        except (TypeError, ValueError) as err:
            raise self.fail(f"field 'regressor.settings': {err}") from None
        state = reg.get("state")
        regressor = None
        if state is not None:
            try:
                regressor = Regressor.from_state(state)
            except (TypeError, ValueError) as err:
                raise self.fail(f"field 'regressor.state': {err}") from None
            if (regressor.n_in, regressor.n_out) != (input_size, len(output_dims)):
                raise self.fail(f"the trained regressor maps {regressor.n_in} inputs to {regressor.n_out} outputs, "
                                f"but the mapping has {input_size} inputs and {len(output_dims)} outputs")

        training = d.get("training", {})
        extras = d.get("extras", {})
        for label, value in (("training", training), ("extras", extras)):
            if not isinstance(value, dict):
                raise self.fail(f"field {label!r} must be an object, got {_kind(value)}")
        input_names = self.names(inp, "input.names", input_size)
        output_names = self.names(out, "output.names", len(output_dims))
        return Mapping(name=name, input_size=input_size, output_dims=output_dims, output_range=(low, high),
                       examples=examples, settings=settings, regressor=regressor, model=model,
                       training=training, extras=extras, input_names=input_names, output_names=output_names)


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _reason(err: BaseException) -> str:
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    return str(err) or type(err).__name__


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a finite number")


_NUMBER_LIST = re.compile(r"\[\n\s*([^\s\[\]{}\"]+(?:,\n\s*[^\s\[\]{}\"]+)*)\n\s*\]")
_EXAMPLES_SLOT = '"examples": "@examples@"'


def _dumps(d: dict) -> str:
    """Indented JSON with lists of plain values kept on one line (raw newlines occur in no JSON string)."""
    text = json.dumps(d, indent=1, allow_nan=False, ensure_ascii=False)
    return _NUMBER_LIST.sub(lambda m: "[" + ", ".join(v.strip() for v in m.group(1).split(",\n")) + "]", text) + "\n"


EXAMPLES_PER_CHUNK = 500  # written per json call: each holds the GIL for a few milliseconds at most


def _example_lines(mapping: Mapping, where: str) -> list[str]:
    """The examples as JSON, one per line, in chunks of lines.

    MappingError for anything `from_json` would not read back."""
    examples = mapping.examples
    if len(examples) > MAX_EXAMPLES:
        raise MappingError(f"{where}: {len(examples)} examples, more than a mapping holds ({MAX_EXAMPLES})")
    n_in, n_out = mapping.input_size, len(mapping.output_dims)
    lines: list[str] = []
    for start in range(0, len(examples), EXAMPLES_PER_CHUNK):
        chunk = examples[start:start + EXAMPLES_PER_CHUNK]
        for i, e in enumerate(chunk, start):
            for label, values, size in (("input", e.input, n_in), ("output", e.output, n_out)):
                if len(values) != size:
                    raise MappingError(f"{where}: field 'examples[{i}].{label}' must hold {size} numbers, "
                                       f"got {len(values)}")
        if any(all(v is None for v in e.output) for e in chunk):
            raise _bad_example(chunk, start, where)
        rows: list[dict[str, Any]]
        if ({type(v) for e in chunk for v in e.input} <= {float}
                and {type(v) for e in chunk for v in e.output} <= {float, type(None)}):
            rows = [{"input": e.input, "output": e.output} for e in chunk]  # None is an untaught output: null
        else:  # numpy scalars, ints: written as floats, as `to_json` writes them
            try:
                rows = [{"input": [float(v) for v in e.input],
                         "output": [None if v is None else float(v) for v in e.output]} for e in chunk]
            except (TypeError, ValueError):
                raise _bad_example(chunk, start, where) from None
        try:  # the C encoder: float.__repr__ for every value, and no NaN or infinity
            text = json.dumps(rows, allow_nan=False)
        except ValueError:
            raise _bad_example(chunk, start, where) from None
        lines.append(text[1:-1].replace("}, {", "},\n  {"))  # no strings inside: "}, {" is between examples
    return lines


def _bad_example(chunk: list[Example], start: int, where: str) -> MappingError:
    """The error `from_json` would give for the first bad value in `chunk` (examples from `start`)."""
    reader = _Reader(where)
    for i, e in enumerate(chunk, start):
        for label, values in (("input", e.input), ("output", e.output)):
            try:
                numbers = [None if v is None and label == "output" else float(v) for v in values]  # type: ignore[arg-type]
            except (TypeError, ValueError):
                return reader.fail(f"field examples[{i}].{label} holds {_short(values)}, not numbers")
            try:
                if label == "output":
                    reader.outputs(numbers, f"examples[{i}].{label}", len(numbers))
                else:
                    reader.numbers(numbers, f"examples[{i}].{label}")
            except MappingError as err:
                return err
    return reader.fail(f"an example in {start}..{start + len(chunk) - 1} holds a value that is not a finite number")


def encode_mapping(mapping: Mapping, where: str) -> str:
    """The file's text: `_dumps` of everything but the examples, which go one per line.

    Everything is checked as `from_json` would read it back (MappingError otherwise), so a file
    that would not load is never written. Runs on any thread; `mapping` must not change meanwhile
    (the session passes an immutable snapshot)."""
    lines = _example_lines(mapping, where)
    data = to_json(replace(mapping, examples=[]))
    from_json(data, where)
    data["examples"] = "@examples@"
    head, tail = _dumps(data).split(_EXAMPLES_SLOT)
    if not lines:
        return head + '"examples": []' + tail
    return head + '"examples": [\n  ' + ",\n  ".join(lines) + "\n ]" + tail


# ----------------------------------------------------------------------------------------------
# Files


def save_mapping(folder: Path, mapping: Mapping) -> Path:
    """Write `<folder>/<mapping.name>.json` atomically; returns the path. MappingError on any failure,
    leaving the old file (if any) as it was and no temp file behind. Creates the folder if missing."""
    folder = Path(folder)
    name = mapping.name
    check_name(name)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise MappingError(f"cannot save mapping {name!r}: cannot create the folder {folder}: {_reason(err)}") from err
    path = mapping_path(folder, name)
    try:
        text = encode_mapping(mapping, str(path))  # never writes a file that would not load
    except MappingError as err:
        raise MappingError(f"refusing to save mapping {name!r}: {err}") from None
    except (TypeError, ValueError, AttributeError) as err:
        raise MappingError(f"cannot save mapping {name!r} to {path}: a field holds something that is not "
                           f"JSON ({err})") from None
    try:
        mode = stat.S_IMODE(path.stat().st_mode) if path.is_file() else 0o644
    except OSError:
        mode = 0o644
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            os.fchmod(f.fileno(), mode)
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
    except OSError as err:
        raise MappingError(f"cannot save mapping {name!r} to {path}: {_reason(err)}") from err
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    _fsync_folder(path.parent)
    _remove_stale_temp_files(path.parent, name)
    return path


def _remove_stale_temp_files(folder: Path, name: str) -> None:
    """Remove what saves of `name` that were killed (SIGKILL, power cut) left: `.<name>.*.tmp` files
    older than STALE_TEMP_S. A younger one may belong to a save running beside this one: kept."""
    now = time.time()
    try:
        leftovers = list(folder.glob(f".{name}.*.tmp"))  # names hold no glob characters
    except OSError:
        return
    for leftover in leftovers:
        with contextlib.suppress(OSError):
            if now - leftover.lstat().st_mtime > STALE_TEMP_S:
                leftover.unlink()


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable. The file is already in place: a folder that can't be synced is no error."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_mapping(folder: Path, name: str) -> Mapping:
    """Read `<folder>/<name>.json`. MappingError naming the file for every way it can be wrong.
    The file's name wins over the name inside it (renaming the file renames the mapping)."""
    path = mapping_path(folder, name)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > MAX_FILE_BYTES:
                raise MappingError(f"{path}: {size / (1 << 20):.0f} MB is too large for a mapping file (at most "
                                   f"{MAX_FILE_BYTES >> 20} MB, more than {MAX_EXAMPLES} examples need); not read")
            raw = f.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise MappingError(f"no mapping named {name!r}: {path} does not exist") from None
    except OSError as err:
        raise MappingError(f"cannot read mapping {name!r} from {path}: {_reason(err)}") from err
    where = str(path)
    if not raw.strip():
        raise MappingError(f"{where}: the file is empty (a save that never finished?)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise MappingError(f"{where}: not a ravemap mapping file (not UTF-8 text)") from None
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as err:
        raise MappingError(f"{where}: not valid JSON (cut short or edited by hand?): {err}") from None
    except (ValueError, RecursionError) as err:
        raise MappingError(f"{where}: not valid JSON: {err}") from None
    mapping = from_json(data, where)
    mapping.name = name
    return mapping


# ----------------------------------------------------------------------------------------------
# One process per mapping


class MappingLock:
    """An OS lock on `<folder>/.<name>.lock`, so two ravemaps never hold one mapping at once.

    `MappingLock(folder, name)` takes it or raises MappingError naming the process that holds it.
    The lock files stay (removing one would race with a process taking it); the OS lock goes
    with the process, however it ends. A folder where no lock file can be made (read-only, full)
    gives a lock that holds nothing: nothing can be saved there either, and the save says why.
    """

    def __init__(self, folder: Path, name: str):
        self.name = check_name(name)
        self.path = Path(folder) / f".{name}{LOCK_SUFFIX}"
        self._file: Any = None
        try:
            Path(folder).mkdir(parents=True, exist_ok=True)
            f = open(self.path, "a+b")  # noqa: SIM115 - held open while the lock is held
        except OSError:
            return
        try:
            _lock_file(f)
        except OSError:
            f.seek(0)
            holder = f.read(64).decode("ascii", "replace").strip() or "unknown"
            f.close()
            raise MappingError(f"mapping {name!r} is in use by another ravemap (process {holder}, lock {self.path}); "
                               "stop that one, or choose another mapping name") from None
        with contextlib.suppress(OSError):
            f.seek(0)
            f.truncate()
            f.write(f"{os.getpid()}\n".encode())
            f.flush()
        self._file = f

    @property
    def held(self) -> bool:
        return self._file is not None

    def release(self) -> None:
        f, self._file = self._file, None
        if f is not None:
            with contextlib.suppress(OSError):
                f.close()  # closing the file drops the OS lock


def _lock_file(f: Any) -> None:
    """Lock the whole of an open file without waiting; OSError if another process holds it."""
    if os.name == "nt":
        import msvcrt

        f.seek(0)
        msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
    else:
        import fcntl

        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
