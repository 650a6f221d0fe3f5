"""Mapping files when things go wrong on disk: ravemap keeps playing and never loses or breaks them.

- A corrupt, truncated, empty, foreign or future-version file named by `--mapping`: the daemon
  starts with a new mapping under a new name, says so, and never touches the bad file.
- An unreadable mappings folder: the daemon starts anyway, and says why it cannot save.
- A full or read-only disk when saving: the examples stay in memory, the error goes back over
  OSC, and a later save succeeds once there is room again.
- SIGKILL in the middle of saving, again and again: the file always loads, holding the old
  content or the new, never a part of one.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import time
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import tests.osc_peer as osc_peer
from ravemap.mapping.store import VERSION, Example, Mapping, list_mappings, load_mapping, save_mapping
from tests.osc_peer import Daemon, OscPeer


def start(tmp: Path, model: Path, loop: Path, *extra: str, config: dict | None = None) -> tuple[Daemon, OscPeer]:
    peer = OscPeer(0)
    try:
        daemon = Daemon(tmp, model, loop, peer.port, *extra, config=config)
    except BaseException:
        peer.close()
        raise
    peer.daemon = ("127.0.0.1", daemon.port)
    return daemon, peer


def errors_seen(peer: OscPeer) -> list[str]:
    return [args[0] for address, args in peer.seen if address == "/ravemap/error"]


def valid_mapping_bytes(tmp: Path) -> bytes:
    mapping = Mapping("live", 2, (0, 1, 2, 3), (-3.0, 3.0),
                      examples=[Example((i / 10, 1 - i / 10), (0.5, -0.5, 1.0, 0.0)) for i in range(10)])
    return save_mapping(tmp / "valid", mapping).read_bytes()


def _future(text: bytes) -> bytes:
    d = json.loads(text)
    d["version"] = VERSION + 1
    return json.dumps(d).encode()


def _bad_field(text: bytes) -> bytes:
    d = json.loads(text)
    d["regressor"]["settings"]["hidden"] = [0]
    return json.dumps(d).encode()


BAD_KINDS = {
    "corrupt": lambda valid: valid[:200] + b"\x00\xff garbage \xfe" + valid[230:],
    "truncated": lambda valid: valid[: len(valid) // 2],
    "empty": lambda valid: b"",
    "foreign": lambda valid: b'{"type": "FeatureCollection", "features": []}\n',
    "future version": _future,
    "bad field": _bad_field,
}


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_each_kind_of_bad_mapping_file_is_reported_left_as_it_is_and_replaced_by_a_new_mapping(tmp_path, kind, caplog):
    """What `ravemap serve --mapping live` does first, for every kind of bad file (in process: the
    daemon's own `open_mapping`; the next test runs the daemon itself on two of them)."""
    from ravemap.config import validate
    from ravemap.session import open_mapping

    bad = BAD_KINDS[kind](valid_mapping_bytes(tmp_path))
    folder = tmp_path / "mappings"
    folder.mkdir()
    (folder / "live.json").write_bytes(bad)
    mapping = open_mapping(validate({}), folder, "live", "tiny.ts")
    assert mapping.name.startswith("live-") and mapping.examples == []
    said = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(said) == 1 and "live.json" in said[0] and "left untouched" in said[0], said
    if kind == "bad field":
        assert "regressor.settings.hidden[0]: 0 is not allowed" in said[0], said
    mapping.examples.append(Example((0.5, 0.5), (0.0, 0.0, 0.0, 0.0)))
    save_mapping(folder, mapping)
    assert (folder / "live.json").read_bytes() == bad


def test_a_bad_mapping_file_at_start_is_reported_left_untouched_and_a_new_mapping_is_used(tmp_path, tiny_model,
                                                                                           loop_file):
    valid = valid_mapping_bytes(tmp_path)
    kinds = ["truncated", "future version"]
    homes = {}
    for kind in kinds:
        home = tmp_path / kind.replace(" ", "-")
        (home / "mappings").mkdir(parents=True)
        (home / "mappings" / "live.json").write_bytes(BAD_KINDS[kind](valid))
        homes[kind] = home
    with ThreadPoolExecutor(len(homes)) as pool:  # side by side: startup is mostly imports
        started = dict(zip(homes, pool.map(
            lambda home: start(home, tiny_model, loop_file, "--mapping", "live",
                               config={"mapping": {"save_delay_s": 0.1}}), homes.values()), strict=True))
    try:
        for kind, (daemon, peer) in started.items():
            new_name = peer.status()["mapping"]
            assert new_name.startswith("live-") and new_name in daemon.ready_line, (kind, daemon.ready_line)
            said = [ln for ln in daemon.stderr().splitlines() if "ERROR" in ln and "live.json" in ln]
            assert len(said) == 1 and "left untouched" in said[0] and repr(new_name) in said[0], (kind, said)
            peer.send("/ravemap/xy", 0.25, 0.75)
            peer.send("/ravemap/record/once")
            assert peer.status()["examples"] == 1
            peer.send("/ravemap/mapping/save")
            assert peer.wait_for("/ravemap/mapping") == [new_name]
    finally:
        codes = {kind: daemon.stop() for kind, (daemon, _) in started.items()}
        for _, peer in started.values():
            peer.close()
    for kind, (daemon, _) in started.items():
        assert codes[kind] == 0, (kind, daemon.stderr()[-2000:])
        assert (daemon.mappings / "live.json").read_bytes() == BAD_KINDS[kind](valid), f"{kind}: the bad file changed"
        saved = [name for name in list_mappings(daemon.mappings) if name != "live"]
        assert len(saved) == 1 and load_mapping(daemon.mappings, saved[0]).examples == [
            Example((0.25, 0.75), (0.0, 0.0, 0.0, 0.0))], kind


@pytest.fixture
def without_read_permission(monkeypatch):
    """Daemons started in this test cannot read a folder just because they run as root: as root, they
    run without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH, so a folder's mode bits bind them too."""
    if os.geteuid() != 0:
        return
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root and setpriv is missing: permission bits cannot be made to bind")
    real = subprocess.Popen

    def popen(args, *a, **kw):
        return real([setpriv, "--bounding-set=-dac_override,-dac_read_search", "--", *args], *a, **kw)

    monkeypatch.setattr(osc_peer, "subprocess", types.SimpleNamespace(
        Popen=popen, PIPE=subprocess.PIPE, TimeoutExpired=subprocess.TimeoutExpired))


def test_an_unreadable_mappings_folder_still_plays_and_says_why_it_cannot_save(tmp_path, tiny_model, loop_file,
                                                                                without_read_permission):
    folder = tmp_path / "mappings"
    folder.mkdir()
    (folder / "live.json").write_bytes(valid_mapping_bytes(tmp_path))
    before = (folder / "live.json").read_bytes()
    folder.chmod(0)
    try:
        daemon, peer = start(tmp_path, tiny_model, loop_file, "--mapping", "live",
                             config={"mapping": {"save_delay_s": 0.1}})
        try:
            state = peer.status()
            assert state["mapping"] != "live" and state["examples"] == 0
            assert "cannot read mapping 'live'" in daemon.stderr() and "Permission denied" in daemon.stderr()
            peer.send("/ravemap/record/once")
            error = peer.wait_for("/ravemap/error")[0]
            assert "could not save mapping" in error and "examples kept in memory" in error
            assert peer.status()["examples"] == 1
        finally:
            assert daemon.stop() == 0, daemon.stderr()[-2000:]
            peer.close()
    finally:
        folder.chmod(0o755)
    assert (folder / "live.json").read_bytes() == before


def _mount_tmpfs(folder: Path, size_kib: int) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(folder)],
                          capture_output=True)
    return done.returncode == 0


