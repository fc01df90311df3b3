"""Capturing what modules compute: forward hooks held only for the length of a ``with`` block."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Mapping

import torch


@contextmanager
def capture_outputs(modules: Mapping[str, torch.nn.Module], element: int = 0) -> Iterator[dict[str, torch.Tensor]]:
    """Within the block, the output of each module is kept under its name (element ``element`` of a tuple
    output: SD3's joint blocks return (text, image)); the hooks are removed on exit, also when the block raises. A module run twice keeps its last
    output. Outputs keep their autograd graph, so a caller may differentiate through them.

    ``modules`` maps names to modules, e.g. ``{"up.0": unet.up_blocks[0]}``.

    >>> layer = torch.nn.Linear(2, 3)
    >>> with capture_outputs({"fc": layer}) as out:
    ...     _ = layer(torch.zeros(1, 2))
    >>> out["fc"].shape, len(layer._forward_hooks)
    (torch.Size([1, 3]), 0)
    """
    captured: dict[str, torch.Tensor] = {}

    def keeper(name):
        def keep(module, args, output):
            captured[name] = output[element] if isinstance(output, tuple) else output
        return keep

    handles = []
    try:
        for name, module in modules.items():
            handles.append(module.register_forward_hook(keeper(name)))
        yield captured
    finally:
        for handle in handles:
            handle.remove()
