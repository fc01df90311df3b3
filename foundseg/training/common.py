"""Pieces every zoo trainer shares: seeding, the training-image pool, schedules, logs."""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from ..batching import batched
from ..data import shapes
from ..diffusion.latents import to_unit_range, vae_latents
from ..progress import progress_bar


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch and return a generator for the trainer's own random draws."""
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def training_pool(n: int, size: int, seed: int, progress: bool = True):
    """Render ``n`` training samples once: images (n, H, W, 3) uint8 and the samples."""
    samples = [shapes.sample("train", i, seed, size) for i in progress_bar(range(n), "render", progress)]
    return np.stack([s.image for s in samples]), samples


def latent_stats(vae, images: np.ndarray, chunk: int = 512):
    """The autoencoder's posterior mean and std for every image: what training batches sample latents from."""
    with torch.no_grad():
        return batched(lambda s: vae_latents(vae, to_unit_range(images[s]), scaled=False, with_std=True),
                       len(images), chunk)


def latent_batch(mean, std, scaling: float, captions, s: dict, gen: torch.Generator, device="cpu"):
    """A denoiser's training batch: latents sampled from the posteriors of ``s["batch"]`` random images, times
    ``scaling``, and their captions, each replaced by "" with probability ``s["caption_dropout"]`` (for
    classifier-free guidance). Random draws come from ``gen``, always in the same order."""
    idx = torch.randint(len(mean), (s["batch"],), generator=gen)
    eps = torch.randn((len(idx), *mean.shape[1:]), generator=gen).to(device)
    latents = (mean[idx.to(device)] + std[idx.to(device)] * eps) * scaling
    drop = torch.rand(len(idx), generator=gen) < s["caption_dropout"]
    return latents, ["" if d else captions[i] for d, i in zip(drop.tolist(), idx.tolist())]


def warmup_cosine(optimizer, warmup: int, total: int):
    """Linear warm-up, then cosine decay to zero."""
    def factor(step):
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def train_denoiser(model, step_loss, mean, std, scaling: float, captions, s: dict, gen: torch.Generator,
                   device, label: str, progress: bool = True) -> "LossLog":
    """The denoiser's training loop, shared by shapes-sd's UNet and shapes-dit's transformer: AdamW (weight
    decay 0.01) with :func:`warmup_cosine`, an EMA of the weights (copied into ``model`` at the end), ``s["steps"]``
    steps. Each step draws a batch with :func:`latent_batch` and ``step_loss(latents, captions)`` gives its loss
    (the model's own noising and target). Returns the :class:`LossLog` (``mse`` per step)."""
    from diffusers.training_utils import EMAModel

    ema = EMAModel(model.parameters(), decay=s["ema_decay"])
    opt = torch.optim.AdamW(model.parameters(), lr=s["lr"], weight_decay=0.01)
    sched = warmup_cosine(opt, s["warmup"], s["steps"])
    log = LossLog(label.split()[-1])
    model.train()
    for _ in progress_bar(range(s["steps"]), label, progress):
        loss = step_loss(*latent_batch(mean, std, scaling, captions, s, gen, device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        ema.step(model.parameters())
        log.add(mse=loss.item())
    ema.copy_to(model.parameters())
    return log


class LossLog:
    """Per-step losses and wall time of one training run."""

    def __init__(self, name: str):
        self.name, self.losses, self.start = name, {}, time.perf_counter()

    def add(self, **values: float) -> None:
        for k, v in values.items():
            self.losses.setdefault(k, []).append(float(v))

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.start

    def summary(self) -> dict:
        return {"steps": len(next(iter(self.losses.values()), [])), "wall_time_s": round(self.seconds, 1),
                "final_loss": {k: round(float(np.mean(v[-50:])), 4) for k, v in self.losses.items()},
                "curves": self.losses}


def write_train_log(model_dir, log: dict, device) -> None:
    """Write ``train_log.json`` in ``model_dir``: ``log`` with the torch version, CPU threads and device it
    trained with."""
    (Path(model_dir) / "train_log.json").write_text(json.dumps(dict(log, torch=torch.__version__,
                                                                      threads=torch.get_num_threads(),
                                                                      device=str(device))))
