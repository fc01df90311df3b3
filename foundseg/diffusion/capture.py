"""Cross-attention maps while generating, after re-noising an image once, and while denoising again."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..data.images import fit_size, load_image, shrink
from .attention import AttentionMaps, CrossAttentionRecorder
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


def to_unit_range(images: np.ndarray) -> torch.Tensor:
    """uint8 images (B, H, W, 3) → float (B, 3, H, W) in [-1, 1], as the VAE expects.

    >>> to_unit_range(np.array([[[[0, 255, 0]]]], np.uint8)).flatten().tolist()
    [-1.0, 1.0, -1.0]
    """
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1


def _generator(seed: int) -> torch.Generator:
    return torch.Generator("cpu").manual_seed(int(seed))


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
    groups = token_indices(pipe.tokenizer, prompt, words)
    cfg = guidance_scale > 1
    with CrossAttentionRecorder(pipe.unet, groups, layers, resolutions, heads, steps, num_inference_steps,
                                conditional_half=cfg, trajectory=trajectory) as rec:
        out = pipe(prompt, height=height, width=width, num_inference_steps=num_inference_steps,
                   guidance_scale=guidance_scale, generator=_generator(seed), output_type="np")
    image = np.round(out.images[0] * 255).astype(np.uint8)
    return Generation(image, rec.result())


def native_size(pipe) -> int:
    """The side in pixels a pipeline was trained at: the UNet's sample size times the VAE's downsampling.

    >>> from foundseg.models import load_sd
    >>> native_size(load_sd("shapes-sd"))
    32
    """
    return pipe.unet.config.sample_size * pipe.vae_scale_factor


def latent_multiple(pipe) -> int:
    return pipe.vae_scale_factor * 2 ** (len(pipe.unet.config.block_out_channels) - 1)


@torch.no_grad()
def encode_image(pipe, image, size: tuple[int, int] | None = None) -> torch.Tensor:
    """VAE latents (1, C, h, w), scaled as the UNet expects, of ``image`` resized to ``size``.

    ``image`` is anything :func:`foundseg.data.load_image` reads (an (H, W, 3) uint8 array, a path, a
    PIL image, ...), of any size; ``size`` is (height, width) in pixels, multiples of what the UNet accepts.
    By default the shorter side goes to the pipeline's own resolution (512 px for Stable Diffusion 1.5, 32 for
    shapes-sd), the aspect kept (see :func:`foundseg.data.images.fit_size`).

    >>> import numpy as np
    >>> from foundseg.models import load_sd
    >>> from foundseg.data import sample
    >>> pipe = load_sd("shapes-sd")
    >>> encode_image(pipe, sample("test", 0).image).shape
    torch.Size([1, 4, 16, 16])
    >>> encode_image(pipe, np.zeros((20, 30, 3), np.uint8)).shape  # resized to 32 x 48 pixels
    torch.Size([1, 4, 16, 24])
    """
    arr = load_image(image, "image")
    m = latent_multiple(pipe)
    h, w = size or fit_size(arr.shape, native_size(pipe), m, "image")
    if h % m or w % m or h < m or w < m:
        raise ValueError(f"size must be positive multiples of {m} for this pipeline, got {(h, w)}")
    arr = shrink(arr, (h, w))
    x = to_unit_range(arr[None])
    if (h, w) != arr.shape[:2]:
        x = torch.nn.functional.interpolate(x, size=(h, w), mode="bicubic", align_corners=False, antialias=True)
    x = x.to(device=pipe.vae.device, dtype=pipe.vae.dtype)
    return pipe.vae.encode(x).latent_dist.mean * pipe.vae.config.scaling_factor


def add_noise(pipe, latents: torch.Tensor, t: int | None, seed: int = 0) -> torch.Tensor:
    """Latents noised once to timestep ``t`` with a fixed noise tensor drawn from ``seed``; ``None`` adds none.

    ``t`` is a training timestep of the pipeline's scheduler, in [0, ``num_train_timesteps``).

    >>> import torch
    >>> from foundseg.models import load_sd
    >>> pipe = load_sd("shapes-sd")
    >>> latents = torch.zeros(1, 4, 16, 16)
    >>> add_noise(pipe, latents, 500).shape
    torch.Size([1, 4, 16, 16])
    >>> torch.equal(add_noise(pipe, latents, 500, seed=1), add_noise(pipe, latents, 500, seed=1))
    True
    >>> add_noise(pipe, latents, None) is latents
    True
    """
    if t is None:
        return latents
    n_train = pipe.scheduler.config.num_train_timesteps
    if not isinstance(t, (int, np.integer)) or not 0 <= t < n_train:
        raise ValueError(f"t must be an integer timestep in [0, {n_train}) or None, got {t!r}")
    noise = torch.randn(latents.shape, generator=_generator(seed)).to(latents.device, latents.dtype)
    return pipe.scheduler.add_noise(latents, noise, torch.tensor([int(t)]))


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
                      generator=_generator(seed), output_type="np")
    return Generation(np.round(out.images[0] * 255).astype(np.uint8), rec.result())
