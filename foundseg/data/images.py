"""Turning whatever a user passes as an image into an RGB uint8 array."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError


def _from_pil(img: Image.Image) -> np.ndarray:
    img = ImageOps.exif_transpose(img)
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if arr.max(initial=0) > 255 else 255.0
        img = Image.fromarray(np.round(arr / peak * 255).astype(np.uint8))
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()


def _from_array(arr: np.ndarray, name: str) -> np.ndarray:
    if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[-1] > 4:
        arr = np.moveaxis(arr, 0, -1)  # channels-first tensor layout
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (3, 4)):
        raise ValueError(f"{name} must have shape (H, W), (H, W, 3|4) or (3|4, H, W); got {tuple(arr.shape)}")
    if arr.dtype == np.uint8:
        out = arr
    elif arr.dtype == np.uint16:
        out = np.round(arr / 65535.0 * 255).astype(np.uint8)
    elif np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 1:
            finite = arr[np.isfinite(arr)]
            seen = f"range [{finite.min():.3g}, {finite.max():.3g}]" if finite.size else "no finite value"
            raise ValueError(f"{name}: float images must hold finite values in [0, 1], got {seen}"
                             + ("" if finite.size == arr.size else " and NaN/inf"))
        out = np.round(arr * 255).astype(np.uint8)
    else:
        raise ValueError(f"{name} must be uint8, uint16 or float in [0, 1]; got dtype {arr.dtype}")
    if out.ndim == 2:
        out = np.repeat(out[..., None], 3, axis=-1)
    elif out.shape[-1] == 4:
        alpha = out[..., 3:].astype(np.float32) / 255
        out = np.round(out[..., :3] * alpha + 255 * (1 - alpha)).astype(np.uint8)
    return np.ascontiguousarray(out)


def load_image(image, name: str = "image") -> np.ndarray:
    """Return ``image`` as an (H, W, 3) uint8 RGB array.

    Accepts a file path, a PIL image, a numpy array or a torch tensor (HWC or
    CHW; uint8, uint16 or float in [0, 1]). Grayscale, palette, 16-bit and
    transparent images become RGB (transparency over white); EXIF rotation is
    applied. Anything else raises a ``ValueError`` naming ``name``.

    >>> load_image(np.zeros((4, 5), np.uint8)).shape
    (4, 5, 3)
    """
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if not path.is_file():
            raise ValueError(f"{name}: no such file {str(path)!r}")
        try:
            with Image.open(path) as img:
                img.load()
                arr = _from_pil(img)
        except (UnidentifiedImageError, OSError) as err:
            raise ValueError(f"{name}: {str(path)!r} is not a readable image ({err})") from None
    elif isinstance(image, Image.Image):
        arr = _from_pil(image)
    elif isinstance(image, np.ndarray) or type(image).__module__.startswith("torch"):
        if not isinstance(image, np.ndarray):
            image = image.detach().cpu().numpy()
        arr = _from_array(image, name)
    else:
        raise ValueError(f"{name} must be a path, PIL image, numpy array or torch tensor; got {type(image).__name__}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} is empty: shape {tuple(arr.shape)}")
    return arr


def fit_size(shape, short_side: int, multiple: int, name: str = "image", limit: int = 4) -> tuple[int, int]:
    """(height, width) for an image of ``shape`` (H, W, ...) with its shorter side at ``short_side`` pixels,
    aspect kept, each side rounded to a multiple of ``multiple``.

    A very elongated image would become more than ``limit`` times the pixels of a ``short_side`` square: that
    raises a ``ValueError`` naming ``name`` before anything is allocated.

    >>> fit_size((8000, 8000, 3), 224, 16), fit_size((300, 451), 512, 64)
    ((224, 224), (512, 768))
    >>> fit_size((100, 8000), 224, 16)
    Traceback (most recent call last):
    ...
    ValueError: image: a 100x8000 image with its shorter side resized to 224 px would be 224x17920 px, more than 4x the model's 224x224 input; crop it first or give the size explicitly
    """
    h, w = shape[:2]
    ratio = short_side / min(h, w)
    size = (max(multiple, round(h * ratio / multiple) * multiple), max(multiple, round(w * ratio / multiple) * multiple))
    if size[0] * size[1] > limit * short_side ** 2:
        raise ValueError(f"{name}: a {h}x{w} image with its shorter side resized to {short_side} px would be "
                         f"{size[0]}x{size[1]} px, more than {limit}x the model's {short_side}x{short_side} input; "
                         "crop it first or give the size explicitly")
    return size


def shrink(image: np.ndarray, size) -> np.ndarray:
    """``image`` (H, W, 3) uint8 box-averaged by a whole factor while it stays at least twice ``size`` (h, w), so
    that a huge photo never reaches float tensors at full size; the exact resize is left to the caller.

    >>> shrink(np.zeros((8000, 6000, 3), np.uint8), (224, 224)).shape
    (616, 462, 3)
    >>> shrink(np.zeros((32, 32, 3), np.uint8), (32, 32)).shape  # already small: unchanged
    (32, 32, 3)
    """
    factor = int(min(image.shape[0] / size[0], image.shape[1] / size[1]) // 2)
    return np.array(Image.fromarray(image).reduce(factor)) if factor >= 2 else image


def model_input(image: np.ndarray, size, to_tensor):
    """``image`` (H, W, 3) uint8 as a model's input of ``size`` (h, w): reduced by :func:`shrink`, made a
    (1, 3, H', W') tensor by ``to_tensor`` (the model's pixel scaling), then resized to ``size`` (bicubic,
    antialiased) unless it is that size already.

    >>> import torch
    >>> to_tensor = lambda a: torch.from_numpy(a).permute(2, 0, 1)[None].float()
    >>> image = np.random.default_rng(0).integers(0, 256, (32, 48, 3), dtype=np.uint8)
    >>> model_input(image, (64, 96), to_tensor).shape
    torch.Size([1, 3, 64, 96])
    >>> torch.equal(model_input(image, (32, 48), to_tensor), to_tensor(image))  # already that size: as it is
    True
    """
    import torch.nn.functional as F

    small = shrink(image, size)
    x = to_tensor(small)
    if small.shape[:2] != tuple(size):
        x = F.interpolate(x, size=tuple(size), mode="bicubic", align_corners=False, antialias=True)
    return x


def resize_image(image: np.ndarray, size) -> np.ndarray:
    """``image`` (H, W, 3) uint8 resized to ``size`` (h, w) with bicubic filtering (huge photos reduced first).

    >>> resize_image(np.zeros((8000, 6000, 3), np.uint8), (224, 168)).shape
    (224, 168, 3)
    """
    h, w = size
    if image.shape[:2] == (h, w):
        return image
    return np.array(Image.fromarray(shrink(image, size)).resize((w, h), Image.BICUBIC))
