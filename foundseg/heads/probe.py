"""A per-pixel linear probe: the floor any head trained on the same features must reach.

Features are standardised per channel (statistics of the training features), then one 1×1 convolution gives
logits over background and the seen classes; it cannot name a class it was not trained on.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..maps import resize_maps


class LinearProbe(nn.Module):
    """Standardisation (fixed mean and standard deviation per channel) and a 1×1 convolution to ``classes``
    logits, (B, C, h, w) → (B, classes, h, w).

    >>> probe = LinearProbe(torch.randn(4, 3, 2, 2), classes=5)
    >>> probe(torch.randn(1, 3, 2, 2)).shape
    torch.Size([1, 5, 2, 2])
    """

    def __init__(self, train_feats: torch.Tensor, classes: int):
        super().__init__()
        self.register_buffer("mean", train_feats.mean((0, 2, 3), keepdim=True))
        self.register_buffer("std", train_feats.std((0, 2, 3), keepdim=True) + 1e-6)
        self.linear = nn.Conv2d(train_feats.shape[1], classes, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear((features - self.mean) / self.std)


def segmentation_loss(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = 255) -> torch.Tensor:
    """Cross-entropy of logits (B, K, h, w), upsampled to the labels' (B, H, W) size.

    ``labels`` is an int64 tensor of class ids; pixels equal to ``ignore_index`` do not count.

    >>> labels = torch.zeros(1, 8, 8, dtype=torch.long)
    >>> labels[:, :4] = 255
    >>> round(segmentation_loss(torch.zeros(1, 3, 4, 4), labels).item(), 3)  # uniform over 3 classes: ln 3
    1.099
    """
    return F.cross_entropy(resize_maps(logits, labels.shape[-2:]), labels, ignore_index=ignore_index)


def train_probe(train_feats: torch.Tensor, train_labels: torch.Tensor, classes: int, seed: int, steps: int = 300,
                batch: int = 32, lr: float = 1e-2) -> LinearProbe:
    """A :class:`LinearProbe` trained with AdamW on ``train_labels`` (N, H, W) int64 (255 ignored) for
    ``steps`` steps of ``batch`` images; returned in eval mode on the features' device.

    >>> feats = torch.zeros(8, 2, 4, 4)
    >>> feats[:4, 0], feats[4:, 1] = 1.0, 1.0                 # channel 0 marks class 0, channel 1 class 1
    >>> labels = torch.cat([torch.zeros(4, 8, 8), torch.ones(4, 8, 8)]).long()
    >>> probe = train_probe(feats, labels, classes=2, seed=0, steps=50, batch=8)
    >>> probe(feats).argmax(1)[:, 0, 0].tolist()
    [0, 0, 0, 0, 1, 1, 1, 1]
    """
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    probe = LinearProbe(train_feats, classes).to(train_feats.device)
    opt = torch.optim.AdamW(probe.parameters(), lr=lr, weight_decay=1e-4)
    for _ in range(steps):
        idx = torch.randint(len(train_feats), (batch,), generator=g)
        loss = segmentation_loss(probe(train_feats[idx]), train_labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return probe.eval()
