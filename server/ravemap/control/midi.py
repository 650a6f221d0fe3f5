"""MIDI in through mido + python-rtmidi: the only module that imports them.

Controllers become events: a routed control change (7-bit, or a 14-bit MSB n / LSB n+32
pair) or pitch bend sets an input dim, normalised to 0..1; a routed note-on or CC >= 64
triggers an action (record, train, run...); a control change in `midi.controls` drives a chain
control (mix, jitter, limit, input gain, autopilot, autopilot rate, scale, scale N: the vocabulary's
entries marked `midi`) across its declared range, 0 at its low end and 127 at its high end.
`learn(dim)` binds the next control change that moves, on any channel, to that input dim;
`learn(name)` binds it to that chain control instead. A note or CC in `midi.actions` with
`action: scene` recalls that scene (`Command("scene_recall", ...)`).

MIDI clock (24 ticks per quarter note), start, stop, continue and song position pointers become
`MidiClock` events, timestamped here (`time.monotonic()` as rtmidi hands the message over) with the
tick's position counted here (from 0 at the first tick after a start; a continue goes on counting);
the session's tempo (`ravemap.session.tempo`) follows them with `tempo.source: midi`. One clock
source at a time is expected: two would interleave their counts (the tempo then fits afresh).

Ports: every input port whose name contains `midi.port` (or all of them), through the
rtmidi API in `midi.api` (ALSA, JACK, CoreMIDI, WinMM; `default` is the platform's own).
With `virtual_port`, ravemap also opens a port of its own that other programs connect to.
No port at all: one info line, and the rest of ravemap runs. alsa-lib prints its own line to
stderr when it finds no sequencer (`ALSA lib seq_hw.c:...: open /dev/snd/seq failed`) before
rtmidi raises; `quiet_alsa` hands it a silent error handler for the time of the probe, so the
info line is all a user sees.

Threads: rtmidi calls `_on_message` on its own thread, one per open port; it only
translates and puts events in the inbox. `learn` is called from the session thread; the
routing table is swapped whole (immutable dicts), never edited in place.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import mido

from ravemap.config import Config, MidiAction
from ravemap.control import vocabulary
from ravemap.control.events import Command, Inbox, Learned, MidiClock, SetInputs
from ravemap.ratelimit import RateLimitedLog

log = logging.getLogger("ravemap.midi")

# rtmidi's APIs as mido names them; ALSA / CoreMIDI / WinMM are each platform's default.
APIS = {
    "alsa": "mido.backends.rtmidi/LINUX_ALSA",
    "jack": "mido.backends.rtmidi/UNIX_JACK",
    "coremidi": "mido.backends.rtmidi/MACOSX_CORE",
    "winmm": "mido.backends.rtmidi/WINDOWS_MM",
}
TOGGLES = {"record", "run", "transfer"}
COMMANDS = {"scene": "scene_recall"}  # `midi.actions` names that are not the command's own name
CLOCK = {"clock": "tick", "start": "start", "stop": "stop", "continue": "continue", "songpos": "position"}


# alsa-lib's snd_lib_error_handler_t is variadic (file, line, function, err, fmt, ...); a handler that
# ignores everything can take the fixed arguments only.
_ALSA_HANDLER = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int,
                                 ctypes.c_char_p)
_SILENT = _ALSA_HANDLER(lambda *args: None)  # module-level: alive as long as alsa-lib may call it


def _libasound() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libasound.so.2")  # the library rtmidi is linked to (already loaded, same handle)
    except OSError:
        return None


@contextlib.contextmanager
def quiet_alsa() -> Iterator[None]:
    """Within the block, alsa-lib's errors are not printed (they become the exceptions rtmidi raises)."""
    lib = _libasound()
    if lib is None:
        yield
        return
    lib.snd_lib_error_set_handler(_SILENT)
    try:
        yield
    finally:
        lib.snd_lib_error_set_handler(None)  # NULL: alsa-lib's default handler again


def backend_for(api: str) -> mido.Backend:
    return mido.Backend(APIS.get(api, "mido.backends.rtmidi"), load=True)


def list_input_ports() -> dict[str, list[str]]:
    """Input port names for each API that works on this machine."""
    found: dict[str, list[str]] = {}
    for name, backend_name in APIS.items():
        try:
            backend = mido.Backend(backend_name, load=True)
            if backend_name.split("/")[1] not in backend.module.get_api_names():
                continue  # this rtmidi build has no such API on this platform
            with quiet_alsa():
                found[name] = list(backend.get_input_names())
        except Exception as err:  # an API compiled in but unusable here (no ALSA sequencer...)
            found[name] = [f"(unavailable: {str(err).strip()[:80]})"]
    return found


