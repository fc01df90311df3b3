"""Weakly supervised localisation on the shapes world, scored as semantic segmentation.

As in the paper's CLIP experiment (and CLIP-ES), each image comes with its
ground-truth class labels: a method produces one map per present class, a
threshold rule turns the maps into a label map, and one confusion matrix over
all images gives mIoU — over all classes with background, and over the seen
and unseen classes separately.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ..clip import dense_clip, gradcam, labels_from_maps
from ..data import CLASSES, SEEN_CLASSES, UNSEEN_CLASSES, sample
from ..data.shapes import DEFAULT_SIZE
from .metrics import ConfusionMatrix, centred_disc, minmax_scale
from ..progress import progress_bar

Method = Callable[[object, list[str]], np.ndarray]
"""A localisation method: (image, class names) → maps (C, H, W) in [0, 1]."""


def gradcam_method(clip, **kwargs) -> Method:
    """Grad-CAM maps; ``clip`` is a :class:`foundseg.models.CLIP` and ``kwargs`` go to
    :func:`foundseg.clip.gradcam`.

    >>> from foundseg.models import load_clip
    >>> from foundseg.data import sample
    >>> method = gradcam_method(load_clip("shapes-clip"), templates=("a {}.",))
    >>> method(sample("test", 0).image, ["crescent"]).shape
    (1, 32, 32)
    """
    return lambda image, names: gradcam(clip, image, names, **kwargs).maps


def dense_clip_method(clip, **kwargs) -> Method:
    """Dense-CLIP similarity maps, min-max scaled per class to [0, 1]; ``clip`` is a
    :class:`foundseg.models.CLIP` and ``kwargs`` go to :func:`foundseg.clip.dense_clip`.

    >>> from foundseg.models import load_clip
    >>> from foundseg.data import sample
    >>> maps = dense_clip_method(load_clip("shapes-clip"))(sample("test", 0).image, ["circle", "crescent"])
    >>> maps.shape, float(maps.min()), float(maps.max())
    ((2, 32, 32), 0.0, 1.0)
    """
    return lambda image, names: minmax_scale(dense_clip(clip, image, names, **kwargs).maps)


def disc_method(radius: float = 0.3) -> Method:
    """The trivial baseline: a centred disc for every class; ``radius`` is a fraction of the shorter side
    (see :func:`~foundseg.eval.metrics.centred_disc`).

    >>> maps = disc_method(radius=0.25)(np.zeros((4, 4, 3)), ["circle", "square"])
    >>> maps.shape, maps[0].astype(int).tolist()
    ((2, 4, 4), [[0, 0, 0, 0], [0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]])
    """
    return lambda image, names: np.repeat(centred_disc(np.asarray(image).shape[:2], radius)[None].astype(float),
                                          len(names), 0)


def class_ids(names) -> list[int]:
    """Label ids of shapes-world class names: their position in ``CLASSES`` plus one (0 is background).

    >>> class_ids(["circle", "crescent"])
    [1, 8]
    """
    return [CLASSES.index(n) + 1 for n in names]


def evaluate_localisation(method: Method, n_images: int = 500, rule: str = "fixed", value: float = 0.5,
                          split: str = "test", seed: int = 0, size: int = DEFAULT_SIZE,
                          maps_cache: dict | None = None, progress: bool = True) -> dict:
    """mIoU of ``method`` on the first ``n_images`` of ``split`` rendered at ``size`` px, given each image's
    class labels.

    Returns ``mIoU`` (background + all classes), ``seen`` and ``unseen`` (mean IoU of those classes),
    ``background`` IoU and per-class IoU. ``maps_cache`` (a dict) keeps the maps so that several threshold
    rules can be scored without recomputing them.

    ``method`` maps (image, class names) to maps (C, H, W) in [0, 1], e.g. :func:`gradcam_method`;
    ``rule`` and ``value`` turn them into labels (see :func:`foundseg.clip.labels_from_maps`); ``seed``
    picks the shapes world; ``progress`` shows a progress bar.

    >>> cache = {}
    >>> res = evaluate_localisation(disc_method(), n_images=2, maps_cache=cache, progress=False)
    >>> sorted(res), round(res["mIoU"], 3), round(res["background"], 3)
    (['IoU', 'background', 'mIoU', 'seen', 'unseen'], 0.292, 0.738)
    >>> again = evaluate_localisation(disc_method(), n_images=2, rule="otsu", maps_cache=cache, progress=False)
    >>> len(cache), again["mIoU"] == res["mIoU"]  # maps reused; Otsu keeps a binary disc as it is
    (2, True)
    """
    cm = ConfusionMatrix(len(CLASSES) + 1)
    for i in progress_bar(range(n_images), "images", progress, leave=False):
        s = sample(split, i, seed, size)
        names = [CLASSES[c - 1] for c in s.class_ids]
        if maps_cache is not None and i in maps_cache:
            maps = maps_cache[i]
        else:
            with torch.enable_grad():
                maps = method(s.image, names)
            if maps_cache is not None:
                maps_cache[i] = maps
        cm.update(labels_from_maps(maps, class_ids(names), rule, value), s.mask)
    full = cm.compute()
    return {"mIoU": full["mIoU"], "seen": cm.compute(class_ids(SEEN_CLASSES))["mIoU"],
            "unseen": cm.compute(class_ids(UNSEEN_CLASSES))["mIoU"], "background": full["IoU"][0],
            "IoU": full["IoU"]}
