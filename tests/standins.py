"""Small TorchScript models with the nn~ interface, for the cases the RAVE fixtures don't cover.

Each is scripted and saved like a real export and loaded back through `torch.jit.load`.
They are used where a test is about the wrapper or the engine (48 kHz, stereo, the RAVE v1
attribute names, broken files, NaN output), never in place of the real RAVE fixtures.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


class StandInRave(nn.Module):
    """Strided conv encoder, transposed conv decoder: real shapes, real arithmetic."""

    def __init__(self, sr: int = 48000, channels: int = 2, latent: int = 4, ratio: int = 256,
                 v1_names: bool = False, output_scale: float = 1.0, nan_output: bool = False):
        super().__init__()
        torch.manual_seed(0)
        self.enc = nn.Conv1d(channels, latent, ratio, stride=ratio)
        self.dec = nn.ConvTranspose1d(latent, channels, ratio, stride=ratio)
        self.latent_size = latent
        self.full_latent_size = latent
        self.n_channels = channels
        self.output_scale = output_scale
        self.nan_output = nan_output
        if v1_names:
            self.register_buffer("sampling_rate", torch.tensor(sr))
        else:
            self.sr = sr
        self.register_buffer("encode_params", torch.tensor([channels, 1, latent, ratio]))
        self.register_buffer("decode_params", torch.tensor([latent, ratio, channels, 1]))
        self.register_buffer("forward_params", torch.tensor([channels, 1, channels, 1]))

    @torch.jit.export
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.enc(x)

    @torch.jit.export
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        if z.shape[1] < self.latent_size:
            pad = torch.zeros(z.shape[0], self.latent_size - z.shape[1], z.shape[2])
            z = torch.cat([z, pad], 1)
        y = torch.tanh(self.dec(z)) * self.output_scale
        if self.nan_output:
            y = y * float("nan")
        return y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


class WithMethodList(StandInRave):
    @torch.jit.export
    def get_methods(self) -> list[str]:
        return ["encode", "decode", "forward"]


class WithPrior(WithMethodList):
    """A RAVE export made with a prior, in RAVE v2's method layout (scripts/export.py): `prior` is listed by
    `get_methods`, declared by `prior_params = [1, ratio, latent_size, ratio]`, takes the temperature as a
    one-channel signal at the latent frame rate `[batch, 1, frames]` (averaged over the frames, as RAVE's
    prior does) and returns latents `[batch, latent_size, frames]`. No RAVE fixture has a prior, so this
    stand-in's prior is recognisable instead of trained: every frame is `temperature * PRIOR_LATENT`."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        latent, ratio = self.latent_size, int(self.encode_params[3])
        self.register_buffer("prior_params", torch.tensor([1, ratio, latent, ratio]))
        self.register_buffer("prior_latent", prior_latent(latent))

    @torch.jit.export
    def get_methods(self) -> list[str]:
        return ["encode", "decode", "forward", "prior"]

    @torch.jit.export
    def prior(self, temperature: torch.Tensor) -> torch.Tensor:
        t = temperature.mean(-1, keepdim=True)  # [batch, 1, 1]
        z = t * self.prior_latent[None, :, None]
        return z.expand(temperature.shape[0], self.latent_size, temperature.shape[-1]).contiguous()


def prior_latent(latent: int) -> torch.Tensor:
    """What `WithPrior` plays at temperature 1: far from any encoded loop (alternating +-3)."""
    return torch.tensor([3.0 if i % 2 == 0 else -3.0 for i in range(latent)])


class ListsAPriorWithoutOne(WithMethodList):
    """Lists `prior` as some exports do with no prior trained (it returns a scalar)."""

    @torch.jit.export
    def get_methods(self) -> list[str]:
        return ["encode", "decode", "forward", "prior"]

    @torch.jit.export
    def prior(self, temperature: torch.Tensor) -> torch.Tensor:
        return torch.tensor(0)


class NoEncodeDecode(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.sr = 44100

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class LyingShapes(WithMethodList):
    """Claims latent 4 at ratio 256 in its params but encodes to 3 dims."""

    @torch.jit.export
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.enc(x)[:, :3]


def save(module: nn.Module, path: Path) -> Path:
    torch.jit.script(module).save(str(path))
    return path
