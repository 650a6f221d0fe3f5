"""ravemap's address space as OSCQuery describes it (the Vidvox proposal), read from the vocabulary.

Plain data, no transport: `Namespace` turns the vocabulary (`control/vocabulary.py`), the configured
input routes and the session's current shape (how many latent targets, how many inputs) into the
proposal's node tree (FULL_PATH, CONTENTS, TYPE, ACCESS, VALUE, RANGE, DESCRIPTION, UNIT, CLIPMODE);
`values` reads the current value of every readable node from a status dict (`Session.status()`,
which reads the immutable `SessionView`, the `EngineControls` and the engine's status, never the
session itself). The web server (`web/server.py`) serves it over HTTP and its WebSocket.

Shape: `/ravemap/latent/N` exists for N below the number of latent targets, `/ravemap/scale/N` for N
below the latent size of the model playing (the length of status `scale`: a model swap to a model
with another latent size changes it, and `/ravemap/scale`'s TYPE); `/wek/inputs`'s TYPE has
one `f` per input (a new mapping takes its input size from the first `/wek/inputs`, which changes the
namespace: the web server sends PATH_CHANGED then).

Threads: none of its own; built and read on the web server's thread.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ravemap.config import Config, OscRoute
from ravemap.control import vocabulary
from ravemap.control.vocabulary import Entry

EXTENSIONS = {
    "ACCESS": True, "VALUE": True, "RANGE": True, "DESCRIPTION": True, "TAGS": False, "EXTENDED_TYPE": False,
    "UNIT": True, "CRITICAL": False, "CLIPMODE": True, "LISTEN": True, "PATH_CHANGED": True,
    "PATH_ADDED": False, "PATH_REMOVED": False, "PATH_RENAMED": False, "HTML": False,
}
ATTRIBUTES = ("FULL_PATH", "CONTENTS", "TYPE", "ACCESS", "VALUE", "RANGE", "DESCRIPTION", "UNIT", "CLIPMODE")


@dataclass(frozen=True)
class Shape:
    """What the namespace depends on besides the vocabulary: it changes when the session's does."""

    n_targets: int
    n_inputs: int
    n_latent: int = 0  # the latent dims of the model playing (`/ravemap/scale/N`)


@dataclass(frozen=True)
class Method:
    """One address that takes a message: its attributes, and where its value is read from."""

    path: str
    attributes: dict[str, Any]
    value_key: str | None = None
    dims: tuple[int, ...] | None = None  # which elements of the value key's vector (None: all)


def shape_of(status: Mapping[str, Any]) -> Shape:
    return Shape(len(status.get("targets", ())), len(status.get("inputs", ())), len(status.get("scale", ())))


def _range(bounds: tuple[float, float] | None) -> dict[str, float] | None:
    return None if bounds is None else {"MIN": bounds[0], "MAX": bounds[1]}


