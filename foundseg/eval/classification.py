"""Zero-shot classification of single-object shapes-world images: the images, their true classes, and a
diffusion model's and CLIP's answers (chapter 5's protocol is :mod:`foundseg.experiments.survey`)."""
from __future__ import annotations

import numpy as np
import torch

from ..clip.prompts import class_embeddings
from ..data import CLASSES, sample
from ..data.shapes import single_object_indices
from ..diffusion import diffusion_classify
from ..models import embed_images


def single_object_test_images(n: int) -> list[int]:
    """Indices of the first ``n`` single-object images of the test split.

    >>> single_object_test_images(3)
    [0, 3, 8]
    """
    return single_object_indices(sample("test", i) for i in range(3 * n))[:n]


def true_classes(ids) -> np.ndarray:
    """Class index (into ``CLASSES``) of the one object of each single-object test image in ``ids``."""
    return np.array([sample("test", i).objects[0].class_id - 1 for i in ids])


def diffusion_answers(pipe, ids, size: int = 32) -> np.ndarray:
    """Class index that ``pipe``, as a diffusion classifier ("a {class}", five timesteps), gives each test
    image in ``ids`` rendered at ``size`` px.

    >>> from foundseg.models import load_sd
    >>> ids = single_object_test_images(4)
    >>> float((diffusion_answers(load_sd("shapes-sd"), ids) == true_classes(ids)).mean())
    1.0
    """
    return np.array([diffusion_classify(pipe, sample("test", i, size=size).image, CLASSES) for i in ids])


@torch.no_grad()
def clip_zero_shot(clip, images: np.ndarray, batch: int = 256) -> torch.Tensor:
    """Cosine similarity (N, C) of each of ``images`` (N, H, W, 3) uint8 to each class of :data:`CLASSES` in the
    prompt "a photo of a {class}."; its argmax is ``clip``'s zero-shot answer. Images go ``batch`` at a time.

    >>> from foundseg.models import load_clip
    >>> ids = single_object_test_images(8)
    >>> sims = clip_zero_shot(load_clip("shapes-clip"), np.stack([sample("test", i, size=64).image for i in ids]))
    >>> sims.shape, (sims.argmax(1).numpy() == true_classes(ids)).tolist()
    (torch.Size([8, 8]), [True, True, True, True, True, True, True, True])
    """
    model, tokenizer = clip
    text = class_embeddings(model, tokenizer, CLASSES)
    return torch.nn.functional.normalize(embed_images(model, images, batch), dim=-1) @ text.T
