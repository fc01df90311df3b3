"""Images into CLIP's vision tower at any size; maps back to image size."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..data.images import fit_size, load_image, shrink
from ..models.clip_embeddings import pixel_values


def check_clip(clip):
    """``clip`` as (model, tokenizer), checked to be a CLIP with both towers."""
    try:
        model, tokenizer = clip
    except (TypeError, ValueError):
        raise ValueError(f"clip must be a (CLIPModel, tokenizer) pair such as load_clip() returns, got {clip!r}") from None
    if not all(hasattr(model, a) for a in ("vision_model", "visual_projection", "text_projection")):
        raise ValueError(f"clip must hold a CLIPModel with a vision tower, got {type(model).__name__}")
    return model, tokenizer


def prepare_image(model, image, input_size: int | None = None) -> tuple[torch.Tensor, tuple[int, int]]:
    """Normalised pixels (1, 3, h, w) for ``model`` and the image's own (H, W).

    The shorter side is resized to ``input_size`` (default: the model's training
    size) keeping the aspect ratio; both sides are rounded to whole patches. A photo of any size works: a huge
    one is first reduced on its uint8 pixels (:func:`foundseg.data.images.shrink`).
    """
    arr = load_image(image, "image")
    vision = model.config.vision_config
    patch = vision.patch_size
    target = vision.image_size if input_size is None else input_size
    if not isinstance(target, int) or target < patch:
        raise ValueError(f"input_size must be an integer of at least one patch ({patch} px), got {input_size!r}")
    h, w = arr.shape[:2]
    if min(h, w) < patch:
        raise ValueError(f"image of {h}x{w} px is smaller than one {patch} px patch")
    size = fit_size(arr.shape, target, patch, "image")
    x = pixel_values(shrink(arr, size), device=model.device, dtype=model.dtype)
    if size != (h, w):
        x = F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True)
    return x, (h, w)


def token_grid(pixels: torch.Tensor, patch: int) -> tuple[int, int]:
    """Rows and columns of patch tokens for ``pixels``."""
    return pixels.shape[-2] // patch, pixels.shape[-1] // patch


def upsample(maps: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """(C, h, w) maps → (C, H, W) float32 numpy, bilinear."""
    return F.interpolate(maps[None].float(), size=size, mode="bilinear", align_corners=False)[0].cpu().numpy()


def vision_tokens_before(model, pixels: torch.Tensor, layer: int) -> torch.Tensor:
    """Hidden states entering encoder layer ``layer`` (negative counts from the end), computed without grad."""
    layers = model.vision_model.encoder.layers
    index = layer % len(layers)
    vm = model.vision_model
    size = model.config.vision_config.image_size
    with torch.no_grad():
        h = vm.pre_layrnorm(vm.embeddings(pixels, interpolate_pos_encoding=tuple(pixels.shape[-2:]) != (size, size)))
        for block in layers[:index]:
            h = block(h, None)
    return h
