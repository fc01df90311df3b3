"""Training heads on the seen classes' labels, the unseen classes' pixels left out."""
from __future__ import annotations

import numpy as np
import torch

from ..data import CLASSES, SEEN_CLASSES
from .mask_classification import MaskClassificationHead, set_loss


def seen_labels(masks: np.ndarray) -> np.ndarray:
    """Training labels: seen classes renumbered 1..S in SEEN_CLASSES order, unseen pixels ignored (255).

    >>> seen_labels(np.array([[0, 1, 4, 7]])).tolist()  # background, circle, diamond and heart (both unseen)
    [[0, 1, 255, 255]]
    """
    out = np.full_like(masks, 255)
    out[masks == 0] = 0
    for j, name in enumerate(SEEN_CLASSES):
        out[masks == CLASSES.index(name) + 1] = j + 1
    return out


def train_mask_head(feature_fn, train_labels: torch.Tensor, seen_text: torch.Tensor, seed: int, steps: int = 400,
                    batch: int = 32, lr: float = 2e-3, captioner=None, head: MaskClassificationHead | None = None,
                    **head_options) -> MaskClassificationHead:
    """Train a :class:`~foundseg.heads.mask_classification.MaskClassificationHead` (and the ``captioner``, if
    given) with Mask2Former's set loss on seen-class labels.

    ``feature_fn(indices)`` returns the features (B, C, h, w) of those training images — a slice of cached
    features, or features computed live through the captioner; ``train_labels`` are :func:`seen_labels`
    (N, H, W) int64 on the features' device; ``seen_text`` the seen classes' text embeddings (S, P). ``seed``,
    ``steps``, ``batch`` and ``lr`` set the AdamW run (one-cycle cosine schedule). A given ``head`` is trained
    further; otherwise one is built with ``head_options`` on the features' device. Returned in eval mode.

    >>> feats = torch.randn(4, 8, 8, 8)
    >>> labels = torch.zeros(4, 16, 16, dtype=torch.long)
    >>> labels[:, 4:12, 4:12] = 1
    >>> head = train_mask_head(lambda idx: feats[idx], labels, torch.randn(6, 16), seed=0, steps=2, batch=2,
    ...                        hidden=16)
    >>> head.training, [tuple(x.shape) for x in head(feats, torch.randn(8, 16))]  # background, 8 classes, no object
    (False, [(4, 8, 10), (4, 8, 8, 8)])
    """
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    probe = feature_fn(torch.arange(1))
    head = head if head is not None else MaskClassificationHead(probe.shape[1], seen_text.shape[1], **head_options)
    head = head.to(probe.device).train()
    params = list(head.parameters()) + (list(captioner.parameters()) if captioner else [])
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=max(steps, 2), pct_start=0.1)
    for _ in range(steps):
        idx = torch.randint(len(train_labels), (batch,), generator=g)
        loss = set_loss(*head(feature_fn(idx), seen_text), train_labels[idx.to(train_labels.device)])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        schedule.step()
    return head.eval()
