"""The README's examples run. Its "Playing in time" shell lines, sent with `ravemap send` to a daemon, leave
what the README says they do. Its Python example runs as a new user runs it: saved as a script with no `__main__`
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


def test_the_readme_playing_in_time_example_runs_against_a_daemon(tmp_path, tiny_model, loop_file):
    """Every `ravemap send` line of the "Playing in time" example, in order, against `ravemap serve`."""
    from tests.osc_peer import Daemon, OscPeer

    section = (REPO / "README.md").read_text(encoding="utf-8").split("## Playing in time\n", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    lines = [line.split("#", 1)[0].split() for line in block.splitlines()]
    lines = [words for words in lines if words]
    assert lines and all(words[:2] == ["ravemap", "send"] for words in lines)
    peer = OscPeer(0)
    daemon = Daemon(tmp_path, tiny_model, loop_file, peer.port)
    peer.daemon = ("127.0.0.1", daemon.port)
    try:
        for x, y, latent in ((0.1, 0.1, (2, 0, 0, 0)), (0.9, 0.9, (-2, 1, 0, 0)), (0.1, 0.9, (0, -1, 2, 0))):
            peer.send("/ravemap/xy", x, y)  # first, as the README says, a trained mapping
            peer.send("/ravemap/latent", *map(float, latent))
            peer.send("/ravemap/record/once")
        peer.send("/ravemap/train", 200)
        peer.wait_for("/ravemap/train/done", 60)
        for words in lines:
            sent = subprocess.run([sys.executable, "-m", "ravemap", *words[1:], "--port", str(daemon.port)],
                                  cwd=REPO, capture_output=True, text=True, timeout=60)
            assert sent.returncode == 0, (words, sent.stderr)
        state = peer.status()
        assert state["last_error"] == "", state["last_error"]
        assert state["bpm"] == 96 and state["quantize"] == "bar"
        assert state["gestures"] == ["swirl"] and state["scenes"] == [1, 2]
        assert state["scene"]["number"] == 1 and state["scene"]["state"] in ("waiting", "morphing", "idle")
    finally:
        assert daemon.stop() == 0
        peer.close()
    saved = load_mapping(daemon.mappings, "default")
    (gesture,) = saved.gestures
    beats = gesture.length / (60 / 96)
    assert abs(beats - round(beats)) < 1e-6, "recorded under quantize: whole beats"
    assert sorted(saved.scenes) == [1, 2] and saved.scenes[1].running and not saved.scenes[2].running
