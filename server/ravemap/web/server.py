"""The control page's server: HTTP for the packaged page, one WebSocket per open page.
The only module importing aiohttp.

A translator like the OSC port, never a second path: each page message becomes, through
`WebTranslator` (the OSC translator underneath), the event the same OSC message becomes, and
goes into the session's `Inbox`. The daemon owns the state and pushes it to every page:
`Feedback` calls this server's listener with every broadcast it sends to OSC controllers
(record, run, examples, training, mapping, model, loop, errors, the latent feed), which wakes a
watcher that sends each page what changed; the watcher also looks every
1/`osc.latent_feedback_hz` s while a page or OSCQuery client is open, since the input vector moved
by another controller is not broadcast. So TouchOSC, MIDI, the Python API and every page see one state.

What is served: the files shipped in `server/ravemap/web/static/` (read once at start) at `/` and
`/<name>`, the page's WebSocket at `/ws`, and OSCQuery (`control/oscquery.py`): no directory, no
file system path. Which one answers a GET (the rule the README states):
- a WebSocket upgrade on any other path than `/ws` is an OSCQuery client's (LISTEN/IGNORE in JSON text,
  OSC packets in binary frames, PATH_CHANGED pushed);
- `/` without a query string, from a client whose `Accept` names `text/html` (every browser), is the page;
- `/app.js` and the page's other files, without a query string, are those files;
- everything else is OSCQuery: `/` the namespace, `/ravemap/xy` one node, `?VALUE` (`?TYPE`, ...) one
  attribute, `/?HOST_INFO` the host info; an unknown path 404, an unknown attribute 400 (both counted);
  at most `OSCQUERY_RATE` requests a second per peer (429 past that, counted).
Guarded like the OSC port: bound on `osc.host`, a peer outside `osc.allow` gets 403, a
`Host` header that is not an IP address or this machine's name gets 421 (a page of another
site whose name was pointed at this machine cannot use it), and a WebSocket whose `Origin` is
not the page's own gets 403.

Bad input, as on the OSC port: a message that does not translate is refused with an
`{"type": "error"}` reply and counted; frames over `MAX_FRAME` bytes close that connection
with code 1009 (message too big), counted; each page is read at most `RATE` messages a second
(bursts of `BURST`): past that its connection is not read until its budget refills, so a flood
waits in the sender's own socket and costs the daemon nothing (counted, and answered once a
second); aiohttp's heartbeat then closes a connection that stopped answering. Queues are
bounded: aiohttp stops reading a socket whose unread frames pass 64 KiB, the inbox is bounded
and coalescing, and a slow page gets only the newest state (its pending pushes are replaced,
at most `MAX_EVENTS` error and reply messages wait).

Threads: "ravemap-web" runs the asyncio loop (HTTP, WebSockets, the watcher); one worker
thread, "ravemap-web-field", computes learned-field pictures. `start`/`stop` from the main
thread. The `Feedback` listener runs on the session, feedback and loader threads and only
posts onto the loop; the done-callbacks of commands run on the session thread and post too.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import socket
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aiohttp import WSCloseCode, WSMsgType, web
from aiohttp.http_websocket import WebSocketError

from ravemap.config import Config
from ravemap.control.events import Command, Inbox
from ravemap.control.feedback import Feedback
from ravemap.control.osc import AllowList, BadMessage, BadPacket, check_framing, decode_packet, encode_message
from ravemap.control.oscquery import ATTRIBUTES, Namespace, shape_of
from ravemap.errors import DeviceError
from ravemap.ratelimit import RateLimit, RateLimitedLog
from ravemap.web.address import page_url
from ravemap.web.protocol import Refused, WebTranslator
from ravemap.web.state import example_points, field_picture, folder_lists, page_config, page_state

if TYPE_CHECKING:
    from ravemap.session import Session, SessionView

log = logging.getLogger("ravemap.web")

STATIC = Path(__file__).resolve().parent / "static"
MAX_FRAME = 65536  # bytes; a larger frame closes its connection (1009)
MAX_PAGES = 32  # open WebSockets; more are answered 503
RATE = 200.0  # messages a second per page (a finger on the pad sends at most 60)
BURST = 100.0
THROTTLE_S = 0.05  # a page over its budget is not read for at least this long
ERRORS_PER_SECOND = 20  # error replies per page; more are counted, not sent
MAX_EVENTS = 64  # error and reply messages waiting for one page; the oldest go first
HEARTBEAT_S = 20.0
CLOSE_TIMEOUT_S = 0.5  # at exit, how long open pages get to answer the close
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8",
                 ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png",
                 ".ico": "image/x-icon", ".webmanifest": "application/manifest+json"}
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; connect-src 'self'; "
                               "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
PUSH_ORDER = ("config", "lists", "state", "examples", "field")  # latest-value slots, sent in this order
MAX_QUERY = 64  # characters of an OSCQuery query string (`HOST_INFO`, `VALUE`, ...)
MAX_PATH = 256  # characters of an OSCQuery path
OSCQUERY_RATE = 100.0  # OSCQuery HTTP requests a second per peer address (bursts as many)
MAX_PEERS = 256  # peer addresses whose OSCQuery request budgets are kept
MAX_LISTENS = 1024  # paths one OSCQuery client may LISTEN to
MAX_OSC_PACKET = 16384


@dataclass
class WebCounters:
    requests: int = 0
    pages_opened: int = 0
    refused_hosts: int = 0
    refused_origins: int = 0
    messages: int = 0
    malformed: int = 0
    oversized: int = 0
    unknown: int = 0
    bad: int = 0
    rate_limited: int = 0
    errors_suppressed: int = 0
    oscquery_requests: int = 0
    oscquery_not_found: int = 0
    oscquery_bad: int = 0
    oscquery_rate_limited: int = 0
    oscquery_clients: int = 0
    oscquery_messages: int = 0
    oscquery_malformed: int = 0
    oscquery_osc_refused: int = 0

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def load_assets(folder: Path = STATIC) -> dict[str, tuple[bytes, str]]:
    """name -> (content, content type) for every file shipped in the static folder."""
    assets = {}
    for path in sorted(folder.iterdir()):
        kind = CONTENT_TYPES.get(path.suffix)
        if path.is_file() and kind is not None and not path.name.startswith("."):
            assets[path.name] = (path.read_bytes(), kind)
    if "index.html" not in assets:
        raise DeviceError(f"the control page is missing from {folder}: reinstall ravemap")
    return assets


class Page:
    """One open WebSocket: its rate budget and what waits to be sent to it."""

    def __init__(self, ws: web.WebSocketResponse, peer: str):
        self.ws = ws
        self.peer = peer
        self.reads = RateLimit(BURST, BURST / RATE)  # RATE a second, BURST at once
        self.errors = RateLimit(ERRORS_PER_SECOND, 1.0)
        self.notices = RateLimit(1, 1.0)  # "too many messages" at most once a second
        self.latest: dict[str, str] = {}
        self.events: deque[str] = deque(maxlen=MAX_EVENTS)
        self.wake = asyncio.Event()

    def take_token(self) -> float:
        """Seconds to wait before this message may be handled (0: at once); the token is taken."""
        wait = self.reads.wait()
        return max(wait, THROTTLE_S) if wait > 0.0 else 0.0  # a few long pauses rather than a wake-up per message

    def push(self, kind: str, text: str) -> None:
        self.latest[kind] = text
        self.wake.set()

    def push_event(self, message: dict[str, Any]) -> None:
        self.events.append(json.dumps(message))
        self.wake.set()

    def next_text(self) -> str | None:
        if self.events:
            return self.events.popleft()
        for kind in PUSH_ORDER:
            if kind in self.latest:
                return self.latest.pop(kind)
        return None


class QueryClient:
    """One OSCQuery WebSocket: what it listens to, its rate budget, and what waits to be sent to it
    (the newest value per path, latest wins; at most `MAX_EVENTS` PATH_CHANGED texts)."""

    def __init__(self, ws: web.WebSocketResponse, peer: str):
        self.ws = ws
        self.peer = peer
        self.reads = RateLimit(BURST, BURST / RATE)
        self.listening: set[str] = set()
        self.values: dict[str, bytes] = {}
        self.texts: deque[str] = deque(maxlen=MAX_EVENTS)
        self.wake = asyncio.Event()

    def push_value(self, path: str, packet: bytes) -> None:
        self.values.pop(path, None)
        self.values[path] = packet
        self.wake.set()

    def push_text(self, text: str) -> None:
        self.texts.append(text)
        self.wake.set()


class WebServer:
    """Serves the page on `osc.host:web.port`; see the module docstring."""

    def __init__(self, config: Config, session: Session, inbox: Inbox, feedback: Feedback,
                 port: int | None = None, osc_port: int | None = None):
        self.config = config
        self.session = session
        self.inbox = inbox
        self.feedback = feedback
        self.translator = WebTranslator(config)
        self.allow = AllowList(config.osc.allow)
        self.counters = WebCounters()
        self.assets = load_assets()
        self.pages: set[Page] = set()
        self.query_clients: set[QueryClient] = set()
        self.osc_port = config.osc.port if osc_port is None else osc_port
        self._namespace: Namespace | None = None
        self._query_values: dict[str, list[object]] = {}
        self._query_budgets = RateLimit(OSCQUERY_RATE, 1.0, max_keys=MAX_PEERS)  # per peer address
        self._log = RateLimitedLog(log, seconds=2.0)
        self._names = _own_names()
        self._period = 1.0 / config.osc.latent_feedback_hz
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._watcher: asyncio.Task | None = None
        self._wake: asyncio.Event | None = None
        self._fields = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ravemap-web-field")
        self._last_state = ""
        self._examples_key: tuple = ()
        self._field_for: object = None
        self._field_text = json.dumps({"type": "field", "field": None})
        self._lists_text = ""
        host = config.osc.host
        port = config.web.port if port is None else port
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._sock.bind((host, port))
            self._sock.listen(64)
        except OSError as err:
            self._sock.close()
            raise DeviceError(
                f"cannot open the web page's port {host}:{port} (tcp): {err.strerror or err}; is another "
                "program using it? choose another with --web-port, or set web.enabled: false"
            ) from err
        self._sock.setblocking(False)

    # -- where -----------------------------------------------------------------------------
    @property
    def address(self) -> tuple[str, int]:
        host, port = self._sock.getsockname()[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        """The page's address for a phone: the machine's LAN address when bound on all addresses."""
        host, port = self.address
        return page_url(host, port)

    # -- lifecycle (main thread) -------------------------------------------------------------
    def start(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="ravemap-web", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._startup(), loop).result(10.0)
        self.feedback.add_listener(self._on_feedback)

    def stop(self) -> None:
        self.feedback.remove_listener(self._on_feedback)
        loop = self._loop
        if loop is not None and self._thread is not None:
            try:
                asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(2.0)
            except Exception as err:  # a page that will not close must not hold up the exit
                log.warning("web page server did not stop cleanly: %s", err)
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join(2.0)
            if not self._thread.is_alive():
                loop.close()
            self._thread = None
        self._fields.shutdown(wait=False, cancel_futures=True)
        self._sock.close()
        c = self.counters
        log.info("web page: %d pages opened, %d messages; refused: %d hosts, %d origins, %d malformed, "
                 "%d oversized, %d unknown, %d bad, %d over the rate", c.pages_opened, c.messages,
                 c.refused_hosts, c.refused_origins, c.malformed, c.oversized, c.unknown, c.bad, c.rate_limited)
        log.info("OSCQuery: %d requests, %d clients, %d messages; refused: %d not found, %d bad, %d over the rate, "
                 "%d malformed, %d OSC messages", c.oscquery_requests, c.oscquery_clients, c.oscquery_messages,
                 c.oscquery_not_found, c.oscquery_bad, c.oscquery_rate_limited, c.oscquery_malformed,
                 c.oscquery_osc_refused)

    async def _startup(self) -> None:
        app = web.Application(middlewares=[self._guard], client_max_size=4096)
        app.router.add_get("/ws", self._websocket)
        app.router.add_get("/{path:.*}", self._get)
        app.on_response_prepare.append(_add_headers)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=CLOSE_TIMEOUT_S)
        await self._runner.setup()
        await web.SockSite(self._runner, self._sock).start()
        self._wake = asyncio.Event()
        self._watcher = asyncio.get_running_loop().create_task(self._watch())

    async def _shutdown(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        closing = [client.ws.close(code=WSCloseCode.GOING_AWAY, message=b"ravemap is stopping")
                   for client in (*self.pages, *self.query_clients)]
        if closing:  # a phone that went to sleep never answers the close: do not wait for it
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*closing, return_exceptions=True), CLOSE_TIMEOUT_S)
        if self._runner is not None:
            await self._runner.cleanup()

    # -- HTTP ------------------------------------------------------------------------------
    @web.middleware
    async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.counters.requests += 1
        remote = request.remote or ""
        if not self.allow.allows(remote):
            self.counters.refused_hosts += 1
            self._log.warning("refused a web request from %s: not in osc.allow", remote, key="host:" + remote)
            return web.Response(status=403, text="this address may not control ravemap (see osc.allow)\n")
        if not self._host_ok(request.host):
            self.counters.refused_hosts += 1
            self._log.warning("refused a web request for host %r: not this machine", request.host[:80],
                              key="name:" + remote)
            return web.Response(status=421, text="open the page by this machine's address or name\n")
        return await handler(request)

    def _host_ok(self, host: str) -> bool:
        name = urlsplit(f"//{host}").hostname or ""
        try:
            ipaddress.ip_address(name)
            return True
        except ValueError:
            return name.lower().split(".", 1)[0] in self._names

    async def _get(self, request: web.Request) -> web.StreamResponse:
        """The page, its files, or OSCQuery: the rule is in the module docstring."""
        path = request.path
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._query_websocket(request)
        if not request.query_string:
            if path == "/" and "text/html" in request.headers.get("Accept", ""):
                return self._file("index.html")
            if path[1:] in self.assets:
                return self._file(path[1:])
        return self._query(request)

    # -- OSCQuery over HTTP ----------------------------------------------------------------------
    def namespace(self) -> tuple[Namespace, dict[str, list[object]]]:
        """The namespace for the session's current shape, and the current values."""
        status = self.session.status()
        shape = shape_of(status)
        if self._namespace is None or self._namespace.shape != shape:
            self._namespace = Namespace(self.config, shape)
        return self._namespace, self._namespace.values(status)

    def _query_refused(self, status: int, counter: str, remote: str, why: str) -> web.Response:
        setattr(self.counters, counter, getattr(self.counters, counter) + 1)
        self._log.warning("refused an OSCQuery request from %s: %s", remote, why, key=f"{counter}:{remote}")
        return web.json_response({"ERROR": why}, status=status)

    def _query(self, request: web.Request) -> web.Response:
        self.counters.oscquery_requests += 1
        remote = request.remote or ""
        if not self._query_budgets.allow(remote):
            return self._query_refused(429, "oscquery_rate_limited", remote,
                                       f"over {int(OSCQUERY_RATE)} requests a second")
        path, query = request.path, request.query_string
        if len(query) > MAX_QUERY or len(path) > MAX_PATH:
            return self._query_refused(400, "oscquery_bad", remote, f"a query of {len(query)} characters and a path "
                                       f"of {len(path)}: at most {MAX_QUERY} and {MAX_PATH}")
        if len(path) > 1:
            path = path.rstrip("/")
        namespace, values = self.namespace()
        if query == "HOST_INFO":
            return web.json_response(namespace.host_info(self.config.osc.service_name,
                                                         self._osc_ip(request), self.osc_port))
        node = namespace.node(path, values) if namespace.has(path) else None
        if node is None:
            return self._query_refused(404, "oscquery_not_found", remote, f"no OSC address {path[:80]!r}")
        if not query:
            return web.json_response(node)
        attribute = query.split("=", 1)[0]
        if attribute not in ATTRIBUTES:
            return self._query_refused(400, "oscquery_bad", remote, f"unknown attribute {attribute[:40]!r}: one of "
                                       f"{', '.join(ATTRIBUTES)} or HOST_INFO")
        if attribute not in node:
            return web.Response(status=204)  # the proposal: an attribute this node has no value for
        return web.json_response({attribute: node[attribute]})

    def _osc_ip(self, request: web.Request) -> str:
        """The address the OSC port is reached at: `osc.host`, or, bound to every address, the one this
        request came in on."""
        host = self.config.osc.host
        try:
            if not ipaddress.ip_address(host).is_unspecified:
                return host
        except ValueError:
            return host
        sockname = request.transport.get_extra_info("sockname") if request.transport is not None else None
        return str(sockname[0]) if sockname else host

    def _file(self, name: str) -> web.Response:
        found = self.assets.get(name)
        if found is None:
            raise web.HTTPNotFound(text="not found\n")
        body, kind = found
        return web.Response(body=body, headers={"Content-Type": kind})

    # -- WebSocket -------------------------------------------------------------------------
    def _foreign_origin(self, request: web.Request, origin: str, what: str) -> web.Response | None:
        """403 for a WebSocket whose Origin is not the page's own (counted, logged); None when it is."""
        parts = urlsplit(origin)
        if parts.scheme in ("http", "https") and parts.netloc.lower() == request.host.lower():
            return None
        self.counters.refused_origins += 1
        self._log.warning("refused %s from %s with Origin %r: not the page's own", what, request.remote,
                          origin[:80], key="origin:" + str(request.remote))
        return web.Response(status=403, text="WebSocket refused: its Origin is not this page\n")

    @staticmethod
    def _new_websocket() -> web.WebSocketResponse:
        return web.WebSocketResponse(max_msg_size=MAX_FRAME, heartbeat=HEARTBEAT_S, compress=False,
                                     timeout=CLOSE_TIMEOUT_S)

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        refused = self._foreign_origin(request, request.headers.get("Origin", ""), "a WebSocket")
        if refused is not None:
            return refused
        if len(self.pages) >= MAX_PAGES:
            return web.Response(status=503, text=f"{MAX_PAGES} pages are open already\n")
        ws = self._new_websocket()
        await ws.prepare(request)
        page = Page(ws, str(request.remote))
        self.pages.add(page)
        self._kick()  # the watcher sleeps while no page is open
        self.counters.pages_opened += 1
        log.info("control page opened from %s (%d open)", page.peer, len(self.pages))
        sender = asyncio.get_running_loop().create_task(self._send_loop(page))
        self._greet(page)
        try:
            async for msg in ws:
                if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY) and (wait := page.take_token()) > 0.0:
                    self._slow_down(page)
                    await asyncio.sleep(wait)  # meanwhile this connection is not read: the flood waits
                    if request.transport is None or request.transport.is_closing():
                        break  # the sender has gone: what it left unread is not carried out
                if msg.type == WSMsgType.TEXT:
                    self._on_text(page, msg.data)
                elif msg.type == WSMsgType.BINARY:
                    self._refuse(page, Refused("malformed", "binary frames are not page messages: send JSON text"))
                elif msg.type == WSMsgType.ERROR:
                    if isinstance(msg.data, WebSocketError) and msg.data.code == WSCloseCode.MESSAGE_TOO_BIG:
                        self.counters.oversized += 1
                        self._log.warning("closed the page of %s: a frame over %d bytes", page.peer, MAX_FRAME,
                                          key="big:" + page.peer)
                    break
        finally:
            self.pages.discard(page)
            sender.cancel()
            log.info("control page closed from %s (%d open)", page.peer, len(self.pages))
        return ws

    # -- OSCQuery WebSocket ----------------------------------------------------------------------
    async def _query_websocket(self, request: web.Request) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin is not None:  # a browser: only the page's own origin, as for `/ws`
            refused = self._foreign_origin(request, origin, "an OSCQuery WebSocket")
            if refused is not None:
                return refused
        if len(self.pages) + len(self.query_clients) >= MAX_PAGES:
            return web.Response(status=503, text=f"{MAX_PAGES} WebSockets are open already\n")
        ws = self._new_websocket()
        await ws.prepare(request)
        client = QueryClient(ws, str(request.remote))
        self.query_clients.add(client)
        self._kick()
        self.counters.oscquery_clients += 1
        log.info("OSCQuery client connected from %s", client.peer)
        self.namespace()  # PATH_CHANGED is about changes from what it could have read by now
        sender = asyncio.get_running_loop().create_task(self._query_send_loop(client))
        try:
            async for msg in ws:
                if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY) and (wait := client.reads.wait()) > 0.0:
                    self.counters.rate_limited += 1
                    self._log.warning("OSCQuery client %s sends over %d messages a second: it is read no faster",
                                      client.peer, int(RATE), key="qrate:" + client.peer)
                    await asyncio.sleep(max(wait, THROTTLE_S))
                    if request.transport is None or request.transport.is_closing():
                        break
                if msg.type == WSMsgType.TEXT:
                    self._on_query_text(client, msg.data)
                elif msg.type == WSMsgType.BINARY:
                    self._on_query_osc(client, msg.data)
                elif msg.type == WSMsgType.ERROR:
                    if isinstance(msg.data, WebSocketError) and msg.data.code == WSCloseCode.MESSAGE_TOO_BIG:
                        self.counters.oversized += 1
                    break
        finally:
            self.query_clients.discard(client)
            sender.cancel()
            log.info("OSCQuery client gone from %s", client.peer)
        return ws

    def _query_malformed(self, client: QueryClient, why: str) -> None:
        self.counters.oscquery_malformed += 1
        self._log.warning("refused an OSCQuery message from %s: %s", client.peer, why, key="qbad:" + client.peer)

    def _on_query_text(self, client: QueryClient, text: str) -> None:
        self.counters.oscquery_messages += 1
        if len(text) > 4096:
            self._query_malformed(client, f"a command of {len(text)} characters")
            return
        try:
            data = json.loads(text, parse_constant=lambda c: None)
        except (ValueError, RecursionError):
            self._query_malformed(client, "not JSON")
            return
        if not isinstance(data, dict) or data.get("COMMAND") not in ("LISTEN", "IGNORE") \
                or not isinstance(data.get("DATA"), str):
            self._query_malformed(client, 'expected {"COMMAND": "LISTEN" or "IGNORE", "DATA": "/path"}')
            return
        path = data["DATA"]
        if data["COMMAND"] == "IGNORE":
            client.listening.discard(path)
            client.values.pop(path, None)
            return
        namespace, _ = self.namespace()
        if not namespace.has(path):
            self.counters.oscquery_not_found += 1
            self._log.warning("OSCQuery LISTEN to an unknown path from %s", client.peer, key="qlisten:" + client.peer)
            return
        if len(client.listening) < MAX_LISTENS:
            client.listening.add(path)

    def _on_query_osc(self, client: QueryClient, data: bytes) -> None:
        """Binary OSC from an OSCQuery client: through the OSC translator into the inbox, like a datagram."""
        self.counters.oscquery_messages += 1
        try:
            if len(data) > MAX_OSC_PACKET:
                raise BadPacket(f"{len(data)} bytes (at most {MAX_OSC_PACKET})")
            check_framing(data)
            messages = decode_packet(data)
        except (ValueError, RecursionError) as err:
            self._query_malformed(client, f"not a valid OSC packet: {str(err)[:120]}")
            return
        for address, args in messages:
            try:
                event = self.translator.osc.translate(address, args)
            except BadMessage as err:
                self.counters.oscquery_osc_refused += 1
                self._log.warning("refused OSC from OSCQuery client %s: %s", client.peer, err,
                                  key="qosc:" + client.peer)
                continue
            if event is not None:
                self.inbox.put(event)
        self._kick()

    async def _query_send_loop(self, client: QueryClient) -> None:
        ws = client.ws
        try:
            while not ws.closed:
                await client.wake.wait()
                client.wake.clear()
                while not ws.closed:
                    if client.texts:
                        await ws.send_str(client.texts.popleft())
                    elif client.values:
                        path = next(iter(client.values))
                        await ws.send_bytes(client.values.pop(path))
                    else:
                        break
        except (ConnectionError, RuntimeError):
            pass

    def _refresh_query(self) -> None:
        """Send listened values that changed, and PATH_CHANGED when the namespace's shape did."""
        before = self._namespace
        namespace, values = self.namespace()
        if before is not None and namespace is not before:
            old, new = before.paths(), namespace.paths()
            changed = sorted(p for p in old.keys() | new.keys() if old.get(p) != new.get(p))
            texts = [json.dumps({"COMMAND": "PATH_CHANGED", "DATA": p}) for p in changed[:16]]
            if len(changed) > 16:
                texts = [json.dumps({"COMMAND": "PATH_CHANGED", "DATA": "/"})]
            log.info("OSCQuery namespace changed (%s)", ", ".join(changed[:8]))
            for client in self.query_clients:
                for text in texts:
                    client.push_text(text)
        last = self._query_values
        self._query_values = values
        for client in self.query_clients:
            for path in client.listening:
                value = values.get(path)
                if value is not None and value != last.get(path):
                    client.push_value(path, encode_message(path, *value))

    async def _send_loop(self, page: Page) -> None:
        ws = page.ws
        try:
            while not ws.closed:
                await page.wake.wait()
                page.wake.clear()
                while (text := page.next_text()) is not None and not ws.closed:
                    await ws.send_str(text)
        except (ConnectionError, RuntimeError):  # the page went away mid-send
            pass

    def _on_text(self, page: Page, text: str) -> None:
        self.counters.messages += 1
        try:
            translated = self.translator.translate(text)
        except Refused as err:
            self._refuse(page, err)
            return
        except Exception as err:  # a translator bug must not close the page
            self._refuse(page, Refused("bad", f"could not be handled ({type(err).__name__}: {str(err)[:80]})"))
            return
        if translated.request is not None:
            self._send_lists(page, fresh=True)
            return
        event = translated.event
        if event is None:
            return
        if isinstance(event, Command):
            future: Future = Future()
            loop = asyncio.get_running_loop()
            message_id = translated.message_id
            future.add_done_callback(
                lambda done: _post(loop, self._command_done, page, message_id, done))
            event = replace(event, done=future)
        self.inbox.put(event)

    def _command_done(self, page: Page, message_id: int | None, future: Future) -> None:
        error = future.exception()
        if error is not None:
            self._reply_error(page, str(error), message_id)
        elif message_id is not None and page in self.pages:
            page.push_event({"type": "reply", "id": message_id})
        self._kick()

    def _refuse(self, page: Page, err: Refused) -> None:
        kind = err.kind if err.kind in ("malformed", "oversized", "unknown") else "bad"
        setattr(self.counters, kind, getattr(self.counters, kind) + 1)
        self._log.warning("refused a page message from %s: %s", page.peer, err, key=f"{kind}:{page.peer}")
        self._reply_error(page, str(err), err.message_id)

    def _reply_error(self, page: Page, text: str, message_id: int | None) -> None:
        if not page.errors.allow():
            self.counters.errors_suppressed += 1
            return
        page.push_event({"type": "error", "id": message_id, "text": text[:500]})

    def _slow_down(self, page: Page) -> None:
        self.counters.rate_limited += 1
        if page.notices.allow():
            self._log.warning("page of %s sends over %d messages a second: it is read no faster", page.peer,
                              int(RATE), key="rate:" + page.peer)
            page.push_event({"type": "error", "id": None,
                             "text": f"too many messages: at most {int(RATE)} a second are read; the rest wait"})

    # -- pushing state -----------------------------------------------------------------------
    def _greet(self, page: Page) -> None:
        config = page_config(self.config, self.translator.pads)
        page.push("config", json.dumps({"type": "config", "config": config}))
        page.push("state", self._last_state or self._state_text())
        page.push("examples", self._examples_text(self.session.view))
        page.push("field", self._field_text)
        self._send_lists(page)

    def _on_feedback(self, address: str, args: tuple[object, ...]) -> None:
        """Feedback listener (session, feedback and loader threads): hand it to the loop."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            _post(loop, self._feedback_arrived, address, args)

    def _feedback_arrived(self, address: str, args: tuple[object, ...]) -> None:
        if address == "/ravemap/error" and args:
            for page in self.pages:
                page.push_event({"type": "error", "id": None, "text": str(args[0])[:500]})
        elif address == "/ravemap/train/done" and len(args) >= 3:
            loss, examples, seconds = args[:3]
            for page in self.pages:
                page.push_event({"type": "info", "text": f"trained on {examples} examples in {seconds:.2f} s, "
                                                         f"loss {loss:.5f}"})
        elif address == "/ravemap/train/cancelled" and args:
            for page in self.pages:
                page.push_event({"type": "info", "text": str(args[0])[:500]})
        elif address in ("/ravemap/mapping", "/ravemap/model", "/ravemap/loop"):
            self._lists_text = ""
            for page in self.pages:
                self._send_lists(page)
        self._kick()

    def _kick(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _watch(self) -> None:
        assert self._wake is not None
        while True:
            # With nobody to push to it sleeps until kicked (a page or client opening kicks it): no wake-ups at rest.
            period = self._period if self.pages or self.query_clients else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), period)
            self._wake.clear()
            if not self.pages and not self.query_clients:
                continue
            try:
                if self.query_clients:
                    self._refresh_query()
                if self.pages:
                    self._refresh()
            except Exception as err:  # a bug here must not stop the pushes; the next look tries again
                self._log.warning("web page push failed: %r", err, key="push")

    def _state_text(self) -> str:
        return json.dumps({"type": "state", "state": page_state(self.session)}, allow_nan=False)

    def _examples_text(self, view: SessionView) -> str:
        return json.dumps({"type": "examples", "mapping": view.name, "points": example_points(view)})

    def _refresh(self) -> None:
        text = self._state_text()
        if text != self._last_state:
            self._last_state = text
            for page in self.pages:
                page.push("state", text)
        view = self.session.view
        examples = view.examples
        key = (view.serial, view.name, len(examples), examples[-1] if examples else None)
        if key != self._examples_key:
            self._examples_key = key
            points = self._examples_text(view)
            for page in self.pages:
                page.push("examples", points)
        regressor = view.regressor
        if regressor is not self._field_for:
            self._field_for = regressor
            loop = asyncio.get_running_loop()
            job = loop.run_in_executor(self._fields, field_picture, view)
            job.add_done_callback(lambda done: self._field_ready(regressor, done))

    def _field_ready(self, regressor: object, job: asyncio.Future) -> None:
        if job.cancelled() or regressor is not self._field_for:
            return
        error = job.exception()
        if error is not None:
            self._log.warning("could not draw the learned field: %s", error, key="field")
            return
        self._field_text = json.dumps({"type": "field", "field": job.result()}, allow_nan=False)
        for page in self.pages:
            page.push("field", self._field_text)

    def _send_lists(self, page: Page, fresh: bool = False) -> None:
        if fresh or not self._lists_text:
            lists = folder_lists(self.config, self.session.mappings_dir)
            self._lists_text = json.dumps({"type": "lists", "lists": lists})
        page.push("lists", self._lists_text)


def _post(loop: asyncio.AbstractEventLoop, fn: Any, *args: Any) -> None:
    """Run `fn(*args)` on the loop's thread; nothing when the loop has stopped."""
    with contextlib.suppress(RuntimeError):  # the loop is closed: ravemap is stopping
        loop.call_soon_threadsafe(fn, *args)


async def _add_headers(request: web.Request, response: web.StreamResponse) -> None:
    for key, value in HEADERS.items():
        response.headers.setdefault(key, value)


def _own_names() -> set[str]:
    """Names this machine answers to (first label, lower case): localhost and its host name."""
    names = {"localhost"}
    for name in (socket.gethostname(),):
        if name:
            names.add(name.lower().split(".", 1)[0])
    return names