@dataclass(frozen=True)
class CCRoute:
    dim: int
    fine: bool


@dataclass(frozen=True)
class ControlRoute:
    """A CC that drives a chain control: `name` (its MIDI name) becomes `Command(becomes, ([dim,] value))`."""

    name: str
    becomes: str
    low: float
    high: float
    dim: int | None = None

    @classmethod
    def named(cls, name: str) -> ControlRoute:
        entry, dim = vocabulary.midi_control(name)
        low, high = entry.range[0] if isinstance(entry.range, tuple) and entry.range[0] else (0.0, 1.0)
        return cls(name, entry.becomes, float(low), float(high), dim)

    def command(self, value: int) -> Command:
        level = self.low + (self.high - self.low) * value / 127
        return Command(self.becomes, (level,) if self.dim is None else (self.dim, level))


class MidiTranslator:
    """mido messages -> events, by a routing table that `learn` can change."""

    def __init__(self, config: Config, inbox: Inbox):
        midi = config.midi
        self.inbox = inbox
        self.n_inputs = config.inputs.size
        routes: dict[tuple[int | None, int], CCRoute] = {}
        for cc in midi.cc:
            if cc.dim >= self.n_inputs:
                raise ValueError(f"midi.cc {cc.cc}: dim {cc.dim} but inputs.size is {self.n_inputs}")
            if cc.fine and cc.cc > 31:
                raise ValueError(f"midi.cc {cc.cc}: a 14-bit (fine) controller has its MSB on 0..31")
            routes[(cc.channel - 1 if cc.channel else None, cc.cc)] = CCRoute(cc.dim, cc.fine)
        self.routes = routes
        self.pitchbend = midi.pitchbend
        self.pitchbend_channel = midi.pitchbend_channel - 1 if midi.pitchbend_channel else None
        self.note_actions = {(a.channel - 1 if a.channel else None, a.note): _action_command(a)
                             for a in midi.actions if a.note is not None}
        self.cc_actions = {(a.channel - 1 if a.channel else None, a.cc): _action_command(a)
                           for a in midi.actions if a.cc is not None}
        self.ticks = 0  # the next clock tick's position (MIDI thread only)
        self.controls = {(c.channel - 1 if c.channel else None, c.cc): ControlRoute.named(c.control)
                         for c in midi.controls}
        self._msb: dict[tuple[int, int], int] = {}
        self._lsb: dict[tuple[int, int], int] = {}
        self._learning: int | str | None = None
        self.received = 0
        self.ignored = 0

    def learn(self, target: int | str) -> None:
        """The next control change that moves drives input dim `target` (an int) or the chain control
        of that MIDI name (a str: "mix", "scale 3"...)."""
        if isinstance(target, str):
            ControlRoute.named(target)  # ValueError naming the names allowed
        elif not 0 <= target < self.n_inputs:
            raise ValueError(f"input dim must be 0..{self.n_inputs - 1}, got {target}")
        self._learning = target

    @staticmethod
    def _lookup(table: dict, channel: int, number: int):
        return table.get((channel, number), table.get((None, number)))

    def translate(self, msg: mido.Message) -> None:
        self.received += 1
        kind = msg.type
        if kind in CLOCK:
            self._clock(CLOCK[kind], msg)
        elif kind == "control_change":
            self._control_change(msg.channel, msg.control, msg.value)
        elif kind == "pitchwheel" and self.pitchbend is not None:
            if self.pitchbend_channel in (None, msg.channel):
                self.inbox.put(SetInputs(((self.pitchbend, (msg.pitch + 8192) / 16383),), source="MIDI pitch bend"))
        elif kind == "note_on" and msg.velocity > 0:
            action = self._lookup(self.note_actions, msg.channel, msg.note)
            if action:
                self.inbox.put(action)
            else:
                self.ignored += 1
        else:
            self.ignored += 1

    def _control_change(self, channel: int, control: int, value: int) -> None:
        if self._learning is not None and control < 120:
            self._learned(self._learning, channel, control)
        action = self._lookup(self.cc_actions, channel, control)
        if action:
            if value >= 64:
                self.inbox.put(action)
            return
        chain = self._lookup(self.controls, channel, control)
        if chain is not None:
            self.inbox.put(chain.command(value))
            return
        route = self._lookup(self.routes, channel, control)
        if route is not None:
            if route.fine:
                self._msb[(channel, control)] = value
                self._lsb[(channel, control)] = 0
                value14 = value << 7
                self.inbox.put(SetInputs(((route.dim, value14 / 16383),), source=f"MIDI CC {control}"))
            else:
                self.inbox.put(SetInputs(((route.dim, value / 127),), source=f"MIDI CC {control}"))
            return
        if 32 <= control < 64:  # the LSB of a 14-bit pair
            msb_cc = control - 32
            route = self._lookup(self.routes, channel, msb_cc)
            if route is not None and route.fine:
                msb = self._msb.get((channel, msb_cc), 0)
                self.inbox.put(SetInputs(((route.dim, ((msb << 7) | value) / 16383),), source=f"MIDI CC {msb_cc}"))
                return
        self.ignored += 1

    def _learned(self, target: int | str, channel: int, control: int) -> None:
        """Bind CC `control` on `channel` to `target` (an input dim or a chain control), in place of what
        drove it and of what it drove; the tables are replaced whole."""
        self._learning = None
        key = (channel, control)
        routes = {k: r for k, r in self.routes.items() if k != key and (isinstance(target, str) or r.dim != target)}
        controls = {k: c for k, c in self.controls.items() if k != key and c.name != target}
        if isinstance(target, str):
            controls[key] = ControlRoute.named(target)
        else:
            routes[key] = CCRoute(target, False)
        self.routes, self.controls = routes, controls
        self.inbox.put(Learned(target, f"CC {control} on channel {channel + 1}"))

    def _clock(self, kind: str, msg: mido.Message) -> None:
        """A clock message, timestamped now; the tick count is kept here."""
        at = time.monotonic()
        if kind == "tick":
            position, self.ticks = self.ticks, self.ticks + 1
            self.inbox.put(MidiClock("tick", position, at))
            return
        if kind == "start":
            self.ticks = 0
        elif kind == "position":
            self.ticks = int(msg.pos) * 6  # a song position counts sixteenth notes
        self.inbox.put(MidiClock(kind, self.ticks, at))


