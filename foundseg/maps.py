"""Score maps (attention, CAMs): resizing and min-max normalisation, the conventions every method and figure
shares."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


NORMALISATIONS = (None, "minmax", "max", "sigmoid")


def resize_maps(maps: torch.Tensor, size, mode: str = "bilinear", normalise: str | None = None) -> torch.Tensor:
    """Maps (..., h, w) resized to ``size`` (H, W) with ``mode`` interpolation (``"bilinear"``, ``"bicubic"``
    or ``"nearest"``), each map on its own, then normalised per map: ``None`` (as resized), ``"minmax"`` (to
    [0, 1], see :func:`minmax`), ``"max"`` (divided by its maximum) or ``"sigmoid"`` (mask logits to weights).

    A floating tensor keeps its dtype, any other becomes float32. A (N, C, h, w) tensor goes to
    ``F.interpolate`` as it is (features and mask logits resize as PyTorch models resize them); other leading
    shapes are grouped as (-1, C, h, w).

    >>> resize_maps(torch.ones(2, 3, 4, 4), (8, 8)).shape
    torch.Size([2, 3, 8, 8])
    >>> resize_maps(torch.tensor([[0.0, 1.0]]), (1, 4), "nearest").tolist()
    [[0.0, 0.0, 1.0, 1.0]]
    >>> resize_maps(torch.tensor([[1.0, 4.0]]), (1, 4), "nearest", normalise="max").tolist()
    [[0.25, 0.25, 1.0, 1.0]]
    """
    if normalise not in NORMALISATIONS:
        raise ValueError(f"normalise must be one of {NORMALISATIONS}, got {normalise!r}")
    if maps.ndim < 2:
        raise ValueError(f"maps must have at least two axes (h, w), got shape {tuple(maps.shape)}")
    size = tuple(size)
    maps = maps if maps.is_floating_point() else maps.float()
    grouped = maps.reshape(-1, *maps.shape[-3:]) if maps.ndim > 2 else maps[None, None]
    corners = {} if mode == "nearest" else {"align_corners": False}
    out = F.interpolate(grouped, size=size, mode=mode, **corners).reshape(*maps.shape[:-2], *size)
    if normalise == "minmax":
        return minmax(out)
    if normalise == "max":
        return out / out.amax(dim=(-2, -1), keepdim=True).clamp(min=1e-12)
    return out.sigmoid() if normalise == "sigmoid" else out


def minmax(maps):
    """Scale each map (over the last two axes) to [0, 1]; a flat map becomes zeros (pytorch-grad-cam's
    convention). A torch tensor comes back as a tensor of its dtype; anything else as float64 numpy.

    >>> minmax([[1, 3], [5, 9]]).tolist()
    [[0.0, 0.25], [0.5, 1.0]]
    >>> minmax(np.full((1, 2, 2), 7.0)).tolist()
    [[[0.0, 0.0], [0.0, 0.0]]]
    >>> minmax(torch.tensor([[[2.0, 4.0]]])).tolist()
    [[[0.0, 1.0]]]
    """
    if isinstance(maps, torch.Tensor):
        lo = maps.amin(dim=(-2, -1), keepdim=True)
        span = maps.amax(dim=(-2, -1), keepdim=True) - lo
        return torch.where(span > 0, (maps - lo) / torch.where(span > 0, span, torch.ones_like(span)), 0.0)
    maps = np.asarray(maps, dtype=np.float64)
    lo = maps.min(axis=(-2, -1), keepdims=True)
    span = maps.max(axis=(-2, -1), keepdims=True) - lo
    return np.where(span > 0, (maps - lo) / np.where(span > 0, span, 1), 0.0)
