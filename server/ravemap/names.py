"""Names given over the network resolve only inside their folder.

`/ravemap/model`, `/ravemap/loop` and `/ravemap/mapping/*` take names, never paths: 1 to
64 characters of letters, digits, space, `_`, `-` and `.`, not starting with a dot or a
space, without `..`. The resolved file must lie inside the folder after following
symlinks, so a link pointing out is refused too. The one exception is ravemap's own: the
name `default` that a folder does not hold means the embedded default model or loop
(`builtin`), so it stays reachable from any models or loops folder.
"""

from __future__ import annotations

import re
from pathlib import Path

MAX_NAME = 64
_NAME_CHARS = re.compile(r"[A-Za-z0-9 _.\-]+")
ALLOWED = (f"use 1 to {MAX_NAME} letters, digits, spaces, '_', '.' or '-', not starting with '.' or a space, "
           "and no '..' (a name inside its folder, not a path)")


def check_name(name: object, what: str = "name") -> str:
    """`name` if it is a safe name, else ValueError saying what is wrong with it and what is allowed."""
    if not isinstance(name, str):
        raise ValueError(f"a {what} must be text, got {type(name).__name__}: {ALLOWED}")
    problem = None
    if not name:
        problem = "is empty"
    elif len(name) > MAX_NAME:
        problem = f"is {len(name)} characters long"
    elif not _NAME_CHARS.fullmatch(name):
        bad = sorted({c for c in name if not _NAME_CHARS.fullmatch(c)})
        problem = "contains " + ", ".join(repr(c) for c in bad[:5])
    elif name[0] in ". ":
        problem = f"starts with {name[0]!r}"
    elif ".." in name:
        problem = "contains '..'"
    if problem:
        shown = name if len(name) <= 80 else name[:77] + "..."
        raise ValueError(f"{what} {shown!r} {problem}: {ALLOWED}")
    return name


BUILTIN_NAME = "default"


def resolve_in(folder: Path, name: str, suffixes: tuple[str, ...] = (), what: str = "name",
               builtin: Path | None = None) -> Path:
    """The existing file `name` (or `name` + one of `suffixes`) inside `folder`; ValueError otherwise,
    also when the folder cannot be read. With `builtin`, the name `default` (or `default` + the
    builtin's suffix) that the folder does not hold is that file."""
    check_name(name, what)
    try:
        found = _find_in(folder, name, suffixes, what)
    except (OSError, RuntimeError) as err:  # an unreadable folder, a symlink loop
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise ValueError(f"cannot look for {what} {name!r} in {folder}: {reason}") from None
    if found is not None:
        return found
    if builtin is not None and name in (BUILTIN_NAME, BUILTIN_NAME + builtin.suffix):
        return builtin
    raise ValueError(f"no {what} {name!r} in {folder}")


def _find_in(folder: Path, name: str, suffixes: tuple[str, ...], what: str) -> Path | None:
    root = folder.resolve()
    for candidate in [name, *(name + s for s in suffixes if not name.endswith(s))]:
        path = folder / candidate
        if not path.exists():
            continue
        real = path.resolve()
        if real.parent != root and root not in real.parents:
            raise ValueError(f"{what} {name!r} points outside {folder} and is refused")
        if not real.is_file():
            raise ValueError(f"{what} {name!r} in {folder} is not a file")
        return real
    return None
