"""Build step: the wheel carries the embedded default and the controller layouts as package data.

They live at the top of the checkout, where `./run`, the tests and the training scripts use them:
`config.yaml`, `models/default.ts`, `loops/default.wav` and `examples/{touchosc,puredata,max}/`.
Building copies them into the package as `ravemap/data/` (laid out as in the checkout), so git
holds one copy and a wheel (pip, pipx, uv) plays the default with no other file. An editable
install (`pip install -e .`, what `./run` does) copies nothing: it runs from the checkout.
`server/ravemap/locations.py` finds them either way. Everything else is in pyproject.toml.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
EMBEDDED = ["config.yaml", "models/default.ts", "loops/default.wav"]
LAYOUTS = ["examples/touchosc", "examples/puredata", "examples/max"]


def data_files() -> list[str]:
    """The files copied into ravemap/data/, relative to the checkout (or the unpacked sdist)."""
    files = list(EMBEDDED)
    for folder in LAYOUTS:
        files += sorted(str(p.relative_to(ROOT)) for p in (ROOT / folder).rglob("*")
                        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")
    missing = [f for f in files if not (ROOT / f).is_file()]
    if missing:
        raise SystemExit(f"ravemap build: missing {', '.join(missing)} (the embedded default must be there)")
    return files


class BuildWithData(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "ravemap" / "data"
        for relative in data_files():
            destination = target / relative
            self.mkpath(str(destination.parent))
            self.copy_file(str(ROOT / relative), str(destination))


setup(cmdclass={"build_py": BuildWithData})
