"""Training driven from a controller (real UDP against `ravemap serve`) and from Python: a result
lands on the mapping it was trained from, a training can be cancelled, and a trainer process that
stops answering is reported and replaced."""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from ravemap import Ravemap
from ravemap.mapping.regressor import RegressorSettings, fit
from ravemap.mapping.store import Example, Mapping, load_mapping, save_mapping, training_report
from tests.conftest import write_config
from tests.osc_peer import Daemon, OscPeer


@pytest.fixture
def peer():
    p = OscPeer(0)
    yield p
    p.close()


def _start(tmp_path, tiny_model, loop_file, peer, *extra, config=None) -> Daemon:
    daemon = Daemon(tmp_path, tiny_model, loop_file, peer.port, *extra, config=config)
    peer.daemon = ("127.0.0.1", daemon.port)
    return daemon


def children(pid: int) -> list[str]:
    """The child processes of `pid`, whichever of its threads started them."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):  # a thread that ended meanwhile
            found += (task / "children").read_text().split()
    return found


def trainer_pid(daemon: Daemon, timeout: float = 30) -> int:
    """The daemon's trainer process: its child running `ravemap.mapping.trainer_worker`. The daemon
    starts it (from its session thread) with the first training, so this waits, polling every 10 ms,
    until there is one."""
    deadline = time.monotonic() + timeout
    while True:
        found = []
        for child in (kids := children(daemon.proc.pid)):
            try:
                if b"trainer_worker" in Path(f"/proc/{child}/cmdline").read_bytes():
                    found.append(int(child))
            except FileNotFoundError:  # exited meanwhile
                pass
        assert len(found) <= 1, f"expected one trainer process among {kids}"
        if found:
            return found[0]
        assert time.monotonic() < deadline, f"no trainer process among {kids} within {timeout} s"
        time.sleep(0.01)


def no_trainer_process(daemon: Daemon) -> bool:
    return not any(b"trainer_worker" in Path(f"/proc/{c}/cmdline").read_bytes() for c in children(daemon.proc.pid))


def gone(pid: int) -> bool:
    """True once `pid` has exited and been reaped."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} within {timeout} s"
        time.sleep(0.1)


def record(peer: OscPeer, n: int, seed: int = 0) -> None:
    """n examples, as a performer's controller sends them."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        peer.send("/ravemap/xy", *(float(v) for v in rng.random(2)))
        peer.send("/ravemap/latent", *(float(v) for v in rng.uniform(-3, 3, 4)))
        peer.send("/ravemap/record/once")
    until(lambda: peer.status()["examples"] == n, 30, f"{n} examples recorded")


def wait_until_training_runs(peer: OscPeer, timeout: float = 60) -> None:
    """Until the trainer reports progress of the job it is running (not the reset to 0 at its start)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for address, args in peer.receive(0.1):
            if address == "/ravemap/train/progress" and args[0] > 0:
                return
    raise AssertionError("the training never made progress")


def training_ended(peer: OscPeer) -> bool:
    return not peer.status()["training"]


def errors(peer: OscPeer) -> list[str]:
    return [args[0] for address, args in peer.seen if address == "/ravemap/error"]


def cancels(peer: OscPeer) -> list[str]:
    return [args[0] for address, args in peer.seen if address == "/ravemap/train/cancelled"]


# -- a result goes to the mapping it was trained from ------------------------------------------

def trained_mapping_c(folder: Path) -> dict:
    """A saved mapping C, trained on examples of its own; returns its file as it was."""
    rng = np.random.default_rng(9)
    x, y = rng.random((6, 2)), rng.uniform(-3, 3, (6, 4))
    result = fit(x, y, RegressorSettings(kind="linear"))
    c = Mapping(name="C", input_size=2, output_dims=(0, 1, 2, 3), output_range=(-3.0, 3.0),
                examples=[Example(tuple(a), tuple(b)) for a, b in zip(x.tolist(), y.tolist(), strict=True)],
                regressor=result.regressor, training=training_report(result))
    return json.loads(save_mapping(folder, c).read_text())


