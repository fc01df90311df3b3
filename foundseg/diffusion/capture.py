"""Cross-attention maps while generating, after re-noising an image once, and while denoising again.

Each function reads a UNet pipeline (Stable Diffusion 1.x / 2.x: its cross-attention) or an SD3 pipeline
(its joint attention, image→text, or with ``concepts`` ConceptAttention's output-space maps).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..data.images import load_image
from .attention import CrossAttentionRecorder
from .concept_attention import ConceptAttention, concept_embeddings
from .denoiser import check_single_stream_text, denoiser_pass, is_mmdit
from .joint_attention import JointAttentionRecorder
from .latents import add_noise, encode_image, noise_generator
from .recorder import AttentionMaps
from .tokens import token_indices


def recorder(pipe, prompt: str, words, *, concepts=None, layers=None, resolutions=None, heads="mean", steps="all",
             total_steps: int | None = None, conditional_half: bool = False, trajectory: bool = False):
    """The recorder of ``words``' maps for ``pipe``: :class:`CrossAttentionRecorder` on a UNet,
    :class:`JointAttentionRecorder` on an SD3 transformer, or there :class:`ConceptAttention` when ``concepts``
    is a list (the words compete with them in its softmax; the result keeps the words' maps only, and carries
    the words' joint-attention maps from the same passes as its ``joint``: one generation gives both kinds).

    ``resolutions`` pick UNet levels; an SD3 transformer's maps share one grid, so it refuses them. The other
    arguments are the recorders' own.
    """
    check_single_stream_text(pipe)
    words = [words] if isinstance(words, str) else list(words)
    groups = token_indices(pipe.tokenizer, prompt, words)  # the words must be in the prompt, for every kind of map
    if not is_mmdit(pipe):
        if concepts is not None:
            raise ValueError("concepts (ConceptAttention) need a diffusion transformer pipeline such as SD3; this "
                             "pipeline's denoiser is a UNet")
        return CrossAttentionRecorder(pipe.unet, groups, layers, resolutions, heads, steps, total_steps,
                                      conditional_half, trajectory)
    if resolutions is not None:
        raise ValueError("resolutions select UNet levels; a diffusion transformer's maps share one grid (use layers)")
    if concepts is None:
        return JointAttentionRecorder(pipe.transformer, groups, layers, heads, steps, total_steps, conditional_half,
                                      trajectory)
    if heads != "mean":
        raise ValueError("ConceptAttention's maps compare whole attention outputs; heads must be 'mean'")
    named = words + [c for c in concepts if c not in words]
    return _WordsOnly(pipe.transformer, concept_embeddings(pipe, named), groups, layers, steps, total_steps,
                      conditional_half, trajectory)


class _WordsOnly(ConceptAttention):
    """ConceptAttention whose result keeps the words' maps (the first concepts) and carries, as its ``joint``,
    the words' joint-attention maps (token ``groups``) recorded in the same passes at the same layers."""

    def __init__(self, transformer, concepts, groups, layers, *args):
        super().__init__(transformer, concepts, layers, "output", *args)
        self.joint = JointAttentionRecorder(transformer, groups, self.recorded, "mean", *args)  # fed, never entered

    def _pre_forward(self, module, args, kwargs):
        super()._pre_forward(module, args, kwargs)
        self.joint._pre_forward(module, args, kwargs)

    def observe(self, name, attn, hidden_states, encoder_hidden_states, image_rotary_emb):
        super().observe(name, attn, hidden_states, encoder_hidden_states, image_rotary_emb)
        if name in self.joint.layers:
            self.joint.observe(name, attn, hidden_states, encoder_hidden_states, image_rotary_emb)

    def reset(self) -> None:
        super().reset()
        if hasattr(self, "joint"):  # ConceptAttention's __init__ resets before the joint recorder exists
            self.joint.reset()

    def result(self) -> AttentionMaps:
        maps = super().result()
        keep = slice(0, len(self.joint.groups))
        return AttentionMaps({n: m[..., keep, :, :] for n, m in maps.per_layer.items()}, maps.steps,
                             {s: m[..., keep, :, :] for s, m in maps.per_step.items()}, self.joint.result())


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
             trajectory: bool = False, concepts=None) -> Generation:
    """Generate an image from ``prompt`` and record the maps of ``words`` at denoising ``steps``
    (default the last, as the paper does; ``"all"`` or a list of indices).

    ``words`` are words of ``prompt`` (see :func:`token_indices`); ``layers``, ``resolutions``, ``heads`` and
    ``trajectory`` are as in :class:`CrossAttentionRecorder`; ``concepts`` as in :func:`recorder`.
    ``num_inference_steps``, ``guidance_scale``, ``height`` and ``width`` go to the pipeline; ``seed`` fixes the
    initial noise. With ``guidance_scale > 1`` only the text-conditioned half of the batch is recorded.

    >>> from foundseg.models import load_sd
    >>> pipe = load_sd("shapes-sd")
    >>> g = generate(pipe, "a red circle", ["red", "circle"], num_inference_steps=2)
    >>> g.image.shape, g.maps.steps, g.maps.mean().shape
    ((32, 32, 3), [1], torch.Size([1, 2, 16, 16]))
    >>> g = generate(pipe, "a red circle", ["circle"], steps="all", num_inference_steps=3, trajectory=True)
    >>> g.maps.steps, sorted(g.maps.per_step)
    ([0, 1, 2], [0, 1, 2])
    >>> dit = load_sd("shapes-dit")  # an SD3 pipeline: joint attention, or ConceptAttention among concepts
    >>> generate(dit, "a red circle", ["circle"], num_inference_steps=2).maps.mean().shape
    torch.Size([1, 1, 8, 8])
    >>> generate(dit, "a red circle", ["circle"], num_inference_steps=2, concepts=["square"]).maps.mean().shape
    torch.Size([1, 1, 8, 8])
    """
    if not isinstance(num_inference_steps, int) or num_inference_steps < 1:
        raise ValueError(f"num_inference_steps must be at least 1, got {num_inference_steps!r}")
    with recorder(pipe, prompt, words, concepts=concepts, layers=layers, resolutions=resolutions, heads=heads,
                  steps=steps, total_steps=num_inference_steps, conditional_half=guidance_scale > 1,
                  trajectory=trajectory) as rec:
        out = pipe(prompt, height=height, width=width, num_inference_steps=num_inference_steps,
                   guidance_scale=guidance_scale, generator=noise_generator(seed), output_type="np")
    image = np.round(out.images[0] * 255).astype(np.uint8)
    return Generation(image, rec.result())


