"""A small mask-classification head (Mask2Former's design at shapes scale) for open-vocabulary segmentation.

N learned queries attend to a pixel decoder's embeddings and give each a class-agnostic mask (dot product with
the per-pixel embeddings) and a mask embedding, classified against text embeddings of class names plus a learned
background and a learned "no object" embedding. Training matches queries to ground-truth regions one to one
(Hungarian matching, ``scipy.optimize.linear_sum_assignment``); inference paints pixels with masks × class
probabilities, as Mask2Former's semantic inference does.

Why not transformers' ``Mask2FormerForUniversalSegmentation``: its pixel-level module is built around a backbone
it instantiates and a multi-scale deformable-attention encoder over three or more feature levels; the ODISE
extractor hands over one fused map, and its classifier is a fixed linear layer, not text embeddings given at
call time. Adapting both would replace most of the model, so the head is written here with the same parts:
pixel decoder, masked-attention-free transformer decoder, mask and class predictions, set loss.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

from ..maps import resize_maps

CLASS_WEIGHT, MASK_WEIGHT, DICE_WEIGHT, NO_OBJECT_WEIGHT = 2.0, 5.0, 5.0, 0.1
"""Mask2Former's loss and matching weights (class, mask cross-entropy, dice) and the no-object class weight."""


def sine_positions(channels: int, h: int, w: int, device=None) -> torch.Tensor:
    """Fixed 2-D sine position encodings (h·w, channels), half for rows and half for columns.

    >>> sine_positions(8, 2, 3).shape
    torch.Size([6, 8])
    """
    quarter = channels // 4
    freq = torch.exp(-math.log(100.0) * torch.arange(quarter, device=device) / max(quarter, 1))
    ys, xs = torch.meshgrid(torch.linspace(0, 1, h, device=device), torch.linspace(0, 1, w, device=device),
                            indexing="ij")
    parts = [f(c.reshape(-1, 1) * freq * math.pi * 4) for c in (ys, xs) for f in (torch.sin, torch.cos)]
    out = torch.cat(parts, 1)
    return F.pad(out, (0, channels - out.shape[1]))


class MaskClassificationHead(nn.Module):
    """Pixel decoder → ``queries`` queries through ``layers`` transformer-decoder layers → masks and mask
    embeddings.

    ``forward(features, text_embeds)`` takes fused features (B, C, h, w) and the K class text embeddings (K, P)
    and returns ``(class_logits, mask_logits)``: (B, Q, 1 + K + 1) — background, the K classes, no object —
    and (B, Q, h, w).

    Args:
        in_channels: C, the channels of the features.
        embed_dim: P, the width of the text embeddings (CLIP's joint space).
        hidden: the width of pixel embeddings and queries.
        queries / layers / heads: number of queries, decoder layers and attention heads.

    >>> head = MaskClassificationHead(in_channels=96, embed_dim=64)
    >>> logits, masks = head(torch.randn(2, 96, 16, 16), torch.randn(3, 64))
    >>> logits.shape, masks.shape
    (torch.Size([2, 8, 5]), torch.Size([2, 8, 16, 16]))
    """

    def __init__(self, in_channels: int, embed_dim: int, hidden: int = 128, queries: int = 8, layers: int = 2,
                 heads: int = 4):
        super().__init__()
        self.pixel_decoder = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 1), nn.GroupNorm(8, hidden), nn.GELU(),
            nn.Conv2d(hidden, hidden, 3, padding=1), nn.GroupNorm(8, hidden), nn.GELU(),
            nn.Conv2d(hidden, hidden, 3, padding=1))
        self.queries = nn.Parameter(torch.randn(queries, hidden) * 0.02)
        layer = nn.TransformerDecoderLayer(hidden, heads, 2 * hidden, dropout=0.0, batch_first=True, norm_first=True)
        self.decoder = nn.TransformerDecoder(layer, layers, norm=nn.LayerNorm(hidden))
        self.mask_embed = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, hidden))
        self.class_embed = nn.Linear(hidden, embed_dim)
        self.background = nn.Parameter(torch.randn(embed_dim) * 0.02)
        self.no_object = nn.Parameter(torch.randn(embed_dim) * 0.02)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(20.0)))

    def forward(self, features: torch.Tensor, text_embeds: torch.Tensor):
        pixels = self.pixel_decoder(features)
        b, c, h, w = pixels.shape
        memory = pixels.flatten(2).transpose(1, 2) + sine_positions(c, h, w, pixels.device)
        q = self.decoder(self.queries.expand(b, -1, -1), memory)
        masks = torch.einsum("bqc,bchw->bqhw", self.mask_embed(q), pixels)
        classes = F.normalize(torch.cat([self.background[None], text_embeds, self.no_object[None]]), dim=-1)
        logits = self.logit_scale.exp() * F.normalize(self.class_embed(q), dim=-1) @ classes.T
        return logits, masks


def class_probabilities(class_logits: torch.Tensor) -> torch.Tensor:
    """Each query's probabilities over background and the K classes (B, Q, 1 + K): the softmax over
    background, classes and no object, without the no-object column (Mask2Former's semantic inference)."""
    return class_logits.softmax(-1)[..., :-1]


