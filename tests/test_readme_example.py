"""The README's Python example runs as a new user runs it: saved as a script with no `__main__`
guard, piped to `python -`, and given to `python -c`. Each trains (in the trainer process) and exits 0.

It runs in a copy of the checkout's files the example needs (the `ravemap` package under `server/`, `config.yaml`,
`pyproject.toml`, the default model and loop), so the mapping it saves lands there and not in this
repository."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ravemap.mapping.store import load_mapping
from tests.conftest import REPO

VECTOR_FILE = '"drums.wav"'  # the README's placeholder; the only change made to its code


def readme_example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 1, "the README has one Python example"
    code = blocks[0]
    assert code.count(VECTOR_FILE) == 1 and "__main__" not in code
    return code.replace(VECTOR_FILE, '"loops/default.wav"')


def checkout(folder: Path) -> Path:
    shutil.copytree(REPO / "server" / "ravemap", folder / "server" / "ravemap",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("config.yaml", "pyproject.toml"):  # both: how ravemap knows it runs from a checkout
        shutil.copy2(REPO / name, folder / name)
    for name in ("models/default.ts", "loops/default.wav"):
        (folder / name).parent.mkdir(exist_ok=True)
        shutil.copy2(REPO / name, folder / name)
    return folder


@pytest.mark.parametrize("how", ["script file", "python -", "python -c"])
def test_the_readme_python_example_trains_and_exits_0(tmp_path, how):
    root = checkout(tmp_path / "ravemap")
    code = readme_example()
    if how == "script file":
        (root / "example.py").write_text(code, encoding="utf-8")
        command, stdin = [sys.executable, "example.py"], None
    elif how == "python -":
        command, stdin = [sys.executable, "-"], code
    else:
        command, stdin = [sys.executable, "-c", code], None
    env = {**os.environ, "PYTHONPATH": str(root / "server")}  # the copy's ravemap, not the checkout's
    done = subprocess.run(command, cwd=root, env=env, input=stdin, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    mapping = load_mapping(root / "mappings", "default")  # saved by rm.stop() in the copy
    assert len(mapping.examples) == 2 and mapping.regressor is not None and mapping.training["examples"] == 2
    assert "drums" in mapping.extras["vectors"]
