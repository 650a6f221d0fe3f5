"""OSC out: replies to senders, feedback to every controller, and the latent feed.

Replies and feedback go to each sender's IP on `osc.feedback_port` (TouchOSC, Pd's
`[netreceive -u -b 9000]`, Max's `[udpreceive 9000]` listen there), and to the extra
`osc.feedback_targets`. `/ravemap/latent f...` follows the offsets at most
`osc.latent_feedback_hz` times a second, so faders follow a gesture without a flood. Like
Wekinator, `/wek/outputs f...` goes to `osc.wekinator_host:osc.wekinator_port` in run mode for
each new input (`osc.wekinator_outputs`), 0..1 per output with `osc.wekinator_units: unit`.

Sending never blocks and never raises: sockets are non-blocking and errors are counted.
Error replies are rate-limited per sender, so a flood of bad packets cannot turn ravemap
into an amplifier.

Listeners (the web page's server) get every broadcast too, `(address, args)`, on the
thread that broadcast it: they must only hand it on (the web server posts it to its own loop).

Threads: `send`/`reply`/`broadcast`/`error` from the session thread and the OSC threads,
`wekinator_outputs` from the session thread;
the latent feed runs in its own thread, "ravemap-feedback".
"""

from __future__ import annotations

import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from ravemap.config import Config
from ravemap.control.osc import encode_message
from ravemap.ratelimit import RateLimit

MAX_SENDERS = 16
ERRORS_PER_SECOND = 20


class Feedback:
    def __init__(self, config: Config, feedback_port: int | None = None):
        osc = config.osc
        self.feedback_port = feedback_port or osc.feedback_port
        self.targets: list[tuple[str, int]] = []
        for target in osc.feedback_targets:
            host, _, port = target.rpartition(":")
            self.targets.append((host.strip("[]"), int(port)))
        self.wekinator_dest = (osc.wekinator_host, osc.wekinator_port) if osc.wekinator_outputs else None
        self.wekinator_unit = osc.wekinator_units == "unit"
        self.latent_range = config.latent.range
        self.latent_hz = osc.latent_feedback_hz
        self.senders: OrderedDict[str, float] = OrderedDict()
        self.sent = 0
        self.send_errors = 0
        self.errors_suppressed = 0
        self._error_limit = RateLimit(ERRORS_PER_SECOND, 1.0, max_keys=256)  # per sender's IP
        self._lock = threading.Lock()
        self._sockets: dict[int, socket.socket] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._listeners: tuple[Callable[[str, tuple[object, ...]], None], ...] = ()
        self.listener_errors = 0

    # -- listeners -----------------------------------------------------------------------
    def add_listener(self, listener: Callable[[str, tuple[object, ...]], None]) -> None:
        """Call `listener(address, args)` with every broadcast; it must return at once and not raise."""
        with self._lock:
            self._listeners = (*self._listeners, listener)

    def remove_listener(self, listener: Callable[[str, tuple[object, ...]], None]) -> None:
        with self._lock:
            self._listeners = tuple(fn for fn in self._listeners if fn is not listener)

    # -- where to ------------------------------------------------------------------------
    def note_sender(self, host: str) -> None:
        with self._lock:
            self.senders[host] = time.monotonic()
            self.senders.move_to_end(host)
            while len(self.senders) > MAX_SENDERS:
                self.senders.popitem(last=False)

    def destinations(self) -> list[tuple[str, int]]:
        with self._lock:
            hosts = list(self.senders)
        return [(h, self.feedback_port) for h in hosts] + self.targets

    # -- sending -------------------------------------------------------------------------
    def _socket(self, family: int) -> socket.socket:
        sock = self._sockets.get(family)
        if sock is None:
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.setblocking(False)
            self._sockets[family] = sock
        return sock

    def send_to(self, dest: tuple[str, int], address: str, *args: object) -> None:
        data = encode_message(address, *args)
        family = socket.AF_INET6 if ":" in dest[0] else socket.AF_INET
        try:
            with self._lock:
                self._socket(family).sendto(data, dest)
            self.sent += 1
        except OSError:
            self.send_errors += 1

    def reply(self, origin: tuple[str, int] | None, address: str, *args: object, port: int | None = None) -> None:
        """To the sender's IP, on the feedback port (or the port it asked for)."""
        if origin is None:
            return
        self.send_to((origin[0], port or self.feedback_port), address, *args)

    def broadcast(self, address: str, *args: object) -> None:
        for dest in self.destinations():
            self.send_to(dest, address, *args)
        for listener in self._listeners:
            try:
                listener(address, args)
            except Exception:  # a listener's bug must not stop the session or the feed
                self.listener_errors += 1

    def wekinator_outputs(self, values: tuple[float, ...]) -> None:
        """`/wek/outputs f...` to Wekinator's output destination (if on), in `osc.wekinator_units`."""
        if self.wekinator_dest is None:
            return
        floats = [float(v) for v in values]
        if self.wekinator_unit:
            low, high = self.latent_range
            floats = [(v - low) / (high - low) for v in floats]
        self.send_to(self.wekinator_dest, "/wek/outputs", *floats)

    def error(self, origin: tuple[str, int] | None, text: str) -> None:
        if origin is None:
            return
        if not self._error_limit.allow(origin[0]):
            with self._lock:
                self.errors_suppressed += 1
            return
        self.reply(origin, "/ravemap/error", text[:500])

    # -- latent feed ---------------------------------------------------------------------
    def start_latent_feed(self, current: Callable[[], tuple[float, ...]]) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._feed, args=(current,), name="ravemap-feedback", daemon=True)
        self._thread.start()

    def _feed(self, current: Callable[[], tuple[float, ...]]) -> None:
        period = 1.0 / self.latent_hz
        last: tuple[float, ...] | None = None
        while not self._stop.wait(period):
            values = current()
            if values == last:
                continue
            last = values
            self.broadcast("/ravemap/latent", *[float(v) for v in values])

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(1.0)
            self._thread = None
        for sock in self._sockets.values():
            sock.close()
        self._sockets.clear()
