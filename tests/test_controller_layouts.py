"""A performer opens a ready layout - TouchOSC, Pure Data or Max - and plays: every address a
layout sends is one the daemon routes, what it listens for is what the daemon sends back, and
the Pd patch, run by real Pure Data, teaches and runs a live daemon and moves its chain.

Each layout carries the performer's chain (the vocabulary's "performer" panel: mix, jitter,
input gain, limit, autopilot and its rate, a scale per latent dim of the default model) and
`/ravemap/limit/off`.

The addresses a layout may send are the vocabulary's (`ravemap.control.vocabulary`), which the
translator routes with the repository's config (checked here too); the
feedback addresses from the README's "Replies and feedback" paragraph (the documented contract)."""

from __future__ import annotations

import json
import re
import runpy
import shutil
import subprocess
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import pytest

from ravemap.config import load_config
from ravemap.control import vocabulary
from ravemap.control.osc import OscTranslator
from tests.conftest import REPO
from tests.osc_peer import Daemon, OscPeer, free_udp_port

EXAMPLES = REPO / "examples"
TOSC = EXAMPLES / "touchosc" / "ravemap.tosc"
PD_PATCH = EXAMPLES / "puredata" / "ravemap.pd"
PD_COMPANION = EXAMPLES / "puredata" / "test_companion.pd"
MAX_PATCHERS = [EXAMPLES / "max" / "ravemap.maxpat", EXAMPLES / "max" / "ravemap-nn.maxpat"]

CONFIG = load_config(REPO / "config.yaml")
N_TARGETS = len(CONFIG.latent.dims)
ROUTED = {e.address for e in vocabulary.entries()}
MODEL_DIMS = 8  # the default model's (and the fixtures') latent size: the layouts' scale faders
CHAIN = [e for e in vocabulary.entries() if e.panel == "performer"]
assert set(OscTranslator(CONFIG.inputs.size, N_TARGETS, CONFIG.osc.routes).addresses()) == ROUTED