def _action_command(action: MidiAction) -> Command:
    """The command a note or CC in `midi.actions` sends (made once, at start: events are immutable)."""
    if action.action in TOGGLES:
        return Command("toggle", (action.action,))
    if action.action == "train":
        return Command("train", (None,))
    if action.action == "scene":
        return Command(COMMANDS["scene"], (action.scene, action.morph, None))
    return Command(action.action)


class MidiInput:
    """Opens the configured ports and feeds a `MidiTranslator`."""

    def __init__(self, config: Config, inbox: Inbox):
        self.config = config
        self.translator = MidiTranslator(config, inbox)
        self.virtual_port = config.midi.virtual_port
        self.ports: list = []
        self._log = RateLimitedLog(log, seconds=5.0)

    def open(self) -> list[str]:
        with quiet_alsa():
            return self._open()

    def _open(self) -> list[str]:
        midi = self.config.midi
        try:
            backend = backend_for(midi.api)
            names: Sequence[str] = backend.get_input_names()
        except Exception as err:
            log.info("MIDI is off: the %s MIDI API is not available here (%s)", midi.api, str(err).strip()[:120])
            return []
        wanted = [n for n in names if midi.port == "all" or midi.port.lower() in n.lower()]
        opened = []
        for name in wanted:
            try:
                self.ports.append(backend.open_input(name, callback=self._on_message))
                opened.append(name)
            except Exception as err:
                log.warning("cannot open MIDI input %r: %s", name, err)
        if self.virtual_port:
            try:
                self.ports.append(backend.open_input(self.virtual_port, virtual=True, callback=self._on_message))
                opened.append(f"{self.virtual_port} (virtual)")
            except Exception as err:
                log.warning("cannot open a virtual MIDI port %r: %s", self.virtual_port, err)
        if opened:
            log.info("MIDI input from %s", ", ".join(opened))
        else:
            log.info("no MIDI input port%s; MIDI is off, everything else runs",
                     "" if midi.port == "all" else f" matches {midi.port!r}")
        return opened

    def _on_message(self, msg: mido.Message) -> None:
        try:
            self.translator.translate(msg)
        except Exception as err:  # never raise into rtmidi's thread
            self._log.warning("MIDI message %s could not be handled: %s", msg, err)

    @property
    def active(self) -> bool:
        return bool(self.ports)

    def learn(self, target: int | str) -> None:
        self.translator.learn(target)

    def close(self) -> None:
        for port in self.ports:
            port.callback = None  # as mido does: no call into a port being closed
            with contextlib.suppress(Exception):
                port.close()
        self.ports = []
