"""Grad-CAM on CLIP's image encoder, CLIP-ES style.

The target activation is the input of the last block's attention (the output
of its first LayerNorm); the blocks before it run without grad, and with CLS
pooling the last block runs only what reaches the CLS token; the score of
a class is the image–text similarity of its prompt, optionally a softmax over
the classes plus background prompts. One forward and one batched backward
serve all classes of all images of a batch: the gradients of all class scores come from a single
``autograd.grad`` call over a batch of output directions.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..models.activations import capture_outputs
from ..models.clip_embeddings import POOLINGS, default_pooling, pool_tokens
from ..maps import minmax
from .inputs import check_clip, over_images, token_grid, upsample, vision_tokens_before
from .prompts import resolve_prompts

NORMALISATIONS = ("per_class", "joint")
"""How the maps are min-max normalised to [0, 1]: each on its own, or all together."""
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


def gradcam(clip, images, class_names, *, templates=None, synonyms=None, background=None,
            pooling: str | None = None, layer: int = -1, target: str = "attn_input",
            input_size: int | None = None, normalise: str = "per_class", batch_size: int = 16):
    """One Grad-CAM map per class for an image, or for each image of a batch.

    Args:
        clip: a :class:`foundseg.models.CLIP` (model, tokenizer), e.g. ``load_clip("shapes-clip")``.
        images: one image (path, PIL image, array or tensor, see :func:`foundseg.data.load_image`), or a batch:
            a list of images, or a stacked (N, H, W, 3) array.
        class_names: the classes to localise, or :class:`~foundseg.clip.prompts.ClassPrompts` encoded once
            for many calls (they then hold the templates, synonyms and background).
        templates: prompt templates with ``{}``; several are ensembled (default ``DEFAULT_TEMPLATES``).
        synonyms: optional ``{class: [other names]}`` added to the ensemble.
        background: optional background prompts; when given, the score is CLIP-ES's softmax over
            classes + background, else the cosine similarity of each class.
        pooling: ``"cls"`` or ``"patch_mean"``; default: what the model was trained with.
        layer: the encoder block whose activation is used (default the last).
        target: one of :data:`TARGETS`.
        input_size: shorter side fed to the model (default the model's image size).
        normalise: ``"per_class"`` scales each map to [0, 1] on its own (pytorch-grad-cam's and CLIP-ES's
            convention: every class's map peaks at 1, however weak its score); ``"joint"`` scales all maps by
            their common minimum and maximum, so a class the model barely sees stays dim beside the others.
        batch_size: images of one size that go through the model together (one forward, one backward for
            all of them and all classes); it bounds the memory.

    Returns a :class:`CAMResult` for one image, a list of them for a batch; the maps of an image are the same
    alone or in a batch.

    >>> from foundseg.models import load_clip
    >>> from foundseg.data import sample
    >>> cam = gradcam(load_clip("shapes-clip"), sample("test", 0).image, ["circle", "square"])
    >>> cam.maps.shape, cam.class_names, cam.scores.shape
    ((2, 32, 32), ['circle', 'square'], (2,))
    >>> float(cam.maps.min()) >= 0 and float(cam.maps.max()) <= 1
    True
    """
    model, _ = check_clip(clip)
    prompts, names = resolve_prompts(clip, class_names, templates, synonyms, background)
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    if normalise not in NORMALISATIONS:
        raise ValueError(f"normalise must be one of {NORMALISATIONS}, got {normalise!r}")
    pooling = pooling or default_pooling(model)
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    layers = model.vision_model.encoder.layers
    if not -len(layers) <= layer < len(layers):
        raise ValueError(f"layer must index one of the {len(layers)} encoder layers, got {layer}")
    text = torch.cat([prompts.embeddings(names), prompts.background])

    def cams(pixels):
        maps, scores = _batch_cams(model, pixels, text, len(names), layer % len(layers), target, pooling)
        if normalise == "per_class":
            return minmax(maps), scores
        return minmax(maps.reshape(len(maps), 1, -1, maps.shape[-1])).reshape(maps.shape), scores

    return over_images(model, images, input_size, batch_size, cams,
                       lambda maps, scores, size: CAMResult(upsample(maps, size), list(names), scores))


def _batch_cams(model, pixels, text, n_cls: int, index: int, target: str, pooling: str):
    """Unscaled CAMs (N, C, h, w) and class scores (N, C) of a batch of same-size pixels: the blocks before
    ``index`` without grad, one forward with grad from there, one backward for every image and class."""
    layers = model.vision_model.encoder.layers
    grid = token_grid(pixels, model.config.vision_config.patch_size)
    n = len(pixels)
    with torch.enable_grad():
        h = vision_tokens_before(model, pixels, index).requires_grad_(True)
        if pooling == "cls" and index == len(layers) - 1 and target != "layer_output":
            out, act, sources = _cls_path(layers[index], h, target)
        else:
            with capture_outputs({"attn_input": layers[index].layer_norm1}) as captured:
                out = h
                for blk in layers[index:]:
                    out = blk(out, None)
            act = {"attn_input": captured["attn_input"], "layer_input": h, "layer_output": out}[target]
            sources = [(act, None)]
        img = F.normalize(pool_tokens(model, out, pooling), dim=-1)
        sims = img @ text.T  # (N, C + B)
        scores = (model.logit_scale.exp() * sims).softmax(-1)[:, :n_cls] if len(text) > n_cls else sims
        # one batched backward: the gradient of every class score of every image at once (images do not
        # interact, so class c's output direction over the whole batch gives each image its own gradient)
        directions = torch.eye(n_cls, device=scores.device, dtype=scores.dtype)[:, None].expand(n_cls, n, n_cls)
        grads = torch.autograd.grad(scores, [x for x, _ in sources], grad_outputs=directions, is_grads_batched=True)
    # Grad-CAM's channel weights: each class's gradient averaged over the patch tokens (C, N, D); a gradient
    # taken at a linear projection of the activation is averaged first, then mapped back through it
    weights = sum(g[:, :, 1:].mean(2) if w is None else g[:, :, 1:].mean(2) @ w for g, (_, w) in zip(grads, sources))
    cam = F.relu(torch.einsum("cnd,npd->ncp", weights, act[:, 1:].detach()))
    return cam.reshape(n, n_cls, *grid), scores.detach().cpu().numpy()


def _cls_path(block, h: torch.Tensor, target: str):
    """The last encoder ``block`` evaluated only as far as a CLS-pooled score needs: the CLS query attends to
    every token and only the CLS token goes on through the MLP (the other tokens' outputs never reach the
    score). Returns the CLS output (N, 1, D), the Grad-CAM activation (the block's attention input, or its
    input ``h``) and where to take the gradient: for the attention input, its key and value projections
    with their weights (the activation's gradient is their gradients mapped back through them, and since
    Grad-CAM only averages it over tokens, the average is mapped instead of every token)."""
    attn = block.self_attn
    normed = block.layer_norm1(h)
    n, t, d = normed.shape
    heads = attn.num_heads
    keys, values = attn.k_proj(normed), attn.v_proj(normed)
    q = attn.q_proj(normed[:, :1]).reshape(n, 1, heads, -1).transpose(1, 2)
    k = keys.reshape(n, t, heads, -1).transpose(1, 2)
    v = values.reshape(n, t, heads, -1).transpose(1, 2)
    weights = (q @ k.transpose(-2, -1) * attn.scale).softmax(-1)
    x = h[:, :1] + attn.out_proj((weights @ v).transpose(1, 2).reshape(n, 1, d))
    out = x + block.mlp(block.layer_norm2(x))
    if target == "layer_input":
        return out, h, [(h, None)]
    # the query path reaches only the CLS token, which Grad-CAM's patch average leaves out
    return out, normed, [(keys, attn.k_proj.weight.detach()), (values, attn.v_proj.weight.detach())]


def gradcam_by_layer(clip, image, class_names) -> dict[int, np.ndarray]:
    """Grad-CAM of each of ``class_names`` on one ``image`` with the gradient taken at each encoder block: block →
    maps (C, H, W), what the chapter's layer explorer and its static figure draw.

    >>> from foundseg.models import load_clip
    >>> from foundseg.data import sample
    >>> maps = gradcam_by_layer(load_clip("shapes-clip"), sample("test", 0).image, ["crescent", "circle"])
    >>> list(maps), maps[3].shape
    ([0, 1, 2, 3], (2, 32, 32))
    """
    model, _ = check_clip(clip)
    return {k: gradcam(clip, image, class_names, layer=k).maps for k in range(len(model.vision_model.encoder.layers))}
