"""Engine commands: style transfer, gain, pausing, hot swaps of model or loop, and latent vectors.

Each returns what the core needs: nothing, a value, new latent targets (`vector_moved`), or a
`Background` request for the loader thread (swaps and captures take seconds), which the core
queues and answers. Encoding a file is `ravemap.audio.encode`'s (this module never imports torch).

Threads:
- session thread: every method, and the `then` functions of the `Background` requests.
- loader thread, "ravemap-loader" (see `ravemap.session.jobs`): the `work` functions, which load
  through `Playback.swap_model` / `swap_loop` or encode a file; they touch no session state.
- `EngineControls` setters are latest-value-wins; the engine thread reads them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ravemap import locations
from ravemap.config import Config
from ravemap.control.feedback import Feedback
from ravemap.mapping.store import check_name
from ravemap.names import resolve_in
from ravemap.session.keeper import MappingKeeper
from ravemap.session.outcomes import Background, CommandError

if TYPE_CHECKING:
    from ravemap.audio.controls import EngineControls
    from ravemap.audio.playback import Playback

log = logging.getLogger("ravemap.session")

MODEL_SUFFIXES = (".ts",)
LOOP_SUFFIXES = (".wav", ".flac", ".ogg", ".aif", ".aiff")


class EngineCommands:
    def __init__(self, config: Config, controls: EngineControls, feedback: Feedback, keeper: MappingKeeper,
                 playback: Playback | None, model_swapped: Callable[[], None] = lambda: None):
        """`model_swapped` runs on the session thread once another model plays (the chain's prior mode)."""
        self.model_swapped = model_swapped
        self.config = config
        self.controls = controls
        self.feedback = feedback
        self.keeper = keeper
        self.playback = playback
        self.n_out = len(config.latent.dims)

    # -- the engine's controls -------------------------------------------------------------
    def transfer(self, on: bool) -> None:
        self.controls.set_transfer(on)
        self.feedback.broadcast("/ravemap/transfer", int(on))

    def engine(self, on: bool) -> None:
        self.controls.set_paused(not on)
        self.feedback.broadcast("/ravemap/engine", int(on))

    def gain(self, db: float) -> None:
        self.controls.set_gain_db(db)
        self.feedback.broadcast("/ravemap/gain", float(db))

    # -- hot swaps -------------------------------------------------------------------------
    def swap(self, what: str, name: str, path: str | None = None) -> Background:
        """Play model or loop `name` from the models / loops folder (or ravemap's own with `default`);
        the Python API gives a `path` instead, and gets the loading error itself (ModelError, ...)."""
        if path is not None:
            target = Path(path)
        elif what == "model":
            target = resolve_in(self.config.paths.models_dir, name, MODEL_SUFFIXES, "model",
                                builtin=locations.embedded_model())
        else:
            target = resolve_in(self.config.paths.loops_dir, name, LOOP_SUFFIXES, "loop",
                                builtin=locations.embedded_loop())
        playback = self.playback
        if playback is None:
            raise CommandError(f"/ravemap/{what}: no audio engine is running")
        wrap = path is None

        def load() -> str:
            try:
                if what == "model":
                    playback.swap_model(target)
                else:
                    playback.swap_loop(target)
            except Exception as err:  # the old model / loop plays on
                if not wrap:
                    raise
                raise CommandError(f"/ravemap/{what} {target.name}: {err}; still playing the previous one") from err
            return target.name

        def swapped(result: object) -> str:
            if what == "model":
                self.keeper.mapping.model = str(result)
            self.feedback.broadcast(f"/ravemap/{what}", str(result))
            if what == "model":
                self.model_swapped()
            return str(result)

        return Background(what, load, swapped)

    # -- latent arithmetic -----------------------------------------------------------------
    def capture(self, name: str, path: str | None = None) -> Background:
        """Encode a file (the API gives a path) or the current loop on the loader thread, then keep the
        mean latent as `name` (returned to an API caller).

        Encoded with a fresh instance of the playing model, so a streaming model's playing state is
        never touched and the same file always gives the same vector (for a deterministic encoder).
        """
        check_name(name)
        playback = self.playback
        if playback is None:
            raise CommandError("/ravemap/vector/capture: no model is loaded")
        current = playback.newest
        if path is None and not current.loop.seekable:
            raise CommandError("/ravemap/vector/capture: the source is live input; capture from a file instead")
        source = Path(path) if path is not None else current.loop.path
        model_path = current.model.info.path

        def encode() -> list[float]:
            from ravemap.audio.encode import mean_latent  # torch, on the loader thread

            return mean_latent(model_path, source)

        def keep(result: object) -> list[float]:
            vector = list(result)  # type: ignore[call-overload]
            self.keeper.mapping.extras.setdefault("vectors", {})[name] = vector
            self.keeper.changed()
            log.info("captured latent vector %r from %s", name, source)
            self.feedback.broadcast("/ravemap/vector", name, *vector[: self.n_out])
            return vector

        return Background(f"vector:{name}", encode, keep)

    def vector_moved(self, name: str, amount: float, targets: tuple[float, ...]) -> tuple[float, ...]:
        """`targets` plus `amount` times the named vector (its `latent.dims` entries), not yet clamped."""
        vectors = self.keeper.mapping.extras.get("vectors", {})
        if name not in vectors:
            known = ", ".join(sorted(vectors)) or "none yet"
            raise CommandError(f"/ravemap/vector/apply: no vector {name!r} (captured: {known})")
        vector = vectors[name]
        dims = self.config.latent.dims
        if max(dims) >= len(vector):
            raise CommandError(f"/ravemap/vector/apply: vector {name!r} has {len(vector)} dims, too few for {dims}")
        return tuple(t + amount * vector[d] for t, d in zip(targets, dims, strict=True))
