"""Training happens in another process and reports back on the trainer thread; the audio never waits."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

import numpy as np
import pytest

from ravemap.mapping.regressor import FitResult, RegressorSettings
from ravemap.mapping.trainer import THREAD_NAME, Trainer

LONG = RegressorSettings(epochs=1_000_000, patience=0)  # runs until cancelled


class Report:
    """Collects what a trainer says about one job."""

    def __init__(self) -> None:
        self.progress: list[tuple[float, float, str]] = []
        self.started = threading.Event()
        self.done = threading.Event()
        self.result: FitResult | None = None
        self.message: str | None = None
        self.thread = ""
        self.calls = 0

    def on_progress(self, fraction: float, loss: float) -> None:
        self.progress.append((fraction, loss, threading.current_thread().name))
        self.started.set()

    def on_done(self, result: FitResult | None, message: str | None) -> None:
        self.calls += 1
        self.result, self.message, self.thread = result, message, threading.current_thread().name
        self.done.set()

    def wait(self, timeout: float = 30.0) -> Report:
        assert self.done.wait(timeout), "the trainer never reported"
        return self


def poses(n: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.random((n, 2)), rng.uniform(-3, 3, (n, 4))


@pytest.fixture(scope="module")
def trainer():
    t = Trainer()
    t.start()
    yield t
    t.close()


@pytest.fixture
def own_trainer():
    t = Trainer()
    t.start()
    yield t
    t.close()


def train(trainer: Trainer, x, y, settings: RegressorSettings | None = None) -> Report:
    report = Report()
    trainer.train(x, y, settings or RegressorSettings(), report.on_progress, report.on_done)
    return report


def test_training_runs_in_another_process_and_reports_on_the_trainer_thread(trainer):
    pid = trainer.worker_pid
    assert pid is not None and pid != os.getpid()
    x, y = poses()
    report = train(trainer, x, y).wait()
    assert report.message is None and report.calls == 1
    assert report.thread == THREAD_NAME and report.thread != threading.current_thread().name
    assert report.progress and {name for _, _, name in report.progress} == {THREAD_NAME}
    assert report.progress[-1][0] == 1.0
    result = report.result
    assert isinstance(result, FitResult) and result.examples == 8 and result.seconds > 0
    y_std = np.asarray(result.regressor.to_state()["y_std"])
    assert np.abs((result.regressor.predict(x) - y) / y_std).max() < 0.05
    assert not trainer.busy and trainer.worker_pid == pid  # one persistent process


def test_the_first_training_starts_the_trainer_process_and_runs_once_it_is_up():
    """A daemon that never trains never starts the process; the first `train` starts it without waiting."""
    def trainer_threads() -> set[threading.Thread]:
        return {th for th in threading.enumerate() if th.name.startswith(THREAD_NAME)}

    others = trainer_threads()  # the module's trainer, when a test before this one started it
    t = Trainer()
    try:
        assert t.worker_pid is None and not t.busy and trainer_threads() == others, "no process, no threads"
        x, y = poses()
        report = train(t, x, y)
        assert t.busy, "train returned at once, with the job waiting for the process"
        report.wait(60)
        assert report.message is None and report.calls == 1 and report.progress[-1][0] == 1.0
        assert report.result is not None and report.result.examples == 8
        pid = t.worker_pid
        assert pid is not None and pid != os.getpid()
        assert train(t, x, y).wait().result is not None and t.worker_pid == pid, "then it stays"
    finally:
        t.close()


def test_the_trainer_process_runs_at_a_lower_priority(trainer):
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    assert os.getpriority(os.PRIO_PROCESS, trainer.worker_pid) == min(19, ours + 10)


def test_start_is_idempotent(trainer):
    pid = trainer.worker_pid
    trainer.start()
    assert trainer.worker_pid == pid


def test_a_second_training_while_one_runs_is_refused(trainer):
    x, y = poses()
    report = train(trainer, x, y, LONG)
    assert trainer.busy
    with pytest.raises(RuntimeError, match="training is already running"):
        train(trainer, x, y)
    trainer.cancel()
    report.wait()


def test_a_cancelled_training_reports_cancelled_and_leaves_nothing(trainer):
    pid = trainer.worker_pid
    x, y = poses(50)
    report = train(trainer, x, y, LONG)
    assert report.started.wait(30)
    trainer.cancel()
    report.wait()
    assert (report.result, report.message) == (None, "training cancelled")
    assert not trainer.busy
    seen = len(report.progress)
    time.sleep(0.3)
    assert len(report.progress) == seen and report.calls == 1  # nothing more from that job
    assert train(trainer, x, y, RegressorSettings(kind="linear")).wait().result is not None  # ready again
    assert trainer.worker_pid == pid
    trainer.cancel()  # nothing running: nothing happens


def test_bad_examples_come_back_as_a_message(trainer):
    report = train(trainer, [], [], RegressorSettings()).wait()
    assert report.result is None and report.message.startswith("no examples to train on")
    report = train(trainer, [[0.0, float("nan")]], [[1.0]]).wait()
    assert report.result is None and "not finite" in report.message
    report = train(trainer, [[0.0, 1.0], [1.0]], [[1.0], [2.0]]).wait()
    assert report.result is None and "rows of numbers of equal length" in report.message
    assert not trainer.busy


def test_a_callback_that_raises_does_not_stop_the_trainer(trainer):
    report = Report()

    def broken(fraction: float, loss: float) -> None:
        raise RuntimeError("a bug in the control plane")

    trainer.train(*poses(), RegressorSettings(epochs=300), broken, report.on_done)
    assert report.wait().result is not None and report.thread == THREAD_NAME


def test_a_new_training_can_start_from_on_done(trainer):
    second = Report()
    first = Report()

    def then_train_again(result, message) -> None:
        first.on_done(result, message)
        trainer.train(*poses(seed=1), RegressorSettings(kind="knn"), second.on_progress, second.on_done)

    trainer.train(*poses(), RegressorSettings(kind="linear"), first.on_progress, then_train_again)
    assert first.wait().result is not None
    assert second.wait().result is not None and second.result.reason == "exact (knn)"


def test_a_killed_trainer_process_reports_it_died_and_the_next_training_restarts_it(own_trainer):
    old = own_trainer.worker_pid
    report = train(own_trainer, *poses(), LONG)
    assert report.started.wait(30)
    os.kill(old, signal.SIGKILL)
    report.wait()
    assert report.result is None and report.message.startswith("trainer process died (exit code -9)")
    assert not own_trainer.busy
    again = train(own_trainer, *poses()).wait(60)
    assert again.result is not None
    assert own_trainer.worker_pid not in (None, old)


def test_closing_stops_the_process_and_the_running_job_reports(own_trainer):
    pid = own_trainer.worker_pid
    report = train(own_trainer, *poses(), LONG)
    assert report.started.wait(30)
    own_trainer.close()
    assert report.done.is_set() and report.result is None and report.message.startswith("training cancelled")
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not own_trainer.busy and own_trainer.worker_pid is None
    own_trainer.close()  # twice is fine


def test_ordinary_stops_end_the_process_without_a_warning(caplog):
    """Two threads used to reap the child at once; the loser took it for alive and warned (and
    signalled a pid already reaped) in about a third of stops."""
    caplog.set_level(logging.INFO, logger="ravemap.trainer")
    for _ in range(4):
        t = Trainer()
        t.start()
        pid = t.worker_pid
        t.close(timeout=0.5)
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert not [r for r in caplog.records if "did not stop" in r.getMessage()]


def test_a_trainer_process_that_stops_answering_is_reported_and_replaced():
    t = Trainer(stall_timeout=1.5)
    t.start()
    try:
        stuck = t.worker_pid
        report = train(t, *poses(), LONG)
        assert report.started.wait(30)
        os.kill(stuck, signal.SIGSTOP)
        report.wait(30)
        assert report.result is None and f"trainer process {stuck} answered nothing" in report.message
        assert "a new one started" in report.message and not t.busy
        again = train(t, *poses(), RegressorSettings(kind="linear")).wait(60)
        assert again.result is not None and t.worker_pid not in (None, stuck)
        with pytest.raises(ProcessLookupError):
            os.kill(stuck, 0)
    finally:
        t.close()


def test_cancel_ends_the_job_even_when_the_trainer_process_does_not_listen():
    t = Trainer(stall_timeout=60.0, cancel_timeout=1.0)
    t.start()
    try:
        stuck = t.worker_pid
        report = train(t, *poses(), LONG)
        assert report.started.wait(30)
        os.kill(stuck, signal.SIGSTOP)
        assert t.cancel() is True
        report.wait(30)
        assert report.result is None and report.message.startswith("training cancelled")
        assert f"trainer process {stuck} did not stop within 1 s" in report.message and not t.busy
        assert train(t, *poses(), RegressorSettings(kind="linear")).wait(60).result is not None
        assert t.worker_pid != stuck
        assert t.cancel() is False, "nothing running"
    finally:
        t.close()


def test_a_big_job_for_a_stopped_trainer_process_never_blocks_the_caller():
    """The job's frame (about 50 MB) is far bigger than a pipe holds; the caller only queues it."""
    t = Trainer(stall_timeout=60.0, cancel_timeout=1.0)
    t.start()
    try:
        os.kill(t.worker_pid, signal.SIGSTOP)
        x, y = poses(1_000_000)
        report = Report()
        returned = threading.Event()
        caller = threading.Thread(target=lambda: (t.train(x, y, LONG, report.on_progress, report.on_done),
                                                  returned.set()))
        caller.start()
        assert returned.wait(30), "train() waited for the stopped process"
        t.cancel()
        assert report.wait(30).message.startswith("training cancelled")
    finally:
        t.close()
