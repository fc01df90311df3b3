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
from .inputs import check_clip, over_images, token_grid, upsample, vision_tokens_before
from .prompts import resolve_prompts


@torch.no_grad()
def dense_clip(clip, images, class_names, *, templates=None, synonyms=None, input_size: int | None = None,
               batch_size: int = 16):
    """Per-class cosine-similarity maps (C, H, W) at the image's size; ``scores`` is each map's mean. One
    result for one image, a list of them for a batch.

    ``clip``, ``images``, ``class_names`` (names or :class:`~foundseg.clip.prompts.ClassPrompts`),
    ``templates``, ``synonyms``, ``input_size`` and ``batch_size`` are as in :func:`~foundseg.clip.gradcam.gradcam`:
    a :class:`foundseg.models.CLIP`, one image or a batch, the classes to localise, prompt templates with
    ``{}``, optional ``{class: [other names]}``, the shorter side fed to the model (default the model's image
    size) and the images of one size that go through the model together. The maps are raw similarities, not
    scaled to [0, 1].

    >>> from foundseg.models import load_clip
    >>> from foundseg.data import sample
    >>> res = dense_clip(load_clip("shapes-clip"), sample("test", 0).image, ["circle", "crescent"])
    >>> res.maps.shape, res.maps.dtype, res.scores.shape
    ((2, 32, 32), dtype('float32'), (2,))
    """
    model, _ = check_clip(clip)
    prompts, names = resolve_prompts(clip, class_names, templates, synonyms)
    text = prompts.embeddings(names)
    last = model.vision_model.encoder.layers[-1]

    def similarities(pixels):
        grid = token_grid(pixels, model.config.vision_config.patch_size)
        h = vision_tokens_before(model, pixels, -1)
        attn = last.self_attn
        x = h + attn.out_proj(attn.v_proj(last.layer_norm1(h)))
        x = x + last.mlp(last.layer_norm2(x))
        dense = F.normalize(model.visual_projection(model.vision_model.post_layernorm(x[:, 1:])), dim=-1)
        sims = (dense @ text.T).transpose(1, 2).reshape(len(pixels), len(text), *grid)
        return sims, sims.flatten(2).mean(2).cpu().numpy()

    return over_images(model, images, input_size, batch_size, similarities,
                       lambda maps, scores, size: CAMResult(upsample(maps, size), list(names), scores))