@torch.no_grad()
def renoise_attention(pipe, image, prompt: str, words, *, t: int | None = 0, seed: int = 0, layers=None,
                      resolutions=None, heads="mean", size=None, concepts=None) -> AttentionMaps:
    """ODISE mode: encode ``image``, noise it once to ``t`` (``None``: no noise, as VPN), run one pass of the
    denoiser conditioned on ``prompt`` and record the maps of ``words``.

    ``seed`` fixes the noise; ``layers``, ``resolutions`` and ``heads`` are as in
    :class:`CrossAttentionRecorder`; ``size`` as in :func:`encode_image`; ``concepts`` as in :func:`recorder`.

    >>> from foundseg.models import load_sd
    >>> from foundseg.data import sample
    >>> s = sample("test", 0)
    >>> s.caption
    'an orange crescent'
    >>> maps = renoise_attention(load_sd("shapes-sd"), s.image, s.caption, ["crescent"], t=100)
    >>> maps.steps, maps.mean().shape
    ([0], torch.Size([1, 1, 16, 16]))
    """
    return renoise_attention_at(pipe, image, prompt, words, [t], seed=seed, layers=layers, resolutions=resolutions,
                                heads=heads, size=size, concepts=concepts)[t]


@torch.no_grad()
def renoise_attention_at(pipe, image, prompt: str, words, ts, *, seed: int = 0, layers=None, resolutions=None,
                         heads="mean", size=None, concepts=None) -> dict:
    """:func:`renoise_attention` at each t of ``ts``, the image encoded once and the recorder installed once:
    ``{t: AttentionMaps}``. Each t is its own single pass on the same noise (``seed``).

    >>> from foundseg.models import load_sd
    >>> from foundseg.data import sample
    >>> s, pipe = sample("test", 0), load_sd("shapes-sd")
    >>> at = renoise_attention_at(pipe, s.image, s.caption, ["crescent"], [None, 100])
    >>> list(at), bool((at[100].mean() == renoise_attention(pipe, s.image, s.caption, ["crescent"], t=100).mean()).all())
    ([None, 100], True)
    """
    latents = encode_image(pipe, image, size)
    out = {}
    with recorder(pipe, prompt, words, concepts=concepts, layers=layers, resolutions=resolutions, heads=heads) as rec:
        for t in ts:
            rec.reset()
            denoiser_pass(pipe, add_noise(pipe, latents, t, seed), t, prompt)
            out[t] = rec.result()
    return out


def denoise_attention(pipe, image, prompt: str, words, *, strength: float = 0.5, num_inference_steps: int = 10,
                      guidance_scale: float = 7.5, seed: int = 0, layers=None, resolutions=None,
                      heads="mean", concepts=None) -> Generation:
    """Re-noise ``image`` once (img2img, to ``strength`` × the schedule) and denoise it again, recording the
    maps of ``words`` at every denoising step (``maps.per_step``).

    ``num_inference_steps`` is the full schedule's length, of which about ``strength`` × it are run;
    ``guidance_scale``, ``seed``, ``layers``, ``resolutions``, ``heads`` and ``concepts`` are as in
    :func:`generate`.

    >>> from foundseg.models import load_sd
    >>> from foundseg.data import sample
    >>> g = denoise_attention(load_sd("shapes-sd"), sample("test", 0).image, "an orange crescent", ["crescent"],
    ...                       strength=0.5, num_inference_steps=4)
    >>> g.image.shape, g.maps.steps, sorted(g.maps.per_step)
    ((32, 32, 3), [0, 1], [0, 1])
    """
    from diffusers import StableDiffusion3Img2ImgPipeline, StableDiffusionImg2ImgPipeline

    rec = recorder(pipe, prompt, words, concepts=concepts, layers=layers, resolutions=resolutions, heads=heads,
                   conditional_half=guidance_scale > 1, trajectory=True)
    img2img = (StableDiffusion3Img2ImgPipeline(**pipe.components) if is_mmdit(pipe)
               else StableDiffusionImg2ImgPipeline(**pipe.components, requires_safety_checker=False))
    img2img.set_progress_bar_config(disable=True)
    arr = load_image(image, "image")
    with rec:
        out = img2img(prompt, image=arr.astype(np.float32)[None] / 255.0, strength=strength,
                      num_inference_steps=num_inference_steps, guidance_scale=guidance_scale,
                      generator=noise_generator(seed), output_type="np")
    return Generation(np.round(out.images[0] * 255).astype(np.uint8), rec.result())
