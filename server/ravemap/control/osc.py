"""OSC in: datagrams on one UDP port become control events. The only module importing python-osc.

Layers, as python-osc keeps them: the transport (a blocking `recvfrom` loop on one thread, so
messages stay in order) checks the sender against `osc.allow` and hands raw bytes to
python-osc's parser; `OscTranslator`
maps each message's address to an event and checks its arguments. It translates and never
decides: the session applies the events.

Bad input never raises into this thread. A sender outside `osc.allow` is ignored and
counted (no reply: strangers are not answered). A packet that does not parse, an unknown
address, wrong argument counts or types, NaN or infinity, a string holding a NUL byte, an
out-of-range index, or a reply port that is ravemap's own control port gets a rate-limited
log line, a count, and an `/ravemap/error s` reply to the sender. The values of a route that
names its dims are clamped to its declared range (inputs 0..1); a whole-vector route such as
`/wek/inputs` passes Wekinator's features in the sender's units.

Wekinator's vocabulary (`/wek/inputs`, `/wekinator/control/*`) is translated here too, with
Wekinator's meaning: `/wekinator/control/outputs` speaks 0..1 per output with
`osc.wekinator_units: unit` and becomes latent targets here. The same translator serves the
main port and Wekinator's input port (`osc.wekinator_input_port`), one `OscServer` each.

Threads: "ravemap-osc" runs `serve_forever` (and "ravemap-osc-wekinator" for Wekinator's input
port); `OscServer.stop` from the main thread.
`encode_message` is used by the feedback sender on the session and feedback threads.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import re
import socket
import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_packet import OscPacket

from ravemap.config import Config, OscRoute
from ravemap.control import vocabulary
from ravemap.control.events import Command, Event, Inbox, SetInputs, SetTarget, SetTargets
from ravemap.control.vocabulary import Entry
from ravemap.errors import DeviceError
from ravemap.mapping.store import MAX_NAME, MAX_SCENE
from ravemap.ratelimit import RateLimitedLog

log = logging.getLogger("ravemap.osc")

MAX_PACKET = 16384  # larger datagrams are refused whole
RECEIVE_BUFFER = 4 << 20  # bytes the kernel may hold for us during a burst (bounded; the rest is dropped)
MAX_ARGS = 256
MAX_ADDRESS = 256  # characters
MAX_BUNDLE_DEPTH = 8  # bundles inside bundles; deeper packets are refused whole
_BUNDLE = b"#bundle\x00"
_TYPE_TAGS = re.compile(rb",[ihfdsbrmtTFN\[\]]*")  # the tags python-osc decodes


class BadMessage(ValueError):
    """What was wrong with one message, in words for the `/ravemap/error` reply."""


class BadPacket(ValueError):
    """What was wrong with a whole datagram's framing, in words for the `/ravemap/error` reply."""


def check_framing(data: bytes, depth: int = 0) -> None:
    """Refuse, before python-osc parses it, framing that python-osc mishandles: a bundle element
    whose size is 0 or negative (its parser logs a line per element, and loops forever on a
    negative size), an element that is neither a message nor a bundle (logged and skipped),
    type tags it does not know (logged per character and skipped, shifting the arguments), and
    bundles nested deeper than MAX_BUNDLE_DEPTH. Raises BadPacket; reads at most `len(data)`."""
    if data.startswith(_BUNDLE):
        if depth >= MAX_BUNDLE_DEPTH:
            raise BadPacket(f"bundles nested deeper than {MAX_BUNDLE_DEPTH}")
        if len(data) < 16:
            raise BadPacket("bundle cut short in its time tag")
        index = 16
        while index < len(data):
            left = len(data) - index - 4
            if left < 0:
                raise BadPacket(f"bundle element at byte {index} cut short in its size")
            size = int.from_bytes(data[index:index + 4], "big", signed=True)
            if not 0 < size <= left:
                raise BadPacket(f"bundle element at byte {index} has size {size}, but {left} bytes follow")
            index += 4
            check_framing(data[index:index + size], depth + 1)
            index += size
    elif data.startswith(b"/"):
        end = data.find(b"\x00")
        if end < 0:
            raise BadPacket("the address is not terminated")
        tags_at = end + 4 - end % 4
        if tags_at < len(data):
            tags_end = data.find(b"\x00", tags_at)
            tags = data[tags_at:tags_end if tags_end >= 0 else len(data)]
            if not _TYPE_TAGS.fullmatch(tags):
                raise BadPacket(f"type tags {tags[:24]!r} are not ',' and i h f d s b r m t T F N [ ]")
            if tags_end >= 0:
                _check_strings(data, tags, tags_end + 4 - tags_end % 4)
    else:
        raise BadPacket("neither an OSC message (starts with '/') nor a bundle ('#bundle')")