def semantic_inference(class_probs: torch.Tensor, mask_logits: torch.Tensor, size) -> torch.Tensor:
    """Label maps (B, H, W): argmax over background and classes of Σ_q p_q(class) · sigmoid(mask_q).

    ``class_probs`` is (B, Q, 1 + K) (see :func:`class_probabilities`), ``mask_logits`` (B, Q, h, w), upsampled
    bilinearly to ``size`` (H, W).

    >>> probs = torch.tensor([[[0.9, 0.1], [0.1, 0.9]]])   # query 0: background, query 1: class 1
    >>> masks = torch.full((1, 2, 2, 2), -9.0)
    >>> masks[0, 0, 0], masks[0, 1, 1] = 9.0, 9.0           # query 0 covers the top row, query 1 the bottom
    >>> semantic_inference(probs, masks, (2, 2)).tolist()
    [[[0, 0], [1, 1]]]
    """
    up = resize_maps(mask_logits, size, normalise="sigmoid")
    return torch.einsum("bqk,bqhw->bkhw", class_probs, up).argmax(1)


def pairwise_costs(class_logits: torch.Tensor, mask_logits: torch.Tensor, labels: torch.Tensor,
                   ignore_index: int = 255):
    """Every query against every label, for a whole batch at once: (class probability, mask cross-entropy, dice
    loss), each (B, Q, L) with L = 1 + K labels (background and the K classes), and which labels each image holds
    (B, L). Masks are compared at the labels' (H, W) size, pixels equal to ``ignore_index`` left out.

    >>> logits = torch.zeros(1, 2, 4)                       # 2 queries; background, 2 classes, no object
    >>> masks = torch.full((1, 2, 2, 2), -9.0)
    >>> masks[0, 1] = 9.0                                   # query 1 covers the whole image
    >>> prob, ce, dice, present = pairwise_costs(logits, masks, torch.ones(1, 2, 2, dtype=torch.long))
    >>> present.tolist(), [round(d, 2) for d in dice[0, :, 1].tolist()]  # only class 1 is there; query 1 covers it
    ([[False, True, False]], [0.8, 0.0])
    """
    b, q, n_cls = class_logits.shape
    up = resize_maps(mask_logits, labels.shape[-2:]).flatten(2)
    flat = labels.flatten(1)
    valid = (flat != ignore_index).to(up.dtype)                                      # (B, P)
    onehot = F.one_hot(flat.clamp(max=n_cls - 2), n_cls - 1).to(up.dtype) * valid[..., None]  # (B, P, L)
    present = onehot.sum(1) > 0
    pos, neg = F.softplus(-up) * valid[:, None], F.softplus(up) * valid[:, None]     # BCE against 1 and 0
    ce = (pos @ onehot + neg @ (valid[..., None] - onehot)) / valid.sum(1).clamp(min=1)[:, None, None]
    probs = up.sigmoid() * valid[:, None]
    dice = 1 - (2 * probs @ onehot + 1) / (probs.sum(2)[..., None] + onehot.sum(1)[:, None] + 1)
    return class_logits.softmax(-1)[..., :-1], ce, dice, present


def set_loss(class_logits: torch.Tensor, mask_logits: torch.Tensor, labels: torch.Tensor,
             ignore_index: int = 255) -> torch.Tensor:
    """Mask2Former's set loss: queries matched one to one to the regions of ``labels`` (B, H, W) by the
    Hungarian algorithm on class, mask cross-entropy and dice costs (:func:`pairwise_costs`); matched queries
    learn their region's class and mask, the others "no object" (weighted :data:`NO_OBJECT_WEIGHT`). Pixels
    equal to ``ignore_index`` do not count.

    ``class_logits`` (B, Q, 1 + K + 1) and ``mask_logits`` (B, Q, h, w) as :class:`MaskClassificationHead`
    returns them; label ``k`` is column ``k`` (0 = background).

    >>> head = MaskClassificationHead(in_channels=4, embed_dim=8, hidden=16, queries=3)
    >>> labels = torch.zeros(2, 8, 8, dtype=torch.long)
    >>> labels[:, 2:5, 2:5] = 1
    >>> loss = set_loss(*head(torch.randn(2, 4, 8, 8), torch.randn(2, 8)), labels)
    >>> loss.ndim, bool(loss > 0)
    (0, True)
    """
    b, q, n_cls = class_logits.shape
    prob, ce, dice, present = pairwise_costs(class_logits, mask_logits, labels, ignore_index)
    cost = (-CLASS_WEIGHT * prob + MASK_WEIGHT * ce + DICE_WEIGHT * dice).detach().cpu().numpy()
    targets = torch.full((b, q), n_cls - 1, dtype=torch.long)
    images, queries, regions = [], [], []
    for i, held in enumerate(present.cpu().numpy()):
        cols = held.nonzero()[0]
        rows, picked = linear_sum_assignment(cost[i][:, cols])
        targets[i, rows] = torch.as_tensor(cols[picked])
        images += [i] * len(rows)
        queries += rows.tolist()
        regions += cols[picked].tolist()
    weights = torch.ones(n_cls, device=class_logits.device)
    weights[-1] = NO_OBJECT_WEIGHT
    class_loss = F.cross_entropy(class_logits.flatten(0, 1), targets.flatten().to(class_logits.device), weight=weights)
    matched = (images, queries, regions)
    mask_loss = (MASK_WEIGHT * ce[matched] + DICE_WEIGHT * dice[matched]).sum() / max(len(images), 1)
    return CLASS_WEIGHT * class_loss + mask_loss


__all__ = ["MaskClassificationHead", "class_probabilities", "pairwise_costs", "semantic_inference", "set_loss",
           "sine_positions"]