def _feedback_addresses() -> set[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    paragraph = text.split("**Replies and feedback**", 1)[1].split("\n\n", 1)[0]
    return set(re.findall(r"`(/ravemap/[a-z/]+)", paragraph))


FEEDBACK = _feedback_addresses()


def is_routed(address: str) -> bool:
    """The daemon routes it: a fixed address, /ravemap/latent/N with N a latent index, or
    /ravemap/scale/N with N a latent dim of the default model."""
    one = re.fullmatch(r"/ravemap/latent/(\d+)", address)
    if one is not None:
        return "/ravemap/latent/N" in ROUTED and int(one.group(1)) < N_TARGETS
    one = re.fullmatch(r"/ravemap/scale/(\d+)", address)
    if one is not None:
        return "/ravemap/scale/N" in ROUTED and int(one.group(1)) < MODEL_DIMS
    return address in ROUTED


def chain_addresses() -> set[str]:
    """Every address of the performer's chain a layout sends: a per-dim entry once per dim."""
    found = {"/ravemap/limit/off"}
    for entry in CHAIN:
        if entry.per_dim:
            found |= {entry.address.rsplit("/", 1)[0] + f"/{d}" for d in range(MODEL_DIMS)}
        else:
            found.add(entry.address)
    return found


def test_the_chain_is_what_the_issue_asks_every_layout_for():
    assert {e.address for e in CHAIN} == {"/ravemap/mix", "/ravemap/jitter", "/ravemap/limit", "/ravemap/input/gain",
                                          "/ravemap/autopilot", "/ravemap/autopilot/rate", "/ravemap/scale/N"}
    assert all(is_routed(a) for a in chain_addresses())


def test_the_feedback_contract_is_read_from_the_readme():
    assert {"/ravemap/latent", "/ravemap/record", "/ravemap/run", "/ravemap/examples",
            "/ravemap/train/progress", "/ravemap/train/done", "/ravemap/error"} <= FEEDBACK


# -- TouchOSC ---------------------------------------------------------------------------------
def _tosc_root() -> ET.Element:
    return ET.fromstring(zlib.decompress(TOSC.read_bytes()).decode("utf-8"))


def _properties(node: ET.Element) -> dict[str, ET.Element]:
    return {p.findtext("key"): p.find("value") for p in node.find("properties")}


def _name(node: ET.Element) -> str:
    return _properties(node)["name"].text or ""


def _osc_messages(node: ET.Element) -> list[dict]:
    found = []
    for osc in node.findall("messages/osc"):
        path = osc.findall("path/partial")
        assert all(p.findtext("type") == "CONSTANT" for p in path), "paths are fixed text, not built from names"
        found.append({
            "address": "".join(p.findtext("value") for p in path),
            "send": osc.findtext("send") == "1",
            "receive": osc.findtext("receive") == "1",
            "triggers": [t.findtext("var") for t in osc.findall("triggers/trigger")],
            "arguments": [(a.findtext("type"), a.findtext("value"), a.findtext("conversion"),
                           float(a.findtext("scaleMin")), float(a.findtext("scaleMax")))
                          for a in osc.findall("arguments/partial")],
        })
    return found


def _controls() -> dict[str, tuple[str, ET.Element, list[dict]]]:
    return {_name(n): (n.get("type"), n, _osc_messages(n)) for n in _tosc_root().iter("node")}


def _root_script() -> str:
    return _properties(_tosc_root().find("node"))["script"].text or ""


def test_the_touchosc_layout_is_a_zlib_compressed_lexml_document():
    root = _tosc_root()
    assert root.tag == "lexml" and root.get("version")
    [top] = list(root)
    assert top.tag == "node" and top.get("type") == "GROUP"
    ids = [n.get("ID") for n in root.iter("node")]
    assert len(ids) == len(set(ids)), "every node has its own ID"


def test_the_touchosc_layout_is_what_make_layout_py_writes():
    document = runpy.run_path(str(EXAMPLES / "touchosc" / "make_layout.py"), run_name="make_layout")["document"]
    assert zlib.decompress(TOSC.read_bytes()).decode("utf-8") == document(), \
        "ravemap.tosc is stale: run python examples/touchosc/make_layout.py"


def test_the_touchosc_layout_only_sends_addresses_the_daemon_routes():
    sent = [m["address"] for _, _, messages in _controls().values() for m in messages if m["send"]]
    sent += re.findall(r"sendOSC\('([^']+)'", _root_script())
    assert sent
    assert [a for a in sent if not is_routed(a)] == []


def test_the_touchosc_layout_sends_every_chain_control_across_its_range():
    controls = _controls()
    sent = {m["address"]: m for _, _, messages in controls.values() for m in messages if m["send"]}
    assert chain_addresses() <= set(sent)
    for entry in CHAIN:
        [span] = entry.range
        addresses = [a for a in chain_addresses() if a.startswith(entry.address.rstrip("N"))] if entry.per_dim \
            else [entry.address]
        for address in addresses:
            assert sent[address]["arguments"] == [("VALUE", "x", "FLOAT", *span)], address
    kind, node, [off] = controls["limit_off"]
    assert kind == "BUTTON" and off["arguments"] == [] and _properties(node)["buttonType"].text == "0"


def test_the_touchosc_layout_listens_only_for_what_the_daemon_sends_or_routes():
    received = [m["address"] for _, _, messages in _controls().values() for m in messages if m["receive"]]
    scripted = re.findall(r"path == '([^']+)'", _root_script())
    assert set(scripted) >= {"/ravemap/latent", "/ravemap/train/progress", "/ravemap/error"}
    assert [a for a in received + scripted if a not in FEEDBACK and not is_routed(a)] == []


def test_the_touchosc_xy_pad_sends_x_and_y_from_0_to_1():
    kind, _, [message] = _controls()["xy"]
    assert kind == "XY" and message["address"] == "/ravemap/xy" and message["send"]
    assert message["arguments"] == [("VALUE", "x", "FLOAT", 0, 1), ("VALUE", "y", "FLOAT", 0, 1)]
    assert set(message["triggers"]) == {"x", "y"}


def test_the_touchosc_latent_faders_span_the_latent_range_and_follow_the_feedback():
    low, high = CONFIG.latent.range
    controls = _controls()
    for dim in range(N_TARGETS):
        kind, _, [message] = controls[f"latent{dim}"]
        assert kind == "FADER" and message["address"] == f"/ravemap/latent/{dim}"
        assert message["send"] and message["receive"]
        assert message["arguments"] == [("VALUE", "x", "FLOAT", low, high)]
    script = _root_script()
    assert f"local LOW, HIGH = {low}, {high}" in script
    assert "findByName('latent' .. i, true)" in script and "fader.values.x =" in script


def test_the_touchosc_record_and_run_toggles_follow_the_daemon():
    controls = _controls()
    for name in ("record", "run"):
        kind, node, [message] = controls[name]
        assert kind == "BUTTON" and _properties(node)["buttonType"].text != "0", f"{name} is a toggle"
        assert message["address"] == f"/ravemap/{name}" and message["send"] and message["receive"]
        assert message["arguments"] == [("VALUE", "x", "INTEGER", 0, 1)]


def test_the_touchosc_train_clear_and_sync_buttons_send_once_per_press_without_arguments():
    controls = _controls()
    for name, address in (("train", "/ravemap/train"), ("clear", "/ravemap/examples/clear"),
                          ("sync", "/ravemap/status")):
        kind, node, [message] = controls[name]
        assert kind == "BUTTON" and _properties(node)["buttonType"].text == "0", f"{name} is momentary"
        # no argument: a float 1.0 would be a port for /ravemap/status, and an int 1 one epoch for /ravemap/train
        assert message["address"] == address and message["send"] and message["arguments"] == []
        assert node.find("messages/osc/triggers/trigger/condition").text == "RISE"


def test_the_touchosc_layout_shows_the_examples_count_and_the_training_progress():
    controls = _controls()
    kind, _, [examples] = controls["examples"]
    assert kind == "LABEL" and examples["address"] == "/ravemap/examples" and examples["receive"]
    assert not examples["send"]
    kind, _, [progress] = controls["progress"]
    assert progress["address"] == "/ravemap/train/progress" and progress["receive"] and not progress["send"]
    assert progress["arguments"][0][:2] == ("VALUE", "x")
    assert "progress_text" in controls and "'/ravemap/train/done'" in _root_script()


# -- Pure Data --------------------------------------------------------------------------------
def pd_records(path: Path) -> list[list[str]]:
    """The patch's records, split at unescaped semicolons, as lists of atoms."""
    text = path.read_text(encoding="utf-8")
    assert text.endswith(";\n"), "the last record ends in ';'"
    records, atoms, atom, escaped = [], [], "", False
    for char in text:
        if escaped:
            atom += "\\" + char
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ";":
            if atom:
                atoms.append(atom)
            records.append(atoms)
            atoms, atom = [], ""
        elif char.isspace():
            if atom:
                atoms.append(atom)
            atom = ""
        else:
            atom += char
    assert not atoms and not atom.strip(), "text after the last ';'"
    return records


def pd_canvases(path: Path) -> list[list[list[str]]]:
    """Each canvas's objects in order (a subpatch is an object of its parent); checks the connections."""
    stack: list[list[list[str]]] = []
    connects: list[list[tuple[int, int]]] = []
    done: list[list[list[str]]] = []
    for record in pd_records(path):
        head = record[:2]
        if head == ["#N", "canvas"]:
            stack.append([])
            connects.append([])
        elif head == ["#X", "connect"]:
            a, _, b, _ = (int(v) for v in record[2:6])
            connects[-1].append((a, b))
        elif head == ["#X", "restore"]:
            objects, links = stack.pop(), connects.pop()
            assert all(a < len(objects) and b < len(objects) for a, b in links), f"bad connect in {record}"
            done.append(objects)
            stack[-1].append(record)
        elif head[0] == "#X" and head[1] in ("obj", "msg", "text", "floatatom", "symbolatom", "listbox"):
            stack[-1].append(record)
        else:
            assert head[0] in ("#X", "#A"), f"not a Pd record: {' '.join(record)[:80]}"
    [objects], [links] = stack, connects
    assert all(a < len(objects) and b < len(objects) for a, b in links)
    return [objects, *done]


def _pd_objects(path: Path, name: str) -> list[list[str]]:
    return [r[4:] for canvas in pd_canvases(path) for r in canvas if r[1] == "obj" and r[4] == name]


@pytest.mark.parametrize("path", [PD_PATCH, PD_COMPANION], ids=lambda p: p.name)
def test_the_pd_patches_parse_line_by_line_as_pd_records(path):
    canvases = pd_canvases(path)
    assert pd_records(path)[0][:2] == ["#N", "canvas"]
    assert sum(len(c) for c in canvases) > 10


def test_the_pd_patch_only_sends_addresses_the_daemon_routes():
    addresses = []
    for atoms in _pd_objects(PD_PATCH, "oscformat"):
        args = atoms[1:]
        if args[:1] == ["-f"]:
            args = args[2:]
        addresses.append("/" + "/".join(args))
    assert {"/ravemap/xy", "/ravemap/record", "/ravemap/run", "/ravemap/train", "/ravemap/examples/clear",
            *(f"/ravemap/latent/{d}" for d in range(N_TARGETS))} <= set(addresses)
    assert [a for a in addresses if not is_routed(a)] == []
    assert chain_addresses() <= set(addresses), "the performer's chain"
    assert _pd_objects(PD_PATCH, "netsend") == [["netsend", "-u", "-b"]]
    assert _pd_objects(PD_PATCH, "netreceive") == [["netreceive", "-u", "-b"]]
    messages = [" ".join(r[4:]) for c in pd_canvases(PD_PATCH) for r in c if r[1] == "msg"]
    assert "127.0.0.1 8000" in messages and "9000" in messages, "the defaults: send to 8000, listen on 9000"


def test_the_pd_patch_routes_only_feedback_the_daemon_sends():
    components = {part for address in FEEDBACK for part in address.strip("/").split("/")}
    routes = _pd_objects(PD_PATCH, "route")
    assert ["route", "ravemap"] in routes
    assert [a for r in routes for a in r[1:] if a not in components] == []


@pytest.fixture
def pd() -> str:
    found = shutil.which("pd")
    if found is None:
        pytest.fail("Pure Data is not installed: apt-get install puredata-core (./run-tests does this)")
    return found


def test_pure_data_plays_the_patch_against_a_live_daemon(tmp_path, tiny_model, loop_file, pd):
    """ravemap.pd in real, headless Pd, played by test_companion.pd: four examples, train, the
    performer's mix and jitter, run."""
    feedback_port = free_udp_port()
    daemon = Daemon(tmp_path, tiny_model, loop_file, feedback_port)
    peer = OscPeer(daemon.port)
    try:
        command = [pd, "-nogui", "-nosound", "-noprefs", "-stderr",
                   "-open", str(PD_PATCH), "-open", str(PD_COMPANION),
                   "-send", f"ravemap-connect 127.0.0.1 {daemon.port}",
                   "-send", f"ravemap-listen {feedback_port} 127.0.0.1"]
        try:
            done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=45)
        except subprocess.TimeoutExpired as err:  # run() has killed Pd
            pytest.fail(f"Pd did not quit by itself: {err.stderr}")
        log = done.stdout + done.stderr
        assert done.returncode == 0, log
        assert not [line for line in log.splitlines() if line.startswith("error")], log
        assert "companion timed out" not in log, log
        # Pd sent to the daemon's free port and listened on the test's, never the fixed defaults
        said = lambda prefix: re.findall(rf"^ravemap: {prefix} (.*)$", log, re.MULTILINE)  # noqa: E731
        assert said("sending OSC to") == [f"127.0.0.1 {daemon.port}"], log
        assert said("listening for feedback on") == [f"{feedback_port} 127.0.0.1"], log

        state = peer.status()
        assert state["examples"] >= 4 and state["trained"] and state["running"] and not state["recording"]
        assert state["targets"] == pytest.approx([1.0, 0.0, 2.0, 1.5], abs=0.01), "the last slider positions"
        assert state["inputs"] == pytest.approx([0.9, 0.9], abs=0.01), "the last XY position"
        # the feedback reached the patch's GUI: its examples box and its run toggle
        shown = [int(float(n)) for n in re.findall(r"^companion-examples: (\S+)$", log, re.MULTILINE)]
        assert shown and shown[-1] == state["examples"], log
        assert "companion-run: set 1" in log, log
        # the performer's section moved the daemon's chain
        assert state["mix"] == pytest.approx(0.5, abs=0.01) and state["jitter"] == pytest.approx(0.25, abs=0.01)
    finally:
        peer.close()
        daemon.stop()


