"""Write ravemap.tosc, the TouchOSC (mk2, 1.x) layout for ravemap, next to this script.

    python examples/touchosc/make_layout.py            # rewrites examples/touchosc/ravemap.tosc
    python examples/touchosc/make_layout.py --xml      # prints the XML instead

Standard library only. The output is reproducible: node IDs are name-based UUIDs and the
XML is written in a fixed order, so running this twice gives the same bytes.

The .tosc format (TouchOSC 1.x): a zlib stream holding one XML document,
`<lexml version='5'>` around a tree of `<node ID=... type=...>` elements. Each node has
`<properties>` (typed: b bool, i int, f float, s string, c colour, r rectangle; keys in
CDATA), `<values>` (the control's state: x, y, touch, text), and optionally `<messages>`
(OSC messages, each with send/receive flags, the values that trigger it, a path and
arguments built from "partials") and `<children>`. A Lua script is the string property
`script`. Argument partials of type VALUE carry a scale: a fader's x (always 0..1 inside
TouchOSC) goes out as scaleMin..scaleMax, and a received number is scaled back.

What the layout does (see README.md here):
  XY pad              sends /ravemap/xy x y (0..1)
  latent 0..3 faders  send /ravemap/latent/N (-3..3); receive /ravemap/latent/N; the root
                      script moves them from the daemon's /ravemap/latent f f f f feedback
                      (so they follow the trained mapping in run mode)
  record, run         toggles: send /ravemap/record i, /ravemap/run i; follow the feedback
  train, clear, sync  buttons: /ravemap/train, /ravemap/examples/clear, /ravemap/status
  examples            label: receives /ravemap/examples i
  progress            bar: receives /ravemap/train/progress f f; a label shows it as text
  status line         the last /ravemap/error, so a refused command is visible
  performer section   (below) the chain: faders for /ravemap/mix (0..1), /ravemap/jitter (0..3),
                      /ravemap/input/gain (-60..24 dB), /ravemap/limit (-60..0 dBFS) with a
                      "limit off" button (/ravemap/limit/off), /ravemap/autopilot (0..1),
                      /ravemap/autopilot/rate (0.01..10 Hz), and /ravemap/scale/N (-4..4) for the
                      8 latent dims of the default model (a smaller model refuses the extra ones)
"""

from __future__ import annotations

import sys
import uuid
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "ravemap.tosc"
NAMESPACE = uuid.UUID("6f1f2a52-6c1e-4d5e-9a57-72617665d4a9")  # fixed: IDs stay the same between runs
WIDTH, HEIGHT = 1280, 1240
LATENT_RANGE = (-3.0, 3.0)  # config.yaml latent.range
LATENT_DIMS = 4  # config.yaml latent.dims: [0, 1, 2, 3]
MODEL_DIMS = 8  # the default model's latent size: one scale fader per dim
# the performer's chain (ravemap.control.vocabulary's ranges; the layout test compares them):
# (name, address, range, start value, caption)
CHAIN = (
    ("mix", "/ravemap/mix", (0.0, 1.0), 1.0, "mix (dry .. wet)"),
    ("jitter", "/ravemap/jitter", (0.0, 3.0), 0.0, "jitter"),
    ("input_gain", "/ravemap/input/gain", (-60.0, 24.0), 0.0, "input gain (dB)"),
    ("limit", "/ravemap/limit", (-60.0, 0.0), -1.0, "limit (dBFS)"),
    ("autopilot", "/ravemap/autopilot", (0.0, 1.0), 0.0, "autopilot"),
    ("autopilot_rate", "/ravemap/autopilot/rate", (0.01, 10.0), 0.25, "autopilot rate (Hz)"),
)
SCALE_RANGE = (-4.0, 4.0)
ALL_CONNECTIONS = "1111111111"  # the message goes out on (and is taken from) all ten OSC connections

# colours (r, g, b, a), 0..1
BACKGROUND = (0.08, 0.08, 0.1, 1)
XY_COLOUR = (0.2, 0.65, 0.95, 1)
LATENT_COLOUR = (0.95, 0.6, 0.15, 1)
RECORD_COLOUR = (0.9, 0.2, 0.2, 1)
RUN_COLOUR = (0.25, 0.8, 0.35, 1)
TRAIN_COLOUR = (0.6, 0.4, 0.95, 1)
QUIET_COLOUR = (0.45, 0.45, 0.5, 1)
CHAIN_COLOUR = (0.3, 0.75, 0.7, 1)
TEXT_COLOUR = (1, 1, 1, 1)
CLEAR = (0, 0, 0, 0)

