"""Denoiser features of an image noised once (the paper's Fig. 4; k-means on them is :mod:`foundseg.clustering`).

Features are read with forward hooks on the denoiser's own modules — no forward is re-implemented — at every
output-side layer of a UNet (each up-block's attention, or resnet where it has none), upsampled to a common
size, or at every joint block of an SD3 transformer (its image tokens on the patch grid).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..maps import resize_maps
from ..models.activations import capture_outputs
from .denoiser import denoiser, denoiser_pass, is_mmdit
from .latents import add_noise, encode_image


def output_layers(unet) -> list[str]:
    """Names of the denoiser's output-side layers in forward order: per up-block of a UNet, its attentions (or
    resnets); every joint block of an SD3 transformer.

    ``unet`` is a ``diffusers.UNet2DConditionModel`` or an ``SD3Transformer2DModel``.

    >>> from foundseg.models import load_sd
    >>> output_layers(load_sd("shapes-sd").unet)  # doctest: +NORMALIZE_WHITESPACE
    ['up_blocks.0.attentions.0', 'up_blocks.0.attentions.1', 'up_blocks.1.attentions.0', 'up_blocks.1.attentions.1',
     'up_blocks.2.attentions.0', 'up_blocks.2.attentions.1']
    >>> output_layers(load_sd("shapes-dit").transformer)
    ['transformer_blocks.0', 'transformer_blocks.1', 'transformer_blocks.2', 'transformer_blocks.3']
    """
    if hasattr(unet, "transformer_blocks"):
        return [f"transformer_blocks.{i}" for i in range(len(unet.transformer_blocks))]
    names = []
    for i, block in enumerate(unet.up_blocks):
        parts = getattr(block, "attentions", None) or block.resnets
        kind = "attentions" if getattr(block, "attentions", None) else "resnets"
        names += [f"up_blocks.{i}.{kind}.{j}" for j in range(len(parts))]
    return names


@torch.no_grad()
def extract_features(pipe, image, *, t: int | None = 0, prompt: str = "", last: int = 6, seed: int = 0,
                     size=None) -> torch.Tensor:
    """Mean of the last ``last`` output-side layers' features (each L2-normalised over channels and
    upsampled to the largest of them), for ``image`` noised once to ``t`` and conditioned on ``prompt``; on an
    SD3 pipeline, the image tokens leaving its last ``last`` joint blocks.

    Returns (C, h, w) when the layers share a width, else the concatenation over channels.

    ``last`` may be at most the number of :func:`output_layers` (six for shapes-sd, so pass ``last=6`` or
    fewer there); ``seed`` fixes the noise; ``size`` is as in :func:`encode_image`.

    >>> from foundseg.models import load_sd
    >>> from foundseg.data import sample
    >>> pipe, image = load_sd("shapes-sd"), sample("test", 0).image
    >>> extract_features(pipe, image, last=2).shape  # two layers of 32 channels: their mean
    torch.Size([32, 16, 16])
    >>> extract_features(pipe, image, last=4).shape  # 64 + 64 + 32 + 32 channels: concatenated
    torch.Size([192, 16, 16])
    """
    return combine_layers(layer_features(pipe, encode_image(pipe, image, size), t=t, prompt=prompt, last=last,
                                         seed=seed))


@torch.no_grad()
def layer_features(pipe, latents: torch.Tensor, *, t: int | None = 0, prompt: str = "", last: int = 6,
                   seed: int = 0) -> list[torch.Tensor]:
    """Each of the last ``last`` output-side layers' features (C, h, w), L2-normalised over channels, for
    ``latents`` (:func:`encode_image`) noised once to ``t``: one denoiser pass, which :func:`combine_layers` of
    any trailing subset turns into :func:`extract_features`' result.

    >>> from foundseg.models import load_sd
    >>> from foundseg.data import sample
    >>> pipe = load_sd("shapes-sd")
    >>> layers = layer_features(pipe, encode_image(pipe, sample("test", 0).image), last=3)
    >>> [tuple(f.shape) for f in layers]
    [(64, 8, 8), (32, 16, 16), (32, 16, 16)]
    """
    net = denoiser(pipe)
    layers = output_layers(net)
    if not isinstance(last, int) or not 1 <= last <= len(layers):
        raise ValueError(f"last must be between 1 and {len(layers)} (the denoiser's output-side layers), got {last!r}")
    chosen = layers[-last:]
    noisy = add_noise(pipe, latents, t, seed)
    with capture_outputs({n: net.get_submodule(n) for n in chosen}, element=int(is_mmdit(pipe))) as grabbed:
        denoiser_pass(pipe, noisy, t, prompt)
    if is_mmdit(pipe):  # image tokens (1, N, C) → (1, C, h, w) on the patch grid
        p = net.config.patch_size
        grid = (noisy.shape[-2] // p, noisy.shape[-1] // p)
        grabbed = {n: x.transpose(1, 2).reshape(*x.shape[:1], x.shape[-1], *grid) for n, x in grabbed.items()}
    return [F.normalize(grabbed[n][0].float(), dim=0) for n in chosen]


def combine_layers(features: list[torch.Tensor]) -> torch.Tensor:
    """Layer features (C, h, w) upsampled to the largest of them, then their mean when they share a width, else
    their concatenation over channels divided by their number."""
    hw = max(f.shape[-2:] for f in features)
    features = [resize_maps(f, hw) for f in features]
    if len({f.shape[0] for f in features}) == 1:
        return torch.stack(features).mean(0)
    return torch.cat(features) / len(features)
