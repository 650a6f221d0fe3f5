"""ossia score, Chataigne or VDMX find ravemap and read its address space (OSCQuery) off a real daemon.

A third-party OSCQuery client from PyPI (`python-oscquery`: its zeroconf listener and its HTTP
client) discovers ravemap advertised by ravemap's own `Advertiser` on the loopback only (zeroconf
bound to 127.0.0.1: no mDNS leaves the machine), reads the host info and nodes, and sees a value
change after another controller's OSC message. The namespace validates against a JSON schema of
the proposal's node structure. A WebSocket client (`websockets`, another third-party library)
LISTENs and IGNOREs, pushes OSC, and is told PATH_CHANGED. Hostile HTTP and WebSocket input is
refused and counted while the daemon plays on.
"""

from __future__ import annotations

import asyncio
import json
import re
import time

import pytest

from tests.osc_peer import Daemon, OscPeer, build

requests = pytest.importorskip("requests")
websockets = pytest.importorskip("websockets")
jsonschema = pytest.importorskip("jsonschema")
oscquery_client = pytest.importorskip("pythonoscquery.osc_query_client")
oscquery_browser = pytest.importorskip("pythonoscquery.osc_query_browser")
from pythonosc.osc_message import OscMessage  # noqa: E402

# The proposal's node structure (github.com/Vidvox/OSCQueryProposal), as JSON schema.
RANGE = {"anyOf": [{"type": "null"}, {"type": "object", "properties": {
    "MIN": {"type": "number"}, "MAX": {"type": "number"}, "VALS": {"type": "array"}},
    "additionalProperties": False}]}
NODE_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$ref": "#/$defs/node",
    "$defs": {"node": {
        "type": "object",
        "required": ["FULL_PATH"],
        "properties": {
            "FULL_PATH": {"type": "string", "pattern": "^/([^ #*,?\\[\\]{}/]+(/[^ #*,?\\[\\]{}/]+)*)?$"},
            "CONTENTS": {"type": "object", "additionalProperties": {"$ref": "#/$defs/node"}},
            "TYPE": {"type": "string", "pattern": "^[ifsbhdtTFNIcrm\\[\\]]+$"},
            "ACCESS": {"enum": [0, 1, 2, 3]},
            "VALUE": {"type": "array"},
            "RANGE": {"type": "array", "items": RANGE},
            "DESCRIPTION": {"type": "string"},
            "UNIT": {"type": "array", "items": {"type": ["string", "null"]}},
            "CLIPMODE": {"type": "array", "items": {"enum": ["none", "low", "high", "both"]}},
            "TAGS": {"type": "array", "items": {"type": "string"}},
            "CRITICAL": {"type": "boolean"},
        },
        "additionalProperties": False,
    }},
}
HOST_INFO_SCHEMA = {
    "type": "object", "required": ["NAME", "OSC_PORT", "OSC_TRANSPORT", "EXTENSIONS"],
    "properties": {"NAME": {"type": "string"}, "OSC_IP": {"type": "string"}, "OSC_PORT": {"type": "integer"},
                   "OSC_TRANSPORT": {"enum": ["UDP", "TCP"]},
                   "EXTENSIONS": {"type": "object", "additionalProperties": {"type": "boolean"}}},
}


@pytest.fixture(scope="module")
def daemon(tmp_path_factory, tiny_model, loop_file, peer):
    tmp = tmp_path_factory.mktemp("oscquery")
    (tmp / "models").mkdir()
    d = Daemon(tmp, tiny_model, loop_file, peer.port,
               config={"osc": {"service_name": "ravemap-oscquery-test"}, "paths": {"models_dir": str(tmp / "models")}})
    peer.daemon = ("127.0.0.1", d.port)
    yield d
    assert d.stop() == 0, d.stderr()[-3000:]
    counted = re.search(r"OSCQuery: (\d+) requests, (\d+) clients, (\d+) messages; refused: (\d+) not found, "
                        r"(\d+) bad, (\d+) over the rate, (\d+) malformed, (\d+) OSC messages", d.stderr())
    assert counted is not None, d.stderr()[-2000:]
    if HOSTILE_RAN:  # the hostile test's refusals were each counted
        assert all(int(n) > 0 for n in counted.groups()), counted.group(0)


HOSTILE_RAN: list[bool] = []


def base(daemon: Daemon) -> str:
    return daemon.web_url.rstrip("/")


def ws_url(daemon: Daemon) -> str:
    return "ws" + base(daemon)[4:] + "/"


def walk(node: dict):
    yield node
    for child in node.get("CONTENTS", {}).values():
        yield from walk(child)