# The root script: the parts of the feedback that the message configuration cannot express.
ROOT_SCRIPT = """\
-- ravemap layout: follow the daemon's feedback (examples/touchosc/README.md).
-- The root of a document sees every OSC message received on its connections.
local LOW, HIGH = @LOW@, @HIGH@
local faders = {}
local status, progress, run

function init()
  for i = 0, @LAST@ do
    faders[i + 1] = self:findByName('latent' .. i, true)
  end
  status = self:findByName('status', true)
  progress = self:findByName('progress_text', true)
  run = self:findByName('run', true)
  -- ask for the current state: record, run, examples and latent come back on the receive port
  sendOSC('/ravemap/status')
end

function onReceiveOSC(message, connections)
  local path, args = message[1], message[2]
  if path == '/ravemap/latent' then
    -- one float per latent dim: move each fader that no finger is holding. A fader moved here
    -- sends its /ravemap/latent/N too: the daemon then keeps the values it is playing as targets.
    for i = 1, math.min(#args, #faders) do
      local fader = faders[i]
      local x = math.clamp((args[i].value - LOW) / (HIGH - LOW), 0, 1)
      if fader ~= nil and not fader.values.touch and math.abs(fader.values.x - x) > 0.0001 then
        fader.values.x = x
      end
    end
  elseif path == '/ravemap/train/progress' and #args >= 2 then
    local text = string.format('training %d %%', math.floor(args[1].value * 100 + 0.5))
    local loss = args[2].value
    if loss == loss then  -- NaN (no loss yet) is not equal to itself
      text = text .. string.format('   loss %.4g', loss)
    end
    progress.values.text = text
  elseif path == '/ravemap/train/done' and #args >= 3 then
    progress.values.text = string.format('trained: loss %.4g, %d examples, %.1f s',
      args[1].value, args[2].value, args[3].value)
  elseif path == '/ravemap/error' and #args >= 1 then
    status.values.text = tostring(args[1].value)
    -- a refused /ravemap/run 1 (nothing trained yet) leaves the daemon in manual mode
    if string.find(tostring(args[1].value), '/ravemap/run', 1, true) == 1 then
      run.values.x = 0
    end
  end
end
"""
for _key, _value in {"@LOW@": LATENT_RANGE[0], "@HIGH@": LATENT_RANGE[1], "@LAST@": LATENT_DIMS - 1}.items():
    ROOT_SCRIPT = ROOT_SCRIPT.replace(_key, str(_value))


