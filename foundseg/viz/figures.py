"""Matplotlib figures: one helper per kind of figure."""
from __future__ import annotations

import numpy as np

from ..data.shapes import CLASSES


def class_colours(n: int = len(CLASSES) + 1) -> np.ndarray:
    """(n, 3) float RGB colours for label ids; id 0 (background) is black.

    ``n`` defaults to the shapes-world classes plus background; colours repeat every ten ids after id 0.

    >>> colours = class_colours()
    >>> colours.shape, colours[0].tolist()
    ((9, 3), [0.0, 0.0, 0.0])
    >>> class_colours(3).shape
    (3, 3)
    """
    import matplotlib

    cmap = matplotlib.colormaps["tab10"]
    return np.array([(0.0, 0.0, 0.0)] + [cmap(i % 10)[:3] for i in range(n - 1)])


def overlay_labels(image, labels, alpha: float = 0.55) -> np.ndarray:
    """The (H, W, 3) uint8 ``image`` with a label map blended on top (background left as is).

    ``labels`` is an (H, W) integer map (0 = background) coloured by :func:`class_colours`; ``alpha`` is the
    colours' weight. Returns float RGB in [0, 1], ready for ``imshow``.

    >>> from foundseg.data import sample
    >>> s = sample("test", 0)
    >>> out = overlay_labels(s.image, s.mask)
    >>> out.shape, out.dtype
    ((32, 32, 3), dtype('float64'))
    """
    img = np.asarray(image, np.float32) / 255
    labels = np.asarray(labels)
    colours = class_colours(max(int(labels.max()) + 1, len(CLASSES) + 1))[labels]
    fg = (labels > 0)[..., None]
    return np.where(fg, (1 - alpha) * img + alpha * colours, img)


def overlay_heatmap(image, heatmap, alpha: float = 0.5, cmap: str = "jet") -> np.ndarray:
    """The (H, W, 3) ``image`` with a [0, 1] heat map (same H, W) blended on top.

    ``image`` is uint8; the heat map is coloured with the matplotlib colour map ``cmap`` and weighted by
    ``alpha``. Returns float RGB in [0, 1].

    >>> import numpy as np
    >>> from foundseg.data import sample
    >>> out = overlay_heatmap(sample("test", 0).image, np.linspace(0, 1, 32 * 32).reshape(32, 32))
    >>> out.shape, out.dtype
    ((32, 32, 3), dtype('float64'))
    """
    import matplotlib

    img = np.asarray(image, np.float32) / 255
    heat = matplotlib.colormaps[cmap](np.clip(np.asarray(heatmap), 0, 1))[..., :3]
    return (1 - alpha) * img + alpha * heat


def map_to_image(attention, image, mode: str = "bilinear") -> np.ndarray:
    """A (h, w) map resized to ``image``'s (H, W) with ``mode`` (``"nearest"`` keeps its resolution visible)
    and min-max scaled to [0, 1], ready for :func:`overlay_heatmap`.

    >>> import torch
    >>> m = map_to_image(torch.tensor([[0.0, 2.0], [2.0, 4.0]]), np.zeros((4, 4, 3), np.uint8), "nearest")
    >>> m.shape, m[0].tolist()
    ((4, 4), [0.0, 0.0, 0.5, 0.5])
    """
    import torch
    import torch.nn.functional as F

    from ..eval.metrics import minmax_scale

    m = torch.as_tensor(attention, dtype=torch.float32)[None, None].cpu()
    kwargs = {} if mode == "nearest" else {"align_corners": False}
    return minmax_scale(F.interpolate(m, size=np.asarray(image).shape[:2], mode=mode, **kwargs)[0, 0].numpy())


def layer_panels(maps, image, prefix: str = "up_blocks") -> tuple[list[np.ndarray], list[str]]:
    """Overlays of the first word's map of every layer whose name starts with ``prefix`` (each at its own
    resolution, nearest-upsampled) and of their mean (bilinear), with short titles: the paper's Fig. 3 rows.

    ``maps`` is an :class:`~foundseg.diffusion.AttentionMaps` and ``image`` the (H, W, 3) uint8 image.

    >>> import torch
    >>> from foundseg.diffusion import AttentionMaps
    >>> maps = AttentionMaps({"up_blocks.1.attentions.0.transformer_blocks.0.attn2": torch.rand(1, 1, 4, 4)}, [0])
    >>> panels, titles = layer_panels(maps, np.zeros((8, 8, 3), np.uint8))
    >>> len(panels), panels[0].shape, titles
    (2, (8, 8, 3), ['up_blocks.1.attentions.0.', 'average'])
    """
    chosen = {n: m for n, m in maps.per_layer.items() if n.startswith(prefix)}
    panels = [overlay_heatmap(image, map_to_image(m[0, 0], image, "nearest")) for m in chosen.values()]
    panels.append(overlay_heatmap(image, map_to_image(maps.mean()[0, 0], image)))
    titles = [n.split(".attn2")[0].replace("transformer_blocks.0", "") for n in chosen] + ["average"]
    return panels, titles


def image_grid(images, titles=None, ncols: int = 8, size: float = 1.6, suptitle: str | None = None):
    """A grid of images with optional titles; returns the figure.

    ``ncols`` images per row, each about ``size`` inches wide; ``suptitle`` goes above the grid.

    >>> import matplotlib.pyplot as plt
    >>> from foundseg.data import sample
    >>> images = [sample("test", i).image for i in range(3)]
    >>> fig = image_grid(images, titles=[wrap(sample("test", i).caption) for i in range(3)], ncols=2)
    >>> type(fig).__name__, len(fig.axes)  # 2 x 2 axes, the last one empty
    ('Figure', 4)
    >>> plt.close(fig)
    """
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
    """Break a caption into lines of at most ``width`` characters, for figure titles.

    >>> print(wrap("a red heart and a blue triangle", 12))
    a red heart
    and a blue
    triangle
    """
    import textwrap

    return "\n".join(textwrap.wrap(text, width))