@pytest.fixture(scope="module")
def discovered(daemon):
    """ravemap's services found by python-oscquery's listener, with zeroconf on the loopback only."""
    from zeroconf import ServiceBrowser, Zeroconf

    from ravemap.control.advertise import Advertiser

    web_port = int(base(daemon).rsplit(":", 1)[1])
    advertiser = Advertiser("ravemap-oscquery-test", daemon.port, "127.0.0.1", web_port=web_port,
                            addresses=["127.0.0.1"], interfaces=["127.0.0.1"])
    advertiser._register()  # in this thread: the test waits for it anyway
    zc = Zeroconf(interfaces=["127.0.0.1"])
    listener = oscquery_browser.OSCQueryListener()
    browser = ServiceBrowser(zc, ["_oscjson._tcp.local.", "_osc._udp.local."], listener)
    deadline = time.monotonic() + 10
    while not (listener.oscjson_services and listener.osc_services) and time.monotonic() < deadline:
        time.sleep(0.05)
    yield listener
    browser.cancel()
    zc.close()
    advertiser.close()


def test_a_third_party_client_discovers_ravemap_and_reads_it(daemon, discovered, peer):
    names = list(discovered.oscjson_services)
    assert names == ["ravemap-oscquery-test._oscjson._tcp.local."], names
    assert list(discovered.osc_services) == ["ravemap-oscquery-test._osc._udp.local."], "the same service name"
    info = discovered.oscjson_services[names[0]]
    client = oscquery_client.OSCQueryClient(info)
    host = client.get_host_info()
    assert (host.name, host.osc_ip, host.osc_port, host.osc_transport) == (
        "ravemap-oscquery-test", "127.0.0.1", daemon.port, "UDP")
    assert {"ACCESS", "VALUE", "RANGE", "DESCRIPTION", "UNIT", "CLIPMODE", "LISTEN", "PATH_CHANGED"} <= {
        k for k, on in host.extensions.items() if on}
    assert discovered.osc_services[list(discovered.osc_services)[0]].port == daemon.port

    xy = client.query_node("/ravemap/xy")
    assert xy is not None and xy.full_path == "/ravemap/xy" and int(xy.access) == 3
    raw = client.last_json
    assert raw["TYPE"] == "ff" and raw["RANGE"] == [{"MIN": 0.0, "MAX": 1.0}] * 2

    peer.send("/ravemap/latent/0", 0.0)
    peer.status()
    latent = client.query_node("/ravemap/latent/0")
    assert latent.value == [0.0] and client.last_json["TYPE"] == "f"
    assert client.last_json["RANGE"] == [{"MIN": -3.0, "MAX": 3.0}]
    other = OscPeer(daemon.port)  # another controller moves it
    try:
        other.send("/ravemap/latent/0", 1.25)
        other.send("/ravemap/xy", 0.25, 0.75)
    finally:
        other.close()
    deadline = time.monotonic() + 5
    while client.query_node("/ravemap/latent/0").value != [1.25]:
        assert time.monotonic() < deadline, client.last_json
        time.sleep(0.02)
    assert client.query_node("/ravemap/xy").value == [0.25, 0.75]
    assert client.query_node("/ravemap/nothing") is None, "an unknown path is 404"


def test_the_namespace_follows_the_proposals_node_structure(daemon):
    r = requests.get(base(daemon) + "/")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json")
    root = r.json()
    jsonschema.validate(root, NODE_SCHEMA)
    nodes = {n["FULL_PATH"]: n for n in walk(root)}
    from ravemap.control import vocabulary

    declared = {e.address for e in vocabulary.entries() if not e.per_dim}
    assert declared <= set(nodes), declared - set(nodes)
    assert {f"/ravemap/latent/{n}" for n in range(4)} <= set(nodes) and "/ravemap/latent/4" not in nodes
    gain = nodes["/ravemap/gain"]
    assert (gain["TYPE"], gain["UNIT"], gain["ACCESS"]) == ("f", ["dB"], 3)
    assert gain["RANGE"] == [{"MIN": -120.0, "MAX": 24.0}]
    assert nodes["/ravemap/record/once"]["ACCESS"] == 0 and "VALUE" not in nodes["/ravemap/record/once"]
    assert nodes["/ravemap/xy"]["CLIPMODE"] == ["both", "both"]
    assert isinstance(nodes["/ravemap/model"]["VALUE"][0], str)
    jsonschema.validate(requests.get(base(daemon) + "/?HOST_INFO").json(), HOST_INFO_SCHEMA)
    one = requests.get(base(daemon) + "/ravemap/xy").json()
    jsonschema.validate(one, NODE_SCHEMA)
    assert one["FULL_PATH"] == "/ravemap/xy" and "CONTENTS" not in one
    assert requests.get(base(daemon) + "/ravemap/xy?TYPE").json() == {"TYPE": "ff"}
    assert requests.get(base(daemon) + "/ravemap/xy?RANGE").json() == {"RANGE": [{"MIN": 0.0, "MAX": 1.0}] * 2}
    assert list(requests.get(base(daemon) + "/ravemap/xy?VALUE").json()) == ["VALUE"]
    assert requests.get(base(daemon) + "/ravemap/train?VALUE").status_code == 204, "write-only: no value"


