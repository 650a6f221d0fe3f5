"""The trainer process, `python -m ravemap.mapping.trainer_worker`, and the frames it speaks.

`trainer.Trainer` starts this module as a program of its own (a fresh interpreter running
`-m ravemap.mapping.trainer_worker`), never through multiprocessing's spawn: spawn re-imports the
caller's main module in the child, so a script without an `if __name__ == "__main__"` guard ran
again in it (and `python -` or `python -c` could not be re-imported at all). This process imports
only ravemap's own modules, whatever started the daemon or the notebook.

The protocol: frames on the process's stdin (daemon -> trainer) and stdout (trainer -> daemon).
A frame is a 4-byte big-endian length, then that many bytes of one pickled tuple. Only the daemon
and this process, its own child, write these pipes. Before anything can print, the process points
its file descriptor 1 at stderr and 0 at the null device, so a stray print or a library's
warning never lands inside a frame and nothing else reads the daemon's frames.

    daemon -> trainer                      trainer -> daemon
    ("train", job, x, y, settings)         ("ready", pid)          once, after warm-up
    ("cancel", job)                        ("progress", job, fraction, loss)   at most 20 a second
    ("ping",)                              ("done", job, FitResult) | ("cancelled", job)
    ("stop",)                                | ("error", job, message)
                                           ("alive",)              the answer to a ping

Threads in this process:
- main: ignores SIGINT (Ctrl-C in a terminal reaches the whole process group; the daemon decides
  when this process stops), sets nice +10 and one torch thread, warms torch up, says "ready", then
  runs `regressor.fit` for one job at a time, in the order they came.
- "reader", started once numpy is imported and before torch: the only reader of stdin. It queues
  jobs, marks cancelled jobs (the running fit polls that mark about every 10 ms), answers pings at
  once (so the daemon can tell a live trainer from a stopped one even during a long epoch), and
  ends the process at once on "stop" or when stdin closes (the daemon went away): every frame
  written is already flushed, and nothing else is held.
A lock serialises writes to stdout (the main thread's progress and results, the reader's answers).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import queue
import signal
import struct
import sys
import threading
from typing import IO, Any

HEADER = struct.Struct(">I")
MAX_FRAME = (1 << 32) - 1  # the most a header can say
NICE = 10
MODULE = "ravemap.mapping.trainer_worker"


# -- frames (both sides) -----------------------------------------------------------------------

def pack(message: tuple) -> bytes:
    """One message as a whole frame. ValueError if it is too large for one."""
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    if len(data) > MAX_FRAME:
        raise ValueError(f"a message of {len(data)} bytes is too large for the trainer pipe (at most {MAX_FRAME})")
    return HEADER.pack(len(data)) + data


def write_frame(stream: IO[bytes], frame: bytes) -> None:
    """Write a frame made by `pack` and flush it. OSError (BrokenPipeError) if the other side is gone."""
    stream.write(frame)
    stream.flush()


def read_frame(stream: IO[bytes]) -> tuple:
    """The next message. EOFError when the pipe closed, also part-way through a frame (a killed
    writer); any other error means the stream is not speaking this protocol."""
    size = HEADER.unpack(_read_exactly(stream, HEADER.size))[0]
    message = pickle.loads(_read_exactly(stream, size))
    if not isinstance(message, tuple) or not message or not isinstance(message[0], str):
        raise ValueError(f"not a trainer message: {type(message).__name__}")
    return message


def _read_exactly(stream: IO[bytes], size: int) -> bytes:
    data = stream.read(size)  # a buffered reader returns fewer bytes only at end of file
    if data is None or len(data) < size:
        raise EOFError("the trainer pipe closed")
    return data


# -- the trainer process -----------------------------------------------------------------------

class _Channel:
    """This process's end of the protocol: frames out on a private copy of the original stdout."""

    def __init__(self) -> None:
        self.out = os.fdopen(os.dup(1), "wb")
        self.inp = os.fdopen(os.dup(0), "rb")
        os.dup2(2, 1)  # print() and C-level writes to fd 1 go to stderr from now on
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        self.lock = threading.Lock()
        self.jobs: queue.Queue[tuple] = queue.Queue()
        self.cancelled_up_to = 0  # jobs with an id up to this one are cancelled (ids only grow)

    def send(self, message: tuple) -> None:
        try:
            frame = pack(message)
            with self.lock:
                write_frame(self.out, frame)
        except (OSError, ValueError):
            os._exit(0)  # the daemon went away (or a frame it cannot take): nothing to report to

    def read_forever(self) -> None:
        """The reader thread."""
        while True:
            try:
                message = read_frame(self.inp)
            except EOFError:
                os._exit(0)  # the daemon went away
            except Exception as err:  # not our protocol: say so where the daemon's log goes
                print(f"ravemap trainer: unreadable message from the daemon ({err}); exiting", file=sys.stderr)
                os._exit(2)
            kind = message[0]
            if kind == "train":
                self.jobs.put(message)
            elif kind == "cancel":
                self.cancelled_up_to = max(self.cancelled_up_to, int(message[1]))
            elif kind == "ping":
                self.send(("alive",))
            else:  # "stop"
                os._exit(0)


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    channel = _Channel()
    with contextlib.suppress(OSError, AttributeError):  # not allowed (or no nice here): train at the same priority
        os.nice(NICE)
    # What a job's frame unpickles into, imported before the reader can unpickle one (two threads
    # importing numpy at once see it half-initialised). torch comes after: a stop or a ping is
    # answered while it loads.
    import numpy as np

    from ravemap.mapping.regressor import RegressorSettings, TrainingCancelled, fit

    threading.Thread(target=channel.read_forever, name="reader", daemon=True).start()
    import torch

    torch.set_num_threads(1)
    with contextlib.suppress(RuntimeError):  # already set
        torch.set_num_interop_threads(1)

    # Warm-up: torch.optim's first use imports torch._dynamo (over a second here); pay it now,
    # not in the performer's first training.
    fit(np.array([[0.0], [1.0]]), np.array([[0.0], [1.0]]), RegressorSettings(epochs=2))
    channel.send(("ready", os.getpid()))
    while True:
        _, job, x, y, settings = channel.jobs.get()

        def progress(fraction: float, loss: float, job: int = job) -> None:
            channel.send(("progress", job, fraction, loss))

        def cancelled(job: int = job) -> bool:
            return channel.cancelled_up_to >= job

        reply: tuple[Any, ...]
        try:
            result = fit(x, y, settings, progress=progress, should_stop=cancelled)
            reply = ("done", job, result)
        except TrainingCancelled:
            reply = ("cancelled", job)
        except ValueError as err:
            reply = ("error", job, str(err))
        except Exception as err:  # anything else still ends the job with a message
            reply = ("error", job, f"training failed: {type(err).__name__}: {err}")
        channel.send(reply)


if __name__ == "__main__":
    main()