def _make_read_only(folder: Path) -> str | None:
    """chattr +i (binds root too), else chmod 555 for a user that mode bits bind; None if neither works."""
    if shutil.which("chattr") and subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0:
        return "chattr"
    folder.chmod(0o555)
    try:
        (folder / "probe").write_text("x")
    except OSError:
        return "chmod"
    (folder / "probe").unlink()
    folder.chmod(0o755)
    return None


def _make_writable(folder: Path, how: str) -> None:
    if how == "chattr":
        subprocess.run(["chattr", "-i", str(folder)], check=True)
    else:
        folder.chmod(0o755)


def test_a_full_then_read_only_disk_keeps_the_examples_reports_over_osc_and_a_later_save_works(tmp_path, tiny_model,
                                                                                                 loop_file):
    folder = tmp_path / "mappings"
    mounted = _mount_tmpfs(folder, 256)
    daemon, peer = start(tmp_path, tiny_model, loop_file, "--mapping", "live",
                         config={"mapping": {"save_delay_s": 0.1}})
    read_only = None
    try:
        peer.send("/ravemap/record/once")
        peer.send("/ravemap/mapping/save")
        assert peer.wait_for("/ravemap/mapping") == ["live"]
        saved = (folder / "live.json").read_bytes()
        examples = 1
        if mounted:  # a full disk: fill the tmpfs, then record
            fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
            try:
                while os.write(fd, b"\x00" * 4096):
                    pass
            except OSError:
                pass
            finally:
                os.close(fd)
            for x in (0.1, 0.2, 0.3):
                peer.send("/ravemap/xy", x, 0.5)
                peer.send("/ravemap/record/once")
            examples += 3
            error = peer.wait_for("/ravemap/error")[0]
            assert "could not save mapping 'live'" in error and "No space left on device" in error, error
            assert "examples kept in memory" in error
            assert peer.status()["examples"] == examples
            assert (folder / "live.json").read_bytes() == saved, "the old file is whole"
            assert sorted(p.name for p in folder.iterdir()) == [".live.lock", "filler", "live.json"], \
                "no temp file is left (the lock file stays, made at start)"
            (folder / "filler").unlink()
            peer.send("/ravemap/mapping/save")
            assert peer.wait_for("/ravemap/mapping") == ["live"]
            assert len(load_mapping(folder, "live").examples) == examples
            saved = (folder / "live.json").read_bytes()
        read_only = _make_read_only(folder)
        if read_only is None and not mounted:
            pytest.skip("neither chattr +i nor chmod 555 stops this user writing, and tmpfs cannot be mounted")
        if read_only is not None:
            peer.drain()
            peer.send("/ravemap/xy", 0.9, 0.9)
            peer.send("/ravemap/record/once")
            examples += 1
            error = peer.wait_for("/ravemap/error")[0]
            assert "could not save mapping 'live'" in error and ("Operation not permitted" in error
                                                                or "Permission denied" in error), error
            peer.send("/ravemap/mapping/save", "elsewhere")
            assert "cannot save mapping 'elsewhere'" in peer.wait_for("/ravemap/error")[0]
            assert peer.status()["examples"] == examples and peer.status()["mapping"] == "live"
            assert (folder / "live.json").read_bytes() == saved
            _make_writable(folder, read_only)
            read_only = None
            peer.send("/ravemap/mapping/save")
            assert peer.wait_for("/ravemap/mapping") == ["live"]
            assert len(load_mapping(folder, "live").examples) == examples
    finally:
        if read_only is not None:
            _make_writable(folder, read_only)
        code = daemon.stop()
        peer.close()
        if mounted:
            subprocess.run(["umount", str(folder)], check=False)
    assert code == 0, daemon.stderr()[-2000:]


