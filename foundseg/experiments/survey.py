"""Chapter 5: a diffusion model as a zero-shot classifier, against CLIP, on single-object test images."""
from __future__ import annotations

import numpy as np

from ..data import CLASSES, sample
from ..eval.classification import clip_zero_shot, diffusion_answers, single_object_test_images, true_classes
from ..eval.metrics import mean_or_nan


def zero_shot_accuracy(pipe, clip, n_images: int, sd_size: int = 32, clip_size: int = 64, batch: int = 128) -> dict:
    """Top-1 of ``pipe`` as a diffusion classifier ("a {class}", five timesteps) and of ``clip`` zero-shot
    ("a photo of a {class}.") on the first ``n_images`` single-object test images, rendered at ``sd_size`` and
    ``clip_size`` px; with per-class accuracy (NaN for a class with no image) and the number of images.

    >>> from foundseg.models import load_clip, load_sd
    >>> res = zero_shot_accuracy(load_sd("shapes-sd"), load_clip("shapes-clip"), 2)
    >>> res["images"], sorted(res["top1"]), len(res["per_class"]["clip"])
    (2, ['clip', 'diffusion'], 8)
    """
    ids = single_object_test_images(n_images)
    truth = true_classes(ids)
    preds = {"diffusion": diffusion_answers(pipe, ids, sd_size)}
    images = np.stack([sample("test", i, size=clip_size).image for i in ids])
    preds["clip"] = clip_zero_shot(clip, images, batch).argmax(1).cpu().numpy()
    return {"images": len(ids), "top1": {name: float(np.mean(p == truth)) for name, p in preds.items()},
            "per_class": {name: {c: mean_or_nan(p[truth == k] == k) for k, c in enumerate(CLASSES)}
                          for name, p in preds.items()}}