# -- Max --------------------------------------------------------------------------------------
def _max_boxes(path: Path) -> list[dict]:
    return [b["box"] for b in json.loads(path.read_text(encoding="utf-8"))["patcher"]["boxes"]]


def _max_text(path: Path, maxclass: str) -> list[str]:
    return [b.get("text", "") for b in _max_boxes(path) if b["maxclass"] == maxclass]


@pytest.mark.parametrize("path", MAX_PATCHERS, ids=lambda p: p.name)
def test_the_max_patchers_are_patcher_json_with_sound_connections(path):
    patcher = json.loads(path.read_text(encoding="utf-8"))["patcher"]
    boxes = {b["box"]["id"]: b["box"] for b in patcher["boxes"]}
    assert len(boxes) == len(patcher["boxes"])
    for line in patcher["lines"]:
        (source, outlet), (destination, inlet) = line["patchline"]["source"], line["patchline"]["destination"]
        assert outlet < boxes[source]["numoutlets"] and inlet < boxes[destination]["numinlets"], line


@pytest.mark.parametrize("path", MAX_PATCHERS, ids=lambda p: p.name)
def test_the_max_patchers_only_send_addresses_the_daemon_routes(path):
    sent = []
    for text in _max_text(path, "message"):
        for message in re.split(r"[,;]", text):
            if message.strip().startswith("/"):
                sent.append(message.split()[0])
    sent += [t.split()[1] for t in _max_text(path, "newobj") if t.startswith("prepend /")]
    assert sent and [a for a in sent if not is_routed(a)] == []
    objects = _max_text(path, "newobj")
    assert "udpsend 127.0.0.1 8000" in objects and "udpreceive 9000" in objects


