"""A light open-vocabulary mask head: pixel embeddings scored against CLIP text embeddings of class names.

Trained on seen classes only; because classes are text embeddings, unseen class names work at test time.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class OpenVocabHead(nn.Module):
    """Two 3×3 conv layers and a 1×1 projection into CLIP's joint space; a learned background embedding.

    ``forward(features, text_embeds)`` returns logits (B, 1 + K, h, w): background first, then the K classes.
    ``in_channels`` is the channel count of the (B, C, h, w) features, ``embed_dim`` the size of the K text
    embeddings (K, P) and ``hidden`` the width of the conv layers (a multiple of 8).

    >>> head = OpenVocabHead(in_channels=96, embed_dim=64)
    >>> logits = head(torch.randn(2, 96, 8, 8), torch.randn(3, 64))
    >>> logits.shape
    torch.Size([2, 4, 8, 8])
    """

    def __init__(self, in_channels: int, embed_dim: int, hidden: int = 128):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 3, padding=1), nn.GroupNorm(8, hidden), nn.GELU(),
            nn.Conv2d(hidden, hidden, 3, padding=1), nn.GroupNorm(8, hidden), nn.GELU(),
            nn.Conv2d(hidden, embed_dim, 1))
        self.background = nn.Parameter(torch.randn(embed_dim) * 0.02)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(20.0)))

    def forward(self, features: torch.Tensor, text_embeds: torch.Tensor) -> torch.Tensor:
        pixels = F.normalize(self.net(features), dim=1)
        classes = F.normalize(torch.cat([self.background[None], text_embeds]), dim=-1)
        return self.logit_scale.exp() * torch.einsum("bchw,kc->bkhw", pixels, classes)


def segmentation_loss(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = 255) -> torch.Tensor:
    """Cross-entropy of logits (B, 1 + K, h, w), upsampled to the labels' (B, H, W) size.

    ``labels`` is an int64 tensor of class ids; pixels equal to ``ignore_index`` do not count.

    >>> labels = torch.zeros(1, 8, 8, dtype=torch.long)
    >>> labels[:, :4] = 255
    >>> round(segmentation_loss(torch.zeros(1, 3, 4, 4), labels).item(), 3)  # uniform over 3 classes: ln 3
    1.099
    """
    up = F.interpolate(logits, size=labels.shape[-2:], mode="bilinear", align_corners=False)
    return F.cross_entropy(up, labels, ignore_index=ignore_index)


def predict(logits: torch.Tensor, size) -> torch.Tensor:
    """Label maps (B, H, W): argmax of the upsampled logits (0 = background, k = class k).

    ``logits`` is (B, 1 + K, h, w) and ``size`` the output (H, W).

    >>> logits = torch.zeros(1, 3, 4, 4)
    >>> logits[:, 2] = 1.0
    >>> labels = predict(logits, (8, 8))
    >>> labels.shape, labels.unique().tolist()
    (torch.Size([1, 8, 8]), [2])
    """
    return F.interpolate(logits, size=tuple(size), mode="bilinear", align_corners=False).argmax(1)
