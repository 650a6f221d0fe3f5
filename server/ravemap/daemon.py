"""`ravemap serve`: the daemon's lifecycle, read top to bottom.

Start order: config (validated by the CLI) -> a `Ravemap` (torch threads, model load, loop
encode and warm-up, mapping, session thread) -> every port opened, before any sound: the OSC
control port, Wekinator's input port (taken by another program: one warning, and everything else
runs) and the web page's (`web.enabled`); one that cannot be opened stops the start here, with
nothing played -> engine thread and audio output (the "playing on" line) -> MIDI -> the ports
served (what arrived meanwhile waits in their sockets) -> the web page's address (`--qr` as a QR
code) -> the "ready" line -> zeroconf. Stop in reverse
order, saving the mapping last. A failure while starting logs one line and exits with the error's code
(2 config, 3 model or loop, 4 audio device, 5 mapping) before anything plays, and writes no
mapping file. A mapping that cannot be saved at exit goes to a recovery copy (named in the
log); when nothing could be written the exit code is 5.

Signals: SIGINT / SIGTERM only count themselves; the main thread then stops everything within
`SHUTDOWN_TIMEOUT_S`. A second signal while stopping forces an immediate exit. The main thread
waits on a socket that the interpreter writes to when a signal arrives (`signal.set_wakeup_fd`),
not on a `threading.Event`: a handler runs on the main thread, between any two bytecodes, and
`Event.set` there deadlocks when it interrupts the main thread's own `Event.wait` while that
holds the event's lock (it did, about one SIGTERM in 20).

Threads: the main thread runs this module (start, status lines, stop). The engine thread
and the audio callback belong to `ravemap.audio`; the session, OSC, MIDI, feedback and
trainer threads to the modules named above; the web page's threads to `ravemap.web.server`.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import select
import signal
import socket
import sys
import threading
import time
from concurrent.futures import Future
from typing import TYPE_CHECKING

from ravemap.audio.playback import Playback
from ravemap.config import Config
from ravemap.control import advertise
from ravemap.control.advertise import Advertiser
from ravemap.control.events import LearnAvailable
from ravemap.control.feedback import Feedback
from ravemap.control.midi import MidiInput
from ravemap.control.osc import OscServer
from ravemap.errors import MappingError, RavemapError
from ravemap.session import Session

if TYPE_CHECKING:
    from ravemap.api import Ravemap
    from ravemap.web.server import WebServer

log = logging.getLogger("ravemap")

SHUTDOWN_TIMEOUT_S = 2.0
SAVE_AT_EXIT_S = 30.0  # the last save, its retries and a recovery copy, for a big mapping on a slow disk
DEVICE_CHECK_S = 1.0
DEVICE_RETRY_S = 2.0
DEVICE_STUCK_S = 10.0
LEARN_WIRING_S = 60.0  # the session thread applies the MIDI learn hand-over at start, after what waits before it


class Daemon:
    def __init__(self, config: Config, qr: bool = False):
        self.config = config
        self.qr = qr
        self.web: WebServer | None = None
        self._wake_r, self._wake_w = socket.socketpair()  # a signal wakes the main thread through it
        for end in (self._wake_r, self._wake_w):
            end.setblocking(False)
        self.midi: MidiInput | None = None
        self.osc: OscServer | None = None
        self.wekinator_osc: OscServer | None = None
        self.advertiser: Advertiser | None = None
        self.core: Ravemap | None = None
        self._signals = 0
        self._device_lost_at: float | None = None
        self._retry: threading.Thread | None = None
        self._retry_started = 0.0
        self._stuck_reported = False
        self._next_retry = 0.0
        self.ready = False  # the control port is open: the start went through
        self.exit_code = 0

    # The parts the daemon reads, all owned by `core`.
    @property
    def playback(self) -> Playback | None:
        return self.core.playback if self.core is not None else None

    @property
    def session(self) -> Session | None:
        return self.core.session if self.core is not None else None

    @property
    def feedback(self) -> Feedback | None:
        return self.core.feedback if self.core is not None else None

    # -- signals ---------------------------------------------------------------------------
    def _on_signal(self, signum: int, frame: object) -> None:
        self._signals += 1
        if self._signals > 1:
            os.write(2, b"ravemap: second signal, exiting now\n")
            os._exit(130)

    @property
    def stop_requested(self) -> bool:
        return self._signals > 0

    def install_signal_handlers(self) -> None:
        signal.set_wakeup_fd(self._wake_w.fileno(), warn_on_full_buffer=False)
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)

    def _wait_for_signal(self, timeout: float) -> bool:
        """Sleep until a signal arrives (True) or `timeout` passes; lock-free, see the module notes."""
        if not self.stop_requested:
            select.select([self._wake_r], [], [], timeout)
            with contextlib.suppress(BlockingIOError):
                self._wake_r.recv(4096)
        return self.stop_requested

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        from ravemap.api import Ravemap

        config = self.config
        started = time.perf_counter()
        self.core = Ravemap(config)  # model load, loop encode, warm-up, mapping, session
        _import_control_side(config)
        self._open_ports()  # every port taken (or the start fails) before any sound
        self.core.start()  # engine thread and audio output
        playback = self.core.playback
        processor = playback.processor
        info = processor.model.info
        log.info("model %s", info.describe())
        source = (
            f"loop {processor.loop.path}: {processor.loop.seconds:.2f} s (file at {processor.loop.file_sr} Hz)"
            if processor.loop.seekable else f"live input {processor.loop.path}"
        )
        log.info("%s, encode %s, ready in %.1f s", source, processor.settings.encode,
                 time.perf_counter() - started)
        assert playback.output is not None and playback.engine is not None
        print(f"ravemap: playing on {playback.output.describe()}; {playback.engine.describe_latency()}",
              flush=True)
        self._start_control()
        self.ready = True

    def _start_control(self) -> None:
        config = self.config
        assert self.core is not None and self.session is not None and self.feedback is not None
        if config.midi.enabled:
            self.midi = MidiInput(config, self.core.inbox)
            if self.midi.open():  # the session takes MIDI learn through its inbox, like every change
                learning: Future = Future()
                self.core.inbox.put(LearnAvailable(self.midi.learn, done=learning))
                learning.result(LEARN_WIRING_S)
        assert self.osc is not None
        self.osc.start()
        if self.wekinator_osc is not None:
            self.wekinator_osc.start()
            host, port = self.wekinator_osc.address
            log.info("Wekinator input port udp %s:%d open (/wek/inputs, /wekinator/control/*)", host, port)
        controls = self.core.controls
        self.feedback.start_latent_feed(lambda: controls.offsets)
        if self.web is not None:
            self._start_web()
        host, port = self.osc.address
        engine = self.core.playback.engine
        latency = f", latency {engine.latency_ms:.1f} ms" if engine is not None else ""
        print(f"ravemap: OSC control on udp {host}:{port} ready, feedback to port {self.feedback.feedback_port}, "
              f"mapping {self.session.view.name!r}{latency}; Ctrl-C to stop", flush=True)
        if config.osc.zeroconf:
            web_port = self.web.address[1] if self.web is not None else None
            self.advertiser = Advertiser(config.osc.service_name, port, config.osc.host, web_port=web_port)
            self.advertiser.start()

    def _open_ports(self) -> None:
        """Bind the OSC control port, Wekinator's and the web page's; served later, in `_start_control`.
        A port that cannot be opened raises here (Wekinator's: a warning), before audio starts."""
        assert self.core is not None and self.session is not None and self.feedback is not None
        self.osc = OscServer(self.config, self.core.inbox, self.feedback.error)
        self._open_wekinator_port()
        if self.config.web.enabled:
            from ravemap.web.server import WebServer  # aiohttp is imported only when the page is served

            self.web = WebServer(self.config, self.session, self.core.inbox, self.feedback,
                                 osc_port=self.osc.address[1])

    def _open_wekinator_port(self) -> None:
        """Wekinator's input port, with the same allow-list, parsing and routing as the control port."""
        assert self.osc is not None and self.core is not None and self.feedback is not None
        port = self.config.osc.wekinator_input_port
        if port is None or port == self.osc.address[1]:
            return  # off, or the control port is Wekinator's port itself
        try:
            self.wekinator_osc = OscServer(self.config, self.core.inbox, self.feedback.error, port=port,
                                           name="ravemap-osc-wekinator", what="Wekinator's input port",
                                           hint="set osc.wekinator_input_port (empty: off)")
        except RavemapError as err:
            log.warning("%s; Wekinator messages still work on port %d, everything else runs", err,
                        self.osc.address[1])
            return
        ports = self.osc.translator.own_ports | self.wekinator_osc.translator.own_ports
        self.osc.translator.own_ports |= ports  # a reply port may be neither control port
        self.wekinator_osc.translator.own_ports |= ports

    def _start_web(self) -> None:
        from ravemap.web.address import print_qr

        assert self.web is not None
        self.web.start()
        print(f"ravemap: control page on {self.web.url} (open it in a browser on the same network)", flush=True)
        if self.qr:
            print_qr(self.web.url, sys.stdout)

    def run_until_stopped(self) -> None:
        """Status lines every `log.stats_interval_s`; watch the audio device once a second."""
        interval = self.config.log.stats_interval_s
        last_underruns = 0
        next_status = time.monotonic() + interval
        while not self._wait_for_signal(DEVICE_CHECK_S):
            if self.playback is None:
                continue
            self._watch_device()
            if interval > 0 and time.monotonic() >= next_status:
                next_status += interval
                underruns = self.playback.underruns()
                level = logging.WARNING if underruns > last_underruns else logging.INFO
                log.log(level, "status: %s%s", self.playback.status_line(), self._control_status())
                last_underruns = underruns

    def _watch_device(self) -> None:
        """A device that goes away is reported once and retried; the control plane keeps answering.

        Each retry runs in a short-lived "ravemap-device" thread: PortAudio may block on a
        device that vanished, and the main thread must stay free to handle signals.
        """
        assert self.playback is not None
        if self._device_lost_at is None:
            if not self.playback.output_lost():
                return
            self._device_lost_at = time.monotonic()
            self._next_retry = 0.0
            log.error("the audio device stopped (unplugged, or the sound server went away); "
                      "retrying every %.0f s, control keeps running", DEVICE_RETRY_S)
            if self.feedback is not None:
                self.feedback.broadcast("/ravemap/error", "the audio device stopped; retrying")
        if self._retry is not None and self._retry.is_alive():
            if not self._stuck_reported and time.monotonic() - self._retry_started > DEVICE_STUCK_S:
                self._stuck_reported = True
                log.error("PortAudio is stuck on the lost audio device; control keeps running, "
                          "restart ravemap to get sound back")
            return
        if not self.playback.output_lost():
            assert self.playback.output is not None
            log.warning("audio device back after %.1f s: playing on %s",
                        time.monotonic() - self._device_lost_at, self.playback.output.describe())
            self._device_lost_at = None
            return
        now = time.monotonic()
        if now < self._next_retry:
            return
        self._next_retry = now + DEVICE_RETRY_S
        self._retry = threading.Thread(target=self._reopen, name="ravemap-device", daemon=True)
        self._retry_started = now
        self._retry.start()

    def _reopen(self) -> None:
        assert self.playback is not None
        try:
            self.playback.reopen_output()
        except RavemapError as err:
            log.debug("audio device still gone: %s", err)

    def _control_status(self) -> str:
        if self.osc is None or self.session is None:
            return ""
        ports = [self.osc] + ([self.wekinator_osc] if self.wekinator_osc is not None else [])
        counters = [p.counters for p in ports]
        messages = sum(c.messages for c in counters)
        refused = sum(c.rejected_hosts for c in counters)
        bad_packets = sum(c.bad_packets for c in counters)
        bad = sum(c.bad_messages + c.unknown_addresses for c in counters)
        return (f"; OSC messages {messages}, refused hosts {refused}, bad packets {bad_packets}, "
                f"bad messages {bad}, events dropped {self.session.inbox.dropped}")

    def stop(self) -> None:
        """Reverse start order: control inputs, then audio, session and trainer, the mapping saved last."""
        deadline = threading.Timer(SHUTDOWN_TIMEOUT_S + 3 + SAVE_AT_EXIT_S, lambda: os._exit(1))
        deadline.daemon = True
        deadline.start()
        try:
            if self.advertiser is not None:
                self.advertiser.close()
            if self.web is not None:
                self.web.stop()
            if self.wekinator_osc is not None:
                self.wekinator_osc.stop()
            if self.osc is not None:
                self.osc.stop()
            if self.midi is not None:
                self.midi.close()
            if self.core is not None:
                try:
                    saved = self.core.stop(save=None if self.ready else False)
                    if saved is not None:
                        log.info("mapping saved to %s", saved)
                except MappingError as err:
                    log.error("could not save the mapping at exit: %s", err)
                    self.exit_code = err.exit_code
                assert self.playback is not None
                log.info("stopped: %s%s", self.playback.status_line(), self._control_status())
        finally:
            deadline.cancel()


def _import_control_side(config: Config) -> None:
    """Import what the control inputs will need before the audio starts, not while its first blocks play.

    Importing a big package (aiohttp, zeroconf, rtmidi's backend) runs module code that holds the
    GIL for tens of milliseconds at a time, longer than a small block lasts. A package that cannot
    be imported is reported where it is used, as before.
    """
    names = []
    if config.web.enabled:
        names.append("ravemap.web.server")
    if config.osc.zeroconf and not advertise.disabled_by_environment():
        names += ["zeroconf", "ifaddr"]
    if config.midi.enabled:
        names.append("rtmidi")
    for name in names:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


def serve(config: Config, qr: bool = False) -> int:
    daemon = Daemon(config, qr=qr)
    daemon.install_signal_handlers()
    try:
        daemon.start()
        daemon.run_until_stopped()
    finally:
        daemon.stop()
    if daemon.playback is not None and daemon.playback.abandoned:
        # PortAudio's own clean-up at exit would block on the stream it lost: leave now, all saved.
        logging.shutdown()
        sys.stdout.flush()
        os._exit(daemon.exit_code)
    return daemon.exit_code