@pytest.mark.parametrize("path", MAX_PATCHERS, ids=lambda p: p.name)
def test_the_max_patchers_route_only_feedback_the_daemon_sends(path):
    routes = [t.split()[1:] for t in _max_text(path, "newobj") if t.startswith("route ")]
    assert routes and [a for r in routes for a in r if a not in FEEDBACK] == []


def test_the_max_controller_has_every_control_a_performer_needs():
    boxes = _max_boxes(MAX_PATCHERS[0])
    objects = _max_text(MAX_PATCHERS[0], "newobj")
    assert {"prepend /ravemap/xy", "prepend /ravemap/record", "prepend /ravemap/run",
            *(f"prepend /ravemap/latent/{d}" for d in range(N_TARGETS))} <= set(objects)
    assert {"/ravemap/train", "/ravemap/examples/clear"} <= set(_max_text(MAX_PATCHERS[0], "message"))
    sliders = [b for b in boxes if b["maxclass"] == "slider"]
    low, high = CONFIG.latent.range
    assert sum(b["min"] == low and b["size"] == high - low and b["floatoutput"] for b in sliders) == N_TARGETS
    assert sum(b["maxclass"] == "toggle" for b in boxes) == 2


def test_the_max_controller_sends_every_chain_control_across_its_range():
    """The performer's section: a float slider over the vocabulary's range into each chain address.
    (ravemap-nn.maxpat is mapping-only, with no controls of its own.)"""
    path = MAX_PATCHERS[0]
    patcher = json.loads(path.read_text(encoding="utf-8"))["patcher"]
    boxes = {b["box"]["id"]: b["box"] for b in patcher["boxes"]}
    sources: dict[str, list[str]] = {}
    for line in patcher["lines"]:
        sources.setdefault(line["patchline"]["destination"][0], []).append(line["patchline"]["source"][0])
    [udpsend] = [i for i, b in boxes.items() if b.get("text") == "udpsend 127.0.0.1 8000"]
    into_udpsend = {boxes[i].get("text", "") for i in sources[udpsend]}
    sent = {t.split()[1] for t in into_udpsend if t.startswith("prepend /")} | \
        {t for t in into_udpsend if t.startswith("/")}
    assert chain_addresses() <= sent
    ranges = {e.address.rstrip("N"): e.range[0] for e in CHAIN}
    for i, box in boxes.items():
        text = box.get("text", "")
        if not text.startswith("prepend /ravemap/") or text.split()[1] not in chain_addresses():
            continue
        address = text.split()[1]
        low, high = ranges.get(address) or ranges[address.rsplit("/", 1)[0] + "/"]
        [slider] = [boxes[s] for s in sources[i]]
        assert slider["maxclass"] == "slider" and slider["floatoutput"], address
        assert slider["min"] == low and slider["min"] + slider["size"] == pytest.approx(high), address


