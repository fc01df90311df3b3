"""An ODISE-style feature extractor over a StableDiffusionPipeline; every ablation is an argument.

ODISE encodes the image with the VAE, adds noise once at t = 0 with a fixed noise tensor, runs one UNet pass
conditioned on an *implicit caption* (the CLIP image embedding through a learned linear map, added to the
null text embedding through a tanh gate) and hands the VAE encoder/decoder block features and the UNet
output-block features to its mask generator. :class:`OdiseConfig` switches each part on or off, and
allows several timesteps, averaged — the direction the paper's conclusion points to.
"""
from __future__ import annotations

import hashlib
import json
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..maps import resize_maps
from ..models.activations import capture_outputs
from .latents import add_noise, vae_latents

TEXT_MODES = ("null", "caption", "implicit")


@dataclass(frozen=True)
class OdiseConfig:
    """Which features to extract and how.

    Args:
        vae_encoder / vae_decoder: VAE ("VQGAN") encoder down-block / decoder up-block features.
        vae_blocks: indices of those blocks (None: all).
        unet: UNet output (up-) block features; ``unet_blocks`` picks them (None: all).
        noise: add noise once (fixed, seeded) at each timestep, or feed the clean latent (VPN).
        text: ``null`` text, the image's ``caption``, or the ``implicit`` captioner.
        timesteps: one (ODISE: ``(0,)``) or several, whose UNet features are averaged.

    >>> config = OdiseConfig(text="null", vae_blocks=(0, 1))
    >>> config.unet, config.timesteps
    (True, (0,))
    >>> len(config.key()), config.key() == OdiseConfig(text="null", vae_blocks=(0, 1)).key() != OdiseConfig().key()
    (12, True)
    >>> OdiseConfig(text="title")
    Traceback (most recent call last):
    ...
    ValueError: text must be one of ('null', 'caption', 'implicit'), got 'title'
    """

    vae_encoder: bool = True
    vae_decoder: bool = True
    vae_blocks: tuple[int, ...] | None = None
    unet: bool = True
    unet_blocks: tuple[int, ...] | None = None
    noise: bool = True
    text: str = "implicit"
    timesteps: tuple[int, ...] = (0,)

    def __post_init__(self):
        if self.text not in TEXT_MODES:
            raise ValueError(f"text must be one of {TEXT_MODES}, got {self.text!r}")
        if not (self.vae_encoder or self.vae_decoder or self.unet):
            raise ValueError("at least one of vae_encoder, vae_decoder, unet must be on")
        if not self.timesteps or not all(isinstance(t, int) and 0 <= t < 1000 for t in self.timesteps):
            raise ValueError(f"timesteps must be a non-empty tuple of integers in [0, 1000), got {self.timesteps!r}")

    def key(self) -> str:
        """A short stable hash naming this configuration (for feature caches)."""
        return hashlib.sha1(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


class ImplicitCaptioner(nn.Module):
    """CLIP image embedding → linear map → ``n_tokens`` prefix embeddings, added to the null text embedding
    through a learnable tanh-gated scale (zero at the start, so training starts from the null text).

    Args:
        clip_dim: width of the CLIP image embeddings.
        text_dim: width of the text encoder's hidden states.
        n_tokens: number of prefix embeddings, written after the start token.

    Called with the null text embedding (1, T, ``text_dim``) and image embeddings (B, ``clip_dim``), it
    returns (B, T, ``text_dim``).

    >>> import torch
    >>> captioner = ImplicitCaptioner(clip_dim=64, text_dim=96)
    >>> null_text = torch.zeros(1, 32, 96)
    >>> text = captioner(null_text, torch.randn(2, 64))
    >>> text.shape, torch.equal(text[1], null_text[0])  # the gate starts closed
    (torch.Size([2, 32, 96]), True)
    """

    def __init__(self, clip_dim: int, text_dim: int, n_tokens: int = 4):
        super().__init__()
        self.n_tokens, self.text_dim = n_tokens, text_dim
        self.proj = nn.Linear(clip_dim, n_tokens * text_dim)
        self.gate = nn.Parameter(torch.zeros(1))

    def forward(self, null_text: torch.Tensor, image_embeds: torch.Tensor) -> torch.Tensor:
        prefix = self.proj(image_embeds).view(len(image_embeds), self.n_tokens, self.text_dim)
        pad = torch.zeros(len(image_embeds), null_text.shape[1] - self.n_tokens - 1, self.text_dim,
                          device=prefix.device, dtype=prefix.dtype)
        offset = torch.cat([torch.zeros_like(prefix[:, :1]), prefix, pad], 1)  # the start token stays as is
        return null_text.expand(len(image_embeds), -1, -1) + torch.tanh(self.gate) * offset


@contextmanager
def frozen(module: nn.Module):
    """Within the block, no parameter of ``module`` requires a gradient; the flags are restored on exit, also
    when the block raises. Gradients still flow *through* the module to whatever feeds it.

    >>> layer = torch.nn.Linear(2, 2)
    >>> with frozen(layer):
    ...     [p.requires_grad for p in layer.parameters()]
    [False, False]
    >>> [p.requires_grad for p in layer.parameters()]
    [True, True]
    """
    flags = [(p, p.requires_grad) for p in module.parameters()]
    try:
        for p, _ in flags:
            p.requires_grad_(False)
        yield module
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


def _pick(blocks, chosen, prefix):
    idx = range(len(blocks)) if chosen is None else chosen
    if any(not 0 <= i < len(blocks) for i in idx):
        raise ValueError(f"{prefix} block indices {tuple(idx)} out of range (0..{len(blocks) - 1})")
    return {f"{prefix}.{i}": blocks[i] for i in idx}


def odise_features(pipe, images: torch.Tensor, config: OdiseConfig, captions=None, captioner=None,
                   clip_image_embeds=None, seed: int = 0) -> dict[str, torch.Tensor]:
    """Features (name → (B, C, h, w)) of a batch of ``images`` ((B, 3, H, W) in [-1, 1]) under ``config``.

    ``captions`` are needed for ``text="caption"``; ``captioner`` and ``clip_image_embeds`` for
    ``text="implicit"``. Gradients flow to the captioner (kept in float32 whatever the pipeline's dtype);
    everything else runs frozen (see :func:`frozen`), so no pipeline parameter receives a gradient. ``seed``
    fixes the noise.

    Names are ``vae_encoder.i``, ``vae_decoder.i`` and ``unet.i`` for block ``i``.

    >>> import torch
    >>> from foundseg.models import load_sd
    >>> pipe = load_sd("shapes-sd")
    >>> images = torch.zeros(2, 3, 32, 32)
    >>> feats = odise_features(pipe, images, OdiseConfig(text="null", vae_decoder=False))
    >>> {name: tuple(f.shape) for name, f in feats.items()}  # doctest: +NORMALIZE_WHITESPACE
    {'vae_encoder.0': (2, 32, 16, 16), 'vae_encoder.1': (2, 64, 16, 16),
     'unet.0': (2, 128, 8, 8), 'unet.1': (2, 64, 16, 16), 'unet.2': (2, 32, 16, 16)}
    >>> captioner = ImplicitCaptioner(clip_dim=64, text_dim=96)
    >>> feats = odise_features(pipe, images, OdiseConfig(vae_encoder=False, vae_decoder=False), captioner=captioner,
    ...                        clip_image_embeds=torch.randn(2, 64))
    >>> sorted(feats), feats["unet.0"].requires_grad
    (['unet.0', 'unet.1', 'unet.2'], True)
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be a (B, 3, H, W) batch in [-1, 1], got shape {tuple(images.shape)}")
    feats: dict[str, torch.Tensor] = {}
    vae, unet = pipe.vae, pipe.unet
    with torch.no_grad():
        encoder = _pick(vae.encoder.down_blocks, config.vae_blocks, "vae_encoder") if config.vae_encoder else {}
        with capture_outputs(encoder) as captured:
            latents = vae_latents(vae, images)
        feats.update(captured)
        if config.vae_decoder:
            with capture_outputs(_pick(vae.decoder.up_blocks, config.vae_blocks, "vae_decoder")) as captured:
                vae.decode(latents / vae.config.scaling_factor)
            feats.update(captured)
    if not config.unet:
        return {k: v.detach() for k, v in feats.items()}
    b = len(images)
    if config.text == "caption":
        if captions is None or len(captions) != b:
            raise ValueError("captions must give one caption per image for text='caption'")
        with torch.no_grad():
            text = pipe.encode_prompt(list(captions), latents.device, 1, False)[0]
    else:
        with torch.no_grad():
            text = pipe.encode_prompt([""], latents.device, 1, False)[0]
        if config.text == "implicit":
            if captioner is None or clip_image_embeds is None:
                raise ValueError("text='implicit' needs captioner and clip_image_embeds")
            text = captioner(text.float(), clip_image_embeds.float()).to(unet.dtype)
        text = text.expand(b, -1, -1)
    sums: dict[str, torch.Tensor] = {}
    for t in config.timesteps:
        noisy = add_noise(pipe, latents, t, seed) if config.noise else latents
        with capture_outputs(_pick(unet.up_blocks, config.unet_blocks, "unet")) as step, frozen(unet):
            unet(noisy, t, encoder_hidden_states=text)
        for k, v in step.items():
            sums[k] = sums.get(k, 0) + v / len(config.timesteps)
    feats.update(sums)
    return feats


def fuse(features: dict[str, torch.Tensor], size) -> torch.Tensor:
    """Concatenate feature maps over channels after bilinear resizing to ``size`` (h, w).

    Each map is first L2-normalised over its channels at every pixel, so that blocks whose activations are
    orders of magnitude larger (the UNet's, next to the VAE's) do not drown the others — the role the pixel
    decoder's normalisation layers play in ODISE.

    ``features`` is a name → (B, C, h, w) dict as :func:`odise_features` returns; maps are concatenated in
    name order.

    >>> import torch
    >>> fused = fuse({"unet.0": torch.randn(2, 128, 8, 8), "vae_decoder.1": torch.randn(2, 64, 32, 32)}, (16, 16))
    >>> fused.shape
    torch.Size([2, 192, 16, 16])
    """
    if not features:
        raise ValueError("features is empty")
    return torch.cat([resize_maps(F.normalize(f.float(), dim=1), size) for _, f in sorted(features.items())], 1)
