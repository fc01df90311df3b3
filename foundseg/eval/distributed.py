"""Evaluating a method over a dataset with HuggingFace accelerate: images sharded across processes,
confusion matrices summed, the same result as one process. Run under ``accelerate launch`` for several
processes (or GPUs); called plainly it runs in one.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ..clip import dense_clip, gradcam
from .metrics import ConfusionMatrix, centred_disc
from ..progress import progress_bar

METHODS = ("gradcam", "dense-clip", "disc")
Segmenter = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""(image, ground-truth label) → predicted label map; the label is only used for image-level class labels."""


def make_segmenter(method: str, class_names: list[str], ignore_index: int = 255, clip=None,
                   threshold: float = 0.5) -> Segmenter:
    """A label-map predictor for ``method``.

    ``dense-clip``: per-pixel argmax over all class names (open vocabulary). ``gradcam``: Grad-CAM of the
    classes present in the image (image-level labels, the paper's weakly supervised setting), argmax where the
    best map reaches ``threshold``, else the class named "background" if the dataset has one. ``disc``: a
    centred disc of the image's most frequent labelled class, the rest background.

    ``class_names`` are the dataset's classes in label order; ``ignore_index`` is its unlabelled value;
    ``clip`` is a :class:`foundseg.models.CLIP` (needed by ``gradcam`` and ``dense-clip``).

    >>> from foundseg.data import ShapesDataset
    >>> data = ShapesDataset(n=2)
    >>> segment = make_segmenter("disc", data.class_names)
    >>> image, label, name = data[0]
    >>> segment(image, label).shape, np.unique(segment(image, label)).tolist()  # crescent (8) on background
    ((32, 32), [0, 8])
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method != "disc" and clip is None:
        raise ValueError(f"method {method!r} needs a CLIP (clip=load_clip(...))")
    background = class_names.index("background") if "background" in class_names else None

    def present(label):
        ids = [int(c) for c in np.unique(label) if c != ignore_index and c != background]
        return ids or [int(np.argmax(np.bincount(label[label != ignore_index].ravel(), minlength=1)))]

    def segment(image, label):
        if method == "dense-clip":
            return dense_clip(clip, image, class_names).maps.argmax(0)
        if method == "disc":
            ids = present(label)
            counts = [np.sum(label == i) for i in ids]
            fill = background if background is not None else ids[int(np.argmax(counts))]
            return np.where(centred_disc(label.shape, 0.3), ids[int(np.argmax(counts))], fill)
        ids = present(label)
        with torch.enable_grad():
            maps = gradcam(clip, image, [class_names[i] for i in ids]).maps
        best = np.asarray(ids)[maps.argmax(0)]
        if background is None:
            return best
        return np.where(maps.max(0) >= threshold, best, background)

    return segment


def evaluate_dataset(segment: Segmenter, dataset, limit: int | None = None, accelerator=None) -> dict:
    """Confusion-matrix metrics of ``segment`` over ``dataset`` (its first ``limit`` items).

    With an ``accelerate.Accelerator`` of several processes each takes every n-th image and the matrices are
    summed across processes, so every process returns the single-process result.

    ``segment`` maps (image, label) to a label map (see :func:`make_segmenter`); ``dataset`` yields
    (image, label, name) and has ``class_names``, ``ignore_index`` and ``name`` (e.g.
    :class:`foundseg.data.ShapesDataset`). Returns the metrics of
    :meth:`~foundseg.eval.metrics.ConfusionMatrix.compute`, with per-class IoU under ``per_class``, and the
    number of ``images``.

    >>> from foundseg.data import ShapesDataset
    >>> data = ShapesDataset(n=2)
    >>> res = evaluate_dataset(make_segmenter("disc", data.class_names), data)
    >>> round(res["mIoU"], 3), res["images"], sorted(res)
    (0.292, 2, ['fwIoU', 'images', 'mAcc', 'mIoU', 'pAcc', 'per_class'])
    """
    n = len(dataset) if limit is None else min(limit, len(dataset))
    rank, world = (accelerator.process_index, accelerator.num_processes) if accelerator else (0, 1)
    main = accelerator.is_main_process if accelerator else True
    cm = ConfusionMatrix(len(dataset.class_names), dataset.ignore_index)
    for i in progress_bar(range(rank, n, world), f"eval {dataset.name}", main):
        image, label, _ = dataset[i]
        cm.update(segment(image, label), label)
    if accelerator is not None and world > 1:
        total = accelerator.reduce(torch.from_numpy(cm.matrix).to(accelerator.device), reduction="sum")
        cm.matrix = total.cpu().numpy().astype(np.int64)
    result = cm.compute()
    result["per_class"] = dict(zip(dataset.class_names, result.pop("IoU")))
    result["images"] = n
    return result
