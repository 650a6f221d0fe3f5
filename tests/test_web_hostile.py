"""Whatever reaches the control page's port, ravemap keeps playing and keeps its state.

Against `ravemap serve --audio none` (its headless clock counts underruns like a sound card):
garbage, JSON with NaN, wrong types, unknown addresses, names that leave their folder,
oversized and huge frames, binary frames, and a flood of 10,000 messages a second over
several WebSockets; then plain HTTP: only the packaged files are served, strangers outside
`osc.allow`, other sites' Origins and other host names are refused. All on 127.0.0.x.

The daemon plays with `engine.latency: fixed` (2048-sample blocks, 3 ahead): what is measured is
whether web input starves the audio, and on a shared 2-core machine the smallest latency `auto`
picks underruns now and then with no input at all (7 before the flood began in one full-suite run).
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import socket
import time

import pytest

from tests.osc_peer import Daemon

aiohttp = pytest.importorskip("aiohttp")

ALLOWED = "127.0.0.1"
STRANGER = "127.0.0.2"  # on loopback, but outside this daemon's osc.allow


@pytest.fixture(scope="module")
def daemon(tmp_path_factory, tiny_model, loop_file, peer):
    d = Daemon(tmp_path_factory.mktemp("web-hostile"), tiny_model, loop_file, peer.port, "--qr",
               config={"osc": {"allow": ["127.0.0.1/32"]}, "engine": {"latency": "fixed"}})
    peer.daemon = ("127.0.0.1", d.port)
    peer.send("/ravemap/latent", 1.0, -1.0, 0.5, 0.25)
    peer.send("/ravemap/xy", 0.3, 0.6)
    peer.send("/ravemap/record/once")
    assert peer.status()["examples"] == 1
    yield d
    assert d.stop() == 0, d.stderr()[-3000:]


def host_port(daemon: Daemon) -> tuple[str, int]:
    netloc = daemon.web_url.split("//", 1)[1].rstrip("/")
    host, port = netloc.rsplit(":", 1)
    return host, int(port)


def performer_state(state: dict) -> dict:
    """What a performer hears and sees: everything but the counters and the last error's text."""
    counters = ("events_dropped", "last_error", "nonfinite_silenced", "clipped", "tempo")  # tempo: a moving clock
    return {k: v for k, v in state.items() if k not in counters}


async def connect(daemon: Daemon, session, **kw):
    host, port = host_port(daemon)
    origin = f"http://{host}:{port}"
    return await session.ws_connect(f"ws://{host}:{port}/ws", origin=origin, max_msg_size=0, **kw)


