"""What a page may say over its WebSocket, and the events it becomes.

The page speaks the OSC API in JSON: `{"osc": "/ravemap/xy", "args": [0.2, 0.7]}`. Each
message goes through the same `OscTranslator` an OSC datagram goes through, so a page's
action becomes exactly the event the same OSC message becomes, checked the same way (argument
counts and types, finite numbers, latent indexes, names), and the session applies it like any
other. Two page-only additions:

- `/ravemap/pad/K x y` (K from 1): the K-th finger on the XY pad drives input dims 2K and 2K+1
  when `inputs.size` has them (the first finger sends `/ravemap/xy`).
- `{"get": "lists"}`: the page asks for the model, loop and mapping folders' listings, which the
  web server answers itself.

An optional `"id"` (an int) comes back in the reply to a command: `{"type": "reply", "id": N}`,
or `{"type": "error", "id": N, "text": ...}` when the session refused it.

Refused, with the reason in words for the page's error line: text that is not JSON, JSON
constants NaN and Infinity, anything but an object with the keys above, more than
`MAX_ARGS` arguments, arguments that are not numbers or strings, integers beyond 2**53,
strings over `MAX_STRING` characters, addresses the translator refuses, and
`/ravemap/status` and `/ravemap/ping` (they answer over OSC; a page is sent the state anyway).

Threads: none of its own; `WebTranslator.translate` runs on the web server's thread.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from ravemap.config import Config, OscRoute
from ravemap.control.events import Event
from ravemap.control.osc import BadMessage, OscTranslator

MAX_MESSAGE = 4096  # characters in one text message; more is refused with a reply (the connection stays)
MAX_ARGS = 64
MAX_STRING = 256
MAX_INT = 2**53
MAX_ID = 2**31 - 1
OSC_ONLY = ("/ravemap/status", "/ravemap/ping")
REQUESTS = ("lists",)


class Refused(ValueError):
    """A page message that is not carried out; `kind` names the counter it goes to."""

    def __init__(self, kind: str, text: str, message_id: int | None = None):
        super().__init__(text)
        self.kind = kind
        self.message_id = message_id


@dataclass(frozen=True)
class Request:
    """A page asking the web server itself for something (the folders' listings)."""

    name: str


@dataclass(frozen=True)
class Translated:
    message_id: int | None
    event: Event | None  # None: a button's release, nothing to do
    request: Request | None = None


def pad_routes(n_inputs: int) -> tuple[OscRoute, ...]:
    """`/ravemap/pad/K` for each further finger on the pad that has two input dims to drive."""
    return tuple(OscRoute(address=f"/ravemap/pad/{k}", dims=(2 * k, 2 * k + 1)) for k in range(1, n_inputs // 2))


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number a page may send")


class WebTranslator:
    """JSON text from a page -> `Translated`; raises `Refused` with the reason."""

    def __init__(self, config: Config):
        n_inputs = config.inputs.size
        self.osc = OscTranslator(n_inputs, len(config.latent.dims), (*config.osc.routes, *pad_routes(n_inputs)))
        self.pads = 1 + len(pad_routes(n_inputs))

    def translate(self, text: str) -> Translated:
        if len(text) > MAX_MESSAGE:
            raise Refused("oversized", f"message of {len(text)} characters is too long (at most {MAX_MESSAGE})")
        try:
            data = json.loads(text, parse_constant=_refuse_constant)
        except RecursionError:
            raise Refused("malformed", "not a page message: JSON nested too deep") from None
        except ValueError as err:
            raise Refused("malformed", f"not JSON: {str(err)[:120]}") from None
        if not isinstance(data, dict):
            raise Refused("malformed", f'a page message is a JSON object like {{"osc": "/ravemap/xy", "args": '
                                       f'[0.5, 0.5]}}, got {type(data).__name__}')
        message_id = data.get("id")
        if message_id is not None and (type(message_id) is not int or not 0 <= message_id <= MAX_ID):
            raise Refused("malformed", f'"id" must be an int in 0..{MAX_ID}')
        unknown = sorted(set(data) - {"osc", "args", "id", "get"})
        if unknown:
            raise Refused("malformed", f"unknown key(s) {', '.join(repr(k)[:40] for k in unknown[:5])}: "
                                       'use "osc" and "args", or "get"', message_id)
        if "get" in data:
            if "osc" in data or "args" in data or data["get"] not in REQUESTS:
                raise Refused("malformed", f'"get" takes one of {", ".join(REQUESTS)} and nothing else', message_id)
            return Translated(message_id, None, Request(data["get"]))
        address = data.get("osc")
        if not isinstance(address, str):
            raise Refused("malformed", '"osc" must be an OSC address, e.g. "/ravemap/xy"', message_id)
        args = data.get("args", [])
        if not isinstance(args, list) or len(args) > MAX_ARGS:
            raise Refused("malformed", f'"args" must be a list of at most {MAX_ARGS} numbers or strings', message_id)
        for i, arg in enumerate(args):
            _check_arg(address, i, arg, message_id)
        if address in OSC_ONLY:
            raise Refused("bad", f"{address} answers over OSC only; the page is sent the state by itself", message_id)
        try:
            event = self.osc.translate(address, args)
        except BadMessage as err:
            kind = "unknown" if "unknown address" in str(err) else "bad"
            raise Refused(kind, str(err), message_id) from None
        return Translated(message_id, event)


def _check_arg(address: str, index: int, arg: object, message_id: int | None) -> None:
    where = f"{address[:60]}: argument {index + 1}"
    if isinstance(arg, bool) or not isinstance(arg, int | float | str):
        raise Refused("bad", f"{where} must be a number or a string, got {type(arg).__name__}", message_id)
    if isinstance(arg, int) and abs(arg) > MAX_INT:
        raise Refused("bad", f"{where}: integer out of range (at most 2**53)", message_id)
    if isinstance(arg, float) and not math.isfinite(arg):
        raise Refused("bad", f"{where} must be a finite number", message_id)
    if isinstance(arg, str) and len(arg) > MAX_STRING:
        raise Refused("bad", f"{where}: text longer than {MAX_STRING} characters", message_id)