def test_sigkill_during_repeated_saves_never_leaves_a_broken_mapping_file(tmp_path, tiny_model, loop_file):
    """Record as fast as the controller sends (the mapping is saved after every change), kill the
    daemon at a random moment, start it again: several rounds on one file."""
    rng = random.Random(os.getpid())
    sent: list[float] = []  # every x sent, in order; y is 1 - x
    kept: list[Example] = []  # what the file held after the previous round
    for round_ in range(3):
        daemon, peer = start(tmp_path, tiny_model, loop_file, "--mapping", "kill",
                             config={"mapping": {"save_delay_s": 0.0}})
        try:
            assert "mapping 'kill'" in daemon.ready_line, "the file left by the kill loaded as it is"
            assert peer.status()["examples"] == len(kept)
            peer.send("/ravemap/record", 1)
            deadline = time.monotonic() + rng.uniform(0.3, 1.2)
            while time.monotonic() < deadline:
                for _ in range(20):
                    x = (len(sent) + 1) / 100_000
                    sent.append(x)
                    peer.send("/ravemap/xy", x, 1 - x)
                time.sleep(0.005)
            daemon.proc.send_signal(signal.SIGKILL)
            daemon.proc.wait(5)
        finally:
            daemon.stop()
            peer.close()
        mapping = load_mapping(daemon.mappings, "kill")
        inputs = [e.input[0] for e in mapping.examples]
        assert mapping.examples[: len(kept)] == kept, f"round {round_}: the earlier examples are intact"
        assert inputs == sorted(inputs) and set(inputs) <= set(sent_as_float32(sent)), f"round {round_}"
        assert len(mapping.examples) > len(kept), f"round {round_}: saves happened before the kill"
        kept = mapping.examples
    assert list_mappings(daemon.mappings) == ["kill"]


def sent_as_float32(values: list[float]) -> list[float]:
    import numpy as np

    return [float(v) for v in np.asarray(values, dtype=np.float32)]


def test_temp_files_left_by_killed_saves_are_removed_by_a_later_save_once_they_are_old(tmp_path):
    from ravemap.mapping.store import STALE_TEMP_S

    mapping = Mapping("kill", 2, (0, 1, 2, 3), (-3.0, 3.0), examples=[Example((0.5, 0.5), (0.0, 0.0, 0.0, 0.0))])
    save_mapping(tmp_path, mapping)
    old, young, other = tmp_path / ".kill.abc123.tmp", tmp_path / ".kill.def456.tmp", tmp_path / ".other.x.tmp"
    for leftover in (old, young, other):
        leftover.write_text('{"format": "ravemap-mapping", "exa')
    long_ago = time.time() - STALE_TEMP_S - 60
    os.utime(old, (long_ago, long_ago))
    os.utime(other, (long_ago, long_ago))
    save_mapping(tmp_path, mapping)
    assert not old.exists(), "an old leftover of this mapping's saves goes"
    assert young.exists(), "a young one may be a save running beside this one: it stays"
    assert other.exists(), "another mapping's leftovers are its own saves' business"
    assert load_mapping(tmp_path, "kill").examples == mapping.examples