@pytest.mark.parametrize("switch", [("/ravemap/mapping/new", "E"), ("/ravemap/mapping/load", "C")])
def test_training_that_ends_after_another_mapping_was_opened_lands_on_the_mapping_it_was_trained_from(
        tmp_path, tiny_model, loop_file, peer, switch):
    address, other = switch
    daemon = _start(tmp_path, tiny_model, loop_file, peer, "--mapping", "A")
    c_before = trained_mapping_c(daemon.mappings)
    try:
        record(peer, 300)
        assert no_trainer_process(daemon), "a daemon starts its trainer process with the first training"
        peer.send("/ravemap/train", 500)
        trainer = trainer_pid(daemon)
        # Stopped while it imports torch: the job waits in its pipe, so the switch certainly comes while A trains.
        os.kill(trainer, signal.SIGSTOP)
        try:
            until(lambda: peer.status()["training"], 10, "training accepted")
            peer.send(address, other)
            assert peer.wait_for("/ravemap/mapping", 10) == [other]
        finally:
            os.kill(trainer, signal.SIGCONT)
        until(lambda: training_ended(peer), 120, "training ended")
        state = peer.status()
        assert state["mapping"] == other and state["examples"] == (0 if other == "E" else 6)
        assert state["trained"] is (other == "C"), "the other mapping keeps the training it had"
        peer.send("/ravemap/run", 1)
        time.sleep(0.3)
        assert peer.status()["running"] is (other == "C")
    finally:
        assert daemon.stop() == 0
    a = load_mapping(daemon.mappings, "A")
    assert len(a.examples) == 300 and a.regressor is not None and a.training["examples"] == 300
    if other == "C":
        c_after = json.loads((daemon.mappings / "C.json").read_text())
        assert (c_after["regressor"], c_after["training"], c_after["examples"]) == \
            (c_before["regressor"], c_before["training"], c_before["examples"])
    else:
        assert load_mapping(daemon.mappings, "E").regressor is None


def test_training_that_ends_after_its_mapping_was_replaced_under_the_same_name_is_dropped_saying_so(
        tmp_path, tiny_model, loop_file, peer):
    daemon = _start(tmp_path, tiny_model, loop_file, peer, "--mapping", "A")
    try:
        record(peer, 50)
        peer.send("/ravemap/train", 500)
        trainer = trainer_pid(daemon)
        os.kill(trainer, signal.SIGSTOP)  # as it starts up: the job waits in its pipe
        try:
            until(lambda: peer.status()["training"], 10, "training accepted")
            peer.send("/ravemap/mapping/new", "A")  # a new, empty mapping called A
            until(lambda: peer.status()["examples"] == 0, 10, "the new mapping A opened")
        finally:
            os.kill(trainer, signal.SIGCONT)
        until(lambda: training_ended(peer), 120, "training ended")
        state = peer.status()
        assert state["mapping"] == "A" and state["examples"] == 0 and state["trained"] is False
        assert any("dropped" in e and "'A'" in e for e in errors(peer)), errors(peer)
        assert "dropped" in state["last_error"]
    finally:
        assert daemon.stop() == 0
    assert load_mapping(daemon.mappings, "A").regressor is None


# -- cancel, and a trainer that stops answering -------------------------------------------------

def test_a_long_training_is_cancelled_over_osc_and_the_next_one_runs(tmp_path, tiny_model, loop_file, peer):
    daemon = _start(tmp_path, tiny_model, loop_file, peer, "--mapping", "A")
    try:
        record(peer, 300)
        peer.send("/ravemap/train", 1_000_000)
        assert peer.wait_for("/ravemap/train/progress", 10)[0] == 0.0, "the bar is reset when training starts"
        wait_until_training_runs(peer)
        peer.send("/ravemap/train/cancel")
        until(lambda: training_ended(peer), 10, "training cancelled")
        assert cancels(peer) == ["training cancelled, the previous mapping stays"], peer.seen
        assert not any("cancelled" in e for e in errors(peer)), "a cancel asked for is no error"
        assert peer.status()["trained"] is False and peer.status()["last_error"] == ""
        peer.send("/ravemap/train", 50)
        assert peer.wait_for("/ravemap/train/done", 60)[1] == 300
        assert peer.status()["trained"] is True
    finally:
        assert daemon.stop() == 0
    assert "training mlp on 300 examples of mapping 'A'" in daemon.stderr()