# -- a tiny model of the format -----------------------------------------------------------------
def cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def number(value: float) -> str:
    """Whole numbers without a decimal point, as the editor writes them."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


@dataclass
class Partial:
    """One piece of an OSC path or argument list."""

    kind: str  # CONSTANT or VALUE
    value: str  # the text, or the name of the control value
    conversion: str = "STRING"  # STRING, INTEGER, FLOAT, BOOLEAN
    scale: tuple[float, float] = (0, 1)

    def xml(self) -> str:
        return (f"<partial><type>{self.kind}</type><conversion>{self.conversion}</conversion>"
                f"<value>{cdata(self.value)}</value><scaleMin>{number(self.scale[0])}</scaleMin>"
                f"<scaleMax>{number(self.scale[1])}</scaleMax></partial>")


@dataclass
class Osc:
    address: str
    arguments: list[Partial] = field(default_factory=list)
    triggers: tuple[str, ...] = ("x",)
    condition: str = "ANY"  # ANY: every change; RISE: only when the value goes up (a press)
    send: bool = True
    receive: bool = False

    def xml(self) -> str:
        triggers = "".join(f"<trigger><var>{cdata(t)}</var><condition>{self.condition}</condition></trigger>"
                           for t in self.triggers)
        return (f"<osc><enabled>1</enabled><send>{int(self.send)}</send><receive>{int(self.receive)}</receive>"
                f"<feedback>0</feedback><noDuplicates>0</noDuplicates><connections>{ALL_CONNECTIONS}</connections>"
                f"<triggers>{triggers}</triggers>"
                f"<path>{Partial('CONSTANT', self.address).xml()}</path>"
                f"<arguments>{''.join(a.xml() for a in self.arguments)}</arguments></osc>")


@dataclass
class Node:
    kind: str  # GROUP, XY, FADER, BUTTON, LABEL
    name: str
    frame: tuple[int, int, int, int]
    colour: tuple[float, float, float, float] = QUIET_COLOUR
    properties: dict[str, tuple[str, object]] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)  # key -> default
    messages: list[Osc] = field(default_factory=list)
    children: list[Node] = field(default_factory=list)

    def xml(self) -> str:
        x, y, w, h = self.frame
        props: dict[str, tuple[str, object]] = {
            "background": ("b", True),
            "color": ("c", self.colour),
            "cornerRadius": ("f", 6),
            "frame": ("r", (x, y, w, h)),
            "grabFocus": ("b", self.kind in ("XY", "FADER", "BUTTON")),
            "interactive": ("b", self.kind in ("XY", "FADER", "BUTTON")),
            "locked": ("b", False),
            "name": ("s", self.name),
            "orientation": ("i", 0),
            "outline": ("b", True),
            "outlineStyle": ("i", 0),
            "pointerPriority": ("i", 0),
            "visible": ("b", True),
            **self.properties,
        }
        out = [f"<node ID='{uuid.uuid5(NAMESPACE, self.name)}' type='{self.kind}'><properties>"]
        for key in sorted(props):
            kind, val = props[key]
            out.append(f"<property type='{kind}'><key>{cdata(key)}</key>"
                       f"<value>{_property(kind, val)}</value></property>")
        out.append("</properties><values>")
        for key, default in {**self.values, "touch": "false"}.items():
            out.append(f"<value><key>{cdata(key)}</key><locked>0</locked><lockedDefaultCurrent>0</lockedDefaultCurrent>"
                       f"<default>{cdata(default)}</default><defaultPull>0</defaultPull></value>")
        out.append("</values>")
        if self.messages:
            out.append("<messages>" + "".join(m.xml() for m in self.messages) + "</messages>")
        if self.children:
            out.append("<children>" + "".join(c.xml() for c in self.children) + "</children>")
        out.append("</node>")
        return "".join(out)


def _property(kind: str, val: Any) -> str:
    if kind == "b":
        return str(int(bool(val)))
    if kind in ("i", "f"):
        return number(val)
    if kind == "s":
        return cdata(str(val))
    if kind == "c":
        return "".join(f"<{c}>{number(v)}</{c}>" for c, v in zip("rgba", val, strict=True))
    if kind == "r":
        return "".join(f"<{c}>{v}</{c}>" for c, v in zip("xywh", val, strict=True))
    raise ValueError(kind)


# -- controls ---------------------------------------------------------------------------------
MOMENTARY, TOGGLE_RELEASE, TOGGLE_PRESS = 0, 1, 2  # buttonType
NORTH, EAST = 0, 1  # orientation: a fader that grows upwards / to the right


def label(name: str, frame: tuple[int, int, int, int], text: str, size: int = 20,
          messages: list[Osc] | None = None) -> Node:
    """Text on a transparent background; not interactive, so a touch goes to what lies below."""
    return Node("LABEL", name, frame, CLEAR, values={"text": text}, messages=messages or [], properties={
        "background": ("b", False), "outline": ("b", False),
        "textColor": ("c", TEXT_COLOUR), "textSize": ("i", size),
    })


def button(name: str, frame: tuple[int, int, int, int], colour: tuple, kind: int, message: Osc) -> Node:
    return Node("BUTTON", name, frame, colour, values={"x": "0"}, messages=[message], properties={
        "buttonType": ("i", kind), "press": ("b", True), "release": ("b", True),
    })


def fader(name: str, frame: tuple[int, int, int, int], colour: tuple, orientation: int, default: str,
          messages: list[Osc], interactive: bool = True) -> Node:
    node = Node("FADER", name, frame, colour, values={"x": default}, messages=messages, properties={
        "bar": ("b", True), "cursor": ("b", True), "orientation": ("i", orientation), "response": ("i", 0),
        "grid": ("b", False),
    })
    if not interactive:
        node.properties.update({"interactive": ("b", False), "grabFocus": ("b", False), "cursor": ("b", False)})
    return node


def layout() -> Node:
    low, high = LATENT_RANGE
    children: list[Node] = [
        label("title", (20, 10, 240, 56), "ravemap", 32),
        label("status", (280, 10, 980, 56), "", 16),
        Node("XY", "xy", (20, 80, 560, 700), XY_COLOUR, values={"x": "0.5", "y": "0.5"}, messages=[
            Osc("/ravemap/xy", [Partial("VALUE", "x", "FLOAT"), Partial("VALUE", "y", "FLOAT")], triggers=("x", "y")),
        ]),
    ]
    for dim in range(LATENT_DIMS):
        x = 600 + dim * 92
        children.append(fader(f"latent{dim}", (x, 80, 80, 640), LATENT_COLOUR, NORTH, "0.5", [
            Osc(f"/ravemap/latent/{dim}", [Partial("VALUE", "x", "FLOAT", (low, high))], receive=True),
        ]))
        children.append(label(f"latent{dim}_caption", (x, 730, 80, 50), f"latent {dim}", 16))
    column = 970
    width = 290
    controls = [
        ("record", (column, 80, width, 90), RECORD_COLOUR, TOGGLE_PRESS,
         Osc("/ravemap/record", [Partial("VALUE", "x", "INTEGER")], receive=True), "record"),
        ("run", (column, 180, width, 90), RUN_COLOUR, TOGGLE_PRESS,
         Osc("/ravemap/run", [Partial("VALUE", "x", "INTEGER")], receive=True), "run"),
        ("train", (column, 280, width, 90), TRAIN_COLOUR, MOMENTARY,
         Osc("/ravemap/train", condition="RISE"), "train"),
        ("clear", (column, 380, 140, 70), QUIET_COLOUR, MOMENTARY,
         Osc("/ravemap/examples/clear", condition="RISE"), "clear"),
        ("sync", (column + 150, 380, 140, 70), QUIET_COLOUR, MOMENTARY,
         Osc("/ravemap/status", condition="RISE"), "sync"),
    ]
    for name, frame, colour, kind, message, caption in controls:
        children.append(button(name, frame, colour, kind, message))
        children.append(label(f"{name}_caption", frame, caption, 24))
    children += [
        label("examples_caption", (column, 470, 150, 60), "examples", 20),
        label("examples", (column + 150, 470, 140, 60), "0", 32, messages=[
            Osc("/ravemap/examples", [Partial("VALUE", "text", "STRING")], triggers=(), send=False, receive=True),
        ]),
        fader("progress", (column, 550, width, 40), TRAIN_COLOUR, EAST, "0", [
            Osc("/ravemap/train/progress", [Partial("VALUE", "x", "FLOAT")], send=False, receive=True),
        ], interactive=False),
        label("progress_text", (column, 600, width, 60), "not trained yet", 14),
    ]
    children += performer()
    return Node("GROUP", "ravemap", (0, 0, WIDTH, HEIGHT), BACKGROUND, children=children, properties={
        "script": ("s", ROOT_SCRIPT), "outline": ("b", False),
    })


def _position(value: float, span: tuple[float, float]) -> str:
    """A start value as the fader's internal 0..1."""
    return number(round((value - span[0]) / (span[1] - span[0]), 4))


