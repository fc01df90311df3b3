"""Score maps (attention, CAMs): resizing and min-max normalisation, the conventions every method and figure
shares."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def resize_maps(maps: torch.Tensor, size, mode: str = "bilinear") -> torch.Tensor:
    """Maps (..., h, w) resized to ``size`` (H, W) with ``mode`` interpolation (``"bilinear"``, ``"bicubic"``
    or ``"nearest"``), each map on its own, in float32.

    >>> resize_maps(torch.ones(2, 3, 4, 4), (8, 8)).shape
    torch.Size([2, 3, 8, 8])
    >>> resize_maps(torch.tensor([[0.0, 1.0]]), (1, 4), "nearest").tolist()
    [[0.0, 0.0, 1.0, 1.0]]
    """
    size = tuple(size)
    lead = maps.shape[:-2]
    flat = maps.reshape(-1, 1, *maps.shape[-2:]).float()
    corners = {} if mode == "nearest" else {"align_corners": False}
    return F.interpolate(flat, size=size, mode=mode, **corners).reshape(*lead, *size)


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
