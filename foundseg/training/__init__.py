"""Reproduce the shapes-world model zoo from scratch: ``foundseg zoo train --out DIR`` (or ``python -m foundseg.training``)."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch

from ..cache import move_into_place
from .card import write_cards
from .clip import train_clip
from .common import write_train_log
from .dit import train_dit
from .sd import train_sd

__all__ = ["MODELS", "train_clip", "train_dit", "train_sd", "train_zoo", "write_cards"]
MODELS = ("shapes-clip", "shapes-sd", "shapes-dit")


def train_zoo(out_dir, seed: int = 0, progress: bool = True, threads: int | None = 2, device="cpu", force: bool = False,
              **overrides) -> dict:
    """Train shapes-clip, then shapes-sd on its text tower, then shapes-dit on both (shapes-clip's text tower,
    shapes-sd's VAE) into ``out_dir``; write ``train_log.json`` in each.

    ``overrides`` may hold ``clip``, ``vae``, ``unet`` and ``dit`` dicts of settings (used by the tests to train
    tiny runs). ``seed`` seeds every model (the UNet and the transformer get ``seed + 1``); ``progress`` shows progress bars; ``threads`` sets
    torch's CPU threads while it trains (None leaves them; the caller's count comes back after); ``device`` is
    where training runs. Each model is written to a
    temporary directory first and replaces ``out_dir / name`` only when finished; models already in
    ``out_dir`` are replaced only with ``force`` (checked before any work). Returns the logs by model name,
    with ``total_wall_time_s``.

    Each model's ``train_log.json`` records its wall time (``benchmarks/README.md`` collects them). A tiny run,
    for illustration:

    >>> logs = train_zoo("tiny-zoo", progress=False, clip=dict(steps=3, pool=300, batch=16),
    ...                  vae=dict(steps=3, pool=300, batch=8), unet=dict(steps=3, batch=8),
    ...                  dit=dict(steps=3, pool=64, batch=8))  # doctest: +SKIP
    >>> sorted(logs), logs["shapes-clip"]["steps"]  # doctest: +SKIP
    (['shapes-clip', 'shapes-dit', 'shapes-sd', 'total_wall_time_s'], 3)
    """
    out_dir = Path(out_dir)
    existing = [name for name in MODELS if (out_dir / name).exists()]
    if existing and not force:
        raise FileExistsError(f"out_dir {out_dir} already holds {', '.join(existing)}; pass force=True "
                              "(--force) to replace them")
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return _train_into(out_dir, seed, progress, device, overrides)
    finally:
        torch.set_num_threads(before)  # the caller's thread count is theirs


def _train_into(out_dir: Path, seed: int, progress: bool, device, overrides: dict) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    logs = {}
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".training-") as tmp:
        tmp = Path(tmp)
        start = time.perf_counter()
        logs["shapes-clip"] = train_clip(tmp / "shapes-clip", seed, progress, device, **overrides.get("clip", {}))
        logs["shapes-sd"] = train_sd(tmp / "shapes-sd", tmp / "shapes-clip", seed, progress,
                                     overrides.get("vae"), overrides.get("unet"), device)
        logs["shapes-dit"] = train_dit(tmp / "shapes-dit", tmp / "shapes-clip", tmp / "shapes-sd", seed, progress, device,
                                       **overrides.get("dit", {}))
        logs["total_wall_time_s"] = round(time.perf_counter() - start, 1)
        for name in MODELS:
            write_train_log(tmp / name, logs[name], device)
            move_into_place(tmp / name, out_dir / name)
    return logs
