"""Cross-attention maps while generating, after re-noising an image once, and while denoising again."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..data.images import load_image
from .attention import AttentionMaps, CrossAttentionRecorder
from .latents import add_noise, encode_image, noise_generator
from .tokens import token_indices


@dataclass
class Generation:
    """A generated image (H, W, 3) uint8 and the cross-attention maps recorded while generating it.

    Returned by :func:`generate` and :func:`denoise_attention`.

    >>> from foundseg.models import load_sd
    >>> g = generate(load_sd("shapes-sd"), "a red circle", ["circle"], num_inference_steps=2)
    >>> type(g).__name__, g.image.shape, g.image.dtype, type(g.maps).__name__
    ('Generation', (32, 32, 3), dtype('uint8'), 'AttentionMaps')
    """

    image: np.ndarray
    maps: AttentionMaps


def generate(pipe, prompt: str, words, *, steps=-1, layers=None, resolutions=None, heads="mean",
             num_inference_steps: int = 25, guidance_scale: float = 7.5, seed: int = 0, height=None, width=None,
             trajectory: bool = False) -> Generation:
    """Generate an image from ``prompt`` and record the maps of ``words`` at denoising ``steps``
    (default the last, as the paper does; ``"all"`` or a list of indices).

    ``words`` are words of ``prompt`` (see :func:`token_indices`); ``layers``, ``resolutions``, ``heads`` and
    ``trajectory`` are as in :class:`CrossAttentionRecorder`. ``num_inference_steps``, ``guidance_scale``,
    ``height`` and ``width`` go to the pipeline; ``seed`` fixes the initial noise. With ``guidance_scale > 1``
    only the text-conditioned half of the batch is recorded.

    >>> from foundseg.models import load_sd
    >>> pipe = load_sd("shapes-sd")
    >>> g = generate(pipe, "a red circle", ["red", "circle"], num_inference_steps=2)
    >>> g.image.shape, g.maps.steps, g.maps.mean().shape
    ((32, 32, 3), [1], torch.Size([1, 2, 16, 16]))
    >>> g = generate(pipe, "a red circle", ["circle"], steps="all", num_inference_steps=3, trajectory=True)
    >>> g.maps.steps, sorted(g.maps.per_step)
    ([0, 1, 2], [0, 1, 2])
    """
    if not isinstance(num_inference_steps, int) or num_inference_steps < 1:
        raise ValueError(f"num_inference_steps must be at least 1, got {num_inference_steps!r}")
    groups = token_indices(pipe.tokenizer, prompt, words)
    cfg = guidance_scale > 1
    with CrossAttentionRecorder(pipe.unet, groups, layers, resolutions, heads, steps, num_inference_steps,
                                conditional_half=cfg, trajectory=trajectory) as rec:
        out = pipe(prompt, height=height, width=width, num_inference_steps=num_inference_steps,
                   guidance_scale=guidance_scale, generator=noise_generator(seed), output_type="np")
    image = np.round(out.images[0] * 255).astype(np.uint8)
    return Generation(image, rec.result())


@torch.no_grad()
def renoise_attention(pipe, image, prompt: str, words, *, t: int | None = 0, seed: int = 0, layers=None,
                      resolutions=None, heads="mean", size=None) -> AttentionMaps:
    """ODISE mode: encode ``image``, noise it once to ``t`` (``None``: no noise, as VPN), run one UNet pass
    conditioned on ``prompt`` and record the maps of ``words``.

    ``seed`` fixes the noise; ``layers``, ``resolutions`` and ``heads`` are as in
    :class:`CrossAttentionRecorder`; ``size`` as in :func:`encode_image`.

    >>> from foundseg.models import load_sd
    >>> from foundseg.data import sample
    >>> s = sample("test", 0)
    >>> s.caption
    'an orange crescent'
    >>> maps = renoise_attention(load_sd("shapes-sd"), s.image, s.caption, ["crescent"], t=100)
    >>> maps.steps, maps.mean().shape
    ([0], torch.Size([1, 1, 16, 16]))
    """
    groups = token_indices(pipe.tokenizer, prompt, words)
    noisy = add_noise(pipe, encode_image(pipe, image, size), t, seed)
    text = pipe.encode_prompt(prompt, noisy.device, 1, False)[0]
    with CrossAttentionRecorder(pipe.unet, groups, layers, resolutions, heads) as rec:
        pipe.unet(noisy, 0 if t is None else int(t), encoder_hidden_states=text)
    return rec.result()


def denoise_attention(pipe, image, prompt: str, words, *, strength: float = 0.5, num_inference_steps: int = 10,
                      guidance_scale: float = 7.5, seed: int = 0, layers=None, resolutions=None,
                      heads="mean") -> Generation:
    """Re-noise ``image`` once (img2img, to ``strength`` × the schedule) and denoise it again, recording the
    maps of ``words`` at every denoising step (``maps.per_step``).

    ``num_inference_steps`` is the full schedule's length, of which about ``strength`` × it are run;
    ``guidance_scale``, ``seed``, ``layers``, ``resolutions`` and ``heads`` are as in :func:`generate`.

    >>> from foundseg.models import load_sd
    >>> from foundseg.data import sample
    >>> g = denoise_attention(load_sd("shapes-sd"), sample("test", 0).image, "an orange crescent", ["crescent"],
    ...                       strength=0.5, num_inference_steps=4)
    >>> g.image.shape, g.maps.steps, sorted(g.maps.per_step)
    ((32, 32, 3), [0, 1], [0, 1])
    """
    from diffusers import StableDiffusionImg2ImgPipeline

    img2img = StableDiffusionImg2ImgPipeline(**pipe.components, requires_safety_checker=False)
    img2img.set_progress_bar_config(disable=True)
    groups = token_indices(pipe.tokenizer, prompt, words)
    arr = load_image(image, "image")
    with CrossAttentionRecorder(pipe.unet, groups, layers, resolutions, heads, "all",
                                conditional_half=guidance_scale > 1, trajectory=True) as rec:
        out = img2img(prompt, image=arr.astype(np.float32)[None] / 255.0, strength=strength,
                      num_inference_steps=num_inference_steps, guidance_scale=guidance_scale,
                      generator=noise_generator(seed), output_type="np")
    return Generation(np.round(out.images[0] * 255).astype(np.uint8), rec.result())
