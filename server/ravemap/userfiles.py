"""Files ravemap gives a user to edit: `ravemap init` (a config and its folders) and `ravemap layouts`.

Neither ever writes over a file: what is already there is kept and reported, so running either
twice changes nothing the second time. The config `init` writes is the embedded `config.yaml`
(every key, commented) with three changes: its header says how to start with it, `engine.model`
and `engine.loop` are commented out (so the embedded default plays until the user names their
own), and the `paths` folders are the `models/`, `loops/` and `mappings/` beside it.

Threads: called by the command line only, on its main thread.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ravemap import locations
from ravemap.errors import ConfigError

_SECTION = re.compile(r"^([a-z_]+):")
_KEY = re.compile(r"^(?P<indent>\s+)(?P<key>[a-z_]+):(?P<value>[^#]*?)(?P<comment>\s*#.*)?$")
_ENGINE_EXAMPLES = {  # key: (example value, comment)
    "model": ("models/my_model.ts", "# your RAVE / nn~ export; left out: ravemap's own default model"),
    "loop": ("loops/my_loop.wav", "# your loop (WAV, FLAC, OGG); left out: ravemap's own default loop"),
}


@dataclass
class Written:
    """What a command made and what it found already there and left alone."""

    made: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)


def config_text(config_path: Path) -> str:
    """The commented config that `ravemap init` writes to `config_path`."""
    source = locations.embedded() / locations.CONFIG_NAME
    lines = source.read_text(encoding="utf-8").splitlines()
    while lines and lines[0].startswith("#"):
        lines.pop(0)  # the shipped header speaks of the checkout; ours says how to start
    out = _header(config_path)
    section = ""
    for line in lines:
        top = _SECTION.match(line)
        if top:
            section = top.group(1)
            if section == "paths":
                line = "paths:                          # this set's folders, beside this file"
        key = _KEY.match(line)
        if key and section == "engine" and key["key"] in _ENGINE_EXAMPLES:
            example, comment = _ENGINE_EXAMPLES[key["key"]]
            line = _aligned(f"{key['indent']}# {key['key']}: {example}", comment, line)
        elif key and section == "paths" and key["key"].endswith("_dir"):
            line = _aligned(f"{key['indent']}{key['key']}: {key['key'].removesuffix('_dir')}",
                            (key["comment"] or "").strip(), line)
        out.append(line)
    text = "\n".join(out) + "\n"
    _check(text, source)
    return text


def _header(config_path: Path) -> list[str]:
    return [
        f"# ravemap configuration, written by `ravemap init` (ravemap {version()}). Start with:",
        f"#     ravemap serve --config {config_path}",
        "# or make it your default by setting RAVEMAP_CONFIG to this file.",
        "# Every key is checked at start: a wrong key or value stops ravemap with a line naming the key,",
        "# the bad value and what is allowed. Relative paths are relative to this file's folder.",
        "# Your models go in models/ and loops in loops/ (then /ravemap/model NAME and /ravemap/loop NAME",
        "# find them; `default` is always ravemap's own), mappings are saved in mappings/.",
    ]


def _aligned(code: str, comment: str, original: str) -> str:
    column = original.index("#") if "#" in original else len(code) + 2
    return f"{code:<{max(column, len(code) + 1)}}{comment}".rstrip() if comment else code


def _check(text: str, source: Path) -> None:
    """The written config must play the embedded default and use the folders beside it."""
    raw = yaml.safe_load(text)
    engine, paths = raw.get("engine") or {}, raw.get("paths") or {}
    if "model" in engine or "loop" in engine or paths != {f"{k}_dir": k for k in locations.FOLDERS}:
        raise RuntimeError(f"{source}: its engine or paths section no longer has the shape `ravemap init` "
                           "rewrites (engine.model, engine.loop, paths.*_dir): a bug in ravemap")
    from ravemap.config import validate

    validate(raw, f"the config ravemap init writes from {source}")


def init(folder: Path) -> Written:
    """Write `folder/config.yaml` and make `models/`, `loops/`, `mappings/` beside it, keeping what is there."""
    folder = folder.expanduser().absolute()
    written = Written()
    _make_folder(folder, written, report=False)
    config = folder / locations.CONFIG_NAME
    text = config_text(config)
    try:
        with open(config, "x", encoding="utf-8") as out:  # "x": never over an existing file
            out.write(text)
        written.made.append(config)
    except FileExistsError:
        written.kept.append(config)
    except OSError as err:
        raise ConfigError(f"{config}: cannot write the config: {err.strerror or err}") from err
    for kind in locations.FOLDERS:
        _make_folder(folder / kind, written)
    return written


def _make_folder(path: Path, written: Written, report: bool = True) -> None:
    if path.is_dir():
        if report:
            written.kept.append(path)
        return
    if path.exists():
        raise ConfigError(f"{path} exists and is not a folder: move it away, or choose another folder")
    try:
        path.mkdir(parents=True)
    except OSError as err:
        raise ConfigError(f"cannot make the folder {path}: {err.strerror or err}") from err
    if report:
        written.made.append(path)


def layout_files() -> dict[str, list[Path]]:
    """The files of each controller layout folder, relative to that folder (no caches)."""
    root = locations.layouts()
    found: dict[str, list[Path]] = {}
    for name in locations.LAYOUTS:
        folder = root / name
        found[name] = sorted(p.relative_to(folder) for p in folder.rglob("*")
                             if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")
    return found


def copy_layouts(out: Path) -> Written:
    """Copy the TouchOSC, Pure Data and Max layouts into `out/<tool>/`, keeping files already there."""
    out = out.expanduser().absolute()
    written = Written()
    root = locations.layouts()
    for name, files in layout_files().items():
        for relative in files:
            target = out / name / relative
            if target.exists():
                written.kept.append(target)
                continue
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(root / name / relative, target)
            except OSError as err:
                raise ConfigError(f"cannot copy {relative} to {target.parent}: {err.strerror or err}") from err
            written.made.append(target)
    return written


def version() -> str:
    """ravemap's version, from the installed package's metadata (editable installs have it too)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("ravemap")
    except PackageNotFoundError:
        return "unknown (not installed: run ./run or pip install .)"
