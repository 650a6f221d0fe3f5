"""Training in a child process, so that it never slows the audio.

Why a process: torch's intra-op thread pool is per process, and a trainer's many tiny ops in a
thread of the daemon fought the engine's decoder for the two cores (worst decode 2.6x over the
block budget, see NOTES-performance.md). A child process has its own pool (one thread), its own
GIL, and runs at a lower priority (nice +10).

Processes and threads, and what each may do:
- the trainer process: ONE persistent child, started with the 'spawn' context (a fresh
  interpreter: no copy of the engine's threads or torch state). It sets os.nice(10) and
  torch.set_num_threads(1), ignores SIGINT (the daemon decides when it stops), warms torch up,
  then runs `regressor.fit` for one job at a time, sending progress (at most 20 a second) and the
  result through a pipe. It polls a shared cancel event while fitting. It exits when told to or
  when the pipe closes (the daemon went away); as a daemon process it is also ended at exit.
- the listener thread ("ravemap-trainer", one per trainer process, so at most one at a time): the
  only reader of the pipe. It calls `on_progress` and `on_done`, one call at a time and never from
  the caller's thread. It notices the child dying (its sentinel) and reports a job in flight as
  "trainer process died ...". An exception in a callback is logged (rate-limited) and swallowed.
- any other thread (control, CLI): `start`, `train`, `cancel`, `close`, `busy`, `worker_pid`. A
  lock guards the bookkeeping. `start` waits for the child to be ready (seconds: torch import) and
  `close` for it to stop; `train`, `cancel` and `busy` never wait. After the child died, `train`
  spawns a new one without waiting: the job runs once it is up. `train` may be called from
  inside `on_done`; `on_progress` never comes after its job's `on_done`.

Contract for callers: `train` returns at once and raises only RuntimeError (a job is running, or no
trainer process could be started). Everything about the data or the run (no examples, NaN,
divergence, cancel, a dead child) arrives as on_done(None, message); success as on_done(result,
None). Exactly one on_done per accepted job. After `cancel()` returns, the running job reports
"training cancelled" even if the child had already finished it.

Spawn re-imports the parent's main module in the child unless it is a package's `__main__`
(`python -m server`) or is guarded by `if __name__ == "__main__"` (the `ravemap` console script).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

import numpy as np

from server.mapping.regressor import FitResult, RegressorSettings
from server.ratelimit import RateLimitedLog

log = logging.getLogger("ravemap.trainer")
_limited = RateLimitedLog(log)

THREAD_NAME = "ravemap-trainer"
NICE = 10
START_TIMEOUT_S = 60.0


def _worker_main(conn: Connection, cancel: Any) -> None:
    """The trainer process: one job at a time, until told to stop or the pipe closes."""
    # Ctrl-C in a terminal reaches the whole process group: the daemon decides when we stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError):  # not allowed here: train at the same priority rather than not at all
        os.nice(NICE)
    import torch

    torch.set_num_threads(1)
    with contextlib.suppress(RuntimeError):  # already set
        torch.set_num_interop_threads(1)
    from server.mapping.regressor import TrainingCancelled, fit

    # Warm-up: torch.optim's first use imports torch._dynamo (over a second here); pay it now,
    # not in the performer's first training.
    fit(np.array([[0.0], [1.0]]), np.array([[0.0], [1.0]]), RegressorSettings(epochs=2))
    conn.send(("ready", os.getpid()))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            message = ("stop",)  # the daemon went away
        if message[0] != "train":
            # Nothing is left to flush (every send is complete), and a normal interpreter exit
            # with torch loaded takes about half a second here.
            conn.close()
            os._exit(0)
        _, job_id, x, y, settings = message

        def progress(fraction: float, loss: float, job_id: int = job_id) -> None:
            conn.send(("progress", job_id, fraction, loss))

        try:
            result = fit(x, y, settings, progress=progress, should_stop=cancel.is_set)
            reply: tuple = ("done", job_id, result)
        except TrainingCancelled:
            reply = ("cancelled", job_id)
        except ValueError as err:
            reply = ("error", job_id, str(err))
        except Exception as err:  # anything else still ends the job with a message
            reply = ("error", job_id, f"training failed: {type(err).__name__}: {err}")
        try:
            conn.send(reply)
        except (OSError, ValueError):
            os._exit(0)


@dataclass
class _Job:
    id: int
    on_progress: Callable[[float, float], None]
    on_done: Callable[[FitResult | None, str | None], None]
    cancelled: bool = False
    worker: _Worker | None = None  # set once handed over; only that worker's listener reports the job


class _Worker:
    """One trainer process, its end of the pipe and its listener thread."""

    def __init__(self, process: Any, conn: Connection):
        self.process = process
        self.conn = conn
        self.pid: int | None = None
        self.ready = threading.Event()
        self.send_lock = threading.Lock()
        self.thread: threading.Thread | None = None


class Trainer:
    """Runs `regressor.fit` in one persistent child process; see the module docstring."""

    def __init__(self) -> None:
        self._ctx = multiprocessing.get_context("spawn")
        self._cancel = self._ctx.Event()
        self._lock = threading.Lock()
        self._worker: _Worker | None = None
        self._job: _Job | None = None
        self._ids = itertools.count(1)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, wait: bool = True) -> None:
        """Start the trainer process and wait until it is ready (torch imported and warmed up: a few
        seconds on a busy 2-core machine). Idempotent. RuntimeError if it does not start.

        With `wait=False` it only spawns the process and returns: a job given to `train` before the
        process is ready runs as soon as it is (the daemon starts this way, so that it is ready to
        answer, and to stop, at once)."""
        worker = self._ensure_worker()
        if not wait:
            return
        deadline = time.monotonic() + START_TIMEOUT_S
        while not worker.ready.wait(0.05):
            if not worker.process.is_alive() and not worker.ready.is_set():
                raise RuntimeError(f"the trainer process did not start (exit code {worker.process.exitcode})")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the trainer process did not start within {START_TIMEOUT_S:.0f} s")

    def close(self, timeout: float = 2.0) -> None:
        """Stop the trainer process (terminate it if it won't); a running job reports cancelled."""
        with self._lock:
            worker, self._worker = self._worker, None
            if self._job is not None:
                self._job.cancelled = True
        if worker is None:
            return
        self._cancel.set()
        try:
            with worker.send_lock:
                worker.conn.send(("stop",))
        except (OSError, ValueError):
            pass
        # A worker still starting (importing torch) cannot read "stop" yet and holds nothing: end it now.
        worker.process.join(timeout if worker.ready.is_set() else 0.0)
        if worker.process.is_alive():
            if worker.ready.is_set():
                log.warning("trainer process %s did not stop within %.1f s: terminating it", worker.pid, timeout)
            worker.process.terminate()
            worker.process.join(1.0)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(1.0)
        if worker.thread is not None and worker.thread is not threading.current_thread():
            worker.thread.join(timeout + 1.0)

    def _ensure_worker(self) -> _Worker:
        with self._lock:
            worker = self._worker
            if worker is not None and worker.process.is_alive():
                return worker
            here, there = self._ctx.Pipe(duplex=True)
            process = self._ctx.Process(target=_worker_main, args=(there, self._cancel),
                                        name="ravemap-trainer-process", daemon=True)
            try:
                process.start()
            except Exception as err:
                here.close()
                there.close()
                raise RuntimeError(f"cannot start the trainer process: {err}") from err
            there.close()  # the child holds its own copy; ours would hide EOF from the listener
            worker = _Worker(process, here)
            worker.thread = threading.Thread(target=self._listen, args=(worker,), name=THREAD_NAME, daemon=True)
            self._worker = worker
            worker.thread.start()
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
            return self._worker.pid if self._worker is not None else None

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
            worker = self._ensure_worker()
            x, y = _as_arrays(X), _as_arrays(Y)  # the child checks them and says what is wrong
            self._cancel.clear()
            with self._lock:
                job.worker = worker
            with worker.send_lock:
                worker.conn.send(("train", job.id, x, y, settings))
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

    def cancel(self) -> None:
        """The running job (if any) ends with on_done(None, "training cancelled")."""
        with self._lock:
            if self._job is None:
                return
            self._job.cancelled = True
        self._cancel.set()

    # -- the listener thread ---------------------------------------------------------------

    def _listen(self, worker: _Worker) -> None:
        conn, sentinel = worker.conn, worker.process.sentinel
        while True:
            ready = wait([conn, sentinel])
            if conn in ready:
                try:
                    message = conn.recv()
                except (EOFError, OSError):
                    break
                except Exception as err:  # a message cut short by a kill
                    log.warning("unreadable message from the trainer process: %s", err)
                    break
                self._handle(worker, message)
            elif sentinel in ready:
                break
        # the process is gone (or its pipe): read what it sent before dying, then report
        worker.process.join(1.0)
        try:
            while conn.poll():
                self._handle(worker, conn.recv())
        except Exception:
            pass
        with self._lock:
            job = self._job if self._job is not None and self._job.worker is worker else None
            closed = self._worker is not worker  # close() let go of it first
            if self._worker is worker:
                self._worker = None
            if job is not None:
                self._job = None
        conn.close()
        if job is not None:
            if closed and job.cancelled:
                message = "training cancelled: the trainer was closed"
            else:
                message = (f"trainer process died (exit code {worker.process.exitcode}); "
                           "it restarts with the next training")
            log.warning("%s", message)
            self._call(job.on_done, None, message)

    def _handle(self, worker: _Worker, message: tuple) -> None:
        kind = message[0]
        if kind == "ready":
            with self._lock:
                worker.pid = message[1]
            worker.ready.set()
            log.info("trainer process %s ready", message[1])
            return
        with self._lock:
            job = self._job
            if job is None or job.id != message[1]:
                return  # from a job already reported (cancelled, or the trainer closed)
            if kind != "progress":
                self._job = None
        if kind == "progress":
            if not job.cancelled:
                self._call(job.on_progress, message[2], message[3])
        elif kind == "done" and not job.cancelled:
            self._call(job.on_done, message[2], None)
        elif kind in ("done", "cancelled"):
            self._call(job.on_done, None, "training cancelled")
        else:
            self._call(job.on_done, None, message[2])

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
