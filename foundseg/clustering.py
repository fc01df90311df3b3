"""k-means on feature maps: clustering rows or a (C, h, w) map's pixels, and k chosen by silhouette, without
ground truth (the paper's Fig. 4 groups denoiser features with it).
"""
from __future__ import annotations

import torch

from .maps import resize_maps


def kmeans(x: torch.Tensor, k: int, iters: int = 50, seed: int = 0) -> torch.Tensor:
    """Cluster the rows of ``x`` (N, D) into ``k`` groups (k-means++ start, Lloyd steps); returns labels (N,).

    At most ``iters`` Lloyd steps are run; ``seed`` fixes the start.

    >>> import torch
    >>> labels = kmeans(torch.tensor([[0.0, 0.0], [0.0, 1.0], [10.0, 10.0], [10.0, 11.0]]), 2)
    >>> labels.shape, bool(labels[0] == labels[1]), bool(labels[1] != labels[2]), bool(labels[2] == labels[3])
    (torch.Size([4]), True, True, True)
    """
    if not 1 <= k <= len(x):
        raise ValueError(f"k must be between 1 and the number of points ({len(x)}), got {k}")
    g = torch.Generator().manual_seed(seed)
    x = x.float().cpu()
    centres = x[torch.randint(len(x), (1,), generator=g)]
    for _ in range(1, k):
        d = torch.cdist(x, centres).min(1).values ** 2
        centres = torch.cat([centres, x[torch.multinomial(d / d.sum() if d.sum() > 0 else torch.ones_like(d), 1,
                                                           generator=g)]])
    for _ in range(iters):
        labels = torch.cdist(x, centres).argmin(1)
        new = torch.stack([x[labels == j].mean(0) if (labels == j).any() else centres[j] for j in range(k)])
        if torch.allclose(new, centres):
            break
        centres = new
    return torch.cdist(x, centres).argmin(1)


def silhouette(x: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean silhouette of a clustering of the rows of ``x`` (N, D) into ``labels`` (N,): for each point, how much
    nearer it is to its own cluster than to the nearest other one, in [-1, 1]; higher is better separated.
    A single cluster scores 0.

    >>> x = torch.tensor([[0.0], [0.1], [5.0], [5.1]])
    >>> round(silhouette(x, torch.tensor([0, 0, 1, 1])), 3), round(silhouette(x, torch.tensor([0, 1, 0, 1])), 3)
    (0.98, -0.49)
    """
    ids = labels.unique()
    if len(ids) < 2:
        return 0.0
    d = torch.cdist(x.float(), x.float())
    same = labels[:, None] == labels[None]
    own = (d * same).sum(1) / (same.sum(1) - 1).clamp(min=1)
    other = torch.stack([d[:, labels == j].mean(1) for j in ids], 1).masked_fill(labels[:, None] == ids[None], float("inf"))
    nearest = other.min(1).values
    s = (nearest - own) / torch.maximum(own, nearest)
    return float(torch.where(same.sum(1) > 1, s, torch.zeros_like(s)).mean())


def choose_k(features: torch.Tensor, ks=(2, 3, 4, 5), seed: int = 0) -> int:
    """The number of k-means clusters among ``ks`` whose clustering of a (C, h, w) feature map has the highest
    :func:`silhouette`: k chosen from the features alone, without ground truth.

    >>> blobs = torch.cat([torch.zeros(2, 4, 8), torch.ones(2, 4, 8) * 5], 1)  # two flat halves
    >>> choose_k(blobs + 0.01 * torch.randn(2, 8, 8))
    2
    """
    x = features.reshape(features.shape[0], -1).T
    return max(ks, key=lambda k: silhouette(x, kmeans(x, k, seed=seed)))


def cluster_features(features: torch.Tensor, k: int, size=None, seed: int = 0) -> torch.Tensor:
    """k-means labels (H, W) of a (C, h, w) feature map, upsampled (nearest) to ``size``.

    ``k`` clusters (see :func:`kmeans`); without ``size`` the labels keep the map's (h, w).

    >>> features = torch.zeros(2, 4, 6)
    >>> features[0, :, 2:4], features[1, :, 4:] = 5.0, 5.0  # three flat vertical bands
    >>> labels = cluster_features(features, 3, size=(8, 12))
    >>> labels.shape, labels.dtype, sorted(labels.unique().tolist())
    (torch.Size([8, 12]), torch.int64, [0, 1, 2])
    """
    c, h, w = features.shape
    labels = kmeans(features.reshape(c, -1).T, k, seed=seed).reshape(h, w)
    return labels if size is None else resize_maps(labels, size, "nearest").long()
