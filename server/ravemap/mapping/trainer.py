"""Training in a child process, so that it never slows the audio.

Why a process: torch's intra-op thread pool is per process, and a trainer's many tiny ops in a
thread of the daemon fought the engine's decoder for the two cores (worst decode 2.6x over the
block budget, see NOTES-performance.md). A child process has its own pool (one thread), its own
GIL, and runs at a lower priority (nice +10).

The process: ONE persistent child at a time, `python -m ravemap.mapping.trainer_worker` (that
module describes the process and the frames it speaks on its stdin and stdout), started with
`subprocess` from the folder holding this `ravemap` package, so it runs the same code as its
parent. It is a program of its own, not a multiprocessing child: it never imports the caller's
main module, so scripts without an `if __name__ == "__main__"` guard, `python -`, `python -c` and
notebooks all train. It sets nice +10 and one torch thread, warms torch up, then fits one job at a
time. It exits when told to, or as soon as its stdin closes (the daemon went away, even killed).
It starts on first need: the first `train` starts it (a job handed over before it is ready runs
as soon as it is, so the first training also waits for its start-up, a second or two), and a
daemon that never trains never starts it (nor imports torch a second time). `start` starts it
ahead of time, for a caller who wants the first training to begin at once.

Threads, three per trainer process, and what each may do:
- listener, "ravemap-trainer": the only reader of the child's stdout. It calls `on_progress` and
  `on_done`. When the pipe closes it reaps the child (the only thread that waits for it) and
  reports a job in flight as "trainer process died ...".
- sender, "ravemap-trainer-send": the only writer of the child's stdin. Frames queue for it, so no
  caller ever blocks on a child that does not read (a big job for a stopped process, say).
- watchdog, "ravemap-trainer-watch": while a job runs, it pings the child every PING_INTERVAL_S
  (the child answers from a thread of its own, also during a long epoch). A child that answers
  nothing for `stall_timeout` s (stopped, swapped out, hung), that is not ready within
  START_TIMEOUT_S, or that has not stopped `cancel_timeout` s after a cancel is killed, the job
  ends with a message saying so, and a new child starts at once in its place.
- any other thread (control, API, tests): `start`, `train`, `cancel`, `close`, `busy`, `worker_pid`.
  A lock guards the bookkeeping. `start` waits for the child to be ready (seconds: torch import)
  and `close` for it to stop; `train`, `cancel` and `busy` never wait. When no child runs (none
  started yet, or the last one died), `train` starts one without waiting: the job runs once it
  is up. The three threads exist only while a child does: none before the first `train` or
  `start`.
Callbacks come from the listener or the watchdog, one call at a time (a lock), never from the
caller's thread; `on_progress` never comes after its job's `on_done`, and `train` may be called
from inside `on_done`. An exception in a callback is logged (rate-limited) and swallowed.

Contract for callers: `train` returns at once and raises only RuntimeError (a job is running, or no
trainer process could be started). Everything about the data or the run (no examples, NaN,
divergence, cancel, a dead or stuck child) arrives as on_done(None, message); success as
on_done(result, None). Exactly one on_done per accepted job. After `cancel()` returns, the running
job reports a message starting with "training cancelled" even if the child had already finished it.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ravemap.mapping.regressor import FitResult, RegressorSettings
from ravemap.mapping.settings import TRAINER_STALL_S
from ravemap.mapping.trainer_worker import MODULE, pack, read_frame, write_frame
from ravemap.ratelimit import RateLimitedLog

log = logging.getLogger("ravemap.trainer")
_limited = RateLimitedLog(log)

THREAD_NAME = "ravemap-trainer"
START_TIMEOUT_S = 60.0  # torch import and warm-up on a busy machine
STALL_TIMEOUT_S = TRAINER_STALL_S  # mapping.trainer_stall_s
CANCEL_TIMEOUT_S = 2.0
PING_INTERVAL_S = 0.5
EXIT_WAIT_S = 2.0  # how long `close` waits for a killed child to be reaped
CANCELLED = "training cancelled"
PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder holding this `ravemap` package


def worker_command() -> list[str]:
    """The command line of the trainer process."""
    if not sys.executable:
        raise RuntimeError("this Python does not know its own executable (sys.executable is empty)")
    return [sys.executable, "-m", MODULE]


def _worker_environment() -> dict[str, str]:
    env = dict(os.environ)
    # the same `ravemap` package as ours, whatever the current folder holds or the path says
    env["PYTHONPATH"] = os.pathsep.join([str(PACKAGE_ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env["OMP_NUM_THREADS"] = "1"  # one torch thread from the first import on
    return env


@dataclass
class _Job:
    id: int
    on_progress: Callable[[float, float], None]
    on_done: Callable[[FitResult | None, str | None], None]
    cancelled_at: float | None = None
    worker: _Worker | None = None  # set once handed over; only that worker's threads report the job
    handed_at: float = 0.0

    @property
    def cancelled(self) -> bool:
        return self.cancelled_at is not None


class _Worker:
    """One trainer process, the queue of frames for it and its three threads."""

    def __init__(self, process: subprocess.Popen):
        self.process = process
        self.pid = process.pid
        self.started = self.heard = time.monotonic()
        self.ready = threading.Event()
        self.gone = threading.Event()  # set under the trainer's lock once the child is reaped
        self.ending: str | None = None  # "closed" or "replaced" once the trainer ends it (under the lock)
        self.outbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self.threads: list[threading.Thread] = []

    def send(self, message: tuple) -> None:
        self.outbox.put(pack(message))

    def kill(self) -> None:
        if not self.gone.is_set():
            with contextlib.suppress(OSError):
                self.process.kill()  # also ends a stopped (SIGSTOP) process


class Trainer:
    """Runs `regressor.fit` in one persistent child process; see the module docstring."""

    def __init__(self, stall_timeout: float = STALL_TIMEOUT_S, cancel_timeout: float = CANCEL_TIMEOUT_S):
        self.stall_timeout = stall_timeout
        self.cancel_timeout = cancel_timeout
        self._lock = threading.Lock()
        self._callbacks = threading.Lock()
        self._worker: _Worker | None = None
        self._job: _Job | None = None
        self._closed = False
        self._ids = itertools.count(1)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, wait: bool = True) -> None:
        """Start the trainer process ahead of the first `train` and wait until it is ready (torch
        imported and warmed up: a few seconds on a busy 2-core machine). Idempotent. RuntimeError if
        it does not start. Optional: `train` starts the process itself when none runs.

        With `wait=False` it only starts the process and returns: a job given to `train` before the
        process is ready runs as soon as it is."""
        worker = self._ensure_worker()
        if not wait:
            return
        deadline = time.monotonic() + START_TIMEOUT_S
        while not worker.ready.wait(0.05):
            if worker.gone.is_set():
                raise RuntimeError(f"the trainer process did not start (exit code {worker.process.returncode})")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the trainer process did not start within {START_TIMEOUT_S:.0f} s")

    def close(self, timeout: float = 2.0) -> None:
        """Stop the trainer process (kill it if it won't); a running job reports cancelled."""
        with self._lock:
            self._closed = True
            worker, self._worker = self._worker, None
            if worker is not None and worker.ending is None:
                worker.ending = "closed"
            if self._job is not None and self._job.cancelled_at is None:
                self._job.cancelled_at = time.monotonic()
        if worker is None:
            return
        worker.send(("stop",))
        # A worker still starting holds nothing yet: end it now rather than wait for its reader.
        ready = worker.ready.is_set()
        if not worker.gone.wait(timeout if ready else 0.0):
            if ready:
                log.warning("trainer process %s did not stop within %.1f s: killing it", worker.pid, timeout)
            worker.kill()
            worker.gone.wait(EXIT_WAIT_S)
        for thread in worker.threads:
            if thread is not threading.current_thread():
                thread.join(1.0)

    def _ensure_worker(self, unless_closed: bool = False) -> _Worker:
        """The live trainer process, started if there is none (RuntimeError if it cannot be)."""
        with self._lock:
            worker = self._worker
            if worker is not None and not worker.gone.is_set() and worker.ending is None:
                return worker
            if unless_closed and self._closed:
                raise RuntimeError("the trainer was closed")
            self._closed = False
            try:
                process = subprocess.Popen(worker_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                           cwd=PACKAGE_ROOT, env=_worker_environment())
            except (OSError, ValueError, RuntimeError) as err:
                raise RuntimeError(f"cannot start the trainer process: {err}") from err
            worker = _Worker(process)
            self._worker = worker
            for target, name in ((self._listen, THREAD_NAME), (self._send_frames, f"{THREAD_NAME}-send"),
                                 (self._watch, f"{THREAD_NAME}-watch")):
                thread = threading.Thread(target=target, args=(worker,), name=name, daemon=True)
                worker.threads.append(thread)
                thread.start()
            return worker

    # -- jobs ------------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        with self._lock:
            return self._job is not None

    @property
    def worker_pid(self) -> int | None:
        """The trainer process's pid once it has said it is ready; None before."""
        with self._lock:
            worker = self._worker
            return worker.pid if worker is not None and worker.ready.is_set() else None

    def train(self, X: np.ndarray, Y: np.ndarray, settings: RegressorSettings,
              on_progress: Callable[[float, float], None],
              on_done: Callable[[FitResult | None, str | None], None]) -> None:
        """Start one training job and return at once; see the module docstring for the callbacks."""
        with self._lock:
            if self._job is not None:
                raise RuntimeError("training is already running")
            job = _Job(next(self._ids), on_progress, on_done)
            self._job = job
        try:
            x, y = _as_arrays(X), _as_arrays(Y)  # the child checks them and says what is wrong
            frame = pack(("train", job.id, x, y, settings))
            for _ in range(2):  # a child that died just now is replaced once
                worker = self._ensure_worker()
                with self._lock:
                    if worker.gone.is_set() or worker.ending is not None:
                        continue
                    job.worker, job.handed_at = worker, time.monotonic()
                    worker.outbox.put(frame)
                    break
            else:
                raise RuntimeError("the trainer process died as it started; see the log above")
        except Exception as err:
            with self._lock:
                mine = self._job is job
                if mine:
                    self._job = None
            if not mine:
                return  # the child died as we handed it over, and its listener has reported the job
            if isinstance(err, RuntimeError):
                raise
            raise RuntimeError(f"cannot hand the job to the trainer process: {err}") from err

    def cancel(self) -> bool:
        """The running job (if any) ends with on_done(None, "training cancelled..."), within about
        `cancel_timeout` s even if the child does not listen. False when no job was running."""
        with self._lock:
            job = self._job
            if job is None:
                return False
            if job.cancelled_at is None:
                job.cancelled_at = time.monotonic()
                if job.worker is not None:
                    job.worker.send(("cancel", job.id))
            return True

    # -- the worker's threads --------------------------------------------------------------

    def _send_frames(self, worker: _Worker) -> None:
        stream = worker.process.stdin
        assert stream is not None
        while (frame := worker.outbox.get()) is not None:
            try:
                write_frame(stream, frame)
            except (OSError, ValueError):  # the child is gone: its listener reports
                break
        with contextlib.suppress(OSError):
            stream.close()

    def _listen(self, worker: _Worker) -> None:
        stream = worker.process.stdout
        assert stream is not None
        while True:
            try:
                message = read_frame(stream)
            except EOFError:
                break
            except Exception as err:  # not our protocol: end that child
                log.warning("unreadable message from the trainer process %s: %s", worker.pid, err)
                worker.kill()
                break
            worker.heard = time.monotonic()
            self._handle(worker, message)
        # The pipe closed: the child is exiting (only its exit or a kill closes its end). This thread
        # alone waits for it: two threads reaping one child made the loser think it still ran (the
        # "did not stop within 0.5 s" warnings, and a SIGTERM sent to a pid already reaped).
        worker.process.wait()
        with self._lock:
            worker.gone.set()
            job = self._job if self._job is not None and self._job.worker is worker else None
            if job is not None:
                self._job = None
            if self._worker is worker:
                self._worker = None
            ending = worker.ending
        worker.outbox.put(None)
        with contextlib.suppress(OSError):
            stream.close()
        if job is not None:
            if ending == "closed":
                text = f"{CANCELLED}: the trainer was closed"
            else:
                text = (f"trainer process died (exit code {worker.process.returncode}); "
                        "it restarts with the next training")
            log.warning("%s", text)
            self._report(job, None, text)

    def _handle(self, worker: _Worker, message: tuple) -> None:
        kind = message[0]
        if kind == "alive":
            return
        if kind == "ready":
            worker.ready.set()
            log.info("trainer process %s ready", worker.pid)
            return
        if kind == "progress":
            with self._callbacks:
                with self._lock:
                    job = self._job
                    current = job is not None and job.id == message[1] and job.worker is worker
                if current and not job.cancelled:  # type: ignore[union-attr]
                    self._call(job.on_progress, message[2], message[3])  # type: ignore[union-attr]
            return
        with self._lock:
            job = self._job
            if job is None or job.id != message[1] or job.worker is not worker:
                return  # from a job already reported (cancelled, or the trainer closed)
            self._job = None
        if kind == "done" and not job.cancelled:
            self._report(job, message[2], None)
        elif kind in ("done", "cancelled"):
            self._report(job, None, CANCELLED)
        else:
            self._report(job, None, message[2])

    def _watch(self, worker: _Worker) -> None:
        while not worker.gone.wait(PING_INTERVAL_S):
            with self._lock:
                job = self._job if self._job is not None and self._job.worker is worker else None
                ending = worker.ending
            if job is None or ending is not None:
                continue
            now = time.monotonic()
            if not worker.ready.is_set():
                if now - worker.started > START_TIMEOUT_S:
                    self._replace(worker, job, f"the trainer process {worker.pid} was not ready within "
                                               f"{START_TIMEOUT_S:.0f} s")
                continue
            silent = now - max(worker.heard, job.handed_at)
            if job.cancelled_at is not None and now - job.cancelled_at > self.cancel_timeout:
                self._replace(worker, job, f"{CANCELLED} (the trainer process {worker.pid} did not stop within "
                                           f"{self.cancel_timeout:g} s)")
            elif silent > self.stall_timeout:
                self._replace(worker, job, f"the trainer process {worker.pid} answered nothing for {silent:.0f} s "
                                           "(stopped or stuck)")
            elif worker.outbox.empty():
                worker.send(("ping",))

    def _replace(self, worker: _Worker, job: _Job, reason: str) -> None:
        """End a stuck child, report its job, and start a new child in its place."""
        with self._lock:
            if self._job is not job or worker.ending is not None:
                return  # reported meanwhile, or the trainer is closing
            self._job = None
            worker.ending = "replaced"
        message = f"{reason}; it was ended and a new one started"
        log.warning("%s", message)
        worker.kill()
        self._report(job, None, message)
        try:
            self._ensure_worker(unless_closed=True)
        except RuntimeError as err:
            log.warning("no new trainer process: %s; the next training tries again", err)

    def _report(self, job: _Job, result: FitResult | None, message: str | None) -> None:
        with self._callbacks:
            self._call(job.on_done, result, message)

    @staticmethod
    def _call(callback: Callable[..., None], *args: Any) -> None:
        try:
            callback(*args)
        except Exception:
            _limited.warning("a trainer callback raised (ignored)", key="callback")
            log.debug("trainer callback error", exc_info=True)


def _as_arrays(data: Any) -> Any:
    """float64 arrays where possible (small to pickle); anything else goes as-is for fit to explain."""
    try:
        return np.array(data, dtype=np.float64)
    except (TypeError, ValueError):
        return data
