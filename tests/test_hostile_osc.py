"""Whatever arrives on the control port, ravemap keeps playing and keeps its state.

Garbage, truncated and malformed packets, bundles nested deep or with lying sizes, wrong
argument counts and types, NaN and infinity, unknown addresses, floods, strangers outside
`osc.allow`, and names that try to leave their folder. Each bad packet or message is answered
with one `/ravemap/error` (where the sender can be answered) and a rate-limited log line.

Two layers: generated packets by the thousand straight into `OscServer.handle_datagram` with a
real `Inbox` (fast), then a few hundred over real UDP on loopback against `ravemap serve`.
Only 127.0.0.x addresses are used.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import socket
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pythonosc.osc_packet import OscPacket

from ravemap.config import validate
from ravemap.control.events import Command, Event, Inbox, SetInputs, SetTarget, SetTargets
from ravemap.control.osc import MAX_ARGS, MAX_BUNDLE_DEPTH, MAX_PACKET, OscServer
from tests.conftest import examples
from tests.osc_peer import Daemon, OscPeer, build

N_INPUTS = 2
N_TARGETS = 4
SENDER = ("127.0.0.1", 54321)
TINY_RANGE_ROUTE = {"address": "/tiny", "dims": [1], "range": [0.0, 1e-300]}  # scaling can overflow

# ------------------------------------------------------------------------------------------------
# Building OSC by hand: any address, any type tags, any payload (python-osc's builder only
# builds valid packets).


def _pad(data: bytes) -> bytes:
    return data + b"\x00" * (4 - len(data) % 4)  # at least one NUL, to a multiple of 4


def _osc_string(text: str) -> bytes:
    return _pad(text.encode("utf-8"))


def _blob(data: bytes) -> bytes:
    return struct.pack(">i", len(data)) + data + b"\x00" * (-len(data) % 4)


def encode_args(args: list) -> tuple[str, bytes]:
    """`args` are (tag, value) pairs, or lists of them for OSC arrays; returns (tags, payload)."""
    tags, payload = "", b""
    for arg in args:
        if isinstance(arg, list):
            inner_tags, inner = encode_args(arg)
            tags, payload = tags + "[" + inner_tags + "]", payload + inner
            continue
        tag, value = arg
        tags += tag
        if tag == "i":
            payload += struct.pack(">i", value)
        elif tag == "h":
            payload += struct.pack(">q", value)
        elif tag == "f":
            payload += struct.pack(">f", value)
        elif tag == "d":
            payload += struct.pack(">d", value)
        elif tag == "s":
            payload += _osc_string(value)
        elif tag == "b":
            payload += _blob(value)
        elif tag in "mr":
            payload += struct.pack(">I", value)
        elif tag == "t":
            payload += struct.pack(">Q", value)
    return tags, payload


def message(address: str, args: list) -> bytes:
    tags, payload = encode_args(args)
    return _osc_string(address) + _osc_string("," + tags) + payload


def bundle(elements: list[bytes], timetag: int = 1) -> bytes:
    return b"#bundle\x00" + struct.pack(">Q", timetag) + b"".join(struct.pack(">i", len(e)) + e for e in elements)


# ------------------------------------------------------------------------------------------------
# Strategies


ADDRESSES = [
    "/ravemap/xy", "/xy", "/xy1", "/1/xy1", "/wek/inputs", "/tiny", "/ravemap/latent", "/ravemap/latent/0",
    "/ravemap/latent/3", "/ravemap/latent/4", "/ravemap/latent/-1", "/ravemap/latent/", "/ravemap/latent/x",
    "/ravemap/latent/\u00b2", "/ravemap/latent/\u0663", "/ravemap/latent/" + "9" * 5000, "/ravemap/latent/00",
    "/ravemap/record", "/ravemap/record/once", "/ravemap/examples/clear", "/ravemap/examples/undo",
    "/ravemap/train", "/ravemap/train/cancel", "/ravemap/run", "/ravemap/mapping/save", "/ravemap/mapping/load",
    "/ravemap/mapping/new",
    "/ravemap/transfer", "/ravemap/engine", "/ravemap/gain", "/ravemap/model", "/ravemap/loop", "/ravemap/status",
    "/ravemap/ping",
    "/ravemap/learn", "/wekinator/control/startRecording", "/wekinator/control/stopRecording",
    "/wekinator/control/train", "/wekinator/control/startRunning", "/wekinator/control/stopRunning",
    "/wekinator/control/deleteAllExamples", "/wekinator/control/outputs", "/wekinator/control/cancelTrain",
    "/wekinator/control/deleteExamplesForOutput", "/wekinator/control/enableModelRecording",
    "/wekinator/control/disableModelRunning", "/wekinator/control/setInputNames",
    "/wekinator/control/setOutputNames", "/wekinator/control/saveModelToFile",
    "/wekinator/control/loadModelFromFile", "/wekinator/control/runNewProject",
    "/wekinator/control/startDtwRecording", "/ravemap", "/", "/ravemap/xy/", "/RAVEMAP/XY", "/ravemap/*",
    "/ravemap/x\ny", "/ravemap/\u202exy", "/" + "a" * 300,
]
HOSTILE_NAMES = ["../escape", "../../etc/passwd", "/etc/passwd", "a/b", "..", ".hidden", " lead", "nul\x01",
                 "new\nline", "x" * 65, "", "back\\slash", "\u00fcn\u00efcode", "link", "C:\\x", "~root"]

text_no_nul = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=40)
addresses = st.sampled_from(ADDRESSES) | text_no_nul.map(lambda t: "/" + t)
floats32 = st.floats(width=32) | st.sampled_from([math.nan, math.inf, -math.inf, 3.4e38, -3.4e38, 1e-45])
floats64 = st.floats() | st.sampled_from([math.nan, math.inf, -math.inf, 1.7e308, -1.7e308, 5e-324])
scalar_args = st.one_of(
    st.tuples(st.just("i"), st.integers(-2**31, 2**31 - 1) | st.sampled_from([0, 1, -1, 2**31 - 1, 65536])),
    st.tuples(st.just("h"), st.integers(-2**63, 2**63 - 1)),
    st.tuples(st.just("f"), floats32),
    st.tuples(st.just("d"), floats64),
    st.tuples(st.just("s"), st.sampled_from(HOSTILE_NAMES) | text_no_nul),
    st.tuples(st.just("b"), st.binary(max_size=24)),
    st.tuples(st.sampled_from(["T", "F", "N"]), st.none()),
    st.tuples(st.sampled_from(["m", "r"]), st.integers(0, 2**32 - 1)),
    st.tuples(st.just("t"), st.integers(0, 2**64 - 1)),
)
arg_lists = st.lists(scalar_args | st.lists(scalar_args, max_size=3), max_size=6) | st.lists(scalar_args, max_size=300)
messages = st.builds(message, addresses, arg_lists)


@st.composite
def bundles(draw, depth: int = 0) -> bytes:
    """Bundles of messages and bundles, sometimes nested past MAX_BUNDLE_DEPTH."""
    n = draw(st.integers(0, 3))
    elements = []
    for _ in range(n):
        if depth < MAX_BUNDLE_DEPTH + 2 and draw(st.integers(0, 3)) == 0:
            elements.append(draw(bundles(depth + 1)))
        else:
            elements.append(draw(messages))
    return bundle(elements, draw(st.integers(0, 2**64 - 1)))


@st.composite
def deep_bundles(draw) -> bytes:
    packet = draw(messages)
    for _ in range(draw(st.integers(1, 40))):
        packet = bundle([packet])
    return packet


@st.composite
def lying_sizes(draw) -> bytes:
    """A bundle whose element sizes say 0, negative, not a multiple of 4, or past the end."""
    elements = draw(st.lists(messages, min_size=1, max_size=3))
    packet = bytearray(bundle(elements))
    offsets, at = [], 16
    for e in elements:
        offsets.append(at)
        at += 4 + len(e)
    which = draw(st.sampled_from(offsets))
    size = draw(st.sampled_from([0, -4, -16, -1, 3, 2**31 - 1, -2**31]) | st.integers(-2**31, 2**31 - 1))
    packet[which:which + 4] = struct.pack(">i", size)
    return bytes(packet)


@st.composite
def mutated(draw) -> bytes:
    """A valid packet, then cut short, bytes flipped or inserted, or a type tag replaced."""
    packet = bytearray(draw(messages | bundles()))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["cut", "flip", "insert", "tag"]))
        if not packet:
            break
        at = draw(st.integers(0, len(packet) - 1))
        if kind == "cut":
            del packet[at:]
        elif kind == "flip":
            packet[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            packet[at:at] = draw(st.binary(min_size=1, max_size=8))
        else:
            comma = packet.find(b",")
            if comma >= 0 and comma + 1 < len(packet):
                packet[comma + 1] = draw(st.sampled_from(list(b"xXcIS?[]\x00\xff")))
    return bytes(packet)


random_bytes = st.binary(max_size=512) | st.binary(max_size=64).map(lambda b: b"/" + b) | \
    st.binary(max_size=64).map(lambda b: b"#bundle\x00" + b)
packets = st.one_of(random_bytes, messages, bundles(), deep_bundles(), lying_sizes(), mutated())
hostile_packets = st.one_of(random_bytes, deep_bundles(), lying_sizes(), mutated(),
                            st.builds(message, st.sampled_from(ADDRESSES), arg_lists))


# ------------------------------------------------------------------------------------------------
# In process: OscServer.handle_datagram with a real Inbox and a recording reply function


@dataclass
class Outcome:
    replies: list[str] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    translated: list[tuple[str, list, str]] = field(default_factory=list)  # (address, args, "event"/"none"/error)
    bad_packet: bool = False
    put: int = 0  # events put into the inbox (the inbox may coalesce some of them)


class Harness:
    """An OscServer whose translator calls are watched, feeding a real Inbox."""

    def __init__(self) -> None:
        config = validate({
            "osc": {"host": "127.0.0.1", "zeroconf": False,
                    "routes": [{"address": r, "dims": [0, 1]} for r in ("/ravemap/xy", "/xy", "/xy1", "/1/xy1")]
                    + [{"address": "/wek/inputs"}, TINY_RANGE_ROUTE]},
            "inputs": {"size": N_INPUTS}, "latent": {"dims": list(range(N_TARGETS))},
        })
        self.replies: list[tuple[tuple[str, int] | None, str]] = []
        self.inbox = Inbox(1_000_000)
        self.server = OscServer(config, self.inbox, lambda origin, text: self.replies.append((origin, text)), port=0)
        self.calls: list[tuple[str, list, str]] = []
        translate = self.server.translator.translate

        def watched(address: str, args):
            try:
                event = translate(address, args)
            except Exception as err:
                self.calls.append((address, list(args), f"{type(err).__name__}: {err}"))
                raise
            self.calls.append((address, list(args), "none" if event is None else "event"))
            return event

        self.server.translator.translate = watched  # type: ignore[method-assign]

    def feed(self, data: bytes) -> Outcome:
        bad_before, replies_before, calls_before = self.server.counters.bad_packets, len(self.replies), len(self.calls)
        received_before = self.inbox.received
        self.server.handle_datagram(data, SENDER)  # must never raise
        out = Outcome(bad_packet=self.server.counters.bad_packets > bad_before)
        out.put = self.inbox.received - received_before
        out.replies = [text for _, text in self.replies[replies_before:]]
        assert all(origin == SENDER for origin, _ in self.replies[replies_before:])
        out.translated = self.calls[calls_before:]
        while (event := self.inbox.get(timeout=0)) is not None:
            out.events.append(event)
        return out

    def close(self) -> None:
        self.server.stop()


@pytest.fixture(scope="module")
def harness():
    h = Harness()
    yield h
    h.close()


MOMENTARY = {"/ravemap/record/once", "/ravemap/examples/clear", "/ravemap/examples/undo", "/ravemap/train",
             "/ravemap/train/cancel", "/wekinator/control/train", "/wekinator/control/cancelTrain",
             "/wekinator/control/deleteAllExamples",
             "/wekinator/control/deleteExamplesForOutput", "/wekinator/control/runNewProject"}
COMMANDS = {"record", "run", "transfer", "engine", "record_once", "clear", "undo", "train", "save", "new", "load",
            "model", "loop", "status", "ping", "gain", "learn", "train_cancel", "delete_output", "outputs_enabled",
            "names"}


def _finite_float(v: object) -> bool:
    return isinstance(v, float) and math.isfinite(v)


def check_event(event: Event) -> None:
    """An event the session may apply as it is: finite numbers, indices in range, checked arguments."""
    assert event.origin == SENDER
    if isinstance(event, SetInputs):
        dims = [d for d, _ in event.values]
        top = MAX_ARGS if event.whole else N_INPUTS  # a whole vector's size is checked by the session
        assert dims and len(set(dims)) == len(dims) and all(isinstance(d, int) and 0 <= d < top for d in dims)
        assert not event.whole or dims == list(range(len(dims))), event
        assert all(_finite_float(v) for _, v in event.values), event
    elif isinstance(event, SetTargets):
        assert len(event.values) == N_TARGETS and all(_finite_float(v) for v in event.values), event
    elif isinstance(event, SetTarget):
        assert isinstance(event.index, int) and 0 <= event.index < N_TARGETS and _finite_float(event.value), event
    elif isinstance(event, Command):
        assert event.name in COMMANDS, event
        args = event.args
        if event.name in ("record", "run", "transfer", "engine"):
            assert len(args) == 1 and isinstance(args[0], bool)
        elif event.name in ("record_once", "clear", "undo", "train_cancel"):
            assert args == ()
        elif event.name == "train":
            assert args == (None,) or (type(args[0]) is int and 1 <= args[0] <= 1_000_000), event
        elif event.name in ("save", "new"):
            assert len(args) == 1 and (args[0] is None or isinstance(args[0], str))
        elif event.name in ("load", "model", "loop"):
            assert len(args) == 1 and isinstance(args[0], str)
        elif event.name in ("status", "ping"):
            assert args == (None,) or (type(args[0]) is int and 1 <= args[0] <= 65535), event
        elif event.name == "gain":
            assert len(args) == 1 and _finite_float(args[0])
        elif event.name == "learn":
            assert len(args) == 1 and type(args[0]) is int and 0 <= args[0] < N_INPUTS
        elif event.name == "delete_output":
            assert len(args) == 1 and type(args[0]) is int and 0 <= args[0] < N_TARGETS, event
        elif event.name == "outputs_enabled":
            what, outputs, on = args
            assert what in ("recording", "running") and isinstance(on, bool) and outputs, event
            assert all(type(k) is int and 0 <= k < N_TARGETS for k in outputs), event
        elif event.name == "names":
            which, names = args
            assert which in ("input", "output") and names, event
            assert all(isinstance(n, str) and 0 < len(n) <= 64 and n.isprintable() for n in names), event
    else:
        raise AssertionError(f"unexpected event {event!r}")


def is_release(address: str, args: list) -> bool:
    """A momentary button's release (0): ignored, neither an event nor an error."""
    return address in MOMENTARY and len(args) == 1 and isinstance(args[0], int | float) and args[0] == 0


