"""The `export` step: order the latent space, wrap the model in the nn~/RAVE interface, script it.

Like RAVE's export, the latent space is rotated by a PCA of the training latents (posterior
means) so that dim 0 carries the most variance, dim 1 the next, and so on; unlike RAVE, each
rotated dim is also divided by its standard deviation, so that exported latents of the training
data have unit scale and sweeping a dim by +-2 means two standard deviations. Mean, rotation and
scales are buffers, applied inside `encode` / `decode` as one precomputed affine map each.

The wrapper keeps the streaming state in buffers (encoder context, decoder state), so that
consecutive `encode` / `decode` calls on blocks of one stream play seamlessly. `reset()` clears
it; a change of batch size clears it too.
"""

import copy
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from training.config import MODEL, ModelConfig
from training.dataset import Batches
from training.model import DefaultModel, FoldedEncoder


class NNTildeExport(nn.Module):
    """nn~ interface: encode / decode / forward, get_methods, get_attributes, *_params buffers."""

    sr: int
    n_channels: int
    latent_size: int
    full_latent_size: int
    ratio: int
    context: int

    def __init__(self, model: DefaultModel, mean: Tensor, rotation: Tensor, scale: Tensor):
        super().__init__()
        model = copy.deepcopy(model)
        model.encoder = FoldedEncoder(model.encoder, model.latent)  # the same means, fewer ops per call
        self.model = model
        self.sr = model.sr
        self.n_channels = 1
        self.latent_size = model.latent
        self.full_latent_size = model.latent
        self.ratio = model.ratio
        self.register_buffer("latent_mean", mean.float().clone())
        self.register_buffer("latent_pca", rotation.float().clone())  # rows: components
        self.register_buffer("latent_scale", scale.float().clone())
        # The same as affine maps, one matmul and one add per call: exported = E @ latent + e and
        # latent = D @ exported + d.
        encode_matrix = rotation.float() / scale.float()[:, None]
        self.register_buffer("encode_matrix", encode_matrix.contiguous())
        self.register_buffer("encode_bias", -(encode_matrix @ mean.float())[:, None].contiguous())
        self.register_buffer("decode_matrix", (rotation.float().T * scale.float()[None, :]).contiguous())
        self.register_buffer("decode_bias", mean.float()[:, None].clone())
        self.register_buffer("encode_params", torch.tensor([1, 1, self.latent_size, self.ratio]))
        self.register_buffer("decode_params", torch.tensor([self.latent_size, self.ratio, 1, 1]))
        self.register_buffer("forward_params", torch.tensor([1, 1, 1, 1]))
        self.context = model.encoder.context
        self.register_buffer("encoder_context", torch.zeros(1, self.context))
        state = model.initial_state(1)
        self.register_buffer("latent_cache", state[0])
        self.register_buffer("last_f0", state[1])
        self.register_buffer("last_amp", state[2])
        self.register_buffer("last_noise_amp", state[3])
        self.register_buffer("last_harmonics", state[4])
        self.register_buffer("phase", state[5])
        self.register_buffer("noise_tail", state[6])
        self.register_buffer("noise_counter", state[7])

    @torch.jit.export
    def get_methods(self) -> list[str]:
        return ["encode", "decode", "forward"]

    @torch.jit.export
    def get_attributes(self) -> list[str]:
        # nn~ lists settable attributes here (each with get_/set_ methods); this model has none.
        return []

    @torch.jit.export
    def reset(self) -> None:
        """Forget the stream: the next call starts from silence."""
        self._reset_encoder(self.encoder_context.shape[0])
        self._reset_decoder(self.last_f0.shape[0])

    def _reset_encoder(self, batch: int) -> None:
        self.encoder_context = torch.zeros(batch, self.context)

    def _reset_decoder(self, batch: int) -> None:
        state = self.model.initial_state(batch)
        self.latent_cache = state[0]
        self.last_f0 = state[1]
        self.last_amp = state[2]
        self.last_noise_amp = state[3]
        self.last_harmonics = state[4]
        self.phase = state[5]
        self.noise_tail = state[6]
        self.noise_counter = state[7]

    def _check_length(self, n: int, what: str) -> None:
        if n == 0 or n % self.ratio != 0:
            raise RuntimeError(what + " length must be a positive multiple of " + str(self.ratio) + ", got " + str(n))

    @torch.jit.export
    def encode(self, x: Tensor) -> Tensor:
        """`x[B, 1, T]` (T a multiple of the ratio) -> `z[B, latent_size, T / ratio]`."""
        if x.dim() != 3 or x.shape[1] != 1:
            raise RuntimeError("encode expects x[B, 1, T]")
        self._check_length(x.shape[-1], "encode input")
        b = x.shape[0]
        if self.encoder_context.shape[0] != b:
            self._reset_encoder(b)
        audio = torch.cat([self.encoder_context, x[:, 0].to(torch.float32)], -1)
        self.encoder_context = audio[:, audio.shape[1] - self.context :].clone()
        mean = self.model.encoder(audio)
        return torch.matmul(self.encode_matrix, mean) + self.encode_bias

    @torch.jit.export
    def decode(self, z: Tensor) -> Tensor:
        """`z[B, L, F]` (L <= full_latent_size; missing dims are 0) -> `x[B, 1, F * ratio]`."""
        if z.dim() != 3:
            raise RuntimeError("decode expects z[B, L, F]")
        b, n_dims = z.shape[0], z.shape[1]
        if n_dims > self.full_latent_size:
            raise RuntimeError(
                "decode got " + str(n_dims) + " latent dims; this model has " + str(self.full_latent_size)
            )
        if self.last_f0.shape[0] != b:
            self._reset_decoder(b)
        # Missing dims are zeros: only the first n_dims columns of the map count.
        latent = torch.matmul(self.decode_matrix[:, :n_dims], z.to(torch.float32)) + self.decode_bias
        state = [
            self.latent_cache,
            self.last_f0,
            self.last_amp,
            self.last_noise_amp,
            self.last_harmonics,
            self.phase,
            self.noise_tail,
            self.noise_counter,
        ]
        y, new_state, _ = self.model.decode_frames(latent, state)
        # Fresh tensors (or views of them) that nothing writes to in place: no copies needed.
        self.latent_cache = new_state[0]
        self.last_f0 = new_state[1]
        self.last_amp = new_state[2]
        self.last_noise_amp = new_state[3]
        self.last_harmonics = new_state[4]
        self.phase = new_state[5]
        self.noise_tail = new_state[6]
        self.noise_counter = new_state[7]
        return y[:, None, :]

    def forward(self, x: Tensor) -> Tensor:
        return self.decode(self.encode(x))


