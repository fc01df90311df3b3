"""Dense features of CLIP's image tower: the last layer's patch tokens on their grid (the SAN-like row's input)."""
from __future__ import annotations

import numpy as np
import torch

from ..batching import batched
from ..maps import resize_maps
from ..models.clip_embeddings import pixel_values


@torch.no_grad()
def clip_features(clip, images: np.ndarray, size=(8, 8), batch: int = 256) -> torch.Tensor:
    """The last layer's patch tokens after the final LayerNorm, on their grid resized (bilinear) to ``size``:
    (N, D, h, w).

    ``clip`` is a :class:`foundseg.models.CLIP`; ``images`` are (N, H, W, 3) uint8, fed ``batch`` at a time.

    >>> from foundseg.models import load_clip
    >>> from foundseg.data import batch
    >>> images = batch("train", range(2))[0]
    >>> clip_features(load_clip("shapes-clip"), images).shape
    torch.Size([2, 96, 8, 8])
    """
    model = clip.model
    interpolate = images.shape[1] != model.config.vision_config.image_size

    def grid(s: slice) -> torch.Tensor:
        tokens = model.vision_model(pixel_values=pixel_values(images[s], model.device, model.dtype),
                                    interpolate_pos_encoding=interpolate).last_hidden_state[:, 1:]
        side = int(tokens.shape[1] ** 0.5)
        return model.vision_model.post_layernorm(tokens).transpose(1, 2).reshape(len(tokens), -1, side, side)

    return resize_maps(batched(grid, len(images), batch), size)
