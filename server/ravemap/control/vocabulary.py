"""Every OSC address ravemap takes, declared once, as data.

As libossia keeps one parameter tree: each entry names its address, its arguments' OSC type tags,
their range or allowed values, unit, description, access (read/write), whether its value is
reported back to controllers, and what it becomes (a session command, or a control event). What is
derived from this table, and nowhere else written out:

- the OSC translator (`control/osc.py`) checks argument counts against it, and turns an entry
  without a translator function of its own into `Command(becomes, args)` after checking its
  types and clamping to its range: a new parameter is one entry;
- the OSCQuery namespace (`control/oscquery.py`): TYPE, RANGE, ACCESS, UNIT, CLIPMODE, DESCRIPTION,
  and VALUE read from the field named by `value` in the daemon's snapshots;
- the control page's parameter controls (`page`: "fader" or "toggle"; `web/state.py` sends them);
- the README's OSC and Wekinator tables (`markdown_table`; a test compares them);
- the layout tests (TouchOSC, Pd, Max send only these addresses);
- the session's handler table test (every `becomes` that is a command has a handler).

Type tags: `f` float, `i` int (any number is accepted; non-zero is on), `s` string; a trailing `…`
repeats the last tag (a whole vector). `optional` trailing arguments may be left out. An address
holding `N` (`/ravemap/latent/N`) stands for one address per latent dim, N from 0.

An entry with `dims_of="scale"` (`/ravemap/scale/N`) has one address per latent dim of the model
playing instead (the length of the status field `scale`), so a model swap can change the address space.

`midi`: a MIDI controller can drive it (`midi.controls` in the config, or `/ravemap/learn/control`),
across its range; its MIDI name is `name` ("mix", "input gain", "scale 3" for a per-dim entry).
`panel`: which group of the page its control goes to ("params", or "performer" for the chain).

`range` gives one (low, high) per argument, or a name the config fills in: "latent" (`latent.range`)
or "unit" (0..1). `clip`: "both" values outside the range are clamped to it, "none" they are refused
(or, for a translator function of its own, checked there).

Threads: none; plain data read by any thread. `VOCABULARY` is read at call time (`entries()`), so a
test may extend it in a daemon of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Access = Literal["", "r", "w", "rw"]
ACCESS_CODES = {"": 0, "r": 1, "w": 2, "rw": 3}  # OSCQuery's ACCESS numbers
EVENTS = ("inputs", "targets", "target", "refused")  # `becomes` values that are not session commands


@dataclass(frozen=True)
class Entry:
    address: str
    types: str  # OSC type tags, "" for none; a trailing "…" repeats the last tag
    args: str  # the README's args column ("—" none, "[i port]" optional)
    description: str
    becomes: str  # a session command name (Command.name), or one of EVENTS
    access: Access = "w"
    range: tuple[tuple[float, float] | None, ...] | str | None = None
    values: tuple[str, ...] | None = None  # allowed values (OSCQuery RANGE VALS)
    unit: str | None = None  # OSCQuery UNIT: "dB", "unit" ...
    clip: Literal["none", "both"] = "none"
    value: str | None = None  # the snapshot field holding its current value (see oscquery.current_values)
    reported: bool = False  # ravemap sends its value back to controllers when it changes
    page: Literal["fader", "toggle"] | None = None  # a control the page builds from this entry
    label: str | None = None  # the page control's name (default: the address's last part)
    optional: int = 0  # trailing arguments that may be left out
    expect: str | None = None  # the argument count's wording in `/ravemap/error` replies
    tables: tuple[str, ...] = ("osc",)  # README tables listing it: "osc", "wekinator"
    alias_of: str | None = None  # another entry's address it does the same as
    dims_of: Literal["targets", "scale"] = "targets"  # a per-dim entry's N: latent targets, or the model's dims
    midi: bool = False  # a MIDI CC may drive it across its range (see `midi_control`)
    panel: Literal["params", "performer"] = "params"  # the page's group for its control

    @property
    def variadic(self) -> bool:
        return self.types.endswith("…")

    @property
    def tags(self) -> str:
        return self.types.rstrip("…")

    @property
    def per_dim(self) -> bool:
        return "/N" in self.address

    @property
    def access_code(self) -> int:
        return ACCESS_CODES[self.access]

    @property
    def name(self) -> str:
        return self.label or self.address.rsplit("/", 1)[1]


ONOFF = "one int (1 on, 0 off)"
PRESS = "no argument, or a button value"
NAME = "one string (a name)"
MAYBE_NAME = "an optional name"
PORT = "no argument, or an int reply port"
W = "wekinator"

VOCABULARY: tuple[Entry, ...] = (
    # -- input vector -----------------------------------------------------------------------------
    Entry("/ravemap/xy", "ff", "f f", "input vector (x, y), 0..1 (values outside a route's range are clamped to it)",
          "inputs", "rw", range=((0.0, 1.0), (0.0, 1.0)), clip="both", value="inputs"),
    Entry("/xy", "ff", "f f", "the same as `/ravemap/xy`, at TouchOSC mk2's XY named \"xy\"", "inputs", "rw",
          range=((0.0, 1.0), (0.0, 1.0)), clip="both", value="inputs", alias_of="/ravemap/xy"),
    Entry("/xy1", "ff", "f f", "the same, at TouchOSC mk2's default XY address", "inputs", "rw",
          range=((0.0, 1.0), (0.0, 1.0)), clip="both", value="inputs", alias_of="/ravemap/xy"),
    Entry("/1/xy1", "ff", "f f", "the same, at TouchOSC mk1's default XY on page 1", "inputs", "rw",
          range=((0.0, 1.0), (0.0, 1.0)), clip="both", value="inputs", alias_of="/ravemap/xy"),
    Entry("/wek/inputs", "f…", "f…", "Wekinator's input message: the whole input vector, in order (a new mapping "
          "takes its size from the first one); records (in record mode) or runs the mapping (in run mode)",
          "inputs", "rw", value="inputs", tables=("osc", W)),
    # -- latent -----------------------------------------------------------------------------------
    Entry("/ravemap/latent", "f…", "f…", "all manual latent targets at once", "targets", "rw",
          range="latent", clip="both", value="targets", reported=True),
    Entry("/ravemap/latent/N", "f", "f", "one manual latent target, N from 0", "target", "rw",
          range="latent", clip="both", value="targets", reported=True, expect="one number"),
    # -- examples, training, running --------------------------------------------------------------
    Entry("/ravemap/record", "i", "i", "1: record an example each time the input changes; 0: stop", "record", "rw",
          range=((0, 1),), value="recording", reported=True, expect=ONOFF),
    Entry("/ravemap/record/once", "", "—", "store one example now", "record_once", "", expect=PRESS, optional=1),
    Entry("/ravemap/examples/clear", "", "—", "delete all examples", "clear", "", expect=PRESS, optional=1),
    Entry("/ravemap/examples/undo", "", "—", "delete the last example", "undo", "", expect=PRESS, optional=1),
    Entry("/ravemap/train", "i", "[i epochs]", "train in the background (a float 1.0 from a button trains with the "
          "default epochs)", "train", range=((1, 1_000_000),), optional=1,
          expect="no argument, or an int number of epochs"),
    Entry("/ravemap/train/cancel", "", "—", "stop the running training; the mapping keeps what it had",
          "train_cancel", "", expect=PRESS, optional=1),
    Entry("/ravemap/run", "i", "i", "1: the regressor drives the latent; 0: manual", "run", "rw",
          range=((0, 1),), value="running", reported=True, expect=ONOFF),
    # -- mappings ---------------------------------------------------------------------------------
    Entry("/ravemap/mapping/save", "s", "[s name]", "save now (under a new name if given)", "save",
          optional=1, expect=MAYBE_NAME),
    Entry("/ravemap/mapping/load", "s", "s name", "load `mappings/<name>.json` (read beside control; "
          "`/ravemap/mapping s` says when it is current)", "load", expect=NAME),
    Entry("/ravemap/mapping/new", "s", "[s name]", "start an empty mapping (the current one is saved first)", "new",
          optional=1, expect=MAYBE_NAME),
    # -- the engine -------------------------------------------------------------------------------
    Entry("/ravemap/transfer", "i", "i", "style transfer on/off", "transfer", "rw", range=((0, 1),),
          value="transfer", reported=True, page="toggle", expect=ONOFF),
    Entry("/ravemap/engine", "i", "i", "0: pause to silence (a one-block fade; model state, offsets and mapping are "
          "kept); 1: resume", "engine", "rw", range=((0, 1),), value="engine", reported=True, page="toggle",
          expect=ONOFF),
    Entry("/ravemap/gain", "f", "f", "output gain in dB (-120..24)", "gain", "rw", range=((-120.0, 24.0),),
          unit="dB", value="gain_db", reported=True, page="fader", expect="one number (dB)"),
    Entry("/ravemap/model", "s", "s name", "hot-swap a model from `paths.models_dir` (`.ts` may be left out); sent "
          "while another loads, it waits (the newest of each kind wins)", "model", "rw", value="model",
          reported=True, expect=NAME),
    Entry("/ravemap/loop", "s", "s name", "hot-swap a loop from `paths.loops_dir` (waits the same way)", "loop", "rw",
          value="loop", reported=True, expect=NAME),
    # -- the performer's chain (the engine's side: audio/chain.py) ------------------------------
    Entry("/ravemap/scale", "f…", "f…", "scale of the model's own latent before the offsets are added (z' = scale x z "
          "+ offset), -4..4: one number for every latent dim of the model, or one per dim; 0 removes the loop's part",
          "scale", "rw", range=((-4.0, 4.0),), value="scale", reported=True, midi=True,
          expect="one number, or one per latent dim of the model"),
    Entry("/ravemap/scale/N", "f", "f", "the scale of the model's latent dim N (N from 0 to its latent size - 1; a "
          "model swap may change how many there are), -4..4", "scale_dim", "rw", range=((-4.0, 4.0),),
          value="scale", reported=True, page="fader", label="scale", dims_of="scale", midi=True, panel="performer",
          expect="one number"),
    Entry("/ravemap/jitter", "f", "f", "Gaussian noise of this std added to every latent dim, a new draw per latent "
          "frame (0..3)", "jitter", "rw", range=((0.0, 3.0),), value="jitter", reported=True, page="fader",
          midi=True, panel="performer", expect="one number"),
    Entry("/ravemap/mix", "f", "f", "dry/wet: 0 plays the source delayed by the model's delay, 1 the model (0..1)",
          "mix", "rw", range=((0.0, 1.0),), value="mix", reported=True, page="fader", midi=True, panel="performer",
          expect="one number"),
    Entry("/ravemap/input/gain", "f", "f", "gain on the loop or live input before the encoder, in dB (-60..24); with "
          "`engine.encode: cached` the reply comes once the loop is encoded again", "input_gain", "rw",
          range=((-60.0, 24.0),), unit="dB", value="input_gain_db", reported=True, page="fader", label="input gain",
          midi=True, panel="performer", expect="one number (dB)"),
    Entry("/ravemap/limit", "f", "f", "the output limiter's ceiling in dBFS (-60..0); switches the limiter on",
          "limit", "rw", range=((-60.0, 0.0),), unit="dBFS", value="limit_db", reported=True, page="fader",
          midi=True, panel="performer", expect="one number (dBFS)"),
    Entry("/ravemap/limit/off", "", "—", "switch the limiter off (the [-1, 1] clip stays as the last resort); "
          "`/ravemap/limit f` switches it on again", "limit", "", expect=PRESS, optional=1),
    Entry("/ravemap/autopilot", "f", "f", "autopilot amount, 0 off .. 1: a smooth random walk of the inputs between "
          "the recorded examples (run mode) or of the latent targets around where they were left (manual); any "
          "input or latent message takes over", "autopilot", "rw", range=((0.0, 1.0),), value="autopilot",
          reported=True, page="fader", midi=True, panel="performer", expect="one number"),
    Entry("/ravemap/autopilot/rate", "f", "f", "how fast the autopilot wanders, in Hz (0.01..10)", "autopilot_rate",
          "rw", range=((0.01, 10.0),), unit="Hz", value="autopilot_rate", reported=True, page="fader",
          label="autopilot rate", midi=True, panel="performer", expect="one number (Hz)"),
    Entry("/ravemap/autopilot/prior", "i", "i", "1: the autopilot plays the model's `prior` method (temperature = "
          "amount), refused for a model that exports none; 0: the walk", "autopilot_prior", "rw", range=((0, 1),),
          value="autopilot_prior", reported=True, expect=ONOFF),
    # -- gestures (session/gestures.py) -------------------------------------------------------------
    Entry("/ravemap/gesture/record", "is", "i [s name]", "1: record a gesture, every new input vector with its time "
          "(default name: the next free `gesture-N`; a gesture of that name is replaced); 0: end it and keep it "
          "with the mapping (one with no movement is refused)", "gesture_record", range=((0, 1), None),
          reported=True, optional=1, expect="one int (1 start, 0 end) and an optional name"),
    Entry("/ravemap/gesture/play", "sfi", "s name [f speed] [i loop]", "play a gesture: its input vectors drive the "
          "inputs as a controller would, at their recorded times; speed 0.1..10 (default 1), loop 1 (default) or 0; "
          "an input from a controller takes over", "gesture_play", range=(None, (0.1, 10.0), (0, 1)), optional=2,
          expect="a name, an optional speed (0.1..10) and an optional loop (1 or 0)"),
    Entry("/ravemap/gesture/stop", "", "—", "stop the gesture playing (the inputs stay where it was)",
          "gesture_stop", "", optional=1, expect=PRESS),
    Entry("/ravemap/gesture/delete", "s", "s name", "delete a gesture from the mapping", "gesture_delete",
          expect=NAME),
    # -- scenes and the tempo (session/scenes.py, session/tempo.py) ------------------------------
    Entry("/ravemap/scene/store", "i", "i N", "store everything a performer sets as scene N (1..128): the latent "
          "targets, run, transfer, gain, scale, jitter, mix, the limiter and the autopilot; kept with the mapping",
          "scene_store", range=((1, 128),), expect="one int (the scene, 1..128)"),
    Entry("/ravemap/scene/recall", "ifs", "i N [f time] [s unit]", "recall scene N: every continuous value morphs "
          "from where it is to the scene's over `time` (default 0: at once) in `tempo.morph_unit`, or in the unit "
          "given (`seconds` or `beats`); switches (run, transfer, limiter on or off) flip at the end; with "
          "`tempo.quantize` it starts on the next beat or bar line", "scene_recall", range=((1, 128), (0.0, 600.0)),
          optional=2, expect="a scene (1..128), an optional morph time (0 or more) and an optional unit"),
    Entry("/ravemap/tempo", "f", "f", "the internal clock's tempo in bpm (20..300); refused while it follows MIDI "
          "clock (`tempo.source: midi`)", "tempo", "rw", range=((20.0, 300.0),), unit="bpm", value="bpm",
          reported=True, expect="one number (bpm)"),
    Entry("/ravemap/quantize", "s", "s", "when a scene recall (or a gesture's playback) starts: `off` at once, "
          "`beat` on the next beat, `bar` on the next bar line", "quantize", "rw", values=("off", "beat", "bar"),
          value="quantize", reported=True, expect="one string: off, beat or bar"),
    # -- asking -----------------------------------------------------------------------------------
    Entry("/ravemap/status", "i", "[i port]", "reply with the state (see below); the port may not be ravemap's own "
          "control port", "status", optional=1, expect=PORT),
    Entry("/ravemap/ping", "i", "[i port]", "reply `/ravemap/pong`", "ping", optional=1, expect=PORT),
    Entry("/ravemap/learn", "i", "i dim", "MIDI learn: the next control change that moves drives input dim `dim`",
          "learn", expect="one int (the input dim)"),
    Entry("/ravemap/learn/control", "s", "s name", "MIDI learn for a chain control: the next control change that "
          "moves drives `name` across its range (mix, jitter, limit, input gain, autopilot, autopilot rate, scale "
          "for every dim, or scale N)", "learn", expect=NAME),
    Entry("/ravemap/vector/capture", "s", "s name", "encode the current loop (on the loader thread) and keep its mean "
          "latent as a named vector (saved with the mapping)", "vector_capture", expect=NAME),
    Entry("/ravemap/vector/apply", "sf", "s name [f amount]", "add amount (default 1) x the named vector to the "
          "latent targets (clamped)", "vector_apply", optional=1, expect="a name and an optional amount"),
    # -- Wekinator's control messages, with Wekinator's meaning -----------------------------------
    Entry("/wekinator/control/outputs", "f…", "f… (one per output)", "the values to record (the manual latent "
          "targets), 0..1 in `unit` units", "targets", tables=(W,)),
    Entry("/wekinator/control/startRecording", "", "—", "record an example for each new input (same as "
          "`/ravemap/record 1`)", "record", "", tables=(W,), alias_of="/ravemap/record", optional=1, expect=PRESS),
    Entry("/wekinator/control/stopRecording", "", "—", "stop recording (same as `/ravemap/record 0`)", "record", "",
          tables=(W,), alias_of="/ravemap/record", optional=1, expect=PRESS),
    Entry("/wekinator/control/train", "", "—", "train in the background (same as `/ravemap/train`)", "train", "",
          tables=(W,), alias_of="/ravemap/train", optional=1, expect=PRESS),
    Entry("/wekinator/control/cancelTrain", "", "—", "stop the training in progress; the previous regressor stays "
          "and keeps running", "train_cancel", "", tables=(W,), alias_of="/ravemap/train/cancel", optional=1,
          expect=PRESS),
    Entry("/wekinator/control/startRunning", "", "—", "the mapping drives the latent and `/wek/outputs` (same as "
          "`/ravemap/run 1`)", "run", "", tables=(W,), alias_of="/ravemap/run", optional=1, expect=PRESS),
    Entry("/wekinator/control/stopRunning", "", "—", "back to the manual values (same as `/ravemap/run 0`)", "run",
          "", tables=(W,), alias_of="/ravemap/run", optional=1, expect=PRESS),
    Entry("/wekinator/control/deleteAllExamples", "", "—", "delete every example (same as "
          "`/ravemap/examples/clear`)", "clear", "", tables=(W,), alias_of="/ravemap/examples/clear", optional=1,
          expect=PRESS),
    Entry("/wekinator/control/deleteExamplesForOutput", "i", "i output", "examples stop teaching that output (from "
          "1); an example left teaching none is deleted", "delete_output", tables=(W,)),
    Entry("/wekinator/control/enableModelRecording", "i…", "i… outputs", "new examples teach these outputs again",
          "outputs_enabled", tables=(W,)),
    Entry("/wekinator/control/disableModelRecording", "i…", "i… outputs", "new examples do not teach these outputs",
          "outputs_enabled", tables=(W,)),
    Entry("/wekinator/control/enableModelRunning", "i…", "i… outputs", "in run mode the mapping drives these "
          "outputs again", "outputs_enabled", tables=(W,)),
    Entry("/wekinator/control/disableModelRunning", "i…", "i… outputs", "in run mode these outputs keep their "
          "manual value", "outputs_enabled", tables=(W,)),
    Entry("/wekinator/control/setInputNames", "s…", "s…", "names of the inputs, kept in the mapping and shown by "
          "`ravemap plot` (a new, empty mapping takes its input size from them)", "names", tables=(W,)),
    Entry("/wekinator/control/setOutputNames", "s…", "s…", "names of the outputs, kept in the mapping and shown by "
          "`ravemap plot`", "names", tables=(W,)),
    Entry("/wekinator/control/saveModelToFile", "s", "s name", "save the mapping as `mappings/<name>.json` (a name, "
          "not a path: same rules as `/ravemap/mapping/save`)", "save", tables=(W,), alias_of="/ravemap/mapping/save",
          expect=NAME),
    Entry("/wekinator/control/loadModelFromFile", "s", "s name", "load `mappings/<name>.json` (same as "
          "`/ravemap/mapping/load`)", "load", tables=(W,), alias_of="/ravemap/mapping/load", expect=NAME),
    Entry("/wekinator/control/runNewProject", "", "—", "start a new, empty mapping (same as `/ravemap/mapping/new`)",
          "new", "", tables=(W,), alias_of="/ravemap/mapping/new", optional=1, expect=PRESS),
    Entry("/wekinator/control/startDtwRecording", "i", "i", "refused with a `/ravemap/error`: ravemap has no dynamic "
          "time warping; record continuous examples instead", "refused", "", tables=(W,)),
    Entry("/wekinator/control/stopDtwRecording", "", "—", "refused the same way", "refused", "", tables=(W,)),
    Entry("/wekinator/control/selectInputsForOutput", "ii…", "i i…", "refused: one regressor uses every input for "
          "every output; send only the inputs you want", "refused", "", tables=(W,)),
)

OSC_TABLE_TAIL = "| `/wekinator/control/…` | | Wekinator's control messages: see [Wekinator](#wekinator) |"


def entries() -> tuple[Entry, ...]:
    """The vocabulary as it is now (read at call time)."""
    return VOCABULARY


def by_address() -> dict[str, Entry]:
    return {e.address: e for e in entries()}


def commands() -> set[str]:
    """The session commands the vocabulary's addresses become."""
    return {e.becomes for e in entries() if e.becomes not in EVENTS}


