"""CLIP image and text embeddings with a choice of image pooling.

Real CLIP pools the CLS token, and so does the shapes-world CLIP (its config
records the pooling it was trained with under ``image_pooling``). The mean of
the patch tokens is the other choice; both are available for any CLIP so
experiments can compare them.
"""
from __future__ import annotations

import torch

from ..batching import batched

POOLINGS = ("cls", "patch_mean")


def default_pooling(model) -> str:
    """The pooling a CLIP model was trained with: ``config.image_pooling``, else ``"cls"``.

    ``model`` is a ``transformers.CLIPModel``.

    >>> from foundseg.models import load_clip
    >>> default_pooling(load_clip("shapes-clip").model)
    'cls'
    """
    return getattr(model.config, "image_pooling", "cls")


def pool_tokens(model, tokens: torch.Tensor, pooling: str) -> torch.Tensor:
    """Project the last hidden states ``tokens`` (B, 1 + N, D) into the joint space.

    ``model`` is the ``transformers.CLIPModel`` the tokens come from; ``pooling`` is ``"cls"`` (the CLS
    token) or ``"patch_mean"`` (the mean of the N patch tokens). Returns (B, P), not normalised.

    >>> from foundseg.models import load_clip
    >>> model = load_clip("shapes-clip").model
    >>> with torch.no_grad():
    ...     tokens = model.vision_model(pixel_values=torch.zeros(1, 3, 64, 64)).last_hidden_state
    ...     pooled = pool_tokens(model, tokens, "cls")
    >>> tokens.shape, pooled.shape
    (torch.Size([1, 65, 96]), torch.Size([1, 64]))
    """
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    post_ln = model.vision_model.post_layernorm
    pooled = post_ln(tokens[:, 0]) if pooling == "cls" else post_ln(tokens[:, 1:]).mean(1)
    return model.visual_projection(pooled)


def image_embeddings(model, pixel_values: torch.Tensor, pooling: str | None = None) -> torch.Tensor:
    """Projected image embeddings (B, P), not normalised; any image size (position embeddings interpolated).

    ``model`` is a ``transformers.CLIPModel``, ``pixel_values`` a CLIP-normalised (B, 3, H, W) tensor (see
    :func:`pixel_values`) and ``pooling`` as in :func:`pool_tokens`; ``None`` means :func:`default_pooling`.

    >>> from foundseg.models import load_clip
    >>> from foundseg.data import sample
    >>> model = load_clip("shapes-clip").model
    >>> with torch.no_grad():
    ...     emb = image_embeddings(model, pixel_values(sample("val", 0, size=64).image))
    ...     small = image_embeddings(model, pixel_values(sample("val", 0).image), pooling="cls")
    >>> emb.shape, small.shape
    (torch.Size([1, 64]), torch.Size([1, 64]))
    """
    size = model.config.vision_config.image_size
    interpolate = tuple(pixel_values.shape[-2:]) != (size, size)
    out = model.vision_model(pixel_values=pixel_values, interpolate_pos_encoding=interpolate)
    return pool_tokens(model, out.last_hidden_state, pooling or default_pooling(model))


def embed_images(model, images, batch: int = 256, pooling: str | None = None) -> torch.Tensor:
    """Projected image embeddings (N, P) of uint8 ``images`` (N, H, W, 3), ``batch`` at a time, on the model's
    device and in its dtype; ``pooling`` as in :func:`image_embeddings`. Call it under ``torch.no_grad()``.

    >>> import numpy as np
    >>> from foundseg.models import load_clip
    >>> model = load_clip("shapes-clip").model
    >>> with torch.no_grad():
    ...     emb = embed_images(model, np.zeros((3, 64, 64, 3), np.uint8), batch=2)
    >>> emb.shape
    torch.Size([3, 64])
    """
    return batched(lambda s: image_embeddings(model, pixel_values(images[s], model.device, model.dtype), pooling),
                   len(images), batch)


def text_embeddings(model, tokenizer, texts: list[str]) -> torch.Tensor:
    """Projected text embeddings (T, P), not normalised.

    ``model`` is a ``transformers.CLIPModel``, ``tokenizer`` its tokenizer and ``texts`` a non-empty list of
    prompts, padded or truncated to the tokenizer's ``model_max_length``.

    >>> from foundseg.models import load_clip
    >>> clip = load_clip("shapes-clip")
    >>> with torch.no_grad():
    ...     emb = text_embeddings(clip.model, clip.tokenizer, ["a red circle", "a blue square"])
    >>> emb.shape
    torch.Size([2, 64])
    """
    if not texts:
        raise ValueError("texts must hold at least one prompt")
    device = model.text_projection.weight.device
    ids = tokenizer(list(texts), padding="max_length", truncation=True, return_tensors="pt").to(device)
    out = model.text_model(input_ids=ids.input_ids, attention_mask=ids.attention_mask)
    return model.text_projection(out.pooler_output)


def pixel_values(images, device=None, dtype=torch.float32) -> torch.Tensor:
    """CLIP-normalised (B, 3, H, W) tensor from uint8 images (B, H, W, 3) or one (H, W, 3) image.

    ``images`` is a numpy array or tensor; the result is placed on ``device`` in ``dtype``.

    >>> import numpy as np
    >>> x = pixel_values(np.zeros((2, 8, 8, 3), np.uint8))
    >>> x.shape, x.dtype, round(x[0, 0, 0, 0].item(), 3)
    (torch.Size([2, 3, 8, 8]), torch.float32, -1.792)
    >>> pixel_values(np.zeros((8, 8, 3), np.uint8), dtype=torch.float16).shape
    torch.Size([1, 3, 8, 8])
    """
    from transformers.utils.constants import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

    x = torch.as_tensor(images)
    if x.ndim == 3:
        x = x[None]
    x = x.permute(0, 3, 1, 2).to(device=device, dtype=torch.float32) / 255.0
    mean = torch.tensor(OPENAI_CLIP_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(OPENAI_CLIP_STD, device=x.device).view(1, 3, 1, 1)
    return ((x - mean) / std).to(dtype)
