"""Min-max scaling of score maps to [0, 1], the one convention every method and figure shares."""
from __future__ import annotations

import numpy as np
import torch


def minmax_scale(maps):
    """Scale each map (over the last two axes) to [0, 1]; a flat map becomes zeros (pytorch-grad-cam's
    convention). A torch tensor comes back as a tensor of its dtype; anything else as float64 numpy.

    >>> minmax_scale([[1, 3], [5, 9]]).tolist()
    [[0.0, 0.25], [0.5, 1.0]]
    >>> minmax_scale(np.full((1, 2, 2), 7.0)).tolist()
    [[[0.0, 0.0], [0.0, 0.0]]]
    >>> minmax_scale(torch.tensor([[[2.0, 4.0]]])).tolist()
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
