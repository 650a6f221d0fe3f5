"""What pydantic finds wrong in a config or a mapping file, as one line a user can act on.

`config.yaml` (`ravemap.config`) and mapping files (`ravemap.mapping.store`) are both checked with
pydantic models; `explain` turns the problems found into one message, the same way for both:

    <where>: <key path>: <bad value> is not allowed: <what is allowed>; <next problem> ...

The key path is dotted with list indices in brackets (`mapping.hidden[0]`,
`examples[3].input[1]`), an unknown key gets a did-you-mean, and a long value is shortened.
Checks that pydantic's field types cannot express (an example's length, which depends on
`input.size`) report through the same format with `problem`.

Scalar types shared by both are here too: `Number` (a finite float; an int is taken, a bool or
text is not) and `Whole` (an int, never a bool, a float or text).

Threads: any; nothing here keeps state.
"""

from __future__ import annotations

import difflib
import reprlib
from collections.abc import Iterable, Sequence
from typing import Annotated, Any

from pydantic import BaseModel, Field, Strict
from pydantic.fields import FieldInfo

Number = Annotated[float, Strict(), Field(allow_inf_nan=False)]
Whole = Annotated[int, Strict()]
MAX_LINES = 5  # problems spelled out in one message; the rest are counted

_repr = reprlib.Repr()
_repr.maxstring = 60
_repr.maxother = 60
_repr.maxlist = _repr.maxtuple = 6
_repr.maxdict = 4
_repr.maxlevel = 3


class Problems(ValueError):
    """Problems found after pydantic's checks, in pydantic's error format (see `problem`)."""

    def __init__(self, problems: list[dict[str, Any]]):
        super().__init__(explain(problems, "invalid"))
        self.problems = problems


def problem(loc: Sequence[str | int], value: Any, allowed: str, kind: str = "value_error") -> dict[str, Any]:
    """One problem in the shape of a pydantic error, for `explain`."""
    return {"type": kind, "loc": tuple(loc), "input": value, "msg": allowed, "ctx": {"error": allowed}}


def key_path(loc: Iterable[str | int]) -> str:
    """('examples', 3, 'input', 1) -> 'examples[3].input[1]'; pydantic's union tags are left out."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif not _is_union_tag(part):
            text += f".{part}" if text else part
    return text


def short(value: Any) -> str:
    """repr(value), at most about 60 characters, without building the repr of a huge list first."""
    text = _repr.repr(value)
    return text if len(text) <= 64 else text[:57] + "..."


def explain(problems: Sequence[dict[str, Any]], where: str, root: Any = None) -> str:
    """One line for `problems` (pydantic's `err.errors()` or `problem`s): one part per bad key,
    the alternatives of a union (`str | int`) merged into one; `root` is the model the keys start
    in, for the did-you-mean of an unknown key."""
    found: dict[str, tuple[Any, list[str]]] = {}
    inner = {tuple(p["loc"][:n]) for p in problems for n in range(len(p["loc"]))}
    for p in problems:
        if p["type"] in ("too_short", "too_long") and tuple(p["loc"]) in inner:
            continue  # a list whose bad items were left out is too short: the items say why
        key = key_path(p["loc"])
        if p["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
            found[key] = (None, [f"unknown setting{_did_you_mean(p['loc'], root)}"])
            continue
        if p["type"] == "missing":
            found[key] = (None, ["missing (required)"])
            continue
        _value, allowed = found.setdefault(key, (p.get("input"), []))
        if len(allowed) < 4:
            allowed.append(_allowed(p))
    lines = []
    for key, (value, allowed) in list(found.items())[:MAX_LINES]:
        label = f"{key}: " if key else ""
        if value is None and allowed and allowed[0].startswith(("unknown setting", "missing")):
            lines.append(f"{label}{allowed[0]}")
        else:
            lines.append(f"{label}{short(value)} is not allowed: {' or '.join(dict.fromkeys(allowed))}")
    if len(found) > MAX_LINES:
        lines.append(f"and {len(found) - MAX_LINES} more problem(s)")
    return f"{where}: " + "; ".join(lines)


def _is_union_tag(part: str) -> bool:
    return "[" in part or part in {"str", "int", "float", "bool", "none"}


def _allowed(p: dict[str, Any]) -> str:
    ctx = p.get("ctx") or {}
    kind = p["type"]
    if kind == "literal_error":
        return f"use one of {ctx.get('expected')}"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return "a whole number"
    if kind in ("float_parsing", "float_type"):
        return "a number"
    if kind == "finite_number":
        return "a finite number"
    if kind in ("string_type",):
        return "a string"
    if kind in ("bool_parsing", "bool_type"):
        return "true or false"
    if kind in ("list_type", "tuple_type"):
        return "a list"
    if kind in ("dict_type", "model_type", "dataclass_type", "model_attributes_type"):
        return "an object"
    if kind == "none_required":
        return "null"
    if kind == "value_error":
        return str(ctx.get("error", p["msg"]))
    return str(p["msg"]).lower()


def _fields(model: Any) -> dict[str, FieldInfo] | None:
    """The fields of a pydantic model or pydantic dataclass; None for anything else."""
    if isinstance(model, type) and issubclass(model, BaseModel):
        return model.model_fields
    return getattr(model, "__pydantic_fields__", None)


def _did_you_mean(loc: Sequence[Any], root: Any) -> str:
    fields = _fields(root)
    if fields is None:
        return ""
    *parents, name = [p for p in loc if not isinstance(p, int)]
    for parent in parents:
        field = fields.get(str(parent))
        fields = None if field is None else _fields(field.annotation)
        if fields is None:
            return ""
    known = [k for k, f in fields.items() if not f.exclude]
    close = difflib.get_close_matches(str(name), known, n=1, cutoff=0.6)
    hint = f" (did you mean {'.'.join([*map(str, parents), close[0]])}?)" if close else ""
    return f"{hint}; known here: {', '.join(known)}"