_ARG_SIZES = {ord(c): n for c, n in (("i", 4), ("f", 4), ("r", 4), ("m", 4), ("h", 8), ("d", 8), ("t", 8))}


def _check_strings(data: bytes, tags: bytes, at: int) -> None:
    """A string argument ends at its first NUL, and python-osc skips the rest of its padding unread:
    "ab\\0cd" would arrive as "ab" (a name cut short, or a file saved under another name). Refuse a
    string whose padding holds anything but NULs. Stops quietly where the data is cut short (the
    parser reports that)."""
    for index, tag in enumerate(tags[1:], 1):
        if at >= len(data):
            return
        if tag in _ARG_SIZES:
            at += _ARG_SIZES[tag]
        elif tag == ord("s"):
            end = data.find(b"\x00", at)
            if end < 0:
                return
            padded = end + 4 - end % 4
            if data[end:padded].strip(b"\x00"):
                raise BadPacket(f"string argument {index} holds a NUL byte ({data[at:at + 40].rstrip(bytes(1))!r}); "
                                "text never contains NUL")
            at = padded
        elif tag == ord("b"):
            if at + 4 > len(data):
                return
            size = int.from_bytes(data[at:at + 4], "big", signed=True)
            if size < 0:
                return
            at += 4 + size + (-size % 4)
    if at < len(data):
        raise BadPacket(f"{len(data) - at} bytes after the last argument (a string holding a NUL byte?): "
                        f"{data[at:at + 24]!r}")


def encode_message(address: str, *args: object) -> bytes:
    builder = OscMessageBuilder(address=address)
    for arg in args:
        if isinstance(arg, bool):
            builder.add_arg(int(arg), "i")
        elif isinstance(arg, int):
            builder.add_arg(arg, "i")
        elif isinstance(arg, float):
            builder.add_arg(arg, "f")
        else:
            builder.add_arg(str(arg), "s")
    return builder.build().dgram


def decode_packet(data: bytes) -> list[tuple[str, list[object]]]:
    """(address, arguments) for every message in a datagram; ValueError if it does not parse."""
    try:
        return [(str(t.message.address), list(t.message.params)) for t in OscPacket(data).messages]
    except Exception as err:
        raise ValueError(f"not a valid OSC packet: {err}") from err


# -- argument checks -------------------------------------------------------------------------
def _number(address: str, value: object, what: str = "argument") -> float:
    if isinstance(value, bool):
        return float(value)
    if not isinstance(value, int | float):
        raise BadMessage(f"{address}: {what} must be a number, got {type(value).__name__} {value!r:.40}")
    number = float(value)
    if not math.isfinite(number):
        raise BadMessage(f"{address}: {what} must be a finite number, got {number}")
    return number


def _count(address: str, args: Sequence[object], low: int, high: int, spec: str) -> None:
    if not low <= len(args) <= high:
        raise BadMessage(f"{address}: expected {spec}, got {len(args)} argument(s)")


def _flag(address: str, args: Sequence[object]) -> bool:
    _count(address, args, 1, 1, "one int (1 on, 0 off)")
    return _number(address, args[0]) != 0.0


def _pressed(address: str, args: Sequence[object]) -> bool:
    """A momentary action: no argument, or a button's press (non-zero); its release (0) is ignored."""
    _count(address, args, 0, 1, "no argument, or a button value")
    return not args or _number(address, args[0]) != 0.0


def _momentary(event: Event) -> Callable[[str, Sequence[object]], Event | None]:
    """A momentary action: done on a press (no argument, or non-zero); a release (0 / false) is ignored."""
    return lambda a, x: event if _pressed(a, x) else None


