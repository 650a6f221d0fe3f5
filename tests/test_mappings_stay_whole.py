"""A performer's mapping is never lost, overwritten or frozen on: probed from outside against
`ravemap serve` (real UDP on 127.0.0.1, real files, real signals), as issue 11 reproduced it.

- Two daemons on one mapping: the second one never writes over the first one's file.
- A daemon that fails to start writes no mapping file.
- Stopping while saves fail: retried, then a recovery copy named in the log; exit code 5 when
  nothing at all could be written.
- The 1,000,000-example limit is enforced when recording, so the mapping stays saveable.
- A mapping saved for other latent dims is not loaded as if it fitted.
- Saving a big mapping, and reading a huge file, never hold up control.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from ravemap.errors import MappingError
from ravemap.mapping.store import (
    MAX_EXAMPLES,
    MAX_FILE_BYTES,
    Example,
    Mapping,
    MappingLock,
    load_mapping,
    save_mapping,
)
from tests.conftest import REPO
from tests.osc_peer import Daemon, OscPeer, free_udp_port
from tests.test_hostile_files import _mount_tmpfs, start


def record(peer: OscPeer, n: int, offset: float = 0.0) -> None:
    """`n` more distinct examples; returns once the daemon holds them all."""
    total = peer.status()["examples"] + n
    for i in range(n):
        peer.send("/ravemap/xy", offset + i / (4 * n), 0.5)
        peer.send("/ravemap/record/once")
    deadline = time.monotonic() + 30
    while peer.status()["examples"] < total:
        assert time.monotonic() < deadline, "the examples never all arrived"


# -- 2: one process per mapping ----------------------------------------------------------------


def test_a_second_daemon_on_the_same_mapping_takes_a_new_name_and_neither_loses_examples(tmp_path, tiny_model,
                                                                                         loop_file):
    first, peer1 = start(tmp_path, tiny_model, loop_file, "--mapping", "live")
    second = peer2 = None
    try:
        second, peer2 = start(tmp_path, tiny_model, loop_file, "--mapping", "live")
        other = peer2.status()["mapping"]
        assert other.startswith("live-") and repr(other) in second.ready_line
        said = [ln for ln in second.stderr().splitlines() if "ERROR" in ln and "in use by another ravemap" in ln]
        assert len(said) == 1 and f"process {first.proc.pid}" in said[0] and repr(other) in said[0], said
        record(peer1, 30)
        record(peer2, 20, offset=0.5)
        peer2.send("/ravemap/mapping/load", "live")
        error = peer2.wait_for("/ravemap/error")[0]
        assert "'live' is in use by another ravemap" in error, error
        peer2.send("/ravemap/mapping/save", "live")
        assert "'live' is in use by another ravemap" in peer2.wait_for("/ravemap/error")[0]
        assert peer2.status()["mapping"] == other
    finally:
        codes = [first.stop()] + ([second.stop()] if second is not None else [])
        for p in (peer1, peer2):
            if p is not None:
                p.close()
    assert codes == [0, 0], (first.stderr()[-2000:], second and second.stderr()[-2000:])
    assert len(load_mapping(first.mappings, "live").examples) == 30
    assert len(load_mapping(first.mappings, other).examples) == 20


def test_a_mapping_let_go_leaves_no_lock_file(tmp_path, tiny_model, loop_file):
    """The lock file goes with the lock: on a switch to another mapping and on a clean stop."""
    daemon, peer = start(tmp_path, tiny_model, loop_file, "--mapping", "live")
    folder = daemon.mappings
    try:
        assert (folder / ".live.lock").exists()
        peer.send("/ravemap/mapping/new", "next")
        assert peer.wait_for("/ravemap/mapping") == ["next"]
        assert not (folder / ".live.lock").exists(), "the old mapping's lock file is gone with its lock"
        assert (folder / ".next.lock").exists()
    finally:
        code = daemon.stop()
        peer.close()
    assert code == 0, daemon.stderr()[-2000:]
    assert [p.name for p in folder.iterdir() if p.name.endswith(".lock")] == [], "a clean stop leaves no lock"


def test_two_takers_never_hold_one_mapping_while_its_lock_file_comes_and_goes(tmp_path):
    """Lockers race a holder that removes the lock file as it lets go: never two holders at once."""
    holding: list[int] = []
    overlaps: list[list[int]] = []
    taken = [0] * 4

    def take(who: int) -> None:
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            try:
                lock = MappingLock(tmp_path, "live")
            except MappingError:
                continue
            holding.append(who)
            if len(holding) > 1:
                overlaps.append(list(holding))
            taken[who] += 1
            time.sleep(0.0005)
            holding.remove(who)
            lock.release()

    threads = [threading.Thread(target=take, args=(who,)) for who in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps == [], f"held by two at once {len(overlaps)} times"
    assert sum(taken) > 50 and all(taken), taken
    assert not (tmp_path / ".live.lock").exists()


def test_a_daemon_that_fails_to_start_writes_no_mapping_file(tmp_path, tiny_model, loop_file):
    first, peer = start(tmp_path, tiny_model, loop_file, "--mapping", "live")
    try:
        record(peer, 5)
        peer.send("/ravemap/mapping/save")
        assert peer.wait_for("/ravemap/mapping") == ["live"]
        before = sorted((p.name, p.stat().st_ino, p.read_bytes()) for p in first.mappings.iterdir()
                        if not p.name.startswith("."))
        # The same control port: this one gets as far as playing, then cannot open it.
        config = tmp_path / "clash.yaml"
        config.write_text(first.config_path.read_text())
        done = subprocess.run(
            [*first.proc.args[:3], "serve", "--config", str(config), "--model", str(tiny_model), "--loop",
             str(loop_file), "--audio", "none", "--osc-port", str(first.port), "--feedback-port",
             str(free_udp_port()), "--mappings-dir", str(first.mappings), "--mapping", "live"],
            cwd=REPO, capture_output=True, text=True, timeout=120)
        assert done.returncode == 4, done.stderr[-2000:]
        assert "cannot open the OSC control port" in done.stderr
        after = sorted((p.name, p.stat().st_ino, p.read_bytes()) for p in first.mappings.iterdir()
                       if not p.name.startswith("."))
        assert after == before, "the failed daemon wrote a mapping file"
    finally:
        assert first.stop() == 0, first.stderr()[-2000:]
        peer.close()
    assert len(load_mapping(first.mappings, "live").examples) == 5


# -- 3: stopping while saves fail --------------------------------------------------------------


def _fill(folder: Path) -> None:
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\x00" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)


def test_stopping_with_a_full_disk_writes_a_recovery_copy_and_names_it(tmp_path, tiny_model, loop_file):
    folder = tmp_path / "mappings"
    if not _mount_tmpfs(folder, 256):
        pytest.skip("a full disk needs a small tmpfs, which only root can mount")
    data_home = tmp_path / "data-home"
    peer = OscPeer(0)
    daemon = Daemon(tmp_path, tiny_model, loop_file, peer.port, "--mapping", "live",
                    config={"mapping": {"save_delay_s": 0.1}}, env={"XDG_DATA_HOME": str(data_home)})
    peer.daemon = ("127.0.0.1", daemon.port)
    try:
        record(peer, 3)
        _fill(folder)
        record(peer, 40)
        assert "No space left on device" in peer.wait_for("/ravemap/error")[0]
        code = daemon.stop(signal.SIGTERM, timeout=60)
    finally:
        daemon.stop()
        peer.close()
        subprocess.run(["umount", str(folder)], check=False)
    log = daemon.stderr()
    assert code == 0, log[-3000:]
    copies = list((data_home / "ravemap" / "recovered").glob("live-*.json"))
    assert len(copies) == 1, log[-3000:]
    assert str(copies[0]) in log and "recovery copy with all 43 examples" in log
    assert "try 3 of 3" in log, "the save is tried again before giving up on the folder"
    recovered = load_mapping(copies[0].parent, copies[0].stem)
    assert len(recovered.examples) == 43


def test_stopping_when_nothing_can_be_written_anywhere_raises_and_the_daemon_exits_5(tmp_path, tiny_model, loop_file,
                                                                                   monkeypatch):
    """In process: the mappings folder, the data folder and the temp folder all on one full disk (a
    daemon's temp folder falls back to /tmp, which a test cannot fill)."""
    import tempfile

    from ravemap.api import Ravemap
    from ravemap.daemon import Daemon as Lifecycle
    from ravemap.errors import MappingError

    folder = tmp_path / "mappings"
    if not _mount_tmpfs(folder, 256):
        pytest.skip("a full disk needs a small tmpfs, which only root can mount")
    try:
        elsewhere = folder / "elsewhere"
        elsewhere.mkdir()
        monkeypatch.setenv("XDG_DATA_HOME", str(elsewhere))
        monkeypatch.setattr(tempfile, "tempdir", str(elsewhere))
        rm = Ravemap(model=tiny_model, loop=loop_file, audio="none", mapping="live", mappings_dir=folder)
        rm.start()
        rm.record_once()
        rm._call("sync")
        _fill(folder)
        for i in range(30):
            rm.set_inputs([i / 40, 0.5])
            rm.record_once()
        with pytest.raises(MappingError, match="no recovery copy could be written.*31 examples are lost"):
            rm.stop()
        # the daemon turns that into exit code 5
        lifecycle = Lifecycle(rm.config)
        lifecycle.core = Ravemap(model=tiny_model, loop=loop_file, audio="none", mapping="other",
                                 mappings_dir=folder)
        lifecycle.core.start()
        lifecycle.ready = True
        lifecycle.core.record_once()
        lifecycle.stop()
        assert lifecycle.exit_code == 5
    finally:
        subprocess.run(["umount", str(folder)], check=False)


# -- 4: the example limit ----------------------------------------------------------------------


def test_recording_past_the_example_limit_is_refused_and_the_mapping_stays_saveable(tmp_path, tiny_model, loop_file):
    """In process (a daemon would spend a minute reading 150 MB): the session that a daemon runs, at the limit."""
    from ravemap.api import Ravemap

    rm = Ravemap(model=tiny_model, loop=loop_file, audio="none", mapping="full", mappings_dir=tmp_path / "mappings")
    try:
        one = Example((0.5, 0.5), (0.0, 0.0, 0.0, 0.0))
        rm.session.mapping.examples = [one] * MAX_EXAMPLES  # as loaded from a file at the limit
        rm.set_inputs([0.25, 0.75])
        with pytest.raises(ValueError, match=f"holds {MAX_EXAMPLES} examples, the most a mapping can hold"):
            rm.record_once()
        assert rm.status()["examples"] == MAX_EXAMPLES
        rm.record(True)
        with pytest.raises(ValueError, match="the most a mapping can hold"):
            rm.set_inputs([0.3, 0.7])  # continuous recording is refused the same way
        assert rm.status()["examples"] == MAX_EXAMPLES
        rm.record(False)
        rm.undo_example()
        rm.record_once()
        assert rm.status()["examples"] == MAX_EXAMPLES
        rm.new_mapping("next")  # saves the full one first: it must be saveable
        assert rm.status()["mapping"] == "next"
    finally:
        rm.stop()
    with open(tmp_path / "mappings" / "full.json") as f:
        assert sum(line.startswith('  {"input": ') for line in f) == MAX_EXAMPLES


# -- 6: latent dims ----------------------------------------------------------------------------


def test_a_mapping_saved_for_other_latent_dims_is_not_loaded_as_if_it_fitted(tmp_path, tiny_model, loop_file):
    folder = tmp_path / "mappings"
    other = Mapping("high", 2, (4, 5, 6, 7), (-3.0, 3.0), examples=[Example((0.5, 0.5), (1.0, 1.0, 1.0, 1.0))])
    save_mapping(folder, other)
    before = (folder / "high.json").read_bytes()
    daemon, peer = start(tmp_path, tiny_model, loop_file, "--mapping", "live")
    try:
        peer.send("/ravemap/mapping/load", "high")
        error = peer.wait_for("/ravemap/error")[0]
        assert "latent dims [4, 5, 6, 7]" in error and "latent.dims [0, 1, 2, 3]" in error, error
        assert peer.status()["mapping"] == "live"
    finally:
        assert daemon.stop() == 0, daemon.stderr()[-2000:]
        peer.close()
    assert (folder / "high.json").read_bytes() == before
    # and at start, as a misfitting file: left untouched, a new mapping instead
    daemon, peer = start(tmp_path, tiny_model, loop_file, "--mapping", "high")
    try:
        assert peer.status()["mapping"].startswith("high-")
    finally:
        assert daemon.stop() == 0
        peer.close()
    assert (folder / "high.json").read_bytes() == before


# -- 5 and 12: big mappings never hold up control ----------------------------------------------


def big_mapping(n: int) -> Mapping:
    return Mapping("big", 2, (0, 1, 2, 3), (-3.0, 3.0),
                   examples=[Example((i / n, 1 - i / n), (i % 7 / 7, -0.5, 1.25, 0.0)) for i in range(n)])


def test_saving_a_mapping_of_100k_examples_happens_beside_control(tmp_path, tiny_model, loop_file):
    """The save that follows a recorded example runs beside control: pings sent right after the example
    are answered while the file is being written. (It used to run on the session thread, right after
    the example and before any ping: every pong came only once the file was written.)"""
    folder = tmp_path / "mappings"
    save_mapping(folder, big_mapping(100_000))
    daemon, peer = start(tmp_path, tiny_model, loop_file, "--mapping", "big",
                         config={"mapping": {"save_delay_s": 0.0}})
    try:
        assert peer.status()["examples"] == 100_000
        path = folder / "big.json"
        for round_ in range(2):
            written = path.stat().st_mtime_ns
            peer.send("/ravemap/xy", 0.123 + round_ / 10, 0.5)
            peer.send("/ravemap/record/once")
            pongs_before_the_write = 0
            deadline = time.monotonic() + 120
            while path.stat().st_mtime_ns == written:
                assert time.monotonic() < deadline, "the save never happened"
                peer.send("/ravemap/ping", peer.port)
                pongs = sum(address == "/ravemap/pong" for address, _ in peer.receive(0.02))
                if path.stat().st_mtime_ns == written:
                    pongs_before_the_write += pongs
            assert pongs_before_the_write > 0, f"round {round_}: no ping was answered while the file was written"
    finally:
        assert daemon.stop(timeout=120) == 0, daemon.stderr()[-2000:]  # the last save of 100k examples
        peer.close()
    assert len(load_mapping(folder, "big").examples) == 100_002


def test_a_file_larger_than_any_mapping_is_refused_unread_and_a_big_one_is_read_beside_control(tmp_path, tiny_model,
                                                                                               loop_file):
    folder = tmp_path / "mappings"
    folder.mkdir()
    with open(folder / "huge.json", "wb") as f:  # sparse: costs no disk
        f.write(b"[")
        f.truncate(MAX_FILE_BYTES + 1)
    # 30 MB of JSON list: seconds to parse, so it never is: its head is no mapping's (a big mapping file is
    # parsed in a child process beside control, tests/test_big_files_never_stall.py)
    with open(folder / "big.json", "w") as f:
        f.write("[" + ",".join(["[0.123456789, 0.987654321, 1.5]"] * 900_000) + "]")
    daemon, peer = start(tmp_path, tiny_model, loop_file, "--mapping", "live")
    try:
        peer.send("/ravemap/mapping/load", "huge")
        error = peer.wait_for("/ravemap/error")[0]
        assert "too large for a mapping file" in error and "not read" in error, error
        peer.drain()
        peer.send("/ravemap/mapping/load", "big")
        peer.send("/ravemap/ping", peer.port)
        got = []
        deadline = time.monotonic() + 120
        while not {"/ravemap/error", "/ravemap/pong"} <= set(got):  # refused from its head, in either order
            assert time.monotonic() < deadline, got
            got += [a for a, _ in peer.receive(0.1)]
        error = peer.last("/ravemap/error")[0]
        assert "big.json: not a ravemap mapping file" in error, error
        assert peer.status()["mapping"] == "live"
    finally:
        assert daemon.stop() == 0, daemon.stderr()[-2000:]
        peer.close()