def page_params() -> list[dict[str, object]]:
    """The controls the page builds from the vocabulary, JSON-ready: address, kind, name, range, unit,
    description, the state key its value is shown from and the panel it goes to; a per-dim entry
    (`per_dim`: true) is one control per element of its state list, named "name N", at address N."""
    found = []
    for e in entries():
        if e.page is None:
            continue
        low, high = e.range[0] if isinstance(e.range, tuple) and e.range and e.range[0] else (0.0, 1.0)
        found.append({"address": e.address, "kind": e.page, "name": e.name, "range": [low, high],
                      "unit": e.unit, "description": e.description, "state": e.value, "panel": e.panel,
                      "per_dim": e.per_dim})
    return found


def midi_names() -> list[str]:
    """The names `midi.controls` and `/ravemap/learn/control` take ("scale N" for a per-dim entry)."""
    return [f"{e.name} N" if e.per_dim else e.name for e in entries() if e.midi]


def midi_control(name: str) -> tuple[Entry, int | None]:
    """The entry a MIDI name drives, and the dim for a per-dim one ("scale 3"); ValueError naming the
    names allowed."""
    text = " ".join(str(name).split())
    for e in entries():
        if e.midi and not e.per_dim and e.name == text:
            return e, None
    head, _, tail = text.rpartition(" ")
    for e in entries():
        if e.midi and e.per_dim and e.name == head and tail.isascii() and tail.isdigit() and len(tail) <= 4:
            return e, int(tail)
    raise ValueError(f"unknown chain control {str(name)[:40]!r}: one of {', '.join(midi_names())}")


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown_table(table: str) -> str:
    """The README's table of `table` ("osc" or "wekinator"), one row per entry."""
    head = ("| address | args | effect |\n|---|---|---|" if table == "osc"
            else "| message | args | what ravemap does |\n|---|---|---|")
    rows = [f"| `{e.address}` | {_cell(e.args)} | {_cell(e.description)} |" for e in entries() if table in e.tables]
    if table == "osc":
        rows.append(OSC_TABLE_TAIL)
    return "\n".join([head, *rows])


if __name__ == "__main__":  # python -m ravemap.control.vocabulary: print the README's tables
    print(markdown_table("osc"), "", markdown_table("wekinator"), sep="\n")