def test_wekinators_train_cancel_train_trains_even_when_the_cancel_is_slow(tmp_path, tiny_model, loop_file, peer):
    """A user clicks train, cancel, train half a second apart while the trainer process is slow to
    stop (here: stopped, so the cancel ends only when the trainer is ended after `CANCEL_TIMEOUT_S`).
    The second train is not refused: it runs once the cancel has ended, and run mode then starts."""
    daemon = _start(tmp_path, tiny_model, loop_file, peer)
    stuck = None
    try:
        record(peer, 30)
        peer.send("/ravemap/train", 1_000_000)
        wait_until_training_runs(peer)
        stuck = trainer_pid(daemon)
        os.kill(stuck, signal.SIGSTOP)  # busy: the cancel cannot land at once
        peer.drain()
        peer.send("/wekinator/control/cancelTrain")
        time.sleep(0.5)
        peer.send("/wekinator/control/train")
        until(lambda: peer.receive(0.1) is not None and peer.last("/ravemap/train/done") is not None, 60,
              "the second train runs once the cancel ended")
        assert peer.last("/ravemap/train/done")[1] == 30
        assert [c for c in cancels(peer) if c.startswith("training cancelled")], peer.seen
        assert not any("already running" in e for e in errors(peer)), errors(peer)
        until(lambda: gone(stuck), 10, "the stopped process ended")
        peer.send("/wekinator/control/startRunning")
        until(lambda: peer.status()["running"], 10, "run mode on")
    finally:
        if stuck is not None and not gone(stuck):
            os.kill(stuck, signal.SIGKILL)
        assert daemon.stop() == 0


def test_a_stopped_trainer_process_is_reported_and_replaced(tmp_path, tiny_model, loop_file, peer):
    daemon = _start(tmp_path, tiny_model, loop_file, peer, config={"mapping": {"trainer_stall_s": 3}})
    stuck = None
    try:
        record(peer, 20)
        peer.send("/ravemap/train", 1_000_000)
        wait_until_training_runs(peer)
        stuck = trainer_pid(daemon)
        os.kill(stuck, signal.SIGSTOP)
        until(lambda: training_ended(peer), 60, "the stuck training reported")
        assert any("answered nothing for 3 s" in e for e in errors(peer)), errors(peer)
        until(lambda: gone(stuck), 10, "the stopped process ended")
        peer.send("/ravemap/train", 50)
        assert peer.wait_for("/ravemap/train/done", 60)[1] == 20
        assert trainer_pid(daemon) != stuck
    finally:
        if stuck is not None and not gone(stuck):
            os.kill(stuck, signal.SIGKILL)
        assert daemon.stop() == 0


def test_training_is_cancelled_from_python(tmp_path, tiny_model, loop_file):
    config = write_config(tmp_path / "c.yaml", osc={"zeroconf": False}, midi={"enabled": False})
    rm = Ravemap(config, model=tiny_model, loop=loop_file, audio="none", mappings_dir=tmp_path / "maps")
    try:
        rng = np.random.default_rng(3)
        for _ in range(200):
            rm.set_inputs(rng.random(2).tolist())
            rm.set_offsets(rng.uniform(-3, 3, 4).tolist())
            rm.record_once()
        rm.train(epochs=1_000_000, wait=False)
        until(lambda: rm.status()["training"] and rm.session.train_progress[0] > 0, 60, "training running")
        assert rm.cancel_training() is True
        until(lambda: not rm.status()["training"], 10, "training cancelled")
        assert rm.status()["last_error"] == "", "a cancel asked for is no error"
        assert rm.status()["trained"] is False and not math.isnan(rm.session.train_progress[1])
        assert rm.cancel_training() is False, "nothing left to cancel"
        waiting: list[BaseException] = []
        caller = threading.Thread(target=lambda: waiting.append(pytest.raises(RuntimeError, rm.train,
                                                                              epochs=1_000_000).value))
        caller.start()
        until(lambda: rm.status()["training"] and rm.session.train_progress[0] > 0, 60, "training running again")
        assert rm.cancel_training() is True
        caller.join(30)
        assert str(waiting[0]) == "training cancelled, the previous mapping stays", "train(wait=True) learns it"
        assert rm.train(epochs=20).examples == 200
    finally:
        rm.stop()
