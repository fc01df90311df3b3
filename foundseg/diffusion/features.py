"""Denoiser features of an image noised once, and k-means on them (the paper's Fig. 4).

Features are read with forward hooks on the denoiser's own modules — no forward is re-implemented — at every
output-side layer of a UNet (each up-block's attention, or resnet where it has none), upsampled to a common
size, or at every joint block of an SD3 transformer (its image tokens on the patch grid).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

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
    features = [F.interpolate(f[None], size=hw, mode="bilinear", align_corners=False)[0] for f in features]
    if len({f.shape[0] for f in features}) == 1:
        return torch.stack(features).mean(0)
    return torch.cat(features) / len(features)


def kmeans(x: torch.Tensor, k: int, iters: int = 50, seed: int = 0) -> torch.Tensor:
    """Cluster the rows of ``x`` (N, D) into ``k`` groups (k-means++ start, Lloyd steps); returns labels (N,).

    At most ``iters`` Lloyd steps are run; ``seed`` fixes the start.

    >>> import torch
    >>> labels = kmeans(torch.tensor([[0.0, 0.0], [0.0, 1.0], [10.0, 10.0], [10.0, 11.0]]), 2)
    >>> labels.shape, bool(labels[0] == labels[1]), bool(labels[1] != labels[2]), bool(labels[2] == labels[3])
    (torch.Size([4]), True, True, True)
    """
    if not 1 <= k <= len(x):
        raise ValueError(f"k must be between 1 and the number of points ({len(x)}), got {k}")
    g = torch.Generator().manual_seed(seed)
    x = x.float().cpu()
    centres = x[torch.randint(len(x), (1,), generator=g)]
    for _ in range(1, k):
        d = torch.cdist(x, centres).min(1).values ** 2
        centres = torch.cat([centres, x[torch.multinomial(d / d.sum() if d.sum() > 0 else torch.ones_like(d), 1,
                                                           generator=g)]])
    for _ in range(iters):
        labels = torch.cdist(x, centres).argmin(1)
        new = torch.stack([x[labels == j].mean(0) if (labels == j).any() else centres[j] for j in range(k)])
        if torch.allclose(new, centres):
            break
        centres = new
    return torch.cdist(x, centres).argmin(1)


def silhouette(x: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean silhouette of a clustering of the rows of ``x`` (N, D) into ``labels`` (N,): for each point, how much
    nearer it is to its own cluster than to the nearest other one, in [-1, 1]; higher is better separated.
    A single cluster scores 0.

    >>> x = torch.tensor([[0.0], [0.1], [5.0], [5.1]])
    >>> round(silhouette(x, torch.tensor([0, 0, 1, 1])), 3), round(silhouette(x, torch.tensor([0, 1, 0, 1])), 3)
    (0.98, -0.49)
    """
    ids = labels.unique()
    if len(ids) < 2:
        return 0.0
    d = torch.cdist(x.float(), x.float())
    same = labels[:, None] == labels[None]
    own = (d * same).sum(1) / (same.sum(1) - 1).clamp(min=1)
    other = torch.stack([d[:, labels == j].mean(1) for j in ids], 1).masked_fill(labels[:, None] == ids[None], float("inf"))
    nearest = other.min(1).values
    s = (nearest - own) / torch.maximum(own, nearest)
    return float(torch.where(same.sum(1) > 1, s, torch.zeros_like(s)).mean())


def choose_k(features: torch.Tensor, ks=(2, 3, 4, 5), seed: int = 0) -> int:
    """The number of k-means clusters among ``ks`` whose clustering of a (C, h, w) feature map has the highest
    :func:`silhouette`: k chosen from the features alone, without ground truth.

    >>> blobs = torch.cat([torch.zeros(2, 4, 8), torch.ones(2, 4, 8) * 5], 1)  # two flat halves
    >>> choose_k(blobs + 0.01 * torch.randn(2, 8, 8))
    2
    """
    x = features.reshape(features.shape[0], -1).T
    return max(ks, key=lambda k: silhouette(x, kmeans(x, k, seed=seed)))


def cluster_features(features: torch.Tensor, k: int, size=None, seed: int = 0) -> torch.Tensor:
    """k-means labels (H, W) of a (C, h, w) feature map, upsampled (nearest) to ``size``.

    ``k`` clusters (see :func:`kmeans`); without ``size`` the labels keep the map's (h, w).

    >>> from foundseg.models import load_sd
    >>> from foundseg.data import sample
    >>> features = extract_features(load_sd("shapes-sd"), sample("test", 0).image, last=4)
    >>> labels = cluster_features(features, 3, size=(32, 32))
    >>> labels.shape, labels.dtype, sorted(labels.unique().tolist())
    (torch.Size([32, 32]), torch.int64, [0, 1, 2])
    """
    c, h, w = features.shape
    labels = kmeans(features.reshape(c, -1).T, k, seed=seed).reshape(1, 1, h, w).float()
    if size is not None:
        labels = F.interpolate(labels, size=tuple(size), mode="nearest")
    return labels[0, 0].long()