def _state(event: Event) -> Callable[[str, Sequence[object]], Event]:
    """Wekinator's start/stop messages set a state: any arguments (Wekinator ignores them, and scripts
    send an arbitrary 0) set it again, which changes nothing when it is already set."""
    def handler(address: str, args: Sequence[object]) -> Event:
        _count(address, args, 0, 1, "no argument, or a button value")
        return event
    return handler


def _cannot(what: str) -> Callable[[str, Sequence[object]], Event | None]:
    def handler(address: str, args: Sequence[object]) -> Event | None:
        raise BadMessage(f"{address}: {what}")
    return handler


NO_DTW = ("ravemap has no dynamic time warping (gesture matching): record continuous examples "
          "with /wekinator/control/startRecording and /wekinator/control/outputs instead")
WEKINATOR_CANNOT = {
    "/wekinator/control/startDtwRecording": NO_DTW,
    "/wekinator/control/stopDtwRecording": NO_DTW,
    "/wekinator/control/selectInputsForOutput": (
        "ravemap trains one regressor on every input for all outputs; send only the inputs you want "
        "in /wek/inputs instead"),
}


def _name(address: str, args: Sequence[object], required: bool) -> str | None:
    _count(address, args, 1 if required else 0, 1, "one string (a name)" if required else "an optional name")
    if not args:
        return None
    if not isinstance(args[0], str):
        raise BadMessage(f"{address}: the name must be a string, got {type(args[0]).__name__}")
    return args[0]


def _names(address: str, args: Sequence[object]) -> tuple[str, ...]:
    _count(address, args, 1, MAX_ARGS, "one or more strings (names, in order)")
    for i, name in enumerate(args):
        if not isinstance(name, str):
            raise BadMessage(f"{address}: name {i + 1} must be a string, got {type(name).__name__}")
        if not 0 < len(name) <= MAX_NAME or not name.isprintable():
            raise BadMessage(f"{address}: name {i + 1} {name[:40]!r} must be printable text of "
                             f"1 to {MAX_NAME} characters")
    return tuple(str(n) for n in args)


MAX_MORPH = 600.0


def _scene(address: str, value: object) -> int:
    """A scene number, 1..MAX_SCENE (a float button value 3.0 is scene 3)."""
    number = _number(address, value, "scene")
    if number != int(number) or not 1 <= number <= MAX_SCENE:
        raise BadMessage(f"{address}: the scene must be an int in 1..{MAX_SCENE}, got {value!r}")
    return int(number)


def _reply_port(address: str, args: Sequence[object], own: Collection[int] = ()) -> int | None:
    """The port a reply goes to; never one of ravemap's own control ports (`own`): ravemap would
    read its own replies as commands (`/ravemap/latent` would overwrite the sliders)."""
    _count(address, args, 0, 1, "no argument, or an int reply port")
    if not args:
        return None
    port = _number(address, args[0], "reply port")
    if port != int(port) or not 0 < port < 65536:
        raise BadMessage(f"{address}: reply port must be an int in 1..65535, got {args[0]!r}")
    if int(port) in own:
        raise BadMessage(f"{address}: reply port {int(port)} is ravemap's own control port; give the port your "
                         "controller listens on")
    return int(port)


@dataclass(frozen=True)
class Route:
    """Numbers at `address` feed input dims, scaled from the sender's range to 0..1."""

    address: str
    dims: tuple[int, ...] | None
    low: float
    high: float

    @classmethod
    def from_config(cls, route: OscRoute) -> Route:
        return cls(route.address, route.dims, route.range[0], route.range[1])