@torch.no_grad()
def latent_pca(model: DefaultModel, batches: Batches, n_batches: int = 20, batch_size: int = 16):
    """Mean, rotation (rows sorted by explained variance) and per-component std of the posterior means."""
    means = []
    for _ in range(n_batches):
        x, _, _ = batches.sample(batch_size)
        mean, _ = model.encoder(x)
        means.append(mean.permute(0, 2, 1).reshape(-1, mean.shape[1]))
    z = torch.cat(means).double()
    centre = z.mean(0)
    cov = (z - centre).T @ (z - centre) / (len(z) - 1)
    eigval, eigvec = torch.linalg.eigh(cov)
    order = torch.argsort(eigval, descending=True)
    rotation = eigvec[:, order].T  # rows: components
    std = eigval[order].clamp(min=1e-8).sqrt()
    return centre.float(), rotation.float(), std.float(), (eigval[order] / eigval.sum()).float()


def script(model: DefaultModel, mean: Tensor, rotation: Tensor, scale: Tensor) -> torch.jit.ScriptModule:
    wrapper = NNTildeExport(model.eval(), mean, rotation, scale).eval()
    for p in wrapper.parameters():
        p.requires_grad_(False)  # inference only: outputs carry no autograd graph
    return torch.jit.script(wrapper)


def identity_export(model: DefaultModel, cfg: ModelConfig = MODEL) -> torch.jit.ScriptModule:
    """Scripted export with no latent ordering (for the untrained baseline in `evaluate`)."""
    n = cfg.latent_size
    return script(model, torch.zeros(n), torch.eye(n), torch.ones(n))


def export(checkpoint: Path, train_file: Path, out: Path, seed: int, cfg: ModelConfig = MODEL) -> dict:
    model = DefaultModel(cfg)
    model.load_state_dict(torch.load(checkpoint, map_location="cpu"))
    model.eval()
    batches = Batches.load(train_file, cfg.ratio, frames=64, context=cfg.encoder_window - cfg.ratio, seed=seed + 7)
    mean, rotation, std, explained = latent_pca(model, batches)
    scripted = script(model, mean, rotation, std)
    out.parent.mkdir(parents=True, exist_ok=True)
    scripted.save(str(out))
    return {
        "path": str(out),
        "size_mb": out.stat().st_size / 1e6,
        "explained_variance": np.round(explained.numpy(), 4).tolist(),
        "latent_std": np.round(std.numpy(), 4).tolist(),
    }