def performer() -> list[Node]:
    """The performer's chain, below the teaching controls: one fader per control, a fader per scale dim."""
    top = 810
    nodes = [label("performer_title", (20, top, 900, 40), "performer: mix, jitter, input gain, limiter, autopilot, "
                   "scale per latent dim", 18)]
    for row, (name, address, span, start, caption) in enumerate(CHAIN):
        width = 450 if name == "limit" else 560
        frame = (20, top + 50 + row * 60, width, 50)
        nodes.append(fader(name, frame, CHAIN_COLOUR, EAST, _position(start, span), [
            Osc(address, [Partial("VALUE", "x", "FLOAT", span)], receive=True),
        ]))
        nodes.append(label(f"{name}_caption", frame, caption, 16))
        if name == "limit":
            off = (480, frame[1], 100, 50)
            nodes.append(button("limit_off", off, QUIET_COLOUR, MOMENTARY, Osc("/ravemap/limit/off", condition="RISE")))
            nodes.append(label("limit_off_caption", off, "limit off", 16))
    for dim in range(MODEL_DIMS):
        x = 600 + dim * 82
        nodes.append(fader(f"scale{dim}", (x, top + 50, 72, 300), CHAIN_COLOUR, NORTH,
                           _position(1.0, SCALE_RANGE), [
            Osc(f"/ravemap/scale/{dim}", [Partial("VALUE", "x", "FLOAT", SCALE_RANGE)], receive=True),
        ]))
        nodes.append(label(f"scale{dim}_caption", (x, top + 360, 72, 40), f"scale {dim}", 14))
    return nodes


def document() -> str:
    return "<?xml version='1.0' encoding='UTF-8'?><lexml version='5'>" + layout().xml() + "</lexml>"


def compress(xml: str) -> bytes:
    return zlib.compress(xml.encode("utf-8"), 9)


def main(argv: list[str]) -> int:
    xml = document()
    if "--xml" in argv:
        sys.stdout.write(xml + "\n")
        return 0
    OUT.write_bytes(compress(xml))
    print(f"wrote {OUT} ({len(xml)} characters of XML)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