# -- translation -----------------------------------------------------------------------------
class OscTranslator:
    """Address -> event. `translate` raises BadMessage with the reason for the sender.

    The addresses are the vocabulary's (`control/vocabulary.py`): each entry's argument count is checked
    from it first (with the entry's wording), then the address's own function below, if it has one,
    checks the rest and makes the event; an entry with none becomes `Command(entry.becomes, args)` with
    its arguments checked against its type tags and range (a new parameter is one vocabulary entry)."""

    def __init__(self, n_inputs: int, n_targets: int, routes: Sequence[OscRoute],
                 latent_range: tuple[float, float] = (-3.0, 3.0), wekinator_units: str = "unit"):
        self.n_inputs = n_inputs
        self.n_targets = n_targets
        self.own_ports: set[int] = set()  # the control port(s) ravemap listens on: never a reply port
        self.latent_range = latent_range
        self.wekinator_units = wekinator_units
        self.routes = {r.address: Route.from_config(r) for r in routes}
        for route in self.routes.values():
            bad = [d for d in (route.dims or ()) if d >= n_inputs]
            if bad:
                raise ValueError(f"osc.routes {route.address}: dims {bad} but inputs.size is {n_inputs}")
        commands: dict[str, Callable[[str, Sequence[object]], Event | None]] = {
            "/ravemap/latent": self._latent,
            "/ravemap/record": lambda a, x: Command("record", (_flag(a, x),)),
            "/ravemap/record/once": lambda a, x: Command("record_once") if _pressed(a, x) else None,
            "/ravemap/examples/clear": lambda a, x: Command("clear") if _pressed(a, x) else None,
            "/ravemap/examples/undo": lambda a, x: Command("undo") if _pressed(a, x) else None,
            "/ravemap/train": self._train,
            "/ravemap/train/cancel": lambda a, x: Command("train_cancel") if _pressed(a, x) else None,
            "/ravemap/run": lambda a, x: Command("run", (_flag(a, x),)),
            "/ravemap/mapping/save": lambda a, x: Command("save", (_name(a, x, False),)),
            "/ravemap/mapping/load": lambda a, x: Command("load", (_name(a, x, True),)),
            "/ravemap/mapping/new": lambda a, x: Command("new", (_name(a, x, False),)),
            "/ravemap/transfer": lambda a, x: Command("transfer", (_flag(a, x),)),
            "/ravemap/engine": lambda a, x: Command("engine", (_flag(a, x),)),
            "/ravemap/gain": self._gain,
            "/ravemap/model": lambda a, x: Command("model", (_name(a, x, True),)),
            "/ravemap/loop": lambda a, x: Command("loop", (_name(a, x, True),)),
            "/ravemap/status": lambda a, x: Command("status", (_reply_port(a, x, self.own_ports),)),
            "/ravemap/ping": lambda a, x: Command("ping", (_reply_port(a, x, self.own_ports),)),
            "/ravemap/learn": self._learn,
            "/ravemap/learn/control": self._learn_control,
            "/ravemap/limit/off": _momentary(Command("limit", (None,))),
            "/ravemap/vector/capture": lambda a, x: Command("vector_capture", (_name(a, x, True), None)),
            "/ravemap/vector/apply": self._vector_apply,
            "/ravemap/gesture/record": self._gesture_record,
            "/ravemap/gesture/play": self._gesture_play,
            "/ravemap/gesture/stop": _momentary(Command("gesture_stop")),
            "/ravemap/scene/store": lambda a, x: Command("scene_store", (_scene(a, x[0]),)),
            "/ravemap/scene/recall": self._scene_recall,
            # Wekinator's control messages, with Wekinator's meaning
            "/wekinator/control/outputs": self._wek_outputs,
            "/wekinator/control/startRecording": _state(Command("record", (True,))),
            "/wekinator/control/stopRecording": _state(Command("record", (False,))),
            "/wekinator/control/startRunning": _state(Command("run", (True,))),
            "/wekinator/control/stopRunning": _state(Command("run", (False,))),
            "/wekinator/control/train": _momentary(Command("train", (None,))),
            "/wekinator/control/cancelTrain": _momentary(Command("train_cancel")),
            "/wekinator/control/deleteAllExamples": _momentary(Command("clear")),
            "/wekinator/control/deleteExamplesForOutput": self._wek_delete_for_output,
            "/wekinator/control/enableModelRecording": lambda a, x: self._wek_models(a, x, "recording", True),
            "/wekinator/control/disableModelRecording": lambda a, x: self._wek_models(a, x, "recording", False),
            "/wekinator/control/enableModelRunning": lambda a, x: self._wek_models(a, x, "running", True),
            "/wekinator/control/disableModelRunning": lambda a, x: self._wek_models(a, x, "running", False),
            "/wekinator/control/setInputNames": lambda a, x: Command("names", ("input", _names(a, x))),
            "/wekinator/control/setOutputNames": lambda a, x: Command("names", ("output", _names(a, x))),
            "/wekinator/control/saveModelToFile": lambda a, x: Command("save", (_name(a, x, True),)),
            "/wekinator/control/loadModelFromFile": lambda a, x: Command("load", (_name(a, x, True),)),
            "/wekinator/control/runNewProject": _momentary(Command("new", (None,))),
        }
        commands.update({address: _cannot(why) for address, why in WEKINATOR_CANNOT.items()})
        self.vocabulary = vocabulary.by_address()
        undeclared = sorted(set(commands) - set(self.vocabulary))
        if undeclared:
            raise ValueError(f"OSC addresses missing from the vocabulary: {undeclared}")
        self._own = set(commands)  # addresses with a function of their own (the rest: `_generic`)
        for entry in self.vocabulary.values():
            if entry.address not in commands and entry.becomes not in vocabulary.EVENTS and not entry.per_dim:
                commands[entry.address] = self._generic(entry)
        self.commands = commands

    def addresses(self) -> list[str]:
        """Every address this translator routes (for docs, layouts and tests)."""
        return sorted({*self.commands, *self.routes, "/ravemap/latent/N", "/ravemap/scale/N"})

    def entry(self, address: str) -> Entry | None:
        """The vocabulary entry of `address` (`/ravemap/latent/3` is `/ravemap/latent/N`'s)."""
        found = self.vocabulary.get(address)
        for prefix in ("/ravemap/latent/", "/ravemap/scale/"):
            if found is None and address.startswith(prefix):
                found = self.vocabulary.get(prefix + "N")
        return found

    def ranges(self, entry: Entry) -> tuple[tuple[float, float] | None, ...]:
        """One (low, high) per argument (None: no range), the config's names filled in."""
        if entry.range == "latent":
            return (self.latent_range,) * max(1, len(entry.tags))
        if entry.range == "unit":
            return ((0.0, 1.0),) * max(1, len(entry.tags))
        return tuple(entry.range or ())

    def _generic(self, entry: Entry) -> Callable[[str, Sequence[object]], Event | None]:
        """An entry with no function of its own: its arguments checked against its type tags and range."""
        def handler(address: str, args: Sequence[object]) -> Event:
            ranges = self.ranges(entry)
            values: list[object] = []
            for i, value in enumerate(args):
                tag = entry.tags[min(i, len(entry.tags) - 1)]
                if tag == "s":
                    if not isinstance(value, str):
                        raise BadMessage(f"{address}: argument {i + 1} must be a string, got {type(value).__name__}")
                    values.append(value)
                    continue
                number = _number(address, value, f"argument {i + 1}")
                bounds = ranges[min(i, len(ranges) - 1)] if ranges else None
                if bounds is not None and not bounds[0] <= number <= bounds[1]:
                    if entry.clip != "both":
                        raise BadMessage(f"{address}: argument {i + 1} must be in {bounds[0]:g}..{bounds[1]:g}, "
                                         f"got {number:g}")
                    number = min(max(number, bounds[0]), bounds[1])
                values.append(int(number) if tag == "i" else number)
            return Command(entry.becomes, tuple(values))
        return handler

    @staticmethod
    def _check_count(entry: Entry, address: str, args: Sequence[object]) -> None:
        tags = entry.tags
        low = max(0, len(tags) - entry.optional)
        high = MAX_ARGS if entry.variadic else max(len(tags), entry.optional)
        spec = entry.expect or (f"{low} to {high} arguments ({entry.args})" if low != high
                                else f"{low} argument(s) ({entry.args})")
        _count(address, args, low, high, spec)

    def translate(self, address: str, args: Sequence[object]) -> Event | None:
        if len(address) > MAX_ADDRESS or not address.isprintable():
            raise BadMessage(f"{address[:40]!r}: an OSC address is printable text of at most {MAX_ADDRESS} characters")
        if len(args) > MAX_ARGS:
            raise BadMessage(f"{address}: too many arguments ({len(args)})")
        route = self.routes.get(address)
        if route is not None:
            return self._inputs(route, args)
        handler = self.commands.get(address)
        if handler is not None:
            entry = self.vocabulary.get(address)
            if entry is not None and (entry.expect is not None or address not in self._own):
                self._check_count(entry, address, args)
            return handler(address, args)
        if address.startswith("/ravemap/latent/"):
            return self._latent_one(address, args)
        if address.startswith("/ravemap/scale/"):
            return self._scale_one(address, args)
        raise BadMessage(f"{address}: unknown address; see the OSC API in the README")

    def _inputs(self, route: Route, args: Sequence[object]) -> SetInputs:
        dims = route.dims if route.dims is not None else tuple(range(len(args)))
        if route.dims is None:  # the whole input vector; the session checks its size against the mapping
            _count(route.address, args, 1, MAX_ARGS, f"1..{MAX_ARGS} numbers (the whole input vector)")
        else:
            _count(route.address, args, len(dims), len(dims), f"{len(dims)} numbers")
        span = route.high - route.low
        values = tuple(
            (dim, (_number(route.address, value, f"argument {i + 1}") - route.low) / span)
            for i, (dim, value) in enumerate(zip(dims, args, strict=True))
        )
        if not all(math.isfinite(v) for _, v in values):
            raise BadMessage(f"{route.address}: a value is too far outside the range {route.low}..{route.high}")
        if route.dims is not None:
            # Outside the declared range: the nearest end of it (an example never holds what no gesture gives).
            # A whole-vector route (Wekinator's /wek/inputs) carries features in the sender's own units.
            values = tuple((dim, min(max(v, 0.0), 1.0)) for dim, v in values)
        return SetInputs(values, source=route.address, whole=route.dims is None)

    def _latent(self, address: str, args: Sequence[object]) -> SetTargets:
        _count(address, args, self.n_targets, self.n_targets, f"{self.n_targets} numbers (one per latent dim)")
        return SetTargets(tuple(_number(address, v, f"value {i + 1}") for i, v in enumerate(args)))

    def _latent_one(self, address: str, args: Sequence[object]) -> SetTarget:
        tail = address.rsplit("/", 1)[1]
        if not (tail.isascii() and tail.isdigit()) or len(tail) > 6 or int(tail) >= self.n_targets:
            raise BadMessage(f"{address}: latent index must be 0..{self.n_targets - 1}")
        _count(address, args, 1, 1, "one number")
        return SetTarget(int(tail), _number(address, args[0]))

    def _scale_one(self, address: str, args: Sequence[object]) -> Command:
        """`/ravemap/scale/N f`: N is checked against the model playing by the session (a swap may change it)."""
        tail = address.rsplit("/", 1)[1]
        if not (tail.isascii() and tail.isdigit()) or len(tail) > 4:
            raise BadMessage(f"{address}: the latent dim must be an int from 0 (the model's latent size - 1 at most)")
        entry = self.vocabulary["/ravemap/scale/N"]
        _count(address, args, 1, 1, entry.expect or "one number")
        value = _number(address, args[0])
        low, high = self.ranges(entry)[0] or (-math.inf, math.inf)
        if not low <= value <= high:
            raise BadMessage(f"{address}: argument 1 must be in {low:g}..{high:g}, got {value:g}")
        return Command(entry.becomes, (int(tail), value))

    def _learn_control(self, address: str, args: Sequence[object]) -> Command:
        name = _name(address, args, True)
        try:
            vocabulary.midi_control(str(name))
        except ValueError as err:
            raise BadMessage(f"{address}: {err}") from None
        return Command("learn", (" ".join(str(name).split()),))

    def _train(self, address: str, args: Sequence[object]) -> Command | None:
        _count(address, args, 0, 1, "no argument, or an int number of epochs")
        if not args:
            return Command("train", (None,))
        value = args[0]
        if isinstance(value, float):  # a button: 1.0 on press, 0.0 on release
            return Command("train", (None,)) if _number(address, value) != 0.0 else None
        epochs = _number(address, value, "epochs")
        if epochs != int(epochs) or not 1 <= epochs <= 1_000_000:
            raise BadMessage(f"{address}: epochs must be an int in 1..1000000, got {value!r}")
        return Command("train", (int(epochs),))

    def _wek_outputs(self, address: str, args: Sequence[object]) -> SetTargets:
        """The values to record, one per output: 0..1 mapped onto `latent.range` in `unit` units."""
        _count(address, args, self.n_targets, self.n_targets, f"{self.n_targets} numbers (one per output)")
        values = [_number(address, v, f"output {i + 1}") for i, v in enumerate(args)]
        if self.wekinator_units == "unit":
            low, high = self.latent_range
            values = [low + v * (high - low) for v in values]
        return SetTargets(tuple(values))

    def _output_index(self, address: str, value: object) -> int:
        number = _number(address, value, "output index")
        if number != int(number) or not 1 <= number <= self.n_targets:
            raise BadMessage(f"{address}: output indexes go from 1 to {self.n_targets}, got {value!r}")
        return int(number) - 1

    def _wek_delete_for_output(self, address: str, args: Sequence[object]) -> Command | None:
        _count(address, args, 1, 1, f"one int, the output (1..{self.n_targets})")
        if _number(address, args[0], "output index") == 0.0:
            return None  # a button's release
        return Command("delete_output", (self._output_index(address, args[0]),))

    def _wek_models(self, address: str, args: Sequence[object], what: str, on: bool) -> Command:
        _count(address, args, 1, MAX_ARGS, f"one or more ints, the outputs (1..{self.n_targets})")
        outputs = tuple(sorted({self._output_index(address, v) for v in args}))
        return Command("outputs_enabled", (what, outputs, on))

    def _gain(self, address: str, args: Sequence[object]) -> Command:
        _count(address, args, 1, 1, "one number (dB)")
        return Command("gain", (_number(address, args[0], "gain"),))

    def _vector_apply(self, address: str, args: Sequence[object]) -> Command:
        _count(address, args, 1, 2, "a name and an optional amount")
        name = _name(address, args[:1], True)
        amount = _number(address, args[1], "amount") if len(args) > 1 else 1.0
        return Command("vector_apply", (name, amount))

    def _gesture_record(self, address: str, args: Sequence[object]) -> Command:
        """`i [s name]`: non-zero starts a recording (under the name, if given), 0 ends it."""
        on = _number(address, args[0]) != 0.0
        return Command("gesture_record", (on, _name(address, args[1:], False)))

    def _gesture_play(self, address: str, args: Sequence[object]) -> Command:
        """`s name [f speed] [i loop]`: speed in 0.1..10 (default 1), loop non-zero (default) or 0."""
        name = _name(address, args[:1], True)
        speed = _number(address, args[1], "speed") if len(args) > 1 else 1.0
        low, high = self.ranges(self.vocabulary[address])[1] or (0.1, 10.0)
        if not low <= speed <= high:
            raise BadMessage(f"{address}: speed must be in {low:g}..{high:g}, got {speed:g}")
        loop = _number(address, args[2], "loop") != 0.0 if len(args) > 2 else True
        return Command("gesture_play", (name, speed, loop))
    def _scene_recall(self, address: str, args: Sequence[object]) -> Command:
        number = _scene(address, args[0])
        time = _number(address, args[1], "morph time") if len(args) > 1 else 0.0
        if not 0.0 <= time <= MAX_MORPH:
            raise BadMessage(f"{address}: the morph time must be 0..{MAX_MORPH:g} (seconds or beats), got {time:g}")
        unit = args[2] if len(args) > 2 else None
        if unit is not None and unit not in ("seconds", "beats"):
            raise BadMessage(f"{address}: the morph time's unit is seconds or beats, got {str(unit)[:20]!r}")
        return Command("scene_recall", (number, time, unit))

    def _learn(self, address: str, args: Sequence[object]) -> Command:
        _count(address, args, 1, 1, "one int (the input dim)")
        dim = _number(address, args[0], "input dim")
        if dim != int(dim) or not 0 <= dim < self.n_inputs:
            raise BadMessage(f"{address}: input dim must be an int in 0..{self.n_inputs - 1}, got {args[0]!r}")
        return Command("learn", (int(dim),))


