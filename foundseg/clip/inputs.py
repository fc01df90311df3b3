"""Images into CLIP's vision tower at any size; maps back to image size."""
from __future__ import annotations

import numpy as np
import torch

from ..batching import batch_slices
from ..data.images import fit_size, load_image, model_input
from ..maps import resize_maps
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
    return model_input(arr, size, lambda a: pixel_values(a, device=model.device, dtype=model.dtype)), (h, w)


def image_list(images) -> tuple[list, bool]:
    """``images`` as a list of images, and whether a single image was given: a list or tuple of images and a
    stacked (N, H, W, 3) array or tensor are batches, anything else is one image."""
    if isinstance(images, (list, tuple)) or (isinstance(images, (np.ndarray, torch.Tensor)) and images.ndim == 4):
        if len(images) == 0:
            raise ValueError("images must hold at least one image")
        return list(images), False
    return [images], True


def over_images(model, images, input_size, batch_size: int, compute, result):
    """Run a map method over one image or a batch: each image prepared for ``model`` (see
    :func:`prepare_image`), images of one prepared size sent through ``compute(pixels)`` up to ``batch_size``
    at a time, which returns (maps (N, C, h, w), scores (N, C)); ``result(maps, scores, size)`` makes each
    image's result from its own maps and scores and its original (H, W). Returns one result, or a list for a
    batch."""
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    batch, single = image_list(images)
    prepared = [prepare_image(model, image, input_size) for image in batch]
    by_size: dict[tuple, list[int]] = {}
    for i, (pixels, _) in enumerate(prepared):
        by_size.setdefault(tuple(pixels.shape), []).append(i)
    results = [None] * len(batch)
    for members in by_size.values():
        for s in batch_slices(len(members), batch_size):
            chunk = members[s]
            maps, scores = compute(torch.cat([prepared[i][0] for i in chunk]))
            for j, i in enumerate(chunk):
                results[i] = result(maps[j], scores[j], prepared[i][1])
    return results[0] if single else results


def token_grid(pixels: torch.Tensor, patch: int) -> tuple[int, int]:
    """Rows and columns of patch tokens for ``pixels``."""
    return pixels.shape[-2] // patch, pixels.shape[-1] // patch


def upsample(maps: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """(C, h, w) maps → (C, H, W) float32 numpy, bilinear."""
    return resize_maps(maps.float(), size).cpu().numpy()


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
