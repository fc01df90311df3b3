"""Localisation scored as semantic segmentation over a dataset: the one evaluation path of the chapters and the
command line.

As in the paper's CLIP experiment (and CLIP-ES), each image comes with its ground-truth class labels: a method
produces one map per present class, a threshold rule turns the maps into a label map, and one confusion matrix
over all images gives mIoU — over all classes, and over named subsets such as the shapes world's seen and
unseen classes. In the open-vocabulary setting (``vocabulary="all"``) the method instead gets every class name
and each pixel takes the best one. Under ``accelerate launch`` the images are sharded across processes and the
matrices summed, which gives the single-process result.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ..clip import ClassPrompts, dense_clip, gradcam, labels_from_maps
from ..progress import progress_bar
from ..maps import minmax
from .metrics import DISC_RADIUS, ConfusionMatrix, centred_disc

Method = Callable[[np.ndarray, list], np.ndarray]
"""A localisation method: (image, class names) → maps (C, H, W), one per name."""
VOCABULARIES = ("present", "all")


def _prompts(clip, kwargs: dict) -> ClassPrompts:
    """The :class:`~foundseg.clip.ClassPrompts` a method encodes each class with once, built from (and taking
    out of) ``kwargs`` the prompt options."""
    return ClassPrompts(clip, (), **{k: kwargs.pop(k) for k in ("templates", "synonyms", "background") if k in kwargs})


def gradcam_method(clip, **kwargs) -> Method:
    """Grad-CAM maps; ``clip`` is a :class:`foundseg.models.CLIP` and ``kwargs`` go to
    :func:`foundseg.clip.gradcam`. Each class's prompts are encoded once, for every image.

    >>> from foundseg.models import load_clip
    >>> from foundseg.data import sample
    >>> method = gradcam_method(load_clip("shapes-clip"), templates=("a {}.",))
    >>> method(sample("test", 0).image, ["crescent"]).shape
    (1, 32, 32)
    """
    prompts = _prompts(clip, kwargs)
    return lambda image, names: gradcam(clip, image, prompts.subset(names), **kwargs).maps


def dense_clip_method(clip, scaled: bool = True, **kwargs) -> Method:
    """Dense-CLIP similarity maps, min-max scaled per class to [0, 1] (``scaled=False``: the raw cosine
    similarities, which the open-vocabulary argmax compares across classes); ``clip`` is a
    :class:`foundseg.models.CLIP` and ``kwargs`` go to :func:`foundseg.clip.dense_clip`. Each class's prompts
    are encoded once, for every image.

    >>> from foundseg.models import load_clip
    >>> from foundseg.data import sample
    >>> maps = dense_clip_method(load_clip("shapes-clip"))(sample("test", 0).image, ["circle", "crescent"])
    >>> maps.shape, float(maps.min()), float(maps.max())
    ((2, 32, 32), 0.0, 1.0)
    """
    prompts = _prompts(clip, kwargs)

    def method(image, names):
        maps = dense_clip(clip, image, prompts.subset(names), **kwargs).maps
        return minmax(maps) if scaled else maps
    return method


def disc_method(radius: float = DISC_RADIUS) -> Method:
    """The trivial baseline: the same centred disc for every class (so, among several present classes, the
    first in label order takes it); ``radius`` is a fraction of the shorter side, by default the book's
    :data:`~foundseg.eval.metrics.DISC_RADIUS`.

    >>> maps = disc_method(radius=0.25)(np.zeros((4, 4, 3)), ["circle", "square"])
    >>> maps.shape, maps[0].astype(int).tolist()
    ((2, 4, 4), [[0, 0, 0, 0], [0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]])
    """
    return lambda image, names: np.repeat(centred_disc(np.asarray(image).shape[:2], radius)[None].astype(float),
                                          len(names), 0)


METHODS = ("gradcam", "dense-clip", "disc")
"""The methods :func:`named_method` knows (the command line's ``eval --method``)."""


def named_method(name: str, clip=None) -> tuple[Method, str]:
    """A method of :data:`METHODS` by name, with its vocabulary: Grad-CAM and the disc given each image's
    classes (the paper's weakly supervised setting), dense CLIP given every class (open vocabulary, raw
    similarities). ``clip`` is a :class:`foundseg.models.CLIP`, needed by all but the disc.

    >>> named_method("disc")[1]
    'present'
    """
    if name not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {name!r}")
    if name != "disc" and clip is None:
        raise ValueError(f"method {name!r} needs a CLIP (clip=load_clip(...))")
    if name == "gradcam":
        return gradcam_method(clip), "present"
    if name == "dense-clip":
        return dense_clip_method(clip, scaled=False), "all"
    return disc_method(), "present"


def evaluate(method: Method, dataset, rule: str = "fixed", value: float = 0.5, vocabulary: str = "present",
             limit: int | None = None, maps_cache: dict | None = None, accelerator=None, progress: bool = True) -> dict:
    """Confusion-matrix metrics of ``method`` over ``dataset`` (its first ``limit`` items).

    ``dataset`` yields (image, label, name) and has ``class_names``, ``ignore_index`` and ``name`` (e.g.
    :class:`foundseg.data.ShapesDataset`, or any of :mod:`foundseg.data.datasets`); a ``subsets`` attribute
    ({name: class names}) adds the mIoU of each subset. With ``vocabulary="present"`` the method maps the
    classes present in the label, and ``rule`` / ``value`` turn its maps into labels (see
    :func:`foundseg.clip.labels_from_maps`), the rest going to the class named "background" (a dataset without
    one takes the best map everywhere); with ``"all"`` it maps every class and each pixel takes the highest.
    ``maps_cache`` (a dict) keeps the maps by image index, so that several rules can be scored without
    recomputing them. With an ``accelerate.Accelerator`` of several processes each takes every n-th image and
    the matrices are summed. ``progress`` shows a progress bar.

    Returns ``mIoU``, ``fwIoU``, ``mAcc``, ``pAcc``, ``per_class`` IoU by class name, one entry per subset and
    the number of ``images``.

    >>> from foundseg.data import ShapesDataset
    >>> data, cache = ShapesDataset(n=2), {}
    >>> res = evaluate(disc_method(), data, maps_cache=cache, progress=False)
    >>> round(res["mIoU"], 3), round(res["per_class"]["background"], 3), res["images"], sorted(res)
    (0.292, 0.738, 2, ['fwIoU', 'images', 'mAcc', 'mIoU', 'pAcc', 'per_class', 'seen', 'unseen'])
    >>> again = evaluate(None, data, rule="otsu", maps_cache=cache, progress=False)
    >>> len(cache), again["mIoU"] == res["mIoU"]  # maps reused; Otsu keeps a binary disc as it is
    (2, True)
    """
    if vocabulary not in VOCABULARIES:
        raise ValueError(f"vocabulary must be one of {VOCABULARIES}, got {vocabulary!r}")
    if limit is not None and (not isinstance(limit, (int, np.integer)) or limit < 1):
        raise ValueError(f"limit must be a positive number of images or None, got {limit!r}")
    names = list(dataset.class_names)
    background = names.index("background") if "background" in names else None
    n = len(dataset) if limit is None else min(limit, len(dataset))
    rank, world = (accelerator.process_index, accelerator.num_processes) if accelerator else (0, 1)
    main = accelerator.is_main_process if accelerator else True
    cm = ConfusionMatrix(len(names), dataset.ignore_index)
    for i in progress_bar(range(rank, n, world), f"eval {dataset.name}", progress and main, leave=False):
        image, label, _ = dataset[i]
        if vocabulary == "all":
            ids = np.arange(len(names))
        else:
            ids = np.array([c for c in np.unique(label) if c != dataset.ignore_index and c != background], int)
        if maps_cache is not None and i in maps_cache:
            maps = maps_cache[i]
        else:
            with torch.enable_grad():
                maps = method(image, [names[c] for c in ids]) if len(ids) else None
            if maps_cache is not None:
                maps_cache[i] = maps
        if maps is None:  # nothing but background (or unlabelled pixels) in this image
            pred = np.full(label.shape, background if background is not None else dataset.ignore_index)
        elif vocabulary == "all" or background is None:
            pred = ids[np.asarray(maps).argmax(0)]
        else:
            pred = labels_from_maps(maps, ids, rule, value, background)
        cm.update(pred, label)
    if accelerator is not None and world > 1:
        total = accelerator.reduce(torch.from_numpy(cm.matrix).to(accelerator.device), reduction="sum")
        cm.matrix = total.cpu().numpy().astype(np.int64)
    result = cm.compute()
    result["per_class"] = dict(zip(names, result.pop("IoU")))
    for subset, members in getattr(dataset, "subsets", {}).items():
        result[subset] = cm.compute([names.index(c) for c in members])["mIoU"]
    result["images"] = n
    return result