# -- transport -------------------------------------------------------------------------------
@dataclass
class OscCounters:
    packets: int = 0
    messages: int = 0
    rejected_hosts: int = 0
    bad_packets: int = 0
    bad_messages: int = 0
    unknown_addresses: int = 0


class AllowList:
    def __init__(self, cidrs: Sequence[str]):
        self.networks = [ipaddress.ip_network(c, strict=False) for c in cidrs]

    def allows(self, host: str) -> bool:
        try:
            ip = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        if ip.version == 6 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in net for net in self.networks if net.version == ip.version)


def translator_for(config: Config, n_targets: int | None = None) -> OscTranslator:
    """The translator both control ports use, from the config."""
    return OscTranslator(config.inputs.size, n_targets or len(config.latent.dims), config.osc.routes,
                         latent_range=config.latent.range, wekinator_units=config.osc.wekinator_units)


class OscServer:
    """Receives on `osc.host:osc.port` (or the port given), translates, puts events into the inbox."""

    def __init__(self, config: Config, inbox: Inbox, reply_error: Callable[[tuple[str, int] | None, str], None],
                 port: int | None = None, n_targets: int | None = None, name: str = "ravemap-osc",
                 what: str = "the OSC control port", hint: str = "choose another with --osc-port"):
        self.config = config
        self.inbox = inbox
        self.reply_error = reply_error
        self.name = name
        self.counters = OscCounters()
        self.allow = AllowList(config.osc.allow)
        self.translator = translator_for(config, n_targets)
        self._log = RateLimitedLog(log, seconds=2.0)
        self._thread: threading.Thread | None = None
        self._running = False
        host = config.osc.host
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
            self._sock.bind((host, port if port is not None else config.osc.port))
            self.translator.own_ports.add(int(self._sock.getsockname()[1]))
        except OSError as err:
            self._sock.close()
            raise DeviceError(
                f"cannot open {what} {host}:{port or config.osc.port}: {err.strerror or err}; "
                f"is another ravemap (or another program) using it? {hint}"
            ) from err
        self._sock.settimeout(0.1)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._sock.getsockname()[:2]
        return str(host), int(port)

    def _serve(self) -> None:
        sock = self._sock
        while self._running:
            try:
                data, sender = sock.recvfrom(MAX_PACKET + 1)
            except TimeoutError:
                continue
            except OSError as err:  # e.g. ICMP port unreachable reported on Linux for an earlier reply
                self._log.warning("OSC socket: %s", err, key="socket")
                continue
            if not self.allow.allows(sender[0]):
                self.counters.rejected_hosts += 1
                self._log.warning("ignored OSC from %s: not in osc.allow", sender[0], key="reject:" + sender[0])
                continue
            try:
                self.handle_datagram(data, sender)
            except Exception:  # never let one datagram end the control port
                log.exception("unexpected error handling OSC from %s", sender[0])

    def handle_datagram(self, data: bytes, sender: tuple[str, int]) -> None:
        self.counters.packets += 1
        origin = (sender[0], sender[1])
        if len(data) > MAX_PACKET:
            self._bad_packet(origin, f"packet of {len(data)}+ bytes is too large (at most {MAX_PACKET})")
            return
        try:
            check_framing(data)
            messages = [timed.message for timed in OscPacket(data).messages]
        except BadPacket as err:
            self._bad_packet(origin, f"not a valid OSC packet: {err}")
            return
        except RecursionError:
            self._bad_packet(origin, "bundle nested too deep")
            return
        except Exception as err:  # ParseError, struct.error, IndexError, UnicodeDecodeError...
            self._bad_packet(origin, f"not a valid OSC packet ({type(err).__name__}: {str(err)[:80]})")
            return
        for message in messages:
            self.counters.messages += 1
            address = str(message.address)
            try:
                event = self.translator.translate(address, list(message.params))
            except BadMessage as err:
                self._bad_message(origin, str(err), unknown="unknown address" in str(err))
                continue
            except Exception as err:  # a translator bug must not kill the control port
                self._bad_message(origin, f"{address[:60]}: could not be handled ({err})", unknown=False)
                continue
            if event is not None:
                self.inbox.put(_with_origin(event, origin))

    def _bad_packet(self, origin: tuple[str, int], reason: str) -> None:
        self.counters.bad_packets += 1
        self._log.warning("bad OSC packet from %s: %s", origin[0], reason, key="packet:" + origin[0])
        self.reply_error(origin, reason)

    def _bad_message(self, origin: tuple[str, int], reason: str, unknown: bool) -> None:
        if unknown:
            self.counters.unknown_addresses += 1
        else:
            self.counters.bad_messages += 1
        self._log.warning("bad OSC message from %s: %s", origin[0], reason, key="msg:" + origin[0])
        self.reply_error(origin, reason)

    def start(self) -> None:
        self._running = True
        self._thread = threading.Thread(target=self._serve, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._running = False
        if self._thread is not None:
            self._thread.join(2.0)
            self._thread = None
        self._sock.close()


def _with_origin(event: Event, origin: tuple[str, int]) -> Event:
    from dataclasses import replace

    return replace(event, origin=origin)