def check_outcome(out: Outcome) -> None:
    """Every bad packet gets one reply and no event; every message of a good packet exactly one of:
    an event, a reply, or (a button's release) nothing."""
    if out.bad_packet:
        assert len(out.replies) == 1 and not out.put and not out.translated, out
        assert out.replies[0].startswith(("not a valid OSC packet", "packet of", "bundle nested")), out.replies
        return
    errors = [t for t in out.translated if t[2] not in ("event", "none")]
    assert all(t[2].startswith("BadMessage") for t in errors), f"the translator failed on its own: {errors}"
    assert len(out.replies) == len(errors), out
    assert out.put == sum(t[2] == "event" for t in out.translated)
    for address, args, result in out.translated:
        if result == "none":
            assert is_release(address, args), (address, args)
    for event in out.events:
        check_event(event)
    for reply in out.replies:
        assert reply and len(reply) <= 600 and reply.isprintable(), repr(reply[:100])


@settings(max_examples=examples(2000), deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(packets)
def test_any_packet_is_refused_or_becomes_well_formed_events_and_never_raises(harness, data):
    check_outcome(harness.feed(data))


@settings(max_examples=examples(800), deadline=None, database=None)
@given(st.builds(message, addresses, arg_lists))
def test_every_well_framed_message_is_translated_never_skipped(harness, data):
    """Any address, any known type tags and arguments: it reaches translation and is answered."""
    out = harness.feed(data)
    check_outcome(out)
    assert not out.bad_packet and len(out.translated) == 1, out


def _count_messages(packet: bytes, depth: int = 0) -> int:
    if not packet.startswith(b"#bundle\x00"):
        return 1
    n, at = 0, 16
    while at < len(packet):
        size = struct.unpack(">i", packet[at:at + 4])[0]
        n += _count_messages(packet[at + 4:at + 4 + size], depth + 1)
        at += 4 + size
    return n


def _depth(packet: bytes) -> int:
    if not packet.startswith(b"#bundle\x00"):
        return 0
    deepest, at = 0, 16
    while at < len(packet):
        size = struct.unpack(">i", packet[at:at + 4])[0]
        deepest = max(deepest, _depth(packet[at + 4:at + 4 + size]))
        at += 4 + size
    return 1 + deepest


@settings(max_examples=examples(400), deadline=None, database=None)
@given(bundles())
def test_a_well_framed_bundle_reaches_every_message_and_a_too_deep_one_is_refused_whole(harness, data):
    out = harness.feed(data)
    check_outcome(out)
    if _depth(data) > MAX_BUNDLE_DEPTH:
        assert out.bad_packet and "nested deeper" in out.replies[0]
    else:
        assert not out.bad_packet, out.replies
        assert len(out.translated) == _count_messages(data)


XY = message("/ravemap/xy", [("f", 0.5), ("f", 0.5)])


@pytest.mark.parametrize("data, reason", [
    (b"", "neither an OSC message"),
    (b"\x00\x00\x00\x00", "neither an OSC message"),
    (b"hello", "neither an OSC message"),
    (b"/ravemap/xy", "not terminated"),
    (b"/ravemap/x\x00", "not a valid OSC packet"),  # address without its padding
    (message("/ravemap/load", [("s", "name")])[:-1], "not a valid OSC packet"),  # string not terminated
    (_osc_string("/ravemap/xy") + _osc_string(",fxf") + struct.pack(">ff", 0.1, 0.2), "type tags"),
    (_osc_string("/ravemap/xy") + _osc_string("ff") + struct.pack(">ff", 0.1, 0.2), "type tags"),
    (_osc_string("/ravemap/xy") + _osc_string(",[f") + struct.pack(">f", 0.1), "not a valid OSC packet"),
    (_osc_string("/ravemap/xy") + _osc_string(",s") + b"\xff\xfe\x00\x00", "not a valid OSC packet"),
    (b"#bundle\x00", "cut short in its time tag"),
    (bundle([]) + b"\x00\x00", "cut short in its size"),
    (b"#bundle\x00" + bytes(8) + struct.pack(">i", -4), "has size -4"),  # python-osc alone loops forever
    (b"#bundle\x00" + bytes(8) + struct.pack(">i", 0) * 100, "has size 0"),  # python-osc logs 100 lines
    (b"#bundle\x00" + bytes(8) + struct.pack(">i", 400) + b"/x\x00\x00", "has size 400"),
    (bundle([b"garbage!"]), "neither an OSC message"),  # python-osc logs and skips it
    (XY, None),
    (bundle([bundle([bundle([XY])])] * 2), None),
])
def test_each_kind_of_broken_framing_gets_one_error_naming_it(harness, data, reason):
    out = harness.feed(data)
    check_outcome(out)
    if reason is None:
        assert not out.bad_packet and out.events
    else:
        assert out.bad_packet and reason in out.replies[0], out.replies


def test_bundles_nested_past_the_limit_are_refused_whole(harness):
    packet = message("/ravemap/xy", [("f", 0.25), ("f", 0.75)])
    for depth in range(1, 800):
        packet = bundle([packet])
        if depth in (MAX_BUNDLE_DEPTH, MAX_BUNDLE_DEPTH + 1, 500, 799):
            out = harness.feed(packet)
            check_outcome(out)
            assert out.bad_packet == (depth > MAX_BUNDLE_DEPTH), depth
    assert len(packet) < MAX_PACKET


def test_oversize_packets_are_refused_whole(harness):
    out = harness.feed(message("/wek/inputs", [("f", 0.5)] * 5000))
    assert out.bad_packet and f"at most {MAX_PACKET}" in out.replies[0]


@pytest.mark.parametrize("address, args, expected", [
    ("/ravemap/xy", [("s", "0.5"), ("f", 0.5)], "must be a number, got str"),
    ("/ravemap/xy", [("f", math.nan), ("f", 0.5)], "finite"),
    ("/ravemap/xy", [("d", math.inf), ("f", 0.5)], "finite"),
    ("/ravemap/xy", [("f", 0.5)], "expected 2 numbers"),
    ("/ravemap/xy", [("f", 0.5)] * 3, "expected 2 numbers"),
    ("/ravemap/xy", [[("f", 0.5), ("f", 0.5)]], "expected 2 numbers"),
    ("/ravemap/xy", [("b", b"ab"), ("N", None)], "must be a number"),
    ("/wek/inputs", [], "expected 1..256 numbers"),
    ("/wekinator/control/outputs", [("f", 0.5)] * 3, "expected 4 numbers (one per output)"),
    ("/wekinator/control/deleteExamplesForOutput", [("i", 5)], "output indexes go from 1 to 4"),
    ("/wekinator/control/enableModelRunning", [("i", 1), ("f", 2.5)], "output indexes go from 1 to 4"),
    ("/wekinator/control/setInputNames", [("s", "a"), ("i", 2)], "name 2 must be a string"),
    ("/wekinator/control/startDtwRecording", [("i", 1)], "record continuous examples with"),
    ("/wekinator/control/stopDtwRecording", [], "no dynamic time warping"),
    ("/tiny", [("d", 1e10)], "too far outside the range"),
    ("/ravemap/latent", [("f", 1.0)] * 3 + [("f", -math.inf)], "finite"),
    ("/ravemap/latent", [("f", 1.0)] * 5, "expected 4 numbers"),
    ("/ravemap/latent/4", [("f", 1.0)], "latent index must be 0..3"),
    ("/ravemap/latent/\u0663", [("f", 1.0)], "latent index must be 0..3"),  # an Arabic-Indic three
    ("/ravemap/latent/\u00b2", [("f", 1.0)], "latent index must be 0..3"),
    ("/ravemap/latent/" + "9" * 200, [("f", 1.0)], "latent index must be 0..3"),
    ("/ravemap/latent/" + "9" * 5000, [("f", 1.0)], "printable text of at most 256 characters"),
    ("/ravemap/gain", [("s", "loud")], "must be a number"),
    ("/ravemap/gain", [("f", math.nan)], "finite"),
    ("/ravemap/train", [("i", 0)], "epochs must be an int in 1..1000000"),
    ("/ravemap/train", [("h", 2**62)], "epochs must be an int"),
    ("/ravemap/status", [("i", 70000)], "reply port must be an int in 1..65535"),
    ("/ravemap/ping", [("f", 9000.5)], "reply port must be an int"),
    ("/ravemap/learn", [("i", 2)], "input dim must be an int in 0..1"),
    ("/ravemap/mapping/load", [], "expected one string"),
    ("/ravemap/mapping/load", [("i", 3)], "the name must be a string"),
    ("/ravemap/record", [], "expected one int"),
    ("/ravemap/nope", [], "unknown address"),
    ("/ravemap/x\ny", [], "an OSC address is printable text"),
    ("/" + "a" * 300, [], "an OSC address is printable text"),
    ("/wek/inputs", [("T", None)] * 300, "too many arguments"),
])
def test_a_bad_message_gets_one_error_saying_what_is_wrong_and_no_event(harness, address, args, expected):
    out = harness.feed(message(address, args))
    check_outcome(out)
    assert not out.events and len(out.replies) == 1 and expected in out.replies[0], out.replies
    assert len(out.replies[0]) < 400 and "\n" not in out.replies[0]


def test_a_bundle_answers_each_bad_message_and_keeps_the_good_ones(harness):
    packet = bundle([message("/ravemap/xy", [("f", 0.1), ("f", 0.2)]), message("/ravemap/nope", []),
                     message("/ravemap/latent/1", [("f", math.nan)]), message("/ravemap/latent/1", [("d", 1.5)])])
    out = harness.feed(packet)
    check_outcome(out)
    assert len(out.replies) == 2 and len(out.events) == 2
    assert "unknown address" in out.replies[0] and "finite" in out.replies[1]
    assert isinstance(out.events[0], SetInputs) and [d for d, _ in out.events[0].values] == [0, 1]
    assert [v for _, v in out.events[0].values] == pytest.approx([0.1, 0.2])
    assert out.events[1] == SetTarget(1, 1.5, origin=SENDER)


# ------------------------------------------------------------------------------------------------
# The inbox under a flood: bounded, newest value wins, the rest dropped and counted

events_in = st.lists(
    st.one_of(
        st.builds(lambda d, v: SetInputs(((d, v),)), st.integers(0, 1), st.floats(0, 1)),
        st.builds(SetTarget, st.integers(0, 3), st.floats(-3, 3)),
        st.builds(lambda i: Command("ping", (i,)), st.integers(1, 65535)),
        st.just(None),  # the session takes one event out
    ),
    max_size=400,
)


@settings(max_examples=examples(300), deadline=None, database=None)
@given(capacity=st.integers(1, 16), script=events_in)
def test_the_inbox_stays_bounded_keeps_order_and_the_newest_value_of_each_control_wins(capacity, script):
    inbox = Inbox(capacity)
    put: list[Event] = []
    got: list[Event] = []
    for step in script:
        if step is None:
            event = inbox.get(timeout=0)
            if event is not None:
                got.append(event)
        else:
            put.append(step)
            inbox.put(step)
        assert len(inbox) <= capacity + 2 + 4, "at most one waiting value per control beyond the capacity"
    while (event := inbox.get(timeout=0)) is not None:
        got.append(event)
    assert inbox.received == len(put)
    assert len(got) + inbox.dropped + inbox.coalesced == len(put)
    order = {id(e): i for i, e in enumerate(put)}
    positions = [order[id(e)] for e in got]
    assert positions == sorted(positions), "events come out in the order they came in"
    newest: dict[str, Event] = {}
    for e in put:
        if e.coalesce_key is not None:
            newest[e.coalesce_key] = e
    delivered_last: dict[str, Event] = {}
    for e in got:
        if e.coalesce_key is not None:
            delivered_last[e.coalesce_key] = e
    assert delivered_last == {k: v for k, v in newest.items()}, "each control ends at its newest value"
    dropped_commands = sum(isinstance(e, Command) for e in put) - sum(isinstance(e, Command) for e in got)
    assert inbox.dropped == dropped_commands


def test_a_full_inbox_drops_discrete_events_but_not_the_last_slider_position():
    inbox = Inbox(16)
    for i in range(16):
        inbox.put(Command("ping", (1000 + i,)))
    for i in range(1000):
        inbox.put(SetInputs(((0, i / 1000), (1, 0.5))))
        inbox.put(Command("record_once"))
    assert len(inbox) == 17 and inbox.dropped == 1000 and inbox.coalesced == 999
    drained = []
    while (event := inbox.get(timeout=0)) is not None:
        drained.append(event)
    assert drained[-1] == SetInputs(((0, 0.999), (1, 0.5)))


def test_error_replies_to_one_sender_are_rate_limited():
    from ravemap.control.feedback import ERRORS_PER_SECOND, Feedback

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.settimeout(0.2)
        port = listener.getsockname()[1]
        feedback = Feedback(validate({"osc": {"zeroconf": False}}), feedback_port=port)
        try:
            for i in range(500):
                feedback.error(("127.0.0.1", 1), f"bad {i}")
            received = 0
            while True:
                try:
                    listener.recvfrom(2048)
                except TimeoutError:
                    break
                received += 1
        finally:
            feedback.close()
    assert received == ERRORS_PER_SECOND and feedback.errors_suppressed == 500 - ERRORS_PER_SECOND


# ------------------------------------------------------------------------------------------------
# Over real UDP against `ravemap serve`


@pytest.fixture(scope="module")
def folders(tmp_path_factory, tiny_model):
    """Models, loops and mappings folders, each with a link pointing out and a file beside it."""
    base = tmp_path_factory.mktemp("hostile")
    outside = base / "outside"
    outside.mkdir()
    (outside / "secret.json").write_text('{"format": "ravemap-mapping"}')
    models, loops, mappings = base / "models", base / "loops", base / "mappings"
    for folder in (models, loops, mappings):
        folder.mkdir()
    (models / "escape.ts").symlink_to(tiny_model)
    (loops / "escape.wav").symlink_to(outside / "secret.json")
    (mappings / "link.json").symlink_to(outside / "secret.json")
    os.mkfifo(models / "fifo.ts")  # loading it would block for good
    return base


@pytest.fixture(scope="module")
def daemon(folders, tiny_model, loop_file, peer):
    d = Daemon(folders, tiny_model, loop_file, peer.port, "--mapping", "live", config={
        "osc": {"allow": ["127.0.0.1/32"]},
        "paths": {"models_dir": str(folders / "models"), "loops_dir": str(folders / "loops")},
        "log": {"stats_interval_s": 1},  # status lines with the OSC counters, every second
    })
    peer.daemon = ("127.0.0.1", d.port)
    peer.send("/ravemap/latent", 1.0, -1.0, 0.5, 0.25)
    peer.send("/ravemap/xy", 0.3, 0.6)
    peer.send("/ravemap/record/once")
    assert peer.status()["examples"] == 1
    yield d
    assert d.stop() == 0, d.stderr()[-3000:]


def comparable(state: dict) -> dict:
    """The state a performer cares about: everything but the counters and the last error text."""
    counters = ("events_dropped", "last_error", "nonfinite_silenced", "clipped", "tempo")  # tempo: a moving clock
    return {k: v for k, v in state.items() if k not in counters}


def next_reply(peer: OscPeer, address: str, timeout: float = 5.0) -> list:
    """The arguments of the next message at `address` the peer receives, as soon as it comes."""
    deadline = time.monotonic() + timeout
    try:
        while (left := deadline - time.monotonic()) > 0:
            peer.sock.settimeout(left)
            try:
                data, _ = peer.sock.recvfrom(65536)
            except TimeoutError:
                break
            for timed in OscPacket(data).messages:
                peer.seen.append((timed.message.address, list(timed.message.params)))
                if timed.message.address == address:
                    return list(timed.message.params)
    finally:
        peer.sock.settimeout(0.2)
    raise AssertionError(f"no {address} within {timeout} s")


def ping_ms(port: int, timeout: float = 5.0, resend_s: float = 1.0) -> float:
    """Milliseconds from the first `/ravemap/ping` to a `/ravemap/pong`, on a socket of its own.

    Sent again every `resend_s` until answered, as an OSC client would: right after a flood the
    daemon's receive buffer can be full, and the kernel drops a datagram that finds no room. The
    time counts from the first send, so a lost ping shows as a slow one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        ping = build("/ravemap/ping", sock.getsockname()[1])
        sent = time.perf_counter()
        deadline = sent + timeout
        while (left := deadline - time.perf_counter()) > 0:
            sock.sendto(ping, ("127.0.0.1", port))
            sock.settimeout(min(resend_s, left))
            try:
                while True:
                    data, _ = sock.recvfrom(2048)
                    if data.startswith(b"/ravemap/pong\x00"):
                        return 1000 * (time.perf_counter() - sent)
            except TimeoutError:
                continue
        raise TimeoutError(f"no /ravemap/pong within {timeout} s")


def bad_osc_lines(daemon: Daemon) -> list[str]:
    return [ln for ln in daemon.stderr().splitlines() if "bad OSC" in ln]


def state_neutral(harness: Harness, data: bytes) -> bool:
    """True when the in-process translation of `data` gives no event (so the state must not change)."""
    return not harness.feed(data).events


def generate(strategy: st.SearchStrategy, n: int) -> list:
    """`n` examples of `strategy`, as hypothesis generates them for `n` test cases."""
    found = []

    @settings(max_examples=n, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(example) -> None:
        found.append(example)

    collect()
    return found


def test_hundreds_of_generated_bad_packets_over_udp_leave_the_state_and_a_short_log(daemon, peer, harness):
    packets = [p for p in generate(hostile_packets, 400) if state_neutral(harness, p)][:300]
    outcomes = [harness.feed(p) for p in packets]
    assert len(packets) >= 250 and sum(o.bad_packet for o in outcomes) >= 50 and \
        sum(bool(o.replies) and not o.bad_packet for o in outcomes) >= 50, "a mix of bad packets and bad messages"
    before = peer.status()
    lines_before = len(bad_osc_lines(daemon))
    started = time.monotonic()
    for i, packet in enumerate(packets):
        peer.send_raw(packet)
        if i % 25 == 24:
            time.sleep(0.01)
    seconds = time.monotonic() - started
    assert ping_ms(daemon.port) < 1000
    after = peer.status()
    assert comparable(after) == comparable(before)
    assert after["underruns"] == 0
    errors = [args for address, args in peer.seen if address == "/ravemap/error"]
    assert errors, "the sender was told what was wrong"
    time.sleep(0.3)
    lines = bad_osc_lines(daemon)[lines_before:]
    # one line per kind (packet, message) per 2 s, each counting what it held back
    assert 1 <= len(lines) <= 2 * (seconds / 2 + 2), lines


def test_an_oversize_datagram_over_udp_is_refused_and_ping_still_answers(daemon, peer):
    before = peer.status()
    peer.drain()
    peer.send_raw(build("/wek/inputs", *([0.5] * 6000)))
    assert "at most 16384" in peer.wait_for("/ravemap/error")[0]
    assert ping_ms(daemon.port) < 1000 and comparable(peer.status()) == comparable(before)


def test_strangers_outside_the_allow_list_are_ignored_and_counted(daemon, peer):
    before = peer.status()
    stranger = OscPeer(daemon.port, source="127.0.0.2")
    overheard = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # the stranger's feedback port, if it had one
    overheard.bind(("127.0.0.2", peer.port))
    overheard.settimeout(0.3)
    try:
        for _ in range(50):
            stranger.send("/ravemap/latent", 3.0, 3.0, 3.0, 3.0)
            stranger.send("/ravemap/examples/clear")
            stranger.send("/ravemap/mapping/new", "taken-over")
            stranger.send("/ravemap/ping", stranger.port)
            stranger.send_raw(b"\xff garbage")
        assert stranger.receive(0.5) == [], "strangers get no reply at all"
        with pytest.raises(TimeoutError):
            overheard.recvfrom(2048)
        assert comparable(peer.status()) == comparable(before)
    finally:
        stranger.close()
        overheard.close()
    lines = [ln for ln in daemon.stderr().splitlines() if "not in osc.allow" in ln]
    assert 1 <= len(lines) <= 3, lines
    deadline = time.monotonic() + 5
    while "refused hosts 250," not in daemon.stderr() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "refused hosts 250," in daemon.stderr(), "every datagram from the stranger is counted"


BAD_NAMES = ["../escape", "/etc/passwd", "a/b", "..", ".hidden", "new\nline", "x" * 65, "back\\slash",
             "\u00fcn\u00efcode", "nul\x01"]


def test_names_given_over_osc_stay_inside_their_folders(daemon, peer, folders):
    before = peer.status()
    outside_before = {p.name: p.read_bytes() for p in (folders / "outside").iterdir()}
    tree_before = sorted(str(p) for p in folders.rglob("*") if not p.name.endswith(".tmp"))
    attempts = [(address, name) for name in BAD_NAMES for address in
                ("/ravemap/mapping/load", "/ravemap/mapping/save", "/ravemap/mapping/new", "/ravemap/model",
                 "/ravemap/loop")]
    attempts += [("/ravemap/mapping/load", "link"), ("/ravemap/mapping/save", "link"), ("/ravemap/model", "escape"),
                 ("/ravemap/loop", "escape"), ("/ravemap/model", "fifo"), ("/ravemap/loop", "nothing-here")]
    peer.drain()
    for address, name in attempts:
        time.sleep(0.055)  # under the 20 error replies a second that one sender gets
        peer.send(address, name)
        text = next_reply(peer, "/ravemap/error")[0]
        assert "internal error" not in text, text
        reasons = ("letters, digits", "points outside", "outside the mapping folder", "is not a file", "no loop")
        assert any(r in text for r in reasons), (address, name, text)
    assert comparable(peer.status()) == comparable(before)
    assert {p.name: p.read_bytes() for p in (folders / "outside").iterdir()} == outside_before
    assert not (folders / "escape.json").exists() and not (folders / "models" / "escape.json").exists()
    tree_after = sorted(str(p) for p in folders.rglob("*") if not p.name.endswith(".tmp"))
    assert tree_after == tree_before, set(tree_after) ^ set(tree_before)


def test_a_name_in_a_folder_ravemap_cannot_read_is_refused_with_a_reason(tmp_path):
    """`/ravemap/model` and `/ravemap/loop` look names up with `resolve_in`: a folder without read
    permission is a clear refusal, not an internal error. As root, run without the capabilities that
    bypass permission bits (setpriv), so that they bind."""
    import subprocess
    import sys

    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "m.ts").write_bytes(b"x")
    folder.chmod(0)
    prefix = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: permission bits cannot be made to bind")
        prefix = [shutil.which("setpriv"), "--bounding-set=-dac_override,-dac_read_search", "--"]
    code = ("import sys; from pathlib import Path; from ravemap.names import resolve_in\n"
            "try:\n    resolve_in(Path(sys.argv[1]), 'm', ('.ts',), 'model')\n"
            "except ValueError as err:\n    print('refused:', err)\n")
    try:
        done = subprocess.run([*prefix, sys.executable, "-c", code, str(folder)], capture_output=True, text=True,
                              cwd=Path(__file__).resolve().parent.parent, timeout=60)
    finally:
        folder.chmod(0o755)
    assert done.stdout.startswith("refused: cannot look for model 'm' in") and "Permission denied" in done.stdout, \
        done.stdout + done.stderr


def test_commands_the_session_refuses_are_answered_and_logged_at_a_limited_rate(daemon, peer):
    before = peer.status()
    lines_before = len(daemon.stderr().splitlines())
    refused = [("/ravemap/gain", 99.0), ("/ravemap/run", 1), ("/ravemap/learn", 0),
               ("/ravemap/mapping/load", "no-such-mapping")]
    for _ in range(60):
        for address, arg in refused:
            peer.send(address, arg)
    time.sleep(0.5)
    assert comparable(peer.status()) == comparable(before)
    errors = [args[0] for address, args in peer.seen if address == "/ravemap/error"]
    assert any("gain" in e for e in errors) and any("train first" in e for e in errors)
    new_lines = daemon.stderr().splitlines()[lines_before:]
    assert len([ln for ln in new_lines if "WARNING" in ln]) <= 2 * len(refused), new_lines


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1))


@pytest.mark.alone  # a flood or a stopwatch measured against audio: no other test beside it
def test_a_ten_second_flood_of_ten_thousand_messages_a_second_keeps_audio_and_memory(daemon, peer):
    """XY moves, slider moves and presses at 10,000 a second from loopback for 10 s."""
    before = peer.status()
    rss_before = rss_kib(daemon.proc.pid)
    flood = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    flood.bind(("127.0.0.1", 0))
    target = ("127.0.0.1", daemon.port)
    gesture = [build("/ravemap/xy", 0.5 + 0.4 * math.sin(i / 50), 0.5 + 0.4 * math.cos(i / 70)) for i in range(500)]
    sliders = [build(f"/ravemap/latent/{i % 4}", 2.5 * math.sin(i / 30)) for i in range(500)]
    presses = [build("/ravemap/ping", 9), build("/ravemap/status", 9), build("/ravemap/nope")]
    final_xy, final_slider = build("/ravemap/xy", 0.125, 0.875), build("/ravemap/latent/2", -1.5)
    rate, seconds, chunk = 10_000, 10.0, 100
    sent = 0
    start = time.perf_counter()
    rss_peak = rss_before
    try:
        while sent < rate * seconds:
            for k in range(chunk):
                i = sent + k
                if i >= rate * seconds - 200:  # the performer's hand comes to rest
                    packet = final_xy if i % 2 else final_slider
                elif i % 10 == 9:
                    packet = presses[(i // 10) % 3]
                else:
                    packet = gesture[i % 500] if i % 2 else sliders[i % 500]
                flood.sendto(packet, target)
            sent += chunk
            if sent % 10_000 == 0:
                rss_peak = max(rss_peak, rss_kib(daemon.proc.pid))
            delay = start + sent / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        elapsed = time.perf_counter() - start
    finally:
        flood.close()
    pings = [ping_ms(daemon.port) for _ in range(5)]
    state = peer.status()
    rss_after = rss_kib(daemon.proc.pid)
    assert elapsed < seconds * 1.2, f"the test could only send {sent / elapsed:.0f} messages/s"
    assert sorted(pings)[2] < 100, f"ping after the flood took {pings} ms"
    assert state["underruns"] == 0, "the audio kept playing through the flood"
    assert state["inputs"] == [0.125, 0.875] and state["targets"][2] == -1.5, "the newest value wins"
    assert state["examples"] == before["examples"] == 1 and state["mapping"] == before["mapping"]
    assert max(rss_peak, rss_after) - rss_before < 50 * 1024, (rss_before, rss_peak, rss_after)
    print(f"flood: {sent} messages in {elapsed:.1f} s, events dropped {state['events_dropped']}, "
          f"ping {pings} ms, RSS {rss_before} -> {rss_peak} -> {rss_after} KiB")


# ------------------------------------------------------------------------------------------------
# Issue 11: what a second round of probing over UDP broke


def saved_examples(peer: OscPeer, folders: Path) -> list:
    peer.drain()
    peer.send("/ravemap/mapping/save")
    assert next_reply(peer, "/ravemap/mapping") == ["live"]
    return json.loads((folders / "mappings" / "live.json").read_text())["examples"]


def test_inputs_outside_a_routes_range_are_clamped_to_it_never_stored_raw(daemon, peer, folders):
    peer.send_raw(message("/xy1", [("h", 2**62), ("d", 1e300)]))
    peer.send("/ravemap/record/once")
    assert peer.status()["inputs"] == [1.0, 1.0]
    peer.send("/ravemap/xy", 1e6, 0.5)
    peer.send("/ravemap/record/once")
    assert peer.status()["inputs"] == [1.0, 0.5]
    peer.send_raw(message("/xy", [("d", -1e300), ("f", -3.0)]))
    peer.send("/ravemap/record/once")
    assert peer.status()["inputs"] == [0.0, 0.0]
    examples = saved_examples(peer, folders)
    assert [e["input"] for e in examples[-3:]] == [[1.0, 1.0], [1.0, 0.5], [0.0, 0.0]]
    assert all(0.0 <= v <= 1.0 for e in examples for v in e["input"])


def test_a_name_holding_a_nul_byte_is_refused_not_cut_short(daemon, peer, folders):
    peer.drain()
    peer.send("/ravemap/mapping/save", "ab\x00cd")
    error = next_reply(peer, "/ravemap/error")[0]
    assert "holds a NUL byte" in error, error
    time.sleep(0.06)
    peer.send("/ravemap/mapping/save", "abc\x00xyz")  # the NUL where the string's padding would be
    assert "after the last argument" in next_reply(peer, "/ravemap/error")[0]
    peer.send("/ravemap/ping", peer.port)
    next_reply(peer, "/ravemap/pong")
    assert not list((folders / "mappings").glob("ab*.json"))
    assert peer.status()["mapping"] == "live"


def test_a_reply_port_that_is_ravemaps_own_control_port_is_refused(daemon, peer):
    peer.send("/ravemap/latent", 0.5, 0.5, 0.5, 0.5)
    before = peer.status()["targets"]
    peer.drain()
    for address in ("/ravemap/status", "/ravemap/ping"):
        time.sleep(0.06)
        peer.send(address, daemon.port)
        error = next_reply(peer, "/ravemap/error")[0]
        assert f"reply port {daemon.port} is ravemap's own control port" in error, error
    peer.send("/ravemap/latent", 1.0, 1.0, 1.0, 1.0)  # a change its own /ravemap/latent reply could overwrite
    state = peer.status()
    assert state["targets"] == [1.0, 1.0, 1.0, 1.0] and before == [0.5, 0.5, 0.5, 0.5]


def test_a_flood_of_one_complaint_is_one_log_line_then_a_count(caplog):
    import logging

    from ravemap.ratelimit import RateLimitedLog

    limited = RateLimitedLog(logging.getLogger("ravemap.test"), seconds=0.2)
    with caplog.at_level(logging.WARNING, logger="ravemap.test"):
        said = [limited.warning("bad packet from %s", "10.0.0.1", key="bad:10.0.0.1") for _ in range(100)]
        limited.warning("bad packet from %s", "10.0.0.2", key="bad:10.0.0.2")  # another sender is heard at once
        time.sleep(0.25)
        limited.warning("bad packet from %s", "10.0.0.1", key="bad:10.0.0.1")
    lines = [r.getMessage() for r in caplog.records]
    assert said.count(True) == 1
    assert lines == ["bad packet from 10.0.0.1", "bad packet from 10.0.0.2",
                     "bad packet from 10.0.0.1 (and 99 more like it)"]


def test_the_rate_limit_allows_n_per_interval_per_key_and_makes_a_reader_wait():
    from ravemap.ratelimit import RateLimit

    now = [100.0]
    limit = RateLimit(20, 1.0, clock=lambda: now[0])
    assert sum(limit.allow("a") for _ in range(500)) == 20
    assert sum(limit.allow("b") for _ in range(5)) == 5, "each key has its own budget"
    now[0] += 1.0
    assert sum(limit.allow("a") for _ in range(500)) == 20, "a second later, 20 more"
    reader = RateLimit(100, 0.5, clock=lambda: now[0])  # 200 a second, 100 at once
    waits = [reader.wait() for _ in range(300)]
    assert waits[:100] == [0.0] * 100 and waits[-1] == pytest.approx(200 / 200), "the 300th is due a second later"
