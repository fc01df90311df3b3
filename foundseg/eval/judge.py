"""Judging generated shapes-world images: colour segmentation plus a template shape classifier."""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..data.shapes import CLASSES, COLOURS, shape_mask
from .metrics import binary_iou

_PALETTE = np.array(list(COLOURS.values()), np.float32)


def colour_masks(image, max_distance: float = 90.0, min_saturation: float = 70.0) -> dict[str, np.ndarray]:
    """One boolean mask per object colour: saturated pixels whose nearest palette colour it is.

    ``image`` is (H, W, 3) RGB; a pixel counts when its nearest palette colour is within ``max_distance``
    (RGB Euclidean) and its channel spread is at least ``min_saturation``.

    >>> image = np.zeros((2, 2, 3), np.uint8)
    >>> image[0, 0] = (215, 40, 40)  # the palette's red
    >>> masks = colour_masks(image)
    >>> list(masks)
    ['red', 'green', 'blue', 'yellow', 'purple', 'orange']
    >>> masks["red"].astype(int).tolist(), int(masks["blue"].sum())
    ([[1, 0], [0, 0]], 0)
    """
    img = np.asarray(image, np.float32)
    dist = np.linalg.norm(img[..., None, :] - _PALETTE, axis=-1)
    nearest = dist.argmin(-1)
    ok = (dist.min(-1) <= max_distance) & (img.max(-1) - img.min(-1) >= min_saturation)
    return {name: ok & (nearest == i) for i, name in enumerate(COLOURS)}


@lru_cache(maxsize=None)
def _unit_boxes() -> dict[str, tuple[float, float, float, float]]:
    g = np.linspace(-1.3, 1.3, 521)
    v, u = np.meshgrid(g, g, indexing="ij")
    boxes = {}
    for c in CLASSES:
        m = shape_mask(c, u, v)
        boxes[c] = (u[m].min(), u[m].max(), v[m].min(), v[m].max())
    return boxes


def template_scores(mask) -> dict[str, float]:
    """IoU of ``mask`` with each class's shape stretched to the mask's bounding box.

    >>> from foundseg.eval.metrics import centred_disc
    >>> scores = template_scores(centred_disc((32, 32), 0.3))
    >>> round(scores["circle"], 3), round(scores["star"], 3)
    (0.899, 0.483)
    """
    mask = np.asarray(mask, bool)
    if not mask.any():
        return {c: 0.0 for c in CLASSES}
    ys, xs = np.nonzero(mask)
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    yy, xx = np.mgrid[0:mask.shape[0], 0:mask.shape[1]] + 0.5
    out = {}
    for c, (u0, u1, v0, v1) in _unit_boxes().items():
        u = u0 + (xx - x0) / (x1 - x0) * (u1 - u0)
        v = v0 + (yy - y0) / (y1 - y0) * (v1 - v0)
        out[c] = binary_iou(shape_mask(c, u, v), mask)
    return out


def classify_shape(mask) -> str:
    """The class whose stretched template overlaps ``mask`` best (see :func:`template_scores`).

    >>> from foundseg.eval.metrics import centred_disc
    >>> classify_shape(centred_disc((32, 32), 0.3))
    'circle'
    """
    scores = template_scores(mask)
    return max(scores, key=scores.get)


def judge(image, colour: str, shape: str, min_area: float = 0.02) -> dict:
    """Does ``image`` show a ``colour`` ``shape``? Returns colour_ok, shape_ok, the predicted shape and the mask.

    ``colour`` is a key of ``COLOURS`` and ``shape`` one of ``CLASSES``; the colour counts as shown when its
    mask (:func:`colour_masks`) covers at least ``min_area`` of the image, and only then is the shape
    classified.

    >>> from foundseg.data import sample
    >>> s = sample("test", 0)
    >>> s.caption
    'an orange crescent'
    >>> verdict = judge(s.image, "orange", "crescent")
    >>> verdict["colour_ok"], verdict["shape_ok"], verdict["predicted"], verdict["mask"].shape
    (True, True, 'crescent', (32, 32))
    >>> judge(s.image, "blue", "crescent")["colour_ok"]
    False
    """
    if colour not in COLOURS:
        raise ValueError(f"colour must be one of {list(COLOURS)}, got {colour!r}")
    if shape not in CLASSES:
        raise ValueError(f"shape must be one of {list(CLASSES)}, got {shape!r}")
    mask = colour_masks(image)[colour]
    colour_ok = mask.mean() >= min_area
    predicted = classify_shape(mask) if colour_ok else None
    return {"colour_ok": bool(colour_ok), "shape_ok": predicted == shape, "predicted": predicted, "mask": mask}
