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
     "extras": {},
     "gestures": [{"name": "gesture-1", "length": 1.0, "times": [0.0, 0.02, ...],
                   "inputs": [[0.1, 0.5], [0.12, 0.5], ...]}, ...],    (only when there are some)
     "scenes": {"1": {"targets": [...], "run": false, "transfer": true, "gain_db": 0.0, "scale": [...],
                "jitter": 0.0, "mix": 1.0, "limit_db": -1.0, "autopilot": 0.0, "autopilot_rate": 0.25}}
                                                                        (only when there are some)
    }

A gesture (`ravemap.session.gestures`) is a recorded stream of input vectors: `times[i]` (seconds
from the start of its recording, never decreasing, within 0..`length`) is when `inputs[i]` came, and
`length` is its duration (the loop's period). Its name follows the same rules as a mapping's. A file
with no gesture has no "gestures" key, so files of earlier ravemaps re-save byte for byte.

`scenes` (stored by `/ravemap/scene/store`, see `ravemap.session.scenes`) is written only when
the mapping holds one, so a file without scenes is written as before.

An output value `null` is an output this example does not teach (recorded while that output's
recording was off, or deleted for that output, as Wekinator does per output): `training_arrays`
fills it from the nearest example that teaches that output.

Examples are written one per line, so a file of 100k examples is written in a fraction of
a second, and reads as a list in any editor. Saving is atomic (a temp file in the same folder,
fsync, rename, fsync of the folder), so a crash or a full disk leaves the old file whole; the
temp files of killed saves are removed by a later save once they are old. A file larger than
`MAX_FILE_BYTES` is refused before it is read. The text is parsed and checked in one pass by the
pydantic models below (`MappingFile`, with the regressor's `RegressorSettings` and `RegressorState`);
every problem is a `MappingError` naming the file, the field (`examples[3].input[1]`), the bad value
and what is allowed, as config errors do (`ravemap.validation.explain`); loading never raises
anything else for a bad file. Names are names, never paths.

One process at a time holds a mapping: `MappingLock` takes an OS lock (flock, or msvcrt's
locking on Windows) on `<folder>/.<name>.lock`, which the OS releases when the process ends
however it ends, so a crashed daemon never leaves a mapping locked.

Threads: any; nothing here keeps state but a `MappingLock`. Two threads saving the same name at
once each write a whole file; the last rename wins (ravemap's session saves from one thread).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from ravemap import names
from ravemap.errors import MappingError
from ravemap.mapping import reader
from ravemap.mapping.regressor import FitResult, Regressor, RegressorSettings, RegressorState, build
from ravemap.validation import Number, Problems, Whole, explain, problem, short

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
LOCK_TRIES = 20  # a lock file removed by its holder as we opened it: try the new one


@dataclass(frozen=True)
class Example:
    """One recorded pose: controller input -> latent offsets (for `Mapping.output_dims`); an output
    that is None is one this example does not teach."""

    input: tuple[Number, ...]
    output: tuple[Number | None, ...]

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
    gestures: tuple[Gesture, ...] = ()  # recorded gestures, in the order they were made (immutable)
    scenes: dict[int, Scene] = field(default_factory=dict)  # scene number (1..MAX_SCENE) -> what it recalls


MAX_GESTURES = 64  # gestures a mapping holds
MAX_GESTURE_POINTS = 10_000  # input vectors in one gesture (over a minute and a half at 100 a second)
MAX_GESTURE_S = 3600.0  # a gesture's length, seconds


@dataclass(frozen=True)
class Gesture:
    """A recorded stream of input vectors: `inputs[i]` came `times[i]` seconds after the recording started
    (never decreasing, within 0..`length`); `length` is its duration, the period it loops with."""

    name: str
    length: float
    times: tuple[float, ...]
    inputs: tuple[tuple[float, ...], ...]

    def to_json(self) -> dict:
        return {"name": self.name, "length": float(self.length), "times": [float(t) for t in self.times],
                "inputs": [[float(v) for v in vector] for vector in self.inputs]}


MAX_SCENE = 128  # scene numbers go from 1 to this (a MIDI note each)


@dataclass(frozen=True)
class Scene:
    """Everything a performer sets, as `/ravemap/scene/store` keeps it: the manual latent targets (one per
    output dim), run mode, style transfer, output gain, and the chain (scale per latent dim of the model,
    jitter, mix, the limiter's ceiling or None for off, the autopilot's amount and rate)."""

    targets: tuple[float, ...]
    running: bool = False
    transfer: bool = True
    gain_db: float = 0.0
    scale: tuple[float, ...] = ()
    jitter: float = 0.0
    mix: float = 1.0
    limit_db: float | None = None
    autopilot: float = 0.0
    autopilot_rate: float = 0.25

    def to_json(self) -> dict[str, Any]:
        return {"targets": [float(v) for v in self.targets], "run": self.running, "transfer": self.transfer,
                "gain_db": float(self.gain_db), "scale": [float(v) for v in self.scale], "jitter": float(self.jitter),
                "mix": float(self.mix), "limit_db": None if self.limit_db is None else float(self.limit_db),
                "autopilot": float(self.autopilot), "autopilot_rate": float(self.autopilot_rate)}


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


def check_name(name: str, what: str = "mapping name") -> str:
    """`name` if it is a safe mapping (or gesture) name, else MappingError saying what is allowed."""
    try:
        return names.check_name(name, what)
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
        **({"gestures": [g.to_json() for g in mapping.gestures]} if mapping.gestures else {}),
        **({"scenes": {str(n): mapping.scenes[n].to_json() for n in sorted(mapping.scenes)}} if mapping.scenes else {}),
    }


def from_json(d: Any, where: str) -> Mapping:
    """A Mapping from `to_json`'s output; MappingError starting with `where` for anything else."""
    try:
        return _mapping(MappingFile.model_validate(d), where)
    except ValidationError as err:
        raise MappingError(_explain(err.errors(), where)) from None


def from_text(text: str | bytes, where: str) -> Mapping:
    """A Mapping from a file's JSON text, parsed and checked in one pass (pydantic-core: a 100k-example
    file in a fraction of a second); MappingError starting with `where` for anything else."""
    try:
        return _mapping(MappingFile.model_validate_json(text), where)
    except ValidationError as err:
        raise MappingError(_explain(err.errors(), where)) from None


# The file's structure, checked by pydantic. Keys this ravemap does not know are ignored (kept in
# no field), as the first release's reader did; the regressor settings refuse unknown keys.


def _not_newer(version: int) -> int:
    if version > VERSION:
        raise ValueError(f"made by a newer ravemap (file version {version}; this ravemap reads up to "
                         f"version {VERSION}): update ravemap to load it")
    return version


def _mapping_name(name: str) -> str:
    return names.check_name(name, "mapping name")


def _gesture_name(name: str) -> str:
    return names.check_name(name, "gesture name")


def _label(text: str) -> str:
    if not text.isprintable():
        raise ValueError(f"printable text of 1 to {MAX_NAME} characters")
    return text


def _distinct(dims: list[int]) -> list[int]:
    if len(set(dims)) != len(dims):
        raise ValueError("each latent dimension once")
    return dims


def _low_high(pair: tuple[float, float]) -> tuple[float, float]:
    if not pair[0] < pair[1]:
        raise ValueError("[low, high] with low < high")
    return pair


Label = Annotated[str, Field(min_length=1, max_length=MAX_NAME, strict=True), AfterValidator(_label)]


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True)


class InputSpec(_Part):
    size: Annotated[Whole, Field(ge=1, le=MAX_SIZE)]
    names: list[Label] = []


class OutputSpec(_Part):
    dims: Annotated[list[Annotated[Whole, Field(ge=0, lt=100_000)]], Field(min_length=1, max_length=MAX_SIZE),
                    AfterValidator(_distinct)]
    range: Annotated[tuple[Number, Number], AfterValidator(_low_high)]
    names: list[Label] = []


class RegressorPart(_Part):
    settings: RegressorSettings
    state: RegressorState | None = None


class GesturePart(_Part):
    name: Annotated[str, Field(strict=True), AfterValidator(_gesture_name)]
    length: Annotated[Number, Field(gt=0, le=MAX_GESTURE_S)]
    times: Annotated[list[Annotated[Number, Field(ge=0)]], Field(min_length=1, max_length=MAX_GESTURE_POINTS)]
    inputs: Annotated[list[Annotated[list[Number], Field(min_length=1, max_length=MAX_SIZE)]],
                      Field(min_length=1, max_length=MAX_GESTURE_POINTS)]
GainDb = Annotated[Number, Field(ge=-120.0, le=24.0)]
ScaleValue = Annotated[Number, Field(ge=-4.0, le=4.0)]
Jitter = Annotated[Number, Field(ge=0.0, le=3.0)]
Unit = Annotated[Number, Field(ge=0.0, le=1.0)]
LimitDb = Annotated[Number, Field(ge=-60.0, le=0.0)]
RateHz = Annotated[Number, Field(ge=0.01, le=10.0)]


class ScenePart(_Part):
    """One stored scene (see `Scene`); the ranges are the controls' own."""

    targets: Annotated[list[Number], Field(min_length=1, max_length=MAX_SIZE)]
    run: bool = False
    transfer: bool = True
    gain_db: GainDb = 0.0
    scale: Annotated[list[ScaleValue], Field(max_length=MAX_SIZE)] = []
    jitter: Jitter = 0.0
    mix: Unit = 1.0
    limit_db: LimitDb | None = None
    autopilot: Unit = 0.0
    autopilot_rate: RateHz = 0.25


SceneNumber = Annotated[str, Field(pattern=r"^[1-9][0-9]{0,2}$")]


class MappingFile(_Part):
    """A mapping file as this ravemap reads it (see the module docstring for the layout)."""

    format: Literal["ravemap-mapping"]
    version: Annotated[Whole, Field(ge=1), AfterValidator(_not_newer)]
    name: Annotated[str, Field(strict=True), AfterValidator(_mapping_name)]
    model: Annotated[str, Field(strict=True)] | None = None
    input: InputSpec
    output: OutputSpec
    examples: Annotated[list[Example], Field(max_length=MAX_EXAMPLES)]
    regressor: RegressorPart
    training: dict[str, Any] = {}
    extras: dict[str, Any] = {}
    gestures: Annotated[list[GesturePart], Field(max_length=MAX_GESTURES)] = []
    scenes: dict[SceneNumber, ScenePart] = {}


_EXAMPLES = TypeAdapter(list[Example])


def _mapping(f: MappingFile, where: str) -> Mapping:
    """The checks pydantic's types cannot express (sizes that depend on `input.size`), then the Mapping.
    MappingError in `explain`'s format."""
    n_in, n_out = f.input.size, len(f.output.dims)
    found = _example_problems(f.examples, n_in, n_out)
    for part, spec, size in (("input", f.input, n_in), ("output", f.output, n_out)):
        if spec.names and len(spec.names) != size:
            found.append(problem((part, "names"), spec.names, f"one name per {part} ({size}), or none"))
    for key in ("training", "extras"):
        try:
            json.dumps(getattr(f, key), allow_nan=False)
        except (TypeError, ValueError) as err:
            found.append(problem((key,), getattr(f, key), f"JSON values only (not JSON: {err})"))
    scenes: dict[int, Scene] = {}
    for key, kept in f.scenes.items():
        if not 1 <= int(key) <= MAX_SCENE:
            found.append(problem(("scenes", key), key, f"a scene number from 1 to {MAX_SCENE}"))
        elif len(kept.targets) != n_out:
            found.append(problem(("scenes", key, "targets"), kept.targets,
                                 f"must hold {n_out} numbers (one per output.dims)"))
        else:
            scenes[int(key)] = Scene(tuple(kept.targets), kept.run, kept.transfer, kept.gain_db, tuple(kept.scale),
                                     kept.jitter, kept.mix, kept.limit_db, kept.autopilot, kept.autopilot_rate)
    regressor = None
    if f.regressor.state is not None:
        try:
            regressor = build(f.regressor.state)
        except Problems as err:
            found += [{**p, "loc": ("regressor", "state", *p["loc"])} for p in err.problems]
        else:
            if (regressor.n_in, regressor.n_out) != (n_in, n_out):
                found.append(problem(("regressor", "state"), {"n_in": regressor.n_in, "n_out": regressor.n_out},
                                     f"a regressor of {n_in} inputs and {n_out} outputs, as the mapping has"))
    found += _gesture_problems(f.gestures)
    if found:
        raise MappingError(_explain(found, where))
    gestures = tuple(Gesture(g.name, g.length, tuple(g.times), tuple(tuple(v) for v in g.inputs)) for g in f.gestures)
    return Mapping(name=f.name, input_size=n_in, output_dims=tuple(f.output.dims), output_range=f.output.range,
                   examples=f.examples, settings=f.regressor.settings, regressor=regressor, model=f.model,
                   training=f.training, extras=f.extras, input_names=tuple(f.input.names),
                   output_names=tuple(f.output.names), gestures=gestures, scenes=scenes)


def _gesture_problems(gestures: list[GesturePart]) -> list[dict[str, Any]]:
    """What pydantic's types cannot say of the gestures: one time per input vector, times in order within
    the length, vectors of one size, names given once. A gesture's vectors may be of another size than
    the mapping's inputs (the input size of an empty mapping can change): such a one is refused at play."""
    found = []
    seen: set[str] = set()
    for i, g in enumerate(gestures):
        where = ("gestures", i)
        if g.name in seen:
            found.append(problem((*where, "name"), g.name, "each gesture name once"))
        seen.add(g.name)
        if len(g.times) != len(g.inputs):
            found.append(problem((*where, "times"), g.times, f"one time per input vector ({len(g.inputs)})"))
        if any(b < a for a, b in zip(g.times, g.times[1:], strict=False)) or (g.times and g.times[-1] > g.length):
            found.append(problem((*where, "times"), g.times, f"seconds in order, from 0 to the length ({g.length:g})"))
        if len({len(v) for v in g.inputs}) > 1:
            found.append(problem((*where, "inputs"), [len(v) for v in g.inputs], "input vectors of one size"))
    return found


def _example_problems(examples: list[Example], n_in: int, n_out: int, start: int = 0) -> list[dict[str, Any]]:
    """Examples of the wrong length, or that teach no output (only nulls); the first few."""
    found = []
    for i, e in enumerate(examples, start):
        if len(e.input) != n_in:
            found.append(problem(("examples", i, "input"), e.input, f"must hold {n_in} numbers (input.size)"))
        if len(e.output) != n_out:
            found.append(problem(("examples", i, "output"), e.output,
                                 f"must hold {n_out} numbers (one per output.dims)"))
        elif None in e.output and all(v is None for v in e.output):
            found.append(problem(("examples", i, "output"), e.output, "must teach at least one output, not only nulls"))
        if len(found) > 5:
            break
    return found


def _explain(problems: list[dict[str, Any]], where: str) -> str:
    """`explain`, but a file that is not JSON, not a mapping or from a newer ravemap is said so first."""
    for p in problems:
        loc = tuple(p["loc"])
        if p["type"] == "json_invalid":
            return f"{where}: not valid JSON (cut short or edited by hand?): {(p.get('ctx') or {}).get('error')}"
        if loc == ():
            return f"{where}: not a ravemap mapping file (holds {short(p.get('input'))} instead of an object)"
        if loc == ("format",):
            holds = "no \"format\"" if p["type"] == "missing" else f"format {short(p.get('input'))}"
            return f"{where}: not a ravemap mapping file ({holds}, not {FORMAT!r})"
        if loc == ("version",) and p["type"] == "value_error":
            return f"{where}: {(p.get('ctx') or {}).get('error')}"
    return explain(problems, where, MappingFile)


def _reason(err: BaseException) -> str:
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    return str(err) or type(err).__name__


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
        found = _example_problems(chunk, n_in, n_out, start)
        if found:
            raise MappingError(explain(found, where))
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
    for i, e in enumerate(chunk, start):
        for label, values in (("input", e.input), ("output", e.output)):
            try:
                [None if v is None and label == "output" else float(v) for v in values]  # type: ignore[arg-type]
            except (TypeError, ValueError):
                return MappingError(explain([problem(("examples", i, label), values, "numbers")], where))
        rows = [{"input": [float(v) for v in e.input], "output": [None if v is None else float(v) for v in e.output]}]
        try:
            _EXAMPLES.validate_python(rows)
        except ValidationError as err:
            return MappingError(explain([{**p, "loc": ("examples", i, *p["loc"][1:])} for p in err.errors()], where))
    return MappingError(f"{where}: an example in {start}..{start + len(chunk) - 1} holds a value that is not a "
                        "finite number")


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


HEAD_BYTES = 4096  # a mapping file holds its "format" within this many bytes (ravemap writes it first)
_FORMAT_KEY = re.compile(r'"format"\s*:\s*("(?:[^"\\]|\\.)*"|[^\s,}]+)')


def check_head(head: bytes, where: str) -> None:
    """MappingError at once unless `head` (a file's first `HEAD_BYTES`) starts a JSON object holding
    `"format": "ravemap-mapping"`, so a file that is no mapping is refused before it is parsed."""
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        if err.start < len(head) - 3:  # more than a character cut at the head's end
            raise MappingError(f"{where}: not a ravemap mapping file (not UTF-8 text)") from None
        text = head[:err.start].decode("utf-8-sig")
    text = text.lstrip()
    if not text:
        raise MappingError(f"{where}: the file is empty (a save that never finished?)")
    want = f'an object holding "format": "{FORMAT}"'
    if not text.startswith("{"):
        raise MappingError(f"{where}: not a ravemap mapping file (starts with {short(text[:40])}, not {want})")
    found = _FORMAT_KEY.search(text)
    if found is None:
        raise MappingError(f"{where}: not a ravemap mapping file (no \"format\" in its first {len(head)} bytes; "
                           f"a mapping starts with {want})")
    if found.group(1) != f'"{FORMAT}"':
        try:
            value = json.loads(found.group(1))  # a short token: a string, or true, 1 and the like
        except ValueError:
            value = found.group(1)
        raise MappingError(f"{where}: not a ravemap mapping file (format {short(value)}, not {FORMAT!r})")


def load_mapping(folder: Path, name: str) -> Mapping:
    """Read `<folder>/<name>.json`. MappingError naming the file for every way it can be wrong.
    The file's name wins over the name inside it (renaming the file renames the mapping).

    The head is checked first (`check_head`); a file larger than `reader.CHILD_BYTES` is parsed in a
    child process (`ravemap.mapping.reader`), so no thread here holds the GIL for long."""
    path = mapping_path(folder, name)
    where = str(path)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > MAX_FILE_BYTES:
                raise MappingError(f"{path}: {size / (1 << 20):.0f} MB is too large for a mapping file (at most "
                                   f"{MAX_FILE_BYTES >> 20} MB, more than {MAX_EXAMPLES} examples need); not read")
            head = f.read(HEAD_BYTES)
            if head.strip():
                check_head(head, where)
            big = size > reader.CHILD_BYTES
            raw = b"" if big else head + f.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise MappingError(f"no mapping named {name!r}: {path} does not exist") from None
    except OSError as err:
        raise MappingError(f"cannot read mapping {name!r} from {path}: {_reason(err)}") from err
    if big:
        mapping = reader.load_in_child(path, where)
        mapping.name = name
        return mapping
    if not raw.strip():
        raise MappingError(f"{where}: the file is empty (a save that never finished?)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise MappingError(f"{where}: not a ravemap mapping file (not UTF-8 text)") from None
    mapping = from_text(text, where)
    mapping.name = name
    return mapping


# ----------------------------------------------------------------------------------------------
# One process per mapping


class MappingLock:
    """An OS lock on `<folder>/.<name>.lock`, so two ravemaps never hold one mapping at once.

    `MappingLock(folder, name)` takes it or raises MappingError naming the process that holds it.
    The OS lock goes with the process, however it ends; `release` also removes the lock file, so
    a clean exit or a mapping switch leaves no `.<name>.lock` behind (a killed process leaves its
    file, which the next one takes over). Removing a file another process may be about to lock is
    made safe by two rules: the file is unlinked only while it is still locked (by its holder, in
    `release`), and a locker, once it holds the lock, checks that the file it locked is still the
    one at the path (same inode); if not (it was unlinked meanwhile), it tries again on the new one.
    A folder where no lock file can be made (read-only, full) gives a lock that holds nothing:
    nothing can be saved there either, and the save says why.
    """

    def __init__(self, folder: Path, name: str):
        self.name = check_name(name)
        self.path = Path(folder) / f".{name}{LOCK_SUFFIX}"
        self._file: Any = None
        for _ in range(LOCK_TRIES):
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
                raise MappingError(f"mapping {name!r} is in use by another ravemap (process {holder}, lock "
                                   f"{self.path}); stop that one, or choose another mapping name") from None
            if _still_at(f, self.path):
                break
            f.close()  # its holder removed it as we opened it: lock the file at the path now
        else:
            raise MappingError(f"mapping {name!r}: its lock {self.path} was removed and made again {LOCK_TRIES} "
                               "times as it was being taken (other ravemaps taking it in turn); try again")
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
        """Remove the lock file (while still holding its lock: see the class docstring), then let go."""
        f, self._file = self._file, None
        if f is None:
            return
        with contextlib.suppress(OSError):  # Windows: an open file cannot be removed, and stays
            if _still_at(f, self.path):
                self.path.unlink()
        with contextlib.suppress(OSError):
            f.close()  # closing the file drops the OS lock


def _still_at(f: Any, path: Path) -> bool:
    """Whether the open file `f` is the file at `path` now (not one removed, or replaced, meanwhile)."""
    try:
        now, mine = os.stat(path), os.fstat(f.fileno())
    except OSError:
        return False
    return (now.st_dev, now.st_ino) == (mine.st_dev, mine.st_ino)


def _lock_file(f: Any) -> None:
    """Lock the whole of an open file without waiting; OSError if another process holds it."""
    if os.name == "nt":
        import msvcrt

        f.seek(0)
        msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
    else:
        import fcntl

        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
