"""What every chapter's first cell calls: seeds, quiet library logs, device and scale."""
from __future__ import annotations

import os
import random
import warnings

import numpy as np
import torch

from .config import apply_thread_policy, current_scale
from .progress import silence_libraries


def setup(seed: int = 0) -> torch.device:
    """Seed everything, silence library chatter on stderr, set the scale's CPU thread policy (one thread for the
    shapes world's tiny models, see :class:`~foundseg.config.Scale`), print scale, device and models; return
    the device.

    ``seed`` seeds Python's ``random``, numpy's global generator and torch. The device is CUDA when available.

    >>> from unittest import mock
    >>> with mock.patch.dict(os.environ, FOUNDSEG_SCALE="shapes"):  # doctest: +ELLIPSIS
    ...     device = setup(seed=0)
    scale: shapes | device: ... | models: shapes-clip, shapes-sd, shapes-dit
    >>> device.type in ("cpu", "cuda")
    True
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    silence_libraries()
    warnings.filterwarnings("ignore", category=FutureWarning)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    apply_thread_policy()
    chosen = current_scale()
    print(f"scale: {chosen.name} | device: {device.type} | models: {chosen.clip_model}, {chosen.sd_model}, "
          f"{chosen.dit_model}")
    return device
