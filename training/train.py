"""The `train` step: fit the VAE on random crops of the synthesized stream.

Loss per batch: multi-resolution STFT distance between the input and its reconstruction (the
decoder runs from a zero state over `context_frames` warm-up frames, which the loss skips),
plus `beta_kl` x KL(q(z|x) || N(0, 1)) (beta ramps up from 0), plus `f0_weight` x the error
of the decoder's f0 in semitones where the synth's label says a note sounds. The decoder reads
f0 from the posterior mean and everything else from a sample of the posterior (the export
decodes means). Adam with a cosine learning-rate decay; fixed seed; saves the initial and the
final weights.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import torch

from training import spectral
from training.config import MODEL, TRAIN, ModelConfig, TrainConfig
from training.dataset import Batches
from training.model import DefaultModel

INIT_CHECKPOINT = "init.pt"
FINAL_CHECKPOINT = "model.pt"
LOG_FILE = "train_log.json"


def new_model(seed: int, cfg: ModelConfig = MODEL) -> DefaultModel:
    torch.manual_seed(seed)
    return DefaultModel(cfg)


@torch.no_grad()
def fit_feature_normalisation(model: DefaultModel, batches: Batches, n: int = 64) -> None:
    x, _, _ = batches.sample(n)
    feats = model.encoder.features(x)
    flat = feats.reshape(-1, feats.shape[-1])
    model.encoder.feature_mean.copy_(flat.mean(0))
    model.encoder.feature_std.copy_(flat.std(0).clamp(min=1e-3))
    model.pitch_mean.copy_(model.encoder.feature_mean[-1])
    model.pitch_std.copy_(model.encoder.feature_std[-1])


def initial_model(
    train_file: Path, seed: int, cfg: TrainConfig = TRAIN, mcfg: ModelConfig = MODEL
) -> tuple[DefaultModel, Batches]:
    """The model at step 0 (seeded weights, input standardisation fitted), and the batch sampler."""
    model = new_model(seed, mcfg)
    batches = Batches.load(
        train_file, mcfg.ratio, cfg.context_frames + cfg.frames, mcfg.encoder_window - mcfg.ratio, seed
    )
    fit_feature_normalisation(model, batches)
    return model, batches


def train(
    train_file: Path,
    out_dir: Path,
    seed: int,
    cfg: TrainConfig = TRAIN,
    mcfg: ModelConfig = MODEL,
    log=print,
) -> dict:
    torch.set_num_threads(cfg.threads)
    torch.set_flush_denormal(True)  # tiny envelope values would otherwise slow CPU math
    out_dir.mkdir(parents=True, exist_ok=True)
    model, batches = initial_model(train_file, seed, cfg, mcfg)
    torch.save(model.state_dict(), out_dir / INIT_CHECKPOINT)

    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(seed + 1)
    skip = cfg.context_frames * mcfg.ratio
    history = []
    start = time.perf_counter()
    steps_done = 0
    for step in range(cfg.steps):
        # Progress through the schedule: by steps, or by time if the time budget runs out first
        # (a busy machine then gets fewer steps, but a complete learning-rate decay).
        progress = step / max(cfg.steps - 1, 1)
        if cfg.time_limit_s > 0:
            progress = max(progress, (time.perf_counter() - start) / cfg.time_limit_s)
        if progress > 1.0:
            log(f"time budget of {cfg.time_limit_s:.0f} s used up at step {step} of {cfg.steps}")
            break
        lr = cfg.lr_final + 0.5 * (cfg.lr - cfg.lr_final) * (1 + math.cos(math.pi * progress))
        for group in opt.param_groups:
            group["lr"] = lr
        beta = cfg.beta_kl * min(1.0, progress / cfg.kl_warmup) if cfg.kl_warmup > 0 else cfg.beta_kl

        x, f0_label, amp_label = batches.sample(cfg.batch_size)
        mean, logvar = model.encoder(x)
        z = mean + torch.exp(0.5 * logvar) * torch.randn(mean.shape, generator=gen)
        counter = int(torch.randint(0, 2**31, (1,), generator=gen))
        y, _, f0 = model.decode_frames(z, model.initial_state(cfg.batch_size, counter), mean)

        target = x[:, mcfg.encoder_window - mcfg.ratio :]
        spec = spectral.loss(target[:, skip:], y[:, skip:])
        voiced = (amp_label[:, cfg.context_frames :] > 0.02).float()
        semitones = 12.0 * (torch.log2(f0[:, cfg.context_frames :]) - torch.log2(f0_label[:, cfg.context_frames :]))
        f0_err = (semitones.abs() * voiced).sum() / voiced.sum().clamp(min=1.0)
        kl = 0.5 * (mean.pow(2) + logvar.exp() - logvar - 1.0).sum(1).mean()
        total = spec + cfg.f0_weight * f0_err + beta * kl

        opt.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 2.0)
        opt.step()
        steps_done += 1

        if step % 50 == 0 or step == cfg.steps - 1:
            elapsed = time.perf_counter() - start
            entry = {
                "step": step,
                "seconds": round(elapsed, 1),
                "spectral": round(spec.item(), 4),
                "f0_semitones": round(f0_err.item(), 3),
                "kl": round(kl.item(), 3),
                "beta": round(beta, 5),
                "lr": round(lr, 6),
            }
            history.append(entry)
            log(
                f"step {step:5d}  {elapsed:6.0f}s  spectral {entry['spectral']:.3f}  "
                f"f0 err {entry['f0_semitones']:.2f} st  kl {entry['kl']:.2f}  beta {beta:.4f}"
            )

    torch.save(model.state_dict(), out_dir / FINAL_CHECKPOINT)
    summary = {"steps": steps_done, "seconds": round(time.perf_counter() - start, 1), "history": history}
    (out_dir / LOG_FILE).write_text(json.dumps(summary, indent=1))
    return summary
