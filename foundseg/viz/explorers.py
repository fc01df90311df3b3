"""ipywidgets explorers. Each has a static figure beside it in the book, so nothing is lost when rendered."""
from __future__ import annotations

import matplotlib.pyplot as plt

from ..clip import THRESHOLD_METHODS, gradcam, threshold_maps
from .figures import overlay_heatmap

RULE_VALUES = {"fixed": 0.5, "otsu": 0.0, "percentile": 80.0}
"""The threshold each rule uses in the explorers."""


def cam_panel(clip, image, class_name: str, rule: str = "fixed", layer: int = -1, ax=None):
    """One Grad-CAM of ``class_name`` at encoder ``layer``, with the ``rule`` mask outlined.

    ``clip`` is what :func:`foundseg.models.load_clip` returns; ``rule`` is one of ``fixed``, ``otsu`` and
    ``percentile`` (settings in ``RULE_VALUES``); draws on ``ax`` (default: the current axes) and
    returns it.

    >>> import matplotlib.pyplot as plt
    >>> from foundseg.models import load_clip
    >>> from foundseg.data import sample
    >>> fig, ax = plt.subplots()
    >>> ax = cam_panel(load_clip("shapes-clip"), sample("test", 0).image, "crescent", rule="otsu", ax=ax)
    >>> ax.get_title()
    'crescent | otsu | layer -1'
    >>> plt.close(fig)
    """
    cam = gradcam(clip, image, [class_name], layer=layer)
    mask = threshold_maps(cam.maps, rule, RULE_VALUES[rule])[0]
    ax = ax or plt.gca()
    ax.imshow(overlay_heatmap(image, cam.maps[0]), interpolation="nearest")
    ax.contour(mask, levels=[0.5], colors="white", linewidths=1)
    ax.set_title(f"{class_name} | {rule} | layer {layer}", fontsize=8)
    ax.axis("off")
    return ax


def cam_explorer(clip, image, class_names):
    """Pick class, threshold rule and target layer; see the CAM and its mask.

    Returns an ``ipywidgets.interactive`` (shown in a notebook) with a :func:`cam_panel` for each choice;
    ``class_names`` fill the class menu.

    >>> import contextlib, io
    >>> import matplotlib.pyplot as plt
    >>> from foundseg.models import load_clip
    >>> from foundseg.data import sample
    >>> with contextlib.redirect_stdout(io.StringIO()):  # outside a notebook, clearing the output prints codes
    ...     explorer = cam_explorer(load_clip("shapes-clip"), sample("test", 0).image, ["crescent", "circle"])
    >>> [type(w).__name__ for w in explorer.children]
    ['Dropdown', 'Dropdown', 'IntSlider', 'Output']
    >>> plt.close("all")
    """
    import ipywidgets as widgets

    n_layers = len(clip.model.vision_model.encoder.layers)

    def show(class_name, rule, layer):
        fig, ax = plt.subplots(figsize=(3, 3))
        cam_panel(clip, image, class_name, rule, layer, ax)
        plt.show()

    return widgets.interactive(show, class_name=widgets.Dropdown(options=list(class_names), description="class"),
                               rule=widgets.Dropdown(options=list(THRESHOLD_METHODS), description="rule"),
                               layer=widgets.IntSlider(value=n_layers - 1, min=0, max=n_layers - 1, description="layer"))