class Namespace:
    """The node tree for one shape; `node(path)` is the JSON-ready node, `methods` each address's."""

    def __init__(self, config: Config, shape: Shape, routes: Sequence[OscRoute] | None = None):
        self.shape = shape
        self.latent_range = tuple(config.latent.range)
        routes = {r.address: r for r in (config.osc.routes if routes is None else routes)}
        methods: dict[str, Method] = {}
        for entry in vocabulary.entries():
            if entry.becomes == "inputs":
                route = routes.pop(entry.address, None)
                if route is None:
                    continue  # not routed by this config
                methods[entry.address] = self._input(entry, route)
            elif entry.per_dim:
                for n in range(shape.n_latent if entry.dims_of == "scale" else shape.n_targets):
                    path = entry.address.replace("/N", f"/{n}")
                    methods[path] = self._method(entry, path, "f", dims=(n,))
            else:
                methods[entry.address] = self._method(entry, entry.address)
        for route in routes.values():  # osc.routes of the user's own
            dims = route.dims if route.dims is not None else tuple(range(shape.n_inputs))
            methods[route.address] = Method(route.address, {
                "FULL_PATH": route.address, "TYPE": "f" * len(dims), "ACCESS": 3,
                "RANGE": [_range(tuple(route.range))] * len(dims), "CLIPMODE": ["both"] * len(dims),
                "DESCRIPTION": f"input dims {list(dims)} from the sender's range {list(route.range)} (osc.routes)",
            }, "inputs", route.dims)
        self.methods = methods
        self.tree = self._build_tree()

    def _types(self, entry: Entry) -> str:
        if not entry.variadic:
            return entry.tags
        count = {"targets": self.shape.n_targets, "inputs": self.shape.n_inputs,
                 "scale": self.shape.n_latent}.get(entry.becomes)
        if entry.address == "/wekinator/control/outputs":
            count = self.shape.n_targets
        return entry.tags[:-1] + entry.tags[-1] * count if count else entry.tags

    def _ranges(self, entry: Entry, n: int) -> list[dict[str, float] | None]:
        if entry.range == "latent":
            return [_range(self.latent_range)] * n  # type: ignore[arg-type]
        if entry.range == "unit":
            return [_range((0.0, 1.0))] * n
        declared = list(entry.range or ())
        return [_range(declared[min(i, len(declared) - 1)]) if declared else None for i in range(n)]

    def _method(self, entry: Entry, path: str, types: str | None = None,
                dims: tuple[int, ...] | None = None) -> Method:
        types = self._types(entry) if types is None else types
        attributes: dict[str, Any] = {"FULL_PATH": path, "ACCESS": entry.access_code,
                                      "DESCRIPTION": entry.description.replace("`", "")}
        if types:
            attributes["TYPE"] = types
            ranges = self._ranges(entry, len(types))
            if entry.values is not None:
                ranges = [{"VALS": list(entry.values)}] * len(types)
            if any(r is not None for r in ranges):
                attributes["RANGE"] = ranges
                attributes["CLIPMODE"] = [entry.clip if r is not None else "none" for r in ranges]
            if entry.unit:
                attributes["UNIT"] = [entry.unit] * len(types)
        readable = entry.access in ("r", "rw") and entry.value is not None
        return Method(path, attributes, entry.value if readable else None, dims)

    def _input(self, entry: Entry, route: OscRoute) -> Method:
        dims = route.dims
        n = len(dims) if dims is not None else self.shape.n_inputs
        method = self._method(entry, entry.address, "f" * n if n else "f", dims)
        if tuple(route.range) != (0.0, 1.0):
            method.attributes["RANGE"] = [_range(tuple(route.range))] * max(n, 1)
            method.attributes["CLIPMODE"] = ["both" if dims is not None else "none"] * max(n, 1)
        return method

    def _build_tree(self) -> dict[str, Any]:
        root: dict[str, Any] = {"FULL_PATH": "/", "ACCESS": 0, "DESCRIPTION": "ravemap", "CONTENTS": {}}
        containers = {"/": root}
        for path in sorted(self.methods):
            parent = root
            parts = path.strip("/").split("/")
            for depth, part in enumerate(parts):
                full = "/" + "/".join(parts[:depth + 1])
                contents = parent.setdefault("CONTENTS", {})
                node = contents.get(part)
                if node is None:
                    node = {"FULL_PATH": full, "ACCESS": 0}
                    contents[part] = node
                if full == path:
                    node.update(self.methods[path].attributes)
                containers[full] = node
                parent = node
        self._nodes = containers
        return root

    def paths(self) -> dict[str, str]:
        """Every node's path -> its TYPE ("" for none): what PATH_CHANGED compares."""
        return {path: str(node.get("TYPE", "")) for path, node in self._nodes.items()}

    def has(self, path: str) -> bool:
        return path in self._nodes

    def node(self, path: str, values: Mapping[str, list[object]] | None = None) -> dict[str, Any] | None:
        """The node at `path` with its children, VALUE filled in from `values` (`Namespace.values`)."""
        found = self._nodes.get(path)
        if found is None:
            return None
        return _with_values(found, values or {})

    def values(self, status: Mapping[str, Any]) -> dict[str, list[object]]:
        """path -> VALUE for every readable method, from a status dict (see the module docstring)."""
        found: dict[str, list[object]] = {}
        for path, method in self.methods.items():
            if method.value_key is None:
                continue
            value = status.get(method.value_key)
            if value is None:
                continue
            tags = str(method.attributes.get("TYPE", ""))
            if isinstance(value, list | tuple):
                items = [value[d] for d in method.dims if d < len(value)] if method.dims is not None else list(value)
            else:
                items = [value]
            found[path] = [_typed(v, tags[min(i, len(tags) - 1)] if tags else "") for i, v in enumerate(items)]
        return found

    def host_info(self, name: str, osc_ip: str, osc_port: int) -> dict[str, Any]:
        return {"NAME": name, "OSC_IP": osc_ip, "OSC_PORT": osc_port, "OSC_TRANSPORT": "UDP",
                "EXTENSIONS": dict(EXTENSIONS)}


def _typed(value: object, tag: str) -> object:
    if tag == "i":
        return int(bool(value)) if isinstance(value, bool) else int(value)  # type: ignore[call-overload]
    if tag == "f":
        number = float(value)  # type: ignore[arg-type]
        return number if math.isfinite(number) else 0.0
    return str(value)


def _with_values(node: dict[str, Any], values: Mapping[str, list[object]]) -> dict[str, Any]:
    copy = {k: v for k, v in node.items() if k != "CONTENTS"}
    value = values.get(node["FULL_PATH"])
    if value is not None:
        copy["VALUE"] = value
    if "CONTENTS" in node:
        copy["CONTENTS"] = {name: _with_values(child, values) for name, child in node["CONTENTS"].items()}
    return copy
