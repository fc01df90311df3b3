"""From localisation maps to masks: fixed threshold, Otsu, percentile; argmax semantic maps."""
from __future__ import annotations

import numpy as np

THRESHOLD_METHODS = ("fixed", "otsu", "percentile")


def _maps(maps) -> np.ndarray:
    arr = np.asarray(maps, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.size == 0:
        raise ValueError(f"maps must have shape (C, H, W) or (H, W), got {np.shape(maps)}")
    if not np.isfinite(arr).all():
        raise ValueError("maps must be finite")
    return arr


def otsu_threshold(values, bins: int = 256) -> float:
    """Otsu's threshold: the cut of the histogram that maximises the between-class variance.

    ``values`` is any array (flattened); ``bins`` is the number of histogram bins. Constant values give
    that value.

    >>> t = otsu_threshold([0.1, 0.2, 0.8, 0.9])
    >>> 0.2 <= t < 0.8
    True
    >>> otsu_threshold([0.5, 0.5])
    0.5
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    lo, hi = v.min(), v.max()
    if hi <= lo:
        return float(hi)
    hist, edges = np.histogram(v, bins=bins, range=(lo, hi))
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres)
    between = np.zeros(bins)
    ok = (w0 > 0) & (w1 > 0)
    mu0 = m0[ok] / w0[ok]
    mu1 = (m0[-1] - m0[ok]) / w1[ok]
    between[ok] = w0[ok] * w1[ok] * (mu0 - mu1) ** 2
    return float(edges[1:][np.argmax(between)])


def threshold_maps(maps, method: str = "fixed", value: float = 0.5) -> np.ndarray:
    """Binary masks (C, H, W) from maps: ``fixed`` (map >= value), ``otsu`` (per map), or ``percentile``
    (keep pixels at or above the ``value``-th percentile of each map, ``value`` in [0, 100]).

    ``maps`` is (C, H, W) or a single (H, W) map; ``method`` is one of :data:`THRESHOLD_METHODS`.

    >>> m = [[0.2, 0.6], [0.4, 0.9]]
    >>> threshold_maps(m).astype(int).tolist()
    [[[0, 1], [0, 1]]]
    >>> threshold_maps(m, "percentile", 75).astype(int).tolist()
    [[[0, 0], [0, 1]]]
    """
    arr = _maps(maps)
    if method == "fixed":
        return arr >= value
    if method == "otsu":
        return np.stack([m > otsu_threshold(m) for m in arr])
    if method == "percentile":
        if not 0 <= value <= 100:
            raise ValueError(f"value must be a percentile in [0, 100] for method='percentile', got {value}")
        return np.stack([m >= np.percentile(m, value) for m in arr])
    raise ValueError(f"method must be one of {THRESHOLD_METHODS}, got {method!r}")


def semantic_map(maps, class_ids, background_threshold: float = 0.5) -> np.ndarray:
    """(H, W) label map: the argmax class id where its map reaches ``background_threshold``, else 0.

    ``maps`` is (C, H, W); ``class_ids`` gives one id per map. Same as :func:`labels_from_maps` with the
    ``fixed`` rule.

    >>> maps = np.array([[[0.9, 0.2], [0.6, 0.1]],
    ...                  [[0.3, 0.8], [0.7, 0.2]]])
    >>> semantic_map(maps, [1, 3], background_threshold=0.75).tolist()
    [[1, 3], [0, 0]]
    """
    return labels_from_maps(maps, class_ids, "fixed", background_threshold)


def labels_from_maps(maps, class_ids, method: str = "fixed", value: float = 0.5, background: int = 0) -> np.ndarray:
    """(H, W) label map: each map is thresholded by ``method``/``value`` (see :func:`threshold_maps`); a pixel
    takes the id of the highest map among those that keep it, else ``background``.

    ``maps`` is (C, H, W); ``class_ids`` gives one id per map.

    >>> maps = np.array([[[0.9, 0.2], [0.6, 0.1]],
    ...                  [[0.3, 0.8], [0.7, 0.2]]])
    >>> labels_from_maps(maps, [1, 3]).tolist()
    [[1, 3], [3, 0]]
    """
    arr = _maps(maps)
    ids = np.asarray(class_ids)
    if ids.shape != (arr.shape[0],):
        raise ValueError(f"class_ids must give one id per map ({arr.shape[0]}), got {ids.tolist()}")
    keep = threshold_maps(arr, method, value)
    masked = np.where(keep, arr, -np.inf)
    return np.where(keep.any(0), ids[masked.argmax(0)], background).astype(np.int64)
