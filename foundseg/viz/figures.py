"""Matplotlib figures: one helper per kind of figure."""
from __future__ import annotations

import numpy as np

from ..data.shapes import CLASSES


def class_colours(n: int = len(CLASSES) + 1) -> np.ndarray:
    """(n, 3) float RGB colours for label ids; id 0 (background) is black."""
    import matplotlib

    cmap = matplotlib.colormaps["tab10"]
    return np.array([(0.0, 0.0, 0.0)] + [cmap(i % 10)[:3] for i in range(n - 1)])


def overlay_labels(image, labels, alpha: float = 0.55) -> np.ndarray:
    """Image (H, W, 3) uint8 with a label map blended on top (background left as is)."""
    img = np.asarray(image, np.float32) / 255
    labels = np.asarray(labels)
    colours = class_colours(max(int(labels.max()) + 1, len(CLASSES) + 1))[labels]
    fg = (labels > 0)[..., None]
    return np.where(fg, (1 - alpha) * img + alpha * colours, img)


def overlay_heatmap(image, heatmap, alpha: float = 0.5, cmap: str = "jet") -> np.ndarray:
    """Image (H, W, 3) with a [0, 1] heat map (same H, W) blended on top."""
    import matplotlib

    img = np.asarray(image, np.float32) / 255
    heat = matplotlib.colormaps[cmap](np.clip(np.asarray(heatmap), 0, 1))[..., :3]
    return (1 - alpha) * img + alpha * heat


def image_grid(images, titles=None, ncols: int = 8, size: float = 1.6, suptitle: str | None = None):
    """A grid of images with optional titles; returns the figure."""
    import matplotlib.pyplot as plt

    n = len(images)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows * 1.15), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, (ax, img) in enumerate(zip(axes.flat, images)):
        ax.imshow(img, interpolation="nearest")
        if titles is not None:
            ax.set_title(titles[i], fontsize=7)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def wrap(text: str, width: int = 22) -> str:
    """Break a caption into lines of at most ``width`` characters, for figure titles."""
    import textwrap

    return "\n".join(textwrap.wrap(text, width))
