"""Dense CLIP (MaskCLIP): the last block's value path as per-patch image embeddings.

MaskCLIP drops the last attention's query and key: each patch token keeps its
own value embedding, passed through the output projection, the residual and
the MLP, the final LayerNorm and the visual projection, then compared with
class text embeddings. Training-free.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .gradcam import CAMResult
from .inputs import check_clip, prepare_image, token_grid, upsample, vision_tokens_before
from .prompts import DEFAULT_TEMPLATES, class_embeddings


@torch.no_grad()
def dense_clip(clip, image, class_names, *, templates=DEFAULT_TEMPLATES, synonyms=None,
               input_size: int | None = None) -> CAMResult:
    """Per-class cosine-similarity maps (C, H, W) at the image's size; ``scores`` is each map's mean.

    ``clip``, ``image``, ``class_names``, ``templates``, ``synonyms`` and ``input_size`` are as in
    :func:`~foundseg.clip.gradcam.gradcam`: a :class:`foundseg.models.CLIP`, the image, the classes to
    localise, prompt templates with ``{}``, optional ``{class: [other names]}`` and the shorter side fed to
    the model (default the model's image size). The maps are raw similarities, not scaled to [0, 1].

    >>> from foundseg.models import load_clip
    >>> from foundseg.data import sample
    >>> res = dense_clip(load_clip("shapes-clip"), sample("test", 0).image, ["circle", "crescent"])
    >>> res.maps.shape, res.maps.dtype, res.scores.shape
    ((2, 32, 32), dtype('float32'), (2,))
    """
    model, tokenizer = check_clip(clip)
    text = class_embeddings(model, tokenizer, class_names, templates, synonyms)
    pixels, size = prepare_image(model, image, input_size)
    grid = token_grid(pixels, model.config.vision_config.patch_size)
    last = model.vision_model.encoder.layers[-1]
    h = vision_tokens_before(model, pixels, -1)
    attn = last.self_attn
    x = h + attn.out_proj(attn.v_proj(last.layer_norm1(h)))
    x = x + last.mlp(last.layer_norm2(x))
    dense = F.normalize(model.visual_projection(model.vision_model.post_layernorm(x[:, 1:])), dim=-1)
    sims = (dense[0] @ text.T).T.reshape(len(text), *grid)
    return CAMResult(upsample(sims, size), list(class_names), sims.flatten(1).mean(1).cpu().numpy())
