"""`ravemap serve`: the daemon's lifecycle, read top to bottom.

Start order: config (already validated by the CLI) -> torch threads -> model load and
loop encode and warm-up -> engine thread and audio output. Stop in reverse order. A
failure while starting logs one line and exits with the error's code (2 config, 3 model
or loop, 4 audio device) before anything plays.

Signals: SIGINT / SIGTERM only set a flag; the main thread then stops everything within
`SHUTDOWN_TIMEOUT_S`. A second signal while stopping forces an immediate exit.

Threads: the main thread runs this module (start, status lines, stop). The engine thread
and the audio callback belong to `server.audio`.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

from server.audio.engine import configure_torch
from server.audio.playback import Playback, make_controls
from server.config import Config

log = logging.getLogger("ravemap")

SHUTDOWN_TIMEOUT_S = 2.0


class Daemon:
    def __init__(self, config: Config):
        self.config = config
        self.stopping = threading.Event()
        self.playback: Playback | None = None
        self._signals = 0

    # -- signals ---------------------------------------------------------------------------
    def _on_signal(self, signum: int, frame: object) -> None:
        self._signals += 1
        if self._signals > 1:
            os.write(2, b"ravemap: second signal, exiting now\n")
            os._exit(130)
        self.stopping.set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        config = self.config
        configure_torch(config.engine.torch_threads)
        controls = make_controls(config)
        started = time.perf_counter()
        self.playback = Playback.from_config(config, controls)
        self.playback.start()
        processor = self.playback.processor
        info = processor.model.info
        log.info("model %s", info.describe())
        source = (
            f"loop {processor.loop.path}: {processor.loop.seconds:.2f} s (file at {processor.loop.file_sr} Hz)"
            if processor.loop.seekable else f"live input {processor.loop.path}"
        )
        log.info("%s, encode %s, block %d samples (%.1f ms), ready in %.1f s", source,
                 processor.settings.encode, processor.block, 1000 * processor.block / info.sr,
                 time.perf_counter() - started)
        assert self.playback.output is not None
        print(f"ravemap: playing on {self.playback.output.describe()}; Ctrl-C to stop", flush=True)

    def run_until_stopped(self) -> None:
        interval = self.config.log.stats_interval_s
        last_underruns = 0
        while not self.stopping.wait(interval if interval > 0 else 3600):
            if self.playback is None:
                continue
            underruns = self.playback.underruns()
            level = logging.WARNING if underruns > last_underruns else logging.INFO
            log.log(level, "status: %s", self.playback.status_line())
            last_underruns = underruns

    def stop(self) -> None:
        if self.playback is not None:
            deadline = threading.Timer(SHUTDOWN_TIMEOUT_S + 3, lambda: os._exit(1))
            deadline.daemon = True
            deadline.start()
            self.playback.stop()
            deadline.cancel()
            log.info("stopped: %s", self.playback.status_line())


def serve(config: Config) -> int:
    daemon = Daemon(config)
    daemon.install_signal_handlers()
    try:
        daemon.start()
        daemon.run_until_stopped()
    finally:
        daemon.stop()
    return 0
