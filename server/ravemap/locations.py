"""Where ravemap reads its config, the embedded default and the controller layouts, and keeps user files.

ravemap runs one of two ways, told apart by where this package lies:

- **from a checkout** (`./run`, `pip install -e .`): the embedded default is the checkout's own
  `config.yaml`, `models/default.ts`, `loops/default.wav` and `examples/`; mappings, models and
  loops are the checkout's `mappings/`, `models/` and `loops/` folders, exactly as before packaging.
- **installed** (a wheel, through pip, pipx or uv): the build copies those same files into the
  package as `ravemap/data/` (see `setup.py`), read-only; mappings, user models and loops live in
  the user's data folder, `<user data dir>/ravemap/` as platformdirs names it for the OS
  (`~/.local/share/ravemap` on Linux, `~/Library/Application Support/ravemap` on macOS,
  `%LOCALAPPDATA%\\ravemap` on Windows). Nothing is ever written next to the code.

The config file in use is the first of: `--config`, `RAVEMAP_CONFIG`, the user's config file
(`<user config dir>/ravemap/config.yaml`), the checkout's `config.yaml` (from a checkout), the
packaged default (installed).

Threads: functions of the environment and the file system, called at start-up and by commands;
nothing here is cached, so a test (or a user) that changes `HOME` or `XDG_*` sees the change.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from ravemap.errors import ConfigError

APP = "ravemap"
PACKAGE = Path(__file__).resolve().parent
PACKAGED = PACKAGE / "data"  # only in an installed package: filled by setup.py's build step
ENV_CONFIG = "RAVEMAP_CONFIG"
CONFIG_NAME = "config.yaml"
DEFAULT_MODEL = Path("models") / "default.ts"
DEFAULT_LOOP = Path("loops") / "default.wav"
FOLDERS = ("models", "loops", "mappings")  # the user's folders, as named under a checkout or the data folder
LAYOUTS = ("touchosc", "puredata", "max")  # folders of examples/ that `ravemap layouts` copies


def checkout() -> Path | None:
    """The checkout this package runs from, or None when it runs installed."""
    if PACKAGED.is_dir():
        return None
    root = PACKAGE.parent.parent  # <checkout>/server/ravemap
    if (root / "pyproject.toml").is_file() and (root / CONFIG_NAME).is_file():
        return root
    return None


def embedded() -> Path:
    """The folder holding `config.yaml`, `models/default.ts`, `loops/default.wav` and `examples/`."""
    root = checkout()
    if root is not None:
        return root
    if not PACKAGED.is_dir():
        raise ConfigError(f"{PACKAGED}: this ravemap was installed without its embedded default "
                          "(build the wheel with `python -m build` or `pip wheel .` from a checkout)")
    return PACKAGED


def embedded_model() -> Path:
    """ravemap's own model: what `engine.model` left out of a config plays, and `/ravemap/model default`."""
    return embedded() / DEFAULT_MODEL


def embedded_loop() -> Path:
    """The loop that ships with ravemap: what `engine.loop` left out of a config plays."""
    return embedded() / DEFAULT_LOOP


def layouts() -> Path:
    """The folder whose `touchosc`, `puredata` and `max` folders hold the controller layouts."""
    return embedded() / "examples"


def user_config_file() -> Path:
    """`<user config dir>/ravemap/config.yaml`: read when there, never written by ravemap itself."""
    return Path(platformdirs.user_config_dir(APP, appauthor=False)) / CONFIG_NAME


def user_data_dir() -> Path:
    """`<user data dir>/ravemap`: where an installed ravemap keeps mappings, models and loops."""
    return Path(platformdirs.user_data_dir(APP, appauthor=False))


def recovery_folder() -> Path:
    """`<user data dir>/ravemap/recovered`: where a mapping that cannot be saved in its folder goes at exit."""
    return user_data_dir() / "recovered"


def default_folder(kind: str) -> Path:
    """Where `paths.<kind>_dir` points when a config leaves it out: the checkout's folder, or the data folder's."""
    if kind not in FOLDERS:
        raise ValueError(f"no default folder {kind!r}: use one of {', '.join(FOLDERS)}")
    root = checkout()
    return (root if root is not None else user_data_dir()) / kind


@dataclass(frozen=True)
class ConfigSource:
    path: Path
    why: str  # which rule of the lookup order chose it, in words for `ravemap paths`


def find_config(explicit: str | Path | None = None) -> ConfigSource:
    """The config file to read, by the lookup order in the module docstring.

    A file named by `--config` or `RAVEMAP_CONFIG` must exist (ConfigError otherwise); the user's
    config file is skipped when absent."""
    if explicit is not None:
        return ConfigSource(_must_exist(Path(explicit), "--config"), "--config")
    from_env = os.environ.get(ENV_CONFIG, "").strip()
    if from_env:
        return ConfigSource(_must_exist(Path(from_env).expanduser(), ENV_CONFIG), ENV_CONFIG)
    user = user_config_file()
    if user.is_file():
        return ConfigSource(user, "the user's config file")
    root = checkout()
    if root is not None:
        return ConfigSource(root / CONFIG_NAME, "the checkout's config")
    return ConfigSource(embedded() / CONFIG_NAME, "the packaged default")


def _must_exist(path: Path, given_by: str) -> Path:
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file (given by {given_by}); `ravemap init DIR` writes one")
    return path
