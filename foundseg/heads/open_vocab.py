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
    """Cross-entropy of logits (B, 1 + K, h, w), upsampled to the labels' (B, H, W) size."""
    up = F.interpolate(logits, size=labels.shape[-2:], mode="bilinear", align_corners=False)
    return F.cross_entropy(up, labels, ignore_index=ignore_index)


def predict(logits: torch.Tensor, size) -> torch.Tensor:
    """Label maps (B, H, W): argmax of the upsampled logits (0 = background, k = class k)."""
    return F.interpolate(logits, size=tuple(size), mode="bilinear", align_corners=False).argmax(1)