def test_the_max_nn_patch_decodes_the_latent_feedback_into_sound():
    path = MAX_PATCHERS[1]
    patcher = json.loads(path.read_text(encoding="utf-8"))["patcher"]
    boxes = {b["box"]["id"]: b["box"] for b in patcher["boxes"]}
    after: dict[str, set[str]] = {}
    for line in patcher["lines"]:
        after.setdefault(line["patchline"]["source"][0], set()).add(line["patchline"]["destination"][0])

    def reachable(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in after.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    [receive] = [i for i, b in boxes.items() if b.get("text") == "udpreceive 9000"]
    downstream = {boxes[i].get("text", boxes[i]["maxclass"]) for i in reachable(receive)}
    assert "route /ravemap/latent" in downstream and "unpack f f f f" in downstream
    assert any(t.startswith("nn~ ") and t.split()[2] == "decode" for t in downstream)
    assert "ezdac~" in downstream, "the decoded signal reaches the sound card"
    [nn] = [i for i, b in boxes.items() if b["maxclass"] == "newobj" and b["text"].startswith("nn~ ")]
    inlets = {line["patchline"]["destination"][1] for line in patcher["lines"]
              if line["patchline"]["destination"][0] == nn}
    assert inlets == set(range(N_TARGETS)), "one signal per latent dim"
    assert any("ravemap serve --audio none" in t for t in _max_text(path, "comment"))
