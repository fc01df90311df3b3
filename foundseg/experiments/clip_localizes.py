"""Chapter 2: Grad-CAM of CLIP as a localiser, scored as segmentation of the shapes world's test images —
beside its threshold rules and prompt variants, dense CLIP and the centred-disc floor, and block by block."""
from __future__ import annotations

import numpy as np

from ..clip import ENSEMBLE_TEMPLATES, SHAPES_BACKGROUND
from ..data import SYNONYMS, ShapesDataset
from ..eval import dense_clip_method, disc_method, evaluate, gradcam_method

PROMPT_VARIANTS = {
    "single template": {},
    "background prompts": {"background": SHAPES_BACKGROUND},
    "template ensemble": {"templates": ENSEMBLE_TEMPLATES},
    "ensemble + synonyms": {"templates": ENSEMBLE_TEMPLATES, "synonyms": SYNONYMS},
    "bare class name": {"templates": ["{}"]},
}
"""Grad-CAM's prompt options for each prompt variant the chapter compares (the first is CLIP-ES's single
template, "a photo of a {}.")."""
THRESHOLDS = tuple(np.round(np.arange(0.1, 0.95, 0.1), 2))
"""The fixed thresholds of the chapter's sweep."""


def compare_methods(clip, n_images: int, size: int, progress: bool = True) -> dict:
    """Every localisation method of the chapter on the first ``n_images`` test images at ``size`` px, each
    image given its true class labels (as in the paper and CLIP-ES): :func:`~foundseg.eval.evaluate`'s result
    by method, in the chapter's order — Grad-CAM with a 0.5 threshold (``"single template"``), Otsu's and a
    top-30 % threshold on the same maps, each other prompt variant of :data:`PROMPT_VARIANTS`, patch-mean
    pooling, dense CLIP and the centred disc — and the mIoU of each fixed threshold of :data:`THRESHOLDS`.

    >>> from foundseg.models import load_clip
    >>> res = compare_methods(load_clip("shapes-clip"), 2, 64, progress=False)
    >>> list(res["methods"])[:4], len(res["threshold_sweep"])
    (['single template', 'otsu', 'top 30%', 'background prompts'], 9)
    """
    test, cache = ShapesDataset("test", n_images, size=size), {}
    score = lambda method, **rule: evaluate(method, test, progress=progress, **rule)  # noqa: E731
    variant = lambda name: score(gradcam_method(clip, **PROMPT_VARIANTS[name]))  # noqa: E731
    methods = {"single template": score(gradcam_method(clip), maps_cache=cache),
               "otsu": score(None, rule="otsu", maps_cache=cache),
               "top 30%": score(None, rule="percentile", value=70, maps_cache=cache),
               "background prompts": variant("background prompts"),
               "patch mean": score(gradcam_method(clip, pooling="patch_mean")),
               **{name: variant(name) for name in ("template ensemble", "ensemble + synonyms", "bare class name")},
               "dense CLIP": score(dense_clip_method(clip)),
               "centred disc": score(disc_method())}
    sweep = {t: score(None, value=t, maps_cache=cache)["mIoU"] for t in THRESHOLDS}
    return {"methods": methods, "threshold_sweep": sweep}


def by_block(clip, n_images: int, size: int, progress: bool = True) -> dict:
    """Grad-CAM mIoU on the first ``n_images`` test images with the gradient taken at the input of each
    encoder block's attention (``"by_block"``, block → mIoU), and at the output of the last block with CLS
    pooling (``"after_last_cls"``).

    >>> from foundseg.models import load_clip
    >>> res = by_block(load_clip("shapes-clip"), 2, 64, progress=False)
    >>> list(res["by_block"]), 0 <= res["after_last_cls"] <= 1
    ([0, 1, 2, 3], True)
    """
    test = ShapesDataset("test", n_images, size=size)
    blocks = range(len(clip.model.vision_model.encoder.layers))
    return {"by_block": {k: evaluate(gradcam_method(clip, layer=k), test, progress=progress)["mIoU"] for k in blocks},
            "after_last_cls": evaluate(gradcam_method(clip, pooling="cls", target="layer_output"), test,
                                       progress=progress)["mIoU"]}
