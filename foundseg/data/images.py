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
