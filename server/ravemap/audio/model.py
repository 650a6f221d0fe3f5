"""Load a RAVE / nn~ TorchScript export and describe it.

Everything about a model is read from the file: its sample rate, channel counts, latent
size and compression ratio (from `encode_params` / `decode_params`, the four ints
`[in_channels, in_ratio, out_channels, out_ratio]` that nn~ reads), and its methods.

A `prior`: RAVE exports made with a prior (RAVE v2's `scripts/export.py --prior`) register
`prior` with `prior_params = [1, ratio, latent_size, ratio]`: its input is the temperature as a
one-channel signal at the latent frame rate, `[batch, 1, n_frames]`, and it returns latents
`[batch, latent_size, n_frames]` (RAVE's own prior averages the temperature over the frames).
Some exports register a `prior` method with no prior behind it (it returns a scalar), so a
listed `prior` is probed once at load like encode and decode; one that fails the probe is not
offered (`has_prior` False) and the model still plays.
Nothing is hard-coded, so RAVE v1 and v2 exports, 44.1 or 48 kHz, mono or stereo, load
the same way. Files are opened with `torch.jit.load` only, never with pickle.

A file that is not such a model raises `ModelError` naming the file and what is wrong.

Threads: `load_model` runs wherever it is called (the CLI at start-up, a loader thread
for hot swaps). `RaveModel.encode` / `decode` / `prior` are called by one thread at a time: the
engine thread while playing, or the caller of an offline render. Streaming exports keep
state between calls, so a `RaveModel` must never be shared by two streams.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import torch

from ravemap.errors import ModelError

REQUIRED_METHODS = ("encode", "decode")
SAMPLE_RATE_ATTRIBUTES = ("sr", "sampling_rate")
PROBE_FRAMES = 2


@dataclass(frozen=True)
class ModelInfo:
    """What a model file says about itself."""

    path: Path
    sr: int
    in_channels: int
    out_channels: int
    latent_size: int
    full_latent_size: int
    ratio: int
    methods: tuple[str, ...]
    streaming: bool
    has_prior: bool = False  # a `prior` method that passed the probe (see the module docstring)

    def describe(self) -> str:
        kind = "streaming" if self.streaming else "non-streaming"
        prior = ", with a prior" if self.has_prior else ""
        return (
            f"{self.path.name}: {self.sr} Hz, {self.in_channels} in / {self.out_channels} out, "
            f"latent {self.latent_size} (full {self.full_latent_size}), ratio {self.ratio}, {kind}{prior}"
        )


class RaveModel:
    """A loaded export with shape-checked `encode` and `decode`.

    `encode(x[1, in_channels, T]) -> z[1, latent_size, T / ratio]` and
    `decode(z[1, L, F]) -> x[1, out_channels, F * ratio]` for L <= full_latent_size, and
    with `info.has_prior`, `prior(temperature, F) -> z[1, latent_size, F]`.
    Callers run these under `torch.inference_mode()`.
    """

    def __init__(self, module: torch.jit.ScriptModule, info: ModelInfo):
        self.module = module
        self.info = info
        self._encode = module.encode
        self._decode = module.decode
        self._prior = module.prior if info.has_prior else None
        self._temperature: dict[int, torch.Tensor] = {}  # the prior's input, one buffer per block length

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self._encode(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self._decode(z)

    def prepare_prior(self, n_frames: int) -> None:
        """Allocate the temperature signal for blocks of `n_frames` (at load, not per block)."""
        if self._prior is not None and n_frames not in self._temperature:
            self._temperature[n_frames] = torch.zeros(1, 1, n_frames)

    def prior(self, temperature: float, n_frames: int) -> torch.Tensor:
        """`n_frames` latent frames from the model's prior at `temperature`, `[1, latent_size, n_frames]`."""
        if self._prior is None:
            raise ModelError(f"{self.info.path.name}: the model exports no prior")
        self.prepare_prior(n_frames)
        signal = self._temperature[n_frames]
        signal.fill_(float(temperature))
        return self._prior(signal)

    def snapshot(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """A copy of every buffer (a streaming export's state), for `restore`."""
        return [(buf, buf.detach().clone()) for _, buf in self.module.named_buffers()]

    @staticmethod
    def restore(snapshot: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Put the buffers back as `snapshot` found them: what ran in between leaves no trace."""
        with torch.inference_mode():  # a streaming export's buffers become inference tensors as it plays
            for buf, saved in snapshot:
                buf.copy_(saved)


def load_model(path: str | Path) -> RaveModel:
    """Load and validate a RAVE/nn~ export; raise `ModelError` if it is not one."""
    path = Path(path)
    module = _open_torchscript(path)
    methods = _methods(module, path)
    missing = [name for name in REQUIRED_METHODS if name not in methods]
    if missing:
        raise ModelError(
            f"{path}: this TorchScript file has no {' or '.join(missing)} method "
            f"(it lists {sorted(methods) or 'none'}); ravemap needs a RAVE or nn~ export "
            "with encode and decode"
        )
    info = _read_info(module, path, methods)
    _probe(module, info)
    if "prior" in methods and _probe_prior(module, info):
        info = replace(info, has_prior=True)
    return RaveModel(module, info)


def _open_torchscript(path: Path) -> torch.jit.ScriptModule:
    if not path.exists():
        raise ModelError(f"{path}: no such model file; give a .ts export with --model or engine.model")
    if not path.is_file():
        raise ModelError(f"{path}: is not a file; give a .ts export with --model or engine.model")
    if path.stat().st_size == 0:
        raise ModelError(f"{path}: the model file is empty; re-export it or choose another")
    try:
        module = torch.jit.load(str(path), map_location="cpu")
    except Exception as err:  # torch raises RuntimeError, ValueError, zipfile errors...
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelError(
            f"{path}: not a TorchScript model ({reason[:200]}); ravemap loads RAVE/nn~ .ts exports"
        ) from err
    module.eval()
    return module


def _methods(module: torch.jit.ScriptModule, path: Path) -> tuple[str, ...]:
    if hasattr(module, "get_methods"):
        try:
            listed = module.get_methods()
        except Exception as err:
            raise ModelError(f"{path}: get_methods() failed: {err}") from err
        return tuple(str(name) for name in listed)
    # Older exports (RAVE v1) have no get_methods(): look for the methods themselves.
    return tuple(name for name in ("encode", "decode", "forward", "prior") if hasattr(module, name))


def _as_int(value: object, what: str, path: Path) -> int:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ModelError(f"{path}: attribute {what} should be one number, got shape {list(value.shape)}")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise ModelError(f"{path}: attribute {what} should be an integer, got {value!r}")
    return int(value)


def _params(module: torch.jit.ScriptModule, name: str, path: Path) -> list[int]:
    if not hasattr(module, name):
        raise ModelError(
            f"{path}: the model has no {name} attribute; nn~ exports carry "
            f"{name} = [in_channels, in_ratio, out_channels, out_ratio]"
        )
    raw = getattr(module, name)
    values = raw.flatten().tolist() if isinstance(raw, torch.Tensor) else list(raw)
    if len(values) != 4 or any(int(v) != v or v < 0 for v in values):
        raise ModelError(
            f"{path}: {name} should be four non-negative ints "
            f"[in_channels, in_ratio, out_channels, out_ratio], got {values}"
        )
    return [int(v) for v in values]


def _read_info(module: torch.jit.ScriptModule, path: Path, methods: tuple[str, ...]) -> ModelInfo:
    sr = None
    for name in SAMPLE_RATE_ATTRIBUTES:
        if hasattr(module, name):
            sr = _as_int(getattr(module, name), name, path)
            break
    if sr is None:
        raise ModelError(f"{path}: the model has no sample rate attribute (looked for sr, sampling_rate)")
    if not 8000 <= sr <= 192000:
        raise ModelError(f"{path}: sample rate {sr} Hz is outside 8000..192000")

    in_channels, in_ratio, latent_size, ratio = _params(module, "encode_params", path)
    dec_latent, dec_ratio, out_channels, out_ratio = _params(module, "decode_params", path)
    if in_ratio != 1 or out_ratio != 1:
        raise ModelError(
            f"{path}: encode_params/decode_params say audio is at ratio {in_ratio}/{out_ratio}; "
            "ravemap expects audio at ratio 1 (encode_params[1] and decode_params[3])"
        )
    if ratio < 1 or dec_ratio != ratio:
        raise ModelError(
            f"{path}: the encoder's compression ratio ({ratio}, encode_params[3]) and the decoder's "
            f"({dec_ratio}, decode_params[1]) must be the same positive number"
        )
    if in_channels < 1 or out_channels < 1 or latent_size < 1:
        raise ModelError(
            f"{path}: channels and latent size must be at least 1, got in {in_channels}, "
            f"out {out_channels}, latent {latent_size}"
        )
    if hasattr(module, "latent_size"):
        declared = _as_int(module.latent_size, "latent_size", path)
        if declared != latent_size:
            raise ModelError(
                f"{path}: latent_size attribute is {declared} but encode_params[2] is {latent_size}"
            )
    full = latent_size
    if hasattr(module, "full_latent_size"):
        full = _as_int(module.full_latent_size, "full_latent_size", path)
    if dec_latent > full or full < latent_size:
        raise ModelError(
            f"{path}: decode_params[0] ({dec_latent}) and latent_size ({latent_size}) must not "
            f"exceed full_latent_size ({full})"
        )
    streaming = any("cache" in name for name, _ in module.named_buffers())
    return ModelInfo(
        path=path,
        sr=sr,
        in_channels=in_channels,
        out_channels=out_channels,
        latent_size=latent_size,
        full_latent_size=full,
        ratio=ratio,
        methods=methods,
        streaming=streaming,
    )


def _probe(module: torch.jit.ScriptModule, info: ModelInfo) -> None:
    """Run encode and decode once on silence and check they keep their promises."""
    frames = PROBE_FRAMES
    x = torch.zeros(1, info.in_channels, frames * info.ratio)
    try:
        with torch.inference_mode():
            z = module.encode(x)
    except Exception as err:
        raise ModelError(f"{info.path}: encode failed on {list(x.shape)} of silence: {_first_line(err)}") from err
    expected = [1, info.latent_size, frames]
    if not isinstance(z, torch.Tensor) or list(z.shape) != expected:
        got = list(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
        raise ModelError(
            f"{info.path}: encode of {list(x.shape)} returned {got}, but encode_params "
            f"[{info.in_channels}, 1, {info.latent_size}, {info.ratio}] promise {expected}"
        )
    try:
        with torch.inference_mode():
            y = module.decode(z)
    except Exception as err:
        raise ModelError(f"{info.path}: decode failed on {expected}: {_first_line(err)}") from err
    expected_y = [1, info.out_channels, frames * info.ratio]
    if not isinstance(y, torch.Tensor) or list(y.shape) != expected_y:
        got = list(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise ModelError(
            f"{info.path}: decode of {expected} returned {got}, but decode_params "
            f"[{info.latent_size}, {info.ratio}, {info.out_channels}, 1] promise {expected_y}"
        )


def _probe_prior(module: torch.jit.ScriptModule, info: ModelInfo) -> bool:
    """Whether `prior` keeps RAVE's promise: temperature `[1, 1, F]` -> latents `[1, latent_size, F]`."""
    try:
        with torch.inference_mode():
            z = module.prior(torch.zeros(1, 1, PROBE_FRAMES))
    except Exception:  # e.g. a `prior` listed for nn~ with nothing behind it
        return False
    return isinstance(z, torch.Tensor) and list(z.shape) == [1, info.latent_size, PROBE_FRAMES] \
        and bool(torch.isfinite(z).all())


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return (text.splitlines()[0] if text else type(err).__name__)[:200]