def test_a_browser_gets_the_page_and_a_query_client_the_namespace(daemon):
    page = requests.get(base(daemon) + "/", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert page.headers["Content-Type"].startswith("text/html") and "<html" in page.text
    assert requests.get(base(daemon) + "/app.js").headers["Content-Type"].startswith("text/javascript")
    assert requests.get(base(daemon) + "/", headers={"Accept": "*/*"}).json()["FULL_PATH"] == "/"
    assert requests.get(base(daemon) + "/?VALUE", headers={"Accept": "text/html"}).status_code == 204


async def _next_binary(ws, timeout: float) -> tuple[OscMessage, float]:
    while True:
        data = await asyncio.wait_for(ws.recv(), timeout)
        if isinstance(data, bytes):
            return OscMessage(data), time.perf_counter()


def test_listen_streams_values_as_osc_and_ignore_stops_them(daemon, peer):
    other = OscPeer(daemon.port)
    latencies: list[float] = []

    async def scenario():
        async with websockets.connect(ws_url(daemon)) as ws:  # no Origin: not a browser
            await ws.send(json.dumps({"COMMAND": "LISTEN", "DATA": "/ravemap/latent/0"}))
            await asyncio.sleep(0.3)
            for value in (0.5, -1.5, 2.0, -0.25, 1.0):
                sent = time.perf_counter()
                other.send("/ravemap/latent/0", value)
                while True:
                    message, at = await _next_binary(ws, 5.0)  # generous: the figure is reported, not asserted
                    assert message.address == "/ravemap/latent/0"
                    if message.params == [value]:
                        latencies.append(at - sent)
                        break
            await ws.send(json.dumps({"COMMAND": "IGNORE", "DATA": "/ravemap/latent/0"}))
            await asyncio.sleep(0.3)
            other.send("/ravemap/latent/0", -2.0)
            with pytest.raises(TimeoutError):
                await _next_binary(ws, 1.0)

    try:
        asyncio.run(scenario())
    finally:
        other.close()
    print(f"\nLISTEN latency, OSC in -> WebSocket binary OSC out: {[round(x * 1000, 1) for x in latencies]} ms")
    assert len(latencies) == 5


def test_osc_pushed_over_the_websocket_is_applied_like_a_datagram(daemon, peer):
    async def scenario():
        async with websockets.connect(ws_url(daemon)) as ws:
            await ws.send(build("/ravemap/latent/1", -2.5))
            await ws.send(build("/ravemap/xy", 0.125, 0.875))
            await asyncio.sleep(0.3)

    asyncio.run(scenario())
    state = peer.status()
    assert state["targets"][1] == -2.5 and state["inputs"][:2] == [0.125, 0.875]


def test_a_browser_origin_is_checked_on_the_oscquery_websocket(daemon):
    async def scenario():
        with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
            async with websockets.connect(ws_url(daemon), origin="http://evil.example"):
                pass
        assert refused.value.response.status_code == 403
        async with websockets.connect(ws_url(daemon), origin=base(daemon)):
            pass

    asyncio.run(scenario())


def test_a_changed_shape_sends_path_changed_and_the_namespace_follows(daemon, peer, tmp_path):
    """ravemap's address space changes when the session's shape does. `/ravemap/scale/N` exists for each
    latent dim of the model playing: a swap (by name, from `paths.models_dir`) to a model with another
    latent size changes it. Every RAVE fixture and the default model have 8 latent dims, so the model
    swapped to is a stand-in with 16 (tests/standins.py: the test is about the address space, not the
    sound). The number of `/ravemap/latent/N` addresses is `latent.dims`', which a swap leaves alone. A new
    mapping that takes its input size from Wekinator's first `/wek/inputs` changes `/wek/inputs`' TYPE."""
    from tests.standins import StandInRave, save

    paths = {n["FULL_PATH"] for n in walk(requests.get(base(daemon)).json())}
    assert {f"/ravemap/scale/{n}" for n in range(8)} <= paths and "/ravemap/scale/8" not in paths
    assert requests.get(base(daemon) + "/ravemap/scale?TYPE").json() == {"TYPE": "f" * 8}
    save(StandInRave(sr=44100, channels=1, latent=16, ratio=256), daemon.config_path.parent / "models" / "wide.ts")
    wanted = {"/ravemap/scale", "/wek/inputs"}

    async def scenario():
        async with websockets.connect(ws_url(daemon)) as ws:
            peer.send("/ravemap/model", "wide")
            assert peer.wait_for("/ravemap/model", timeout=60) == ["wide.ts"], "the swap by name was refused"
            peer.send("/ravemap/mapping/new", "sized")
            await asyncio.sleep(0.5)
            peer.send("/wek/inputs", 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
            deadline = time.monotonic() + 10
            seen = []
            while time.monotonic() < deadline:
                data = await asyncio.wait_for(ws.recv(), deadline - time.monotonic())
                if isinstance(data, str):
                    seen.append(json.loads(data))
                    if wanted <= {m.get("DATA") for m in seen} or {"COMMAND": "PATH_CHANGED", "DATA": "/"} in seen:
                        return seen
            raise AssertionError(f"no PATH_CHANGED for {wanted}: {seen}")

    seen = asyncio.run(scenario())
    assert all(m["COMMAND"] == "PATH_CHANGED" for m in seen)
    node = requests.get(base(daemon) + "/wek/inputs").json()
    assert node["TYPE"] == "ffffff" and node["VALUE"] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    paths = {n["FULL_PATH"] for n in walk(requests.get(base(daemon)).json())}
    assert {f"/ravemap/latent/{n}" for n in range(4)} <= paths, "the model swap left the latent addresses as they were"
    assert {f"/ravemap/scale/{n}" for n in range(16)} <= paths and "/ravemap/scale/16" not in paths, \
        "one scale address per latent dim of the model now playing"
    scale = requests.get(base(daemon) + "/ravemap/scale").json()
    assert scale["TYPE"] == "f" * 16 and scale["VALUE"] == [1.0] * 16
    peer.send("/ravemap/scale/12", 2.5)
    deadline = time.monotonic() + 5
    while requests.get(base(daemon) + "/ravemap/scale/12?VALUE").json() != {"VALUE": [2.5]}:
        assert time.monotonic() < deadline, "OSCQuery's VALUE never showed the new scale"
        time.sleep(0.05)


@pytest.mark.alone  # a flood or a stopwatch measured against audio: no other test beside it
def test_hostile_http_and_websocket_input_is_refused_and_counted_and_audio_plays_on(daemon, peer):
    before = peer.status()["underruns"]
    session = requests.Session()
    assert session.get(base(daemon) + "/no/such/path").status_code == 404
    assert session.get(base(daemon) + "/ravemap/xy?" + "A" * 5000).status_code == 400
    assert session.get(base(daemon) + "/ravemap/xy?NOPE").status_code == 400
    assert session.get(base(daemon) + "/" + "x/" * 3000).status_code in (400, 414)
    statuses = [session.get(base(daemon) + "/ravemap/xy?VALUE").status_code for _ in range(400)]
    assert 429 in statuses, "a flood of requests is slowed to the rate"

    async def scenario():
        async with websockets.connect(ws_url(daemon), max_size=None) as ws:
            for junk in ("not json", "[1, 2]", '{"COMMAND": "LISTEN"}', '{"COMMAND": "EXPLODE", "DATA": "/"}',
                         '{"COMMAND": "LISTEN", "DATA": "/no/such"}', "x" * 10000):
                await ws.send(junk)
            for junk in (b"\x00\x01garbage", b"#bundle\x00" + b"\xff" * 20, build("/ravemap/nothing", 1.0),
                         build("/ravemap/latent/0", "text"), build("/ravemap/latent/99", 1.0)):
                await ws.send(junk)
            for _ in range(3000):  # a flood: read no faster than the rate
                await ws.send(build("/ravemap/latent/2", 0.5))
            await ws.send(json.dumps({"COMMAND": "LISTEN", "DATA": "/ravemap/latent/3"}))
            await asyncio.sleep(0.2)
        async with websockets.connect(ws_url(daemon), max_size=None) as ws:
            with pytest.raises(websockets.exceptions.ConnectionClosed):
                await ws.send(b"/" + b"\x00" * 200_000)  # over the frame limit: that connection is closed
                await asyncio.wait_for(ws.recv(), 5)

    asyncio.run(scenario())
    time.sleep(1.0)
    state = peer.status()
    assert state["underruns"] == before, "audio kept playing"
    assert session.get(base(daemon) + "/ravemap/xy").status_code == 200, "still serving"
    log = daemon.stderr()
    assert "refused an OSCQuery request" in log and "refused an OSCQuery message" in log
    assert "refused OSC from OSCQuery client" in log
    HOSTILE_RAN.append(True)