async def next_of(ws, kind: str, timeout: float = 5.0) -> dict:
    """The next message of `kind` (state pushes in between are skipped)."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        msg = await ws.receive(timeout=left)
        if msg.type != aiohttp.WSMsgType.TEXT:
            raise AssertionError(f"the connection ended: {msg}")
        data = json.loads(msg.data)
        if data["type"] == kind:
            return data
    raise AssertionError(f"no {kind!r} message within {timeout} s")


BAD_MESSAGES = [  # (what is sent, a word the refusal has)
    ("not json at all", "not JSON"),
    ("NaN", "NaN"),
    ('{"osc": "/ravemap/xy", "args": [NaN, 0.5]}', "NaN"),
    ('{"osc": "/ravemap/xy", "args": [Infinity, 0.5]}', "Infinity"),
    ('{"osc": "/ravemap/xy", "args": [1e999, 0.5]}', "finite"),
    ('{"osc": "/ravemap/xy", "args": [true, 0.5]}', "number or a string"),
    ('{"osc": "/ravemap/xy", "args": [null, 0.5]}', "number or a string"),
    ('{"osc": "/ravemap/xy", "args": [[0.1], 0.5]}', "number or a string"),
    ('{"osc": "/ravemap/xy", "args": [123456789012345678901234567890, 0.5]}', "out of range"),
    ('{"osc": "/ravemap/xy", "args": ["0.1", 0.5]}', "must be a number"),
    ('{"osc": "/ravemap/xy", "args": [0.1]}', "expected"),
    ('{"osc": "/ravemap/xy", "args": [0.1, 0.5], "sneaky": 1}', "unknown key"),
    ('{"osc": "/ravemap/latent/99", "args": [1.0]}', "latent index"),
    ('{"osc": "/ravemap/latent", "args": [1, 2]}', "expected 4"),
    ('{"osc": "/ravemap/nothing/here"}', "unknown address"),
    ('{"osc": 42}', "OSC address"),
    ('{"osc": "/ravemap/status"}', "OSC only"),
    ('{"get": "secrets"}', "get"),
    ('{"osc": "/ravemap/xy", "args": 5}', "list"),
    ('{"osc": "/ravemap/xy", "args": [0.1, 0.5], "id": -3}', "id"),
    ("[" * 2000 + "]" * 2000, "JSON"),
    ("[]", "JSON object"),
    ('"/ravemap/xy"', "JSON object"),
    ("x" * 10_000, "too long"),
]

SESSION_REFUSALS = [  # translated fine, refused by the session: the answer carries the message id
    ('{"osc": "/ravemap/model", "args": ["../../etc/passwd"], "id": 7}', "'/'"),
    ('{"osc": "/ravemap/loop", "args": ["..hidden"], "id": 8}', "starts with '.'"),
    ('{"osc": "/ravemap/mapping/load", "args": ["no-such-mapping"], "id": 9}', "no-such-mapping"),
    ('{"osc": "/ravemap/mapping/save", "args": ["a/b"], "id": 10}', "'/'"),
    ('{"osc": "/ravemap/gain", "args": [1000.0], "id": 11}', "gain"),
]


def test_malformed_and_hostile_messages_are_refused_with_a_reply_and_change_nothing(daemon, peer):
    before = performer_state(peer.status())

    async def go() -> None:
        async with aiohttp.ClientSession() as session:
            ws = await connect(daemon, session)
            for n, (text, word) in enumerate(BAD_MESSAGES):
                if n and n % 15 == 0:
                    await asyncio.sleep(1.05)  # error replies are rate-limited to 20 a second per page
                await ws.send_str(text)
                reply = await next_of(ws, "error")
                assert word.lower() in reply["text"].lower(), (text[:60], reply)
            await asyncio.sleep(1.05)
            await ws.send_bytes(b"\x00\xff" * 100)
            assert "binary" in (await next_of(ws, "error"))["text"]
            for text, word in SESSION_REFUSALS:
                await ws.send_str(text)
                reply = await next_of(ws, "error")
                assert reply["id"] == json.loads(text)["id"] and word in reply["text"], (text, reply)
            await ws.send_str('{"osc": "/ravemap/examples/undo", "id": 12}')  # fine: one example to undo
            assert (await next_of(ws, "reply"))["id"] == 12
            await ws.send_str('{"osc": "/ravemap/examples/undo", "id": 13}')  # none left
            assert (await next_of(ws, "error"))["id"] == 13
            await ws.close()

    asyncio.run(go())
    after = performer_state(peer.status())
    assert after["examples"] == before["examples"] - 1
    for key in ("inputs", "targets", "offsets", "model", "loop", "mapping", "transfer", "gain_db", "underruns"):
        assert after[key] == before[key], key
    peer.send("/ravemap/xy", 0.3, 0.6)  # put the example back for the tests after this one
    peer.send("/ravemap/record/once")
    assert peer.status()["examples"] == before["examples"]


def test_a_huge_frame_closes_only_that_connection(daemon, peer):
    async def go() -> None:
        async with aiohttp.ClientSession() as session:
            calm = await connect(daemon, session)
            ws = await connect(daemon, session)
            await ws.send_str('{"osc": "/ravemap/xy", "args": [' + "0.5, " * 200_000 + "0.5]}")  # ~1 MB
            msg = await ws.receive(timeout=10)
            while msg.type == aiohttp.WSMsgType.TEXT:  # state pushes sent before the close
                msg = await ws.receive(timeout=10)
            assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
            assert ws.close_code == 1009, "message too big"
            await calm.send_str('{"osc": "/ravemap/xy", "args": [0.25, 0.75], "id": 1}')
            await calm.send_str('{"osc": "/ravemap/record/once", "id": 2}')
            assert (await next_of(calm, "reply"))["id"] == 2
            await calm.send_str('{"osc": "/ravemap/examples/undo", "id": 3}')
            assert (await next_of(calm, "reply"))["id"] == 3
            await calm.close()

    asyncio.run(go())
    assert peer.status()["inputs"] == [0.25, 0.75]


@pytest.mark.alone  # a flood or a stopwatch measured against audio: no other test beside it
def test_a_flood_of_ten_thousand_messages_a_second_leaves_audio_and_state_alone(daemon, peer):
    before = peer.status()
    connections, seconds, per_tick = 4, 2.0, 25  # 4 x 25 every 10 ms: 10,000 messages a second offered
    offered = [0] * connections
    errors: list[str] = []

    async def flood(ws, index: int) -> None:
        """Offer messages at the full rate for `seconds`; a send that blocks (the daemon stopped
        reading this connection) only delays the next ones."""
        start = time.monotonic()
        tick = 0
        while (left := start + seconds - time.monotonic()) > 0:
            for k in range(per_tick):
                n = offered[index]
                x = ((index * 7919 + n) % 1000) / 1000
                text = ["garbage " * (k + 1), '{"osc": "/ravemap/xy", "args": [NaN, 0.1]}',
                        '{"osc": "/ravemap/latent/0", "args": [' + str(x * 100 - 50) + "]}",
                        '{"osc": "/ravemap/nowhere", "args": [1]}',
                        '{"osc": "/ravemap/xy", "args": [' + f"{x}, {1 - x}" + "]}"][n % 5]
                try:
                    await asyncio.wait_for(ws.send_str(text), left)
                except TimeoutError:
                    return
                offered[index] += 1
            tick += 1
            await asyncio.sleep(max(0.0, start + tick * 0.01 - time.monotonic()))

    async def listen(ws) -> None:
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT and json.loads(msg.data)["type"] == "error":
                errors.append(json.loads(msg.data)["text"])

    async def go() -> dict:
        timeout = aiohttp.ClientWSTimeout(ws_close=0.5)
        async with aiohttp.ClientSession() as session:
            sockets = [await connect(daemon, session, timeout=timeout) for _ in range(connections)]
            listeners = [asyncio.ensure_future(listen(ws)) for ws in sockets]
            await asyncio.gather(*(flood(ws, i) for i, ws in enumerate(sockets)))
            during = peer.status()
            for ws in sockets:  # the flooders go away; what they left unread is never carried out
                ws._response.connection.transport.abort()
            for listener in listeners:
                listener.cancel()
            calm = await connect(daemon, session)  # a page opened after the flood is served at once
            await calm.send_str('{"osc": "/ravemap/xy", "args": [0.125, 0.875], "id": 1}')
            await calm.send_str('{"osc": "/ravemap/record/once", "id": 2}')
            assert (await next_of(calm, "reply"))["id"] == 2
            await calm.send_str('{"osc": "/ravemap/examples/undo", "id": 3}')
            assert (await next_of(calm, "reply"))["id"] == 3
            await calm.close()
            return during

    during = asyncio.run(go())
    assert sum(offered) >= 0.5 * connections * per_tick * seconds * 100, f"the flood was offered: {offered}"
    state = peer.status()
    assert during["underruns"] == state["underruns"] == before["underruns"] == 0, \
        "the audio kept playing through the flood"
    assert state["inputs"] == [0.125, 0.875], "the calm page's message was applied"
    assert all(math.isfinite(v) and -3.0 <= v <= 3.0 for v in state["offsets"] + state["targets"])
    assert state["examples"] == before["examples"] and state["mapping"] == before["mapping"]
    slow = [e for e in errors if "too many messages" in e]
    assert slow and len(slow) <= connections * (seconds + 2), "each flooding page is told, about once a second"
    assert len(errors) <= connections * (seconds + 2) * 21, "error replies are rate-limited per page"
    pong = time.perf_counter()
    peer.send("/ravemap/ping", peer.port)
    peer.wait_for("/ravemap/pong")
    assert time.perf_counter() - pong < 1.0
    log = daemon.stderr()
    assert "sends over 200 messages a second" in log


def _raw_http(daemon: Daemon, request: str, source: str = ALLOWED) -> tuple[int, dict[str, str], bytes]:
    """Send `request` byte for byte (no client normalising the path) and read the response."""
    host, port = host_port(daemon)
    with socket.create_connection((host, port), timeout=5, source_address=(source, 0)) as sock:
        sock.sendall(request.encode("latin-1"))
        data = b""
        while b"\r\n\r\n" not in data and (chunk := sock.recv(65536)):
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
        length = int(headers.get("content-length", 0))  # a 101 (WebSocket opened) has no body and stays open
        while len(body) < length and (chunk := sock.recv(65536)):
            body += chunk
    return status, headers, body


def get(daemon: Daemon, path: str, source: str = ALLOWED, host: str | None = None, method: str = "GET",
        extra: str = "") -> tuple[int, dict[str, str], bytes]:
    host = host or "{}:{}".format(*host_port(daemon))
    return _raw_http(daemon, f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n", source)


def test_only_the_packaged_page_is_served(daemon):
    status, headers, body = get(daemon, "/", extra="Accept: text/html\r\n")  # a browser
    assert status == 200 and headers["content-type"].startswith("text/html") and b"XY pad" in body
    assert "default-src 'self'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    for asset, kind in (("/app.js", "text/javascript"), ("/app.css", "text/css")):
        status, headers, body = get(daemon, asset)
        assert status == 200 and headers["content-type"].startswith(kind) and body
        assert b"http://" not in body and b"https://" not in body, f"{asset} names no other site"
    for path in ("/../server/web/server.py", "/%2e%2e/%2e%2e/pyproject.toml", "/static/../../config.yaml",
                 "/server.py", "/__init__.py", "/protocol.py", "//etc/passwd", "/etc/passwd", "/..%2f..%2fREADME.md",
                 "/app.js/", "/.hidden", "/static/", "/index.html%00.js"):
        status, _, body = get(daemon, path)
        assert status in (400, 404), (path, status)
        assert b"import" not in body and b"root:" not in body
    assert get(daemon, "/", method="POST", extra="Content-Length: 0\r\n")[0] == 405
    status, headers, body = get(daemon, "/")  # no Accept: text/html: an OSCQuery client, given the namespace
    assert status == 200 and headers["content-type"].startswith("application/json") and b'"FULL_PATH": "/"' in body


def test_strangers_other_sites_and_other_names_are_refused(daemon):
    status, _, _ = get(daemon, "/", source=STRANGER)
    assert status == 403, "a peer outside osc.allow gets nothing"
    status, _, _ = get(daemon, "/", host="evil.example:8080")
    assert status == 421, "a page of another site whose name points here (DNS rebinding) gets nothing"
    host, port = host_port(daemon)
    upgrade = ("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n")
    for origin in ("", "Origin: http://evil.example\r\n", f"Origin: http://{host}:{port + 1}\r\n", "Origin: null\r\n"):
        request = f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\n{upgrade}{origin}\r\n"
        status, _, _ = _raw_http(daemon, request)
        assert status == 403, origin
    request = f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\n{upgrade}Origin: http://{host}:{port}\r\n\r\n"
    status, _, _ = _raw_http(daemon, request)
    assert status == 101, "the page's own origin may open its WebSocket"


def test_the_ready_lines_give_the_pages_address_and_a_qr_code_of_it(daemon):
    import segno

    url = daemon.web_url
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", url), url
    lines = daemon.startup_lines
    at = next(i for i, ln in enumerate(lines) if "control page on" in ln)
    drawn = [ln.rstrip("\n") for ln in lines[at + 1:] if ln.strip() and "ravemap:" not in ln]
    assert drawn, "--qr drew a code"
    light = {"█": (1, 1), "▀": (1, 0), "▄": (0, 1), " ": (0, 0)}
    rows = []
    for line in drawn:
        top, bottom = zip(*(light[c] for c in line), strict=True)
        rows += [top, bottom]
    code = segno.make(url, error="m")
    modules = [tuple(0 if dark else 1 for dark in row) for row in code.matrix_iter(border=2)]
    assert rows[:len(modules)] == modules, "the QR code in the terminal encodes the page's address"
