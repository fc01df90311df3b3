"""Grad-CAM on CLIP's image encoder, CLIP-ES style.

The target activation is the input of the last block's attention (the output
of its first LayerNorm); the blocks before it run without grad; the score of
a class is the image–text similarity of its prompt, optionally a softmax over
the classes plus background prompts. One forward and one batched backward
serve all classes: the gradients of all class scores come from a single
``autograd.grad`` call over a batch of output directions.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..models.activations import capture_outputs
from ..models.clip_embeddings import POOLINGS, default_pooling, pool_tokens
from ..scaling import minmax_scale
from .inputs import check_clip, prepare_image, token_grid, upsample, vision_tokens_before
from .prompts import DEFAULT_TEMPLATES, check_class_names, class_embeddings, prompt_embeddings

SCALINGS = ("per_class", "joint")
"""How the maps are scaled to [0, 1]: each on its own, or all together."""
TARGETS = ("attn_input", "layer_input", "layer_output")
"""Where the CAM is taken in block ``layer``: its attention's input (CLIP-ES), its input, or its output."""


@dataclass
class CAMResult:
    """Maps (C, H, W) in [0, 1] at the image's size, one per class; ``scores`` (C,) are the scored values.

    ``class_names`` lists the classes in the order of ``maps`` and ``scores``.

    >>> res = CAMResult(np.zeros((2, 4, 4)), ["circle", "square"], np.array([0.3, 0.1]))
    >>> res.maps.shape, res.class_names[int(res.scores.argmax())]
    ((2, 4, 4), 'circle')
    """

    maps: np.ndarray
    class_names: list[str]
    scores: np.ndarray


def gradcam(clip, image, class_names, *, templates=DEFAULT_TEMPLATES, synonyms=None, background=None,
            pooling: str | None = None, layer: int = -1, target: str = "attn_input",
            input_size: int | None = None, scaling: str = "per_class") -> CAMResult:
    """One Grad-CAM map per class for ``image``.

    Args:
        clip: a :class:`foundseg.models.CLIP` (model, tokenizer), e.g. ``load_clip("shapes-clip")``.
        image: path, PIL image, array or tensor (see :func:`foundseg.data.load_image`).
        class_names: the classes to localise.
        templates: prompt templates with ``{}``; several are ensembled.
        synonyms: optional ``{class: [other names]}`` added to the ensemble.
        background: optional background prompts; when given, the score is CLIP-ES's softmax over
            classes + background, else the cosine similarity of each class.
        pooling: ``"cls"`` or ``"patch_mean"``; default: what the model was trained with.
        layer: the encoder block whose activation is used (default the last).
        target: one of :data:`TARGETS`.
        input_size: shorter side fed to the model (default the model's image size).
        scaling: ``"per_class"`` scales each map to [0, 1] on its own (pytorch-grad-cam's and CLIP-ES's
            convention: every class's map peaks at 1, however weak its score); ``"joint"`` scales all maps by
            their common minimum and maximum, so a class the model barely sees stays dim beside the others.

    >>> from foundseg.models import load_clip
    >>> from foundseg.data import sample
    >>> cam = gradcam(load_clip("shapes-clip"), sample("test", 0).image, ["circle", "square"])
    >>> cam.maps.shape, cam.class_names, cam.scores.shape
    ((2, 32, 32), ['circle', 'square'], (2,))
    >>> float(cam.maps.min()) >= 0 and float(cam.maps.max()) <= 1
    True
    """
    model, tokenizer = check_clip(clip)
    class_names = check_class_names(class_names)
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    if scaling not in SCALINGS:
        raise ValueError(f"scaling must be one of {SCALINGS}, got {scaling!r}")
    pooling = pooling or default_pooling(model)
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    layers = model.vision_model.encoder.layers
    if not -len(layers) <= layer < len(layers):
        raise ValueError(f"layer must index one of the {len(layers)} encoder layers, got {layer}")
    text = class_embeddings(model, tokenizer, class_names, templates, synonyms)
    bg = prompt_embeddings(model, tokenizer, background or [])
    pixels, size = prepare_image(model, image, input_size)
    grid = token_grid(pixels, model.config.vision_config.patch_size)
    n_cls = len(text)
    index = layer % len(layers)
    with torch.enable_grad():
        h = vision_tokens_before(model, pixels, index).requires_grad_(True)
        with capture_outputs({"attn_input": layers[index].layer_norm1}) as captured:
            out = h
            for blk in layers[index:]:
                out = blk(out, None)
        act = {"attn_input": captured["attn_input"], "layer_input": h, "layer_output": out}[target]
        img = F.normalize(pool_tokens(model, out, pooling), dim=-1)
        sims = (img @ torch.cat([text, bg]).T)[0]  # (C + B,)
        scores = (model.logit_scale.exp() * sims).softmax(-1)[:n_cls] if len(bg) else sims[:n_cls]
        # one batched backward: the gradient of every class score at once (a vmap over the grad outputs)
        eye = torch.eye(n_cls, device=scores.device, dtype=scores.dtype)
        (grad,) = torch.autograd.grad(scores, act, grad_outputs=eye, is_grads_batched=True)
    patches, grads = act[0, 1:].detach(), grad[:, 0, 1:]
    weights = grads.mean(1, keepdim=True)
    cam = F.relu((weights * patches).sum(-1)).reshape(n_cls, *grid)
    scaled = minmax_scale(cam) if scaling == "per_class" else minmax_scale(cam.reshape(1, -1, grid[1])).reshape(cam.shape)
    return CAMResult(upsample(scaled, size), list(class_names), scores.detach().cpu().numpy())
