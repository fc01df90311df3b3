"""Matplotlib figures: one helper per kind of figure."""
from __future__ import annotations

import numpy as np

from ..data.shapes import CLASSES


SHAPES_KEY = {i + 1: name for i, name in enumerate(CLASSES)}
"""Label id → class name of the shapes world, for the colour key of :func:`image_grid`."""


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


def overlay_labels(image, labels, alpha: float = 0.55, colours=None) -> np.ndarray:
    """The (H, W, 3) uint8 ``image`` with a label map blended on top (background left as is).

    ``labels`` is an (H, W) integer map (0 = background) coloured by ``colours`` (an (n, 3) array indexed by
    label; default :func:`class_colours`, the shapes world's key); ``alpha`` is the colours' weight. Returns
    float RGB in [0, 1], ready for ``imshow``.

    >>> from foundseg.data import sample
    >>> s = sample("test", 0)
    >>> out = overlay_labels(s.image, s.mask)
    >>> out.shape, out.dtype
    ((32, 32, 3), dtype('float64'))
    """
    img = np.asarray(image, np.float32) / 255
    labels = np.asarray(labels)
    colours = class_colours(max(int(labels.max()) + 1, len(CLASSES) + 1)) if colours is None else np.asarray(colours)
    colours = colours[labels]
    fg = (labels > 0)[..., None]
    return np.where(fg, (1 - alpha) * img + alpha * colours, img)


def cluster_shades(n: int) -> np.ndarray:
    """``n`` + 1 grey levels for cluster maps (label 0 unused): clusters have no class, so they are not drawn in
    the class key's colours.

    >>> cluster_shades(2).round(2).tolist()
    [[0.0, 0.0, 0.0], [0.1, 0.1, 0.1], [0.95, 0.95, 0.95]]
    """
    levels = np.concatenate([[0.0], np.linspace(0.1, 0.95, n)])
    return np.repeat(levels[:, None], 3, axis=1)


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

    from ..maps import resize_maps

    m = torch.as_tensor(attention, dtype=torch.float32).cpu()
    return resize_maps(m, np.asarray(image).shape[:2], mode, normalise="minmax").numpy()


def layer_panels(maps, image, prefix: str = "up_blocks") -> tuple[list[np.ndarray], list[str]]:
    """Overlays of the first word's map of every layer whose name starts with ``prefix`` (each at its own
    resolution, nearest-upsampled) and of their mean (bilinear), with short titles: the paper's Fig. 3 rows.

    ``maps`` is an :class:`~foundseg.diffusion.AttentionMaps` and ``image`` the (H, W, 3) uint8 image.

    >>> import torch
    >>> from foundseg.diffusion import AttentionMaps
    >>> maps = AttentionMaps({"up_blocks.1.attentions.0.transformer_blocks.0.attn2": torch.rand(1, 1, 4, 4)}, [0])
    >>> panels, titles = layer_panels(maps, np.zeros((8, 8, 3), np.uint8))
    >>> len(panels), panels[0].shape, titles
    (2, (8, 8, 3), ['up 1.0, 4×4', 'average'])
    """
    chosen = {n: m for n, m in maps.per_layer.items() if n.startswith(prefix)}
    panels = [overlay_heatmap(image, map_to_image(m[0, 0], image, "nearest")) for m in chosen.values()]
    panels.append(overlay_heatmap(image, map_to_image(maps.mean()[0, 0], image)))
    return panels, [_layer_title(n, m.shape[-2:]) for n, m in chosen.items()] + ["average"]


def _layer_title(name: str, grid) -> str:
    """A UNet attention layer's short title: block kind, block and attention index, grid ("up 1.0, 4×4")."""
    import re

    found = re.match(r"(down|mid|up)_blocks?\.?(\d*)\.attentions\.(\d+)", name)
    where = f"{found[1]} {found[2]}.{found[3]}" if found and found[2] else f"{found[1]} {found[3]}" if found else name
    return f"{where}, {grid[0]}×{grid[1]}"


def map_panels(image, maps, titles, label: str, size: float = 2.4):
    """The image, then each map over it in one shared colour scale, with a colour bar named ``label``.

    ``image`` is (H, W, 3) uint8 and ``maps`` (C, H, W); maps within [0, 1] are drawn on 0..1, others on their
    joint range; ``titles`` name the maps (e.g. class and score); ``size`` is each panel's width in inches.
    Returns the figure.

    >>> import matplotlib.pyplot as plt
    >>> from foundseg.data import sample
    >>> fig = map_panels(sample("test", 0).image, np.random.default_rng(0).random((2, 32, 32)), ["a", "b"], "CAM")
    >>> len(fig.axes), fig.axes[-1].get_ylabel()  # image, two maps, colour bar
    (4, 'CAM')
    >>> plt.close(fig)
    """
    import matplotlib.pyplot as plt

    maps = np.asarray(maps, dtype=float)
    lo, hi = (0.0, 1.0) if maps.min() >= 0 and maps.max() <= 1 else (float(maps.min()), float(maps.max()))
    fig, axes = plt.subplots(1, len(maps) + 1, figsize=(size * (len(maps) + 1) + 0.6, size * 1.2), squeeze=False)
    axes = axes[0]
    axes[0].imshow(image)
    points = legible(8, size * (len(maps) + 1) + 0.6)
    axes[0].set_title("image", fontsize=points)
    for ax, m, title in zip(axes[1:], maps, titles):
        ax.imshow(image)
        shown = ax.imshow(m, cmap="jet", alpha=0.5, vmin=lo, vmax=hi, interpolation="bilinear")
        ax.set_title(title, fontsize=points)
    for ax in axes:
        ax.axis("off")
    fig.colorbar(shown, ax=list(axes), fraction=0.03, pad=0.02).set_label(label, fontsize=points)
    return fig


