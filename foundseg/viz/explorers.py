"""ipywidgets explorers. Each has a static figure beside it in the book, so nothing is lost when rendered; both
draw maps they are given."""
from __future__ import annotations

import matplotlib.pyplot as plt

from ..clip import THRESHOLD_METHODS, threshold_maps
from .figures import overlay_heatmap

RULE_VALUES = {"fixed": 0.5, "otsu": 0.0, "percentile": 80.0}
"""The threshold each rule uses in the explorers."""


def cam_panel(image, cam, title: str, rule: str = "fixed", ax=None):
    """One CAM (H, W, in [0, 1]) over ``image`` with the ``rule`` mask outlined in white, titled ``title`` and the
    rule.

    ``rule`` is one of ``fixed``, ``otsu`` and ``percentile`` (settings in ``RULE_VALUES``); draws on ``ax``
    (default: the current axes) and returns it.

    >>> import numpy as np
    >>> from foundseg.data import sample
    >>> fig, ax = plt.subplots()
    >>> ax = cam_panel(sample("test", 0).image, np.random.default_rng(0).random((32, 32)), "crescent, block 3",
    ...                rule="otsu", ax=ax)
    >>> ax.get_title()
    'crescent, block 3 | otsu'
    >>> plt.close(fig)
    """
    mask = threshold_maps(cam[None], rule, RULE_VALUES[rule])[0]
    ax = ax or plt.gca()
    ax.imshow(overlay_heatmap(image, cam), interpolation="nearest")
    ax.contour(mask, levels=[0.5], colors="white", linewidths=1)
    ax.set_title(f"{title} | {rule}", fontsize=8)
    ax.axis("off")
    return ax


def cam_explorer(image, maps_by_layer: dict, class_names):
    """Pick class, threshold rule and encoder block; see the CAM and its mask.

    ``maps_by_layer`` maps each block to the CAMs (C, H, W) of ``class_names`` on ``image``
    (:func:`foundseg.clip.gradcam_by_layer`). Returns an ``ipywidgets.interactive`` (shown in a notebook) with
    a :func:`cam_panel` for each choice.

    >>> import contextlib, io
    >>> import numpy as np
    >>> from foundseg.data import sample
    >>> maps = {k: np.random.default_rng(k).random((2, 32, 32)) for k in range(4)}
    >>> with contextlib.redirect_stdout(io.StringIO()):  # outside a notebook, clearing the output prints codes
    ...     explorer = cam_explorer(sample("test", 0).image, maps, ["crescent", "circle"])
    >>> [type(w).__name__ for w in explorer.children]
    ['Dropdown', 'Dropdown', 'IntSlider', 'Output']
    >>> plt.close("all")
    """
    import ipywidgets as widgets

    names, layers = list(class_names), sorted(maps_by_layer)

    def show(class_name, rule, layer):
        fig, ax = plt.subplots(figsize=(3, 3))
        cam_panel(image, maps_by_layer[layer][names.index(class_name)], f"{class_name}, block {layer}", rule, ax)
        plt.show()

    return widgets.interactive(show, class_name=widgets.Dropdown(options=names, description="class"),
                               rule=widgets.Dropdown(options=list(THRESHOLD_METHODS), description="rule"),
                               layer=widgets.IntSlider(value=layers[-1], min=layers[0], max=layers[-1],
                                                       description="block"))
