"""Pieces every zoo trainer shares: seeding, the training-image pool, schedules, logs."""
from __future__ import annotations

import math
import time

import numpy as np
import torch
from ..progress import progress_bar

from ..data import shapes


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch and return a generator for the trainer's own random draws."""
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def training_pool(n: int, size: int, seed: int, progress: bool = True):
    """Render ``n`` training samples once: images (n, H, W, 3) uint8 and the samples."""
    samples = [shapes.sample("train", i, seed, size) for i in progress_bar(range(n), "render", progress)]
    return np.stack([s.image for s in samples]), samples


def warmup_cosine(optimizer, warmup: int, total: int):
    """Linear warm-up, then cosine decay to zero."""
    def factor(step):
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


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