PAGE_WIDTH = 7.0
"""Inches of the rendered book's content column (about 700 px at 100 dpi): a wider figure is shrunk to it."""


def legible(points: float, fig_width: float) -> float:
    """The font size that still reads as ``points`` once a ``fig_width``-inch figure is shrunk to the page.

    >>> legible(8, 3.5), legible(8, 14.0)
    (8, 16.0)
    """
    return points if fig_width <= PAGE_WIDTH else points * fig_width / PAGE_WIDTH


def image_grid(images, titles=None, ncols: int = 8, size: float = 1.6, suptitle: str | None = None,
               key: dict | None = None, colour_scale: str | None = None):
    """A grid of images with optional titles; returns the figure.

    ``ncols`` images per row, each about ``size`` inches wide; ``suptitle`` goes above the grid. Titles are
    set at a size that reads as 8 pt or more in the rendered book and wrapped to their panel. ``key`` maps
    label ids to names for a colour key of :func:`overlay_labels` panels; ``colour_scale`` names the quantity
    of :func:`overlay_heatmap` panels and adds their colour bar (the ``jet`` map on 0..1).

    >>> import matplotlib.pyplot as plt
    >>> from foundseg.data import sample
    >>> images = [sample("test", i).image for i in range(3)]
    >>> fig = image_grid(images, titles=[sample("test", i).caption for i in range(3)], ncols=2,
    ...                  key={1: "circle", 8: "crescent"}, colour_scale="CAM")
    >>> len(fig.axes), len(fig.legends)  # 2 x 2 axes (the last one empty) and the colour bar; the key
    (5, 1)
    >>> plt.close(fig)
    """
    import textwrap

    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    n = len(images)
    nrows = int(np.ceil(n / ncols))
    points = legible(8, size * ncols)
    chars = max(6, int(size * 72 / (0.55 * points)))
    wrapped = [textwrap.fill(str(t), chars) for t in titles] if titles is not None else None
    lines = max((t.count("\n") + 1 for t in wrapped), default=0) if wrapped else 0
    row_height = size + lines * points * 1.3 / 72
    extra = (0.5 if key else 0) + (0.4 if suptitle else 0)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols + (0.8 if colour_scale else 0),
                                                    row_height * nrows + extra), squeeze=False, layout="constrained")
    for ax in axes.flat:
        ax.axis("off")
    for i, (ax, img) in enumerate(zip(axes.flat, images)):
        ax.imshow(img, interpolation="nearest")
        if wrapped is not None:
            ax.set_title(wrapped[i], fontsize=points)
    if suptitle:
        fig.suptitle(suptitle, fontsize=points * 1.2)
    if key:
        colours = class_colours(max(key) + 1)
        fig.legend(handles=[Patch(facecolor=colours[i], label=name) for i, name in key.items()],
                   loc="outside lower center", ncol=min(len(key), 6), fontsize=points, frameon=False)
    if colour_scale:
        colour_bar(fig, axes, colour_scale, points)
    return fig


def colour_bar(fig, axes, label: str, points: float | None = None):
    """A colour bar for :func:`overlay_heatmap` panels on ``axes`` of ``fig`` (the ``jet`` map on 0..1), named
    ``label``, its text at ``points`` (default: 8 pt as rendered). Returns the colour bar.

    >>> import matplotlib.pyplot as plt
    >>> fig, axes = plt.subplots(1, 2)
    >>> colour_bar(fig, axes, "Grad-CAM").ax.get_ylabel()
    'Grad-CAM'
    >>> plt.close(fig)
    """
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    points = points or legible(8, fig.get_figwidth())
    bar = fig.colorbar(ScalarMappable(Normalize(0, 1), cmap="jet"), ax=axes, shrink=0.8, aspect=30)
    bar.set_label(label, fontsize=points)
    bar.ax.tick_params(labelsize=points)
    return bar


def wrap(text: str, width: int = 22) -> str:
    """Break a caption into lines of at most ``width`` characters, for figure titles.

    >>> print(wrap("a red heart and a blue triangle", 12))
    a red heart
    and a blue
    triangle
    """
    import textwrap

    return "\n".join(textwrap.wrap(text, width))


def zoo_spread(values: dict, ax, title: str | None = None):
    """Each number's value on each zoo (one marker per zoo, in a fixed order of markers) on a horizontal line
    across their range, the spread: ``values`` maps a number's name to {zoo: value}. Draws on ``ax`` (each zoo's
    markers labelled for a legend) and returns it.

    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots()
    >>> ax = zoo_spread({"disc": {"seed 0": 0.25, "seed 1": 0.27}, "CAM": {"seed 0": 0.47, "seed 1": 0.44}}, ax)
    >>> [t.get_text() for t in ax.get_yticklabels()], ax.get_legend_handles_labels()[1]
    (['disc', 'CAM'], ['seed 0', 'seed 1'])
    >>> plt.close(fig)
    """
    names = list(values)
    zoos = list(dict.fromkeys(z for v in values.values() for z in v))
    for row, name in enumerate(names):
        vs = list(values[name].values())
        ax.plot([min(vs), max(vs)], [row, row], color="0.6", lw=3, solid_capstyle="round", zorder=1)
    for zoo, marker in zip(zoos, "osD^v<>"):
        rows = [r for r, n in enumerate(names) if zoo in values[n]]
        ax.scatter([values[names[r]][zoo] for r in rows], rows, marker=marker, s=22, zorder=2, label=zoo)
    ax.set_yticks(range(len(names)), names)
    ax.set_ylim(len(names) - 0.5, -0.5)
    ax.grid(axis="x", alpha=0.3)
    if title:
        ax.set_title(title, fontsize=9, loc="left")
    return ax
