"""Working through ``n`` items ``batch`` at a time."""
from __future__ import annotations

from typing import Callable, Iterator

import torch


def batch_slices(n: int, batch: int) -> Iterator[slice]:
    """Slices over the first ``n`` items, ``batch`` at a time (the last one may be shorter).

    >>> [(s.start, s.stop) for s in batch_slices(5, 2)]
    [(0, 2), (2, 4), (4, 5)]
    >>> next(batch_slices(5, 0))
    Traceback (most recent call last):
    ...
    ValueError: batch must be at least 1, got 0
    """
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    for start in range(0, n, batch):
        yield slice(start, min(start + batch, n))


def batched(fn: Callable[[slice], torch.Tensor | tuple], n: int, batch: int):
    """``fn(s)`` for each of :func:`batch_slices` ``(n, batch)``, concatenated along the first dimension; where
    ``fn`` returns a tuple of tensors, each position is concatenated on its own.

    >>> x = torch.arange(5.0)
    >>> batched(lambda s: x[s] * 2, 5, 2).tolist()
    [0.0, 2.0, 4.0, 6.0, 8.0]
    >>> [t.tolist() for t in batched(lambda s: (x[s], -x[s]), 5, 3)]
    [[0.0, 1.0, 2.0, 3.0, 4.0], [-0.0, -1.0, -2.0, -3.0, -4.0]]
    """
    parts = [fn(s) for s in batch_slices(n, batch)]
    if parts and isinstance(parts[0], tuple):
        return tuple(torch.cat(column) for column in zip(*parts))
    return torch.cat(parts)
