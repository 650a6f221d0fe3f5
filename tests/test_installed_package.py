"""Installed as a tool: the wheel built from this checkout, installed with its dependencies into a fresh
venv (what pip, pipx and `uv tool` do), plays the embedded default from any folder, keeps a user's files
in the user's folders, and writes nothing into site-packages or the current folder.

Every command runs with `HOME` in a folder of the test's own and no `XDG_*` variables, from an empty
folder, through the venv's `ravemap` script: nothing of the checkout is importable there. The wheel and
the venv are made once for this module. Only `-m installed` (or .ci/run) runs it: building takes about 15 s,
installing torch and the rest 2.5 to 3.5 minutes on a busy 2-core machine, most of it unpacking and
byte-compiling torch; the tests themselves about 25 s.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import soundfile

from ravemap.userfiles import layout_files
from tests.conftest import REPO
from tests.osc_peer import OscPeer, free_udp_port

pytestmark = pytest.mark.installed

TORCH = os.environ.get("RAVEMAP_TORCH", "torch==2.13.0")  # as scripts/setup.sh: the local CPU build


def _tree(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under `folder` with its size and modification time."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*") if p.is_file() or p.is_symlink()}


@dataclass
class Installed:
    wheel: Path
    venv: Path
    site: Path
    home: Path
    root: Path
    env: dict[str, str]
    site_files: dict[str, tuple[int, int]] = field(default_factory=dict)

    def data_dir(self) -> Path:
        """`<user data dir>/ravemap` as platformdirs names it on Linux with HOME set and no XDG_DATA_HOME."""
        return self.home / ".local" / "share" / "ravemap"

    def empty_folder(self, name: str) -> Path:
        folder = self.root / name
        folder.mkdir()
        return folder

    def command(self, *args: str) -> list[str]:
        return [str(self.venv / "bin" / "ravemap"), *args]

    def run(self, *args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(*args), cwd=cwd, env=self.env, capture_output=True, text=True,
                              timeout=timeout)

    def assert_site_packages_untouched(self) -> None:
        assert _tree(self.site) == self.site_files, "ravemap wrote into its own installation"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("installed")
    dist, venv = root / "dist", root / "venv"
    build_log = root / "build.log"
    with open(build_log, "w") as log:  # python -m build: an sdist, then the wheel from that sdist
        building = subprocess.Popen([sys.executable, "-m", "build", "--outdir", str(dist), str(REPO)],
                                    stdout=log, stderr=subprocess.STDOUT)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
        assert building.wait(timeout=600) == 0, f"the build failed: {build_log.read_text()[-3000:]}"
    finally:
        if building.poll() is None:
            building.kill()
    assert "deprecat" not in build_log.read_text().lower(), f"the build warns: {build_log.read_text()[-3000:]}"
    (wheel,) = dist.glob("ravemap-*.whl")
    python = venv / "bin" / "python"
    # --no-compile: byte-compiling torch's thousands of modules is most of an install's time, and
    # changes nothing this test looks at.
    pip = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-compile", TORCH, str(wheel)],
                         capture_output=True, text=True, timeout=1200)
    assert pip.returncode == 0, pip.stderr[-3000:]
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    home = root / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("XDG_") and k not in ("PYTHONPATH", "VIRTUAL_ENV", "RAVEMAP_CONFIG")}
    env.update(HOME=str(home), PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", RAVEMAP_NO_ZEROCONF="1")
    found = Installed(wheel, venv, site, home, root, env)
    found.site_files = _tree(site)
    return found


def test_the_wheel_installs_one_top_level_package_named_ravemap(installed):
    names = zipfile.ZipFile(installed.wheel).namelist()
    top = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top == {"ravemap"}, f"top-level names in the wheel: {sorted(top)}"
    top_level = zipfile.ZipFile(installed.wheel).read("ravemap-0.1.0.dist-info/top_level.txt").decode().split()
    assert top_level == ["ravemap"]
    python = str(installed.venv / "bin" / "python")
    here = installed.empty_folder("imports")
    done = subprocess.run([python, "-c", "import ravemap; ravemap.Ravemap; print(ravemap.__file__)"],
                          cwd=here, env=installed.env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == str(installed.site / "ravemap" / "__init__.py")
    for absent in ("server", "training"):
        gone = subprocess.run([python, "-c", f"import {absent}"], cwd=here, env=installed.env,
                              capture_output=True, text=True, timeout=60)
        assert gone.returncode != 0 and "ModuleNotFoundError" in gone.stderr, f"{absent} is importable"
    version = subprocess.run([python, "-m", "ravemap", "--version"], cwd=here, env=installed.env,
                             capture_output=True, text=True, timeout=120)
    assert version.returncode == 0 and version.stdout.startswith("ravemap "), version.stderr[-2000:]


def test_the_wheel_carries_the_embedded_default_and_the_layouts(installed):
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    for file in ("config.yaml", "models/default.ts", "loops/default.wav"):
        assert f"ravemap/data/{file}" in names
    for layout, files in layout_files().items():
        for file in files:
            assert f"ravemap/data/examples/{layout}/{file}" in names
    for file in ("index.html", "app.js", "app.css"):  # the control page
        assert f"ravemap/web/static/{file}" in names
    metadata = zipfile.ZipFile(installed.wheel).read("ravemap-0.1.0.dist-info/METADATA").decode()
    assert "License-Expression: MIT" in metadata
    packaged = installed.site / "ravemap" / "data"
    assert (packaged / "config.yaml").read_bytes() == (REPO / "config.yaml").read_bytes()


def test_render_from_an_empty_folder_plays_the_default(installed):
    here = installed.empty_folder("render-here")
    out = installed.root / "renders" / "two.wav"
    result = installed.run("render", "--seconds", "2", "--out", str(out), cwd=here)
    assert result.returncode == 0, result.stderr
    audio, sr = soundfile.read(str(out), always_2d=True)
    assert audio.shape[0] == pytest.approx(2 * sr, abs=sr * 0.05)
    assert np.isfinite(audio).all()
    rms_db = 20 * np.log10(np.sqrt(np.mean(audio ** 2)) + 1e-12)
    assert rms_db > -40, f"the default should be audible, RMS {rms_db:.1f} dBFS"
    assert list(here.iterdir()) == []
    installed.assert_site_packages_untouched()


def _serve(installed: Installed, cwd: Path, peer: OscPeer, *extra: str) -> tuple[subprocess.Popen, Path]:
    port = free_udp_port()
    peer.daemon = ("127.0.0.1", port)
    log = installed.root / f"serve-{port}.log"
    with open(log, "w") as err:
        proc = subprocess.Popen(
            installed.command("serve", "--audio", "none", "--osc-port", str(port), "--feedback-port", str(peer.port),
                              "--web-port", "0", *extra),
            cwd=cwd, env=installed.env, stdout=subprocess.PIPE, stderr=err, text=True)
    deadline = time.monotonic() + 180
    while True:
        line = proc.stdout.readline()
        if "OSC control on" in line:
            return proc, log
        if (not line and proc.poll() is not None) or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"serve never got ready: {log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def _record_one_example(peer: OscPeer, saved: Path) -> dict:
    peer.send("/ravemap/xy", 0.2, 0.7)
    peer.send("/ravemap/latent", 1.5, 0.0, -1.0, 0.0)
    peer.send("/ravemap/record/once")
    assert peer.wait_for("/ravemap/examples", timeout=30) == [1]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if saved.is_file():
            data = json.loads(saved.read_text())
            if len(data["examples"]) == 1:
                return data
        time.sleep(0.2)
    raise AssertionError(f"the example was not saved to {saved}")


def test_serve_from_an_empty_folder_keeps_examples_in_the_users_data_folder(installed):
    here = installed.empty_folder("serve-here")
    peer = OscPeer(0)
    proc, log = _serve(installed, here, peer)
    try:
        saved = _record_one_example(peer, installed.data_dir() / "mappings" / "default.json")
        peer.send("/ravemap/model", "default")  # no models folder at all: the name still reaches the default
        assert peer.wait_for("/ravemap/model", timeout=60) == ["default.ts"]
    finally:
        code = _stop(proc)
        peer.close()
    stderr = log.read_text()
    assert code == 0, stderr[-3000:]
    assert saved["examples"][0]["input"] == pytest.approx([0.2, 0.7])
    assert saved["examples"][0]["output"] == pytest.approx([1.5, 0.0, -1.0, 0.0])
    assert "ALSA lib" not in stderr, "alsa-lib's own complaint reached the terminal"
    assert list(here.iterdir()) == []
    installed.assert_site_packages_untouched()


def test_paths_and_version_of_an_installed_ravemap(installed):
    here = installed.empty_folder("paths-here")
    result = installed.run("paths", cwd=here)
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(None, 1) for line in result.stdout.splitlines())
    assert lines["running"] == f"installed, in {installed.site / 'ravemap'}"
    assert lines["config"] == f"{installed.site / 'ravemap' / 'data' / 'config.yaml'}  (the packaged default)"
    assert lines["mappings"].startswith(str(installed.data_dir() / "mappings"))
    assert lines["models"].startswith(str(installed.data_dir() / "models"))
    assert str(installed.home / ".config" / "ravemap" / "config.yaml") in lines["lookup"]
    version = installed.run("--version", cwd=here)
    assert version.stdout.strip() == "ravemap 0.1.0"


def test_init_then_serve_with_that_config(installed):
    here = installed.empty_folder("init-here")
    first = installed.run("init", cwd=here)
    assert first.returncode == 0, first.stderr
    config = here / "config.yaml"
    assert f"ravemap serve --config {config}" in first.stdout
    made = _tree(here)
    second = installed.run("init", cwd=here)
    assert second.returncode == 0 and "nothing changed" in second.stdout
    assert _tree(here) == made

    users_data = _tree(installed.data_dir()) if installed.data_dir().exists() else {}
    peer = OscPeer(0)
    proc, log = _serve(installed, installed.empty_folder("init-serve-from"), peer, "--config", str(config))
    try:
        _record_one_example(peer, here / "mappings" / "default.json")
    finally:
        code = _stop(proc)
        peer.close()
    assert code == 0, log.read_text()[-3000:]
    assert (_tree(installed.data_dir()) if installed.data_dir().exists() else {}) == users_data, \
        "with its own config, ravemap keeps to the folders beside it"
    installed.assert_site_packages_untouched()


def test_layouts_are_copied_out_of_the_installed_package(installed):
    out = installed.root / "my-layouts"
    result = installed.run("layouts", "--out", str(out), cwd=installed.empty_folder("layouts-here"))
    assert result.returncode == 0, result.stderr
    for layout, files in layout_files().items():
        for file in files:
            assert (out / layout / file).read_bytes() == (REPO / "examples" / layout / file).read_bytes()
