"""Cross-attention maps while generating, after re-noising an image once, and while denoising again.

Each function reads a UNet pipeline (Stable Diffusion 1.x / 2.x: its cross-attention) or an SD3 pipeline
(its joint attention, image→text, or with ``concepts`` ConceptAttention's output-space maps).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

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


@dataclass(frozen=True)
class Capture:
    """Which maps a capture records, the same for every kind of map (:func:`generate`, :func:`renoise_attention`,
    :func:`renoise_attention_at`, :func:`denoise_attention`, :func:`recorder`).

    ``layers``: None (all), a kind (``"down"``, ``"mid"``, ``"up"``; a transformer's ``"joint"``,
    ``"single"``), or layer names and prefixes; ``resolutions``: the UNet levels (map side lengths) to keep (a
    transformer's maps share one grid and refuse them); ``heads``: ``"mean"``, ``"all"`` (kept apart) or head
    indices; ``steps``: the denoising steps recorded, ``-1`` the last (the paper's choice), ``"all"`` or a list
    of indices (one pass after noising once is its only step); ``concepts``: on a diffusion transformer,
    ConceptAttention's concepts (the words compete with them in its softmax; None reads the joint attention);
    ``trajectory``: keep each recorded step's maps apart (``maps.per_step``) beside their mean.

    >>> Capture(concepts=["square"], steps="all")
    Capture(layers=None, resolutions=None, heads='mean', steps='all', concepts=('square',), trajectory=False)
    >>> Capture(heads="first")
    Traceback (most recent call last):
    ValueError: heads must be 'mean', 'all' or a list of head indices, got 'first'
    """

    layers: str | tuple | None = None
    resolutions: int | tuple | None = None
    heads: str | tuple = "mean"
    steps: int | str | tuple = -1
    concepts: tuple | None = None
    trajectory: bool = False

    def __post_init__(self):
        for name in ("layers", "resolutions", "heads", "steps", "concepts"):  # lists become tuples: frozen whole
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
        if isinstance(self.concepts, str):
            object.__setattr__(self, "concepts", (self.concepts,))
        if isinstance(self.heads, str) and self.heads not in ("mean", "all"):
            raise ValueError(f"heads must be 'mean', 'all' or a list of head indices, got {self.heads!r}")


EVERY_STEP = Capture(steps="all", trajectory=True)
"""Every denoising step, each kept apart: :func:`denoise_attention`'s default."""


def recorder(pipe, prompt: str, words, capture: Capture = Capture(steps="all"), *, total_steps: int | None = None,
             conditional_half: bool = False):
    """The recorder of ``words``' maps for ``pipe`` as ``capture`` asks: :class:`CrossAttentionRecorder` on a
    UNet, :class:`JointAttentionRecorder` on an SD3 transformer, or there :class:`ConceptAttention` when
    ``capture.concepts`` is set (the result keeps the words' maps only, and carries the words' joint-attention
    maps from the same passes as its ``joint``: one generation gives both kinds).

    ``total_steps`` (the number of denoiser calls) resolves negative ``capture.steps``; ``conditional_half``
    records only the text-conditioned half of a classifier-free-guidance batch.
    """
    check_single_stream_text(pipe)
    c = capture
    words = [words] if isinstance(words, str) else list(words)
    groups = token_indices(pipe.tokenizer, prompt, words)  # the words must be in the prompt, for every kind of map
    heads = list(c.heads) if isinstance(c.heads, tuple) else c.heads
    steps = list(c.steps) if isinstance(c.steps, tuple) else c.steps
    timing = (steps, total_steps, conditional_half, c.trajectory)
    if not is_mmdit(pipe):
        if c.concepts is not None:
            raise ValueError("concepts (ConceptAttention) need a diffusion transformer pipeline such as SD3; this "
                             "pipeline's denoiser is a UNet")
        return CrossAttentionRecorder(pipe.unet, groups, c.layers, c.resolutions, heads, *timing)
    if c.resolutions is not None:
        raise ValueError("resolutions select UNet levels; a diffusion transformer's maps share one grid (use layers)")
    if c.concepts is None:
        return JointAttentionRecorder(pipe.transformer, groups, c.layers, heads, *timing)
    if heads != "mean":
        raise ValueError("ConceptAttention's maps compare whole attention outputs; heads must be 'mean'")
    named = words + [w for w in c.concepts if w not in words]
    return _WordsOnly(pipe.transformer, concept_embeddings(pipe, named), groups, c.layers, *timing)


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


def generate(pipe, prompt: str, words, capture: Capture = Capture(), *, num_inference_steps: int = 25,
             guidance_scale: float = 7.5, seed: int = 0, height=None, width=None) -> Generation:
    """Generate an image from ``prompt`` and record the maps of ``words`` (words of ``prompt``, see
    :func:`token_indices`) as ``capture`` asks (:class:`Capture`; by default the last step's, as the paper
    reads them).

    ``num_inference_steps``, ``guidance_scale``, ``height`` and ``width`` go to the pipeline; ``seed`` fixes the
    initial noise. With ``guidance_scale > 1`` only the text-conditioned half of the batch is recorded.

    >>> from foundseg.models import load_sd
    >>> pipe = load_sd("shapes-sd")
    >>> g = generate(pipe, "a red circle", ["red", "circle"], num_inference_steps=2)
    >>> g.image.shape, g.maps.steps, g.maps.mean().shape
    ((32, 32, 3), [1], torch.Size([1, 2, 16, 16]))
    >>> g = generate(pipe, "a red circle", ["circle"], EVERY_STEP, num_inference_steps=3)
    >>> g.maps.steps, sorted(g.maps.per_step)
    ([0, 1, 2], [0, 1, 2])
    >>> dit = load_sd("shapes-dit")  # an SD3 pipeline: joint attention, or ConceptAttention among concepts
    >>> generate(dit, "a red circle", ["circle"], num_inference_steps=2).maps.mean().shape
    torch.Size([1, 1, 8, 8])
    >>> generate(dit, "a red circle", ["circle"], Capture(concepts=["square"]), num_inference_steps=2).maps.mean().shape
    torch.Size([1, 1, 8, 8])
    """
    if not isinstance(num_inference_steps, int) or num_inference_steps < 1:
        raise ValueError(f"num_inference_steps must be at least 1, got {num_inference_steps!r}")
    with recorder(pipe, prompt, words, capture, total_steps=num_inference_steps,
                  conditional_half=guidance_scale > 1) as rec:
        out = pipe(prompt, height=height, width=width, num_inference_steps=num_inference_steps,
                   guidance_scale=guidance_scale, generator=noise_generator(seed), output_type="np")
    image = np.round(out.images[0] * 255).astype(np.uint8)
    return Generation(image, rec.result())


@torch.no_grad()
def renoise_attention(pipe, image, prompt: str, words, capture: Capture = Capture(), *, t: int | None = 0,
                      seed: int = 0, size=None) -> AttentionMaps:
    """ODISE mode: encode ``image``, noise it once to ``t`` (``None``: no noise, as VPN), run one pass of the
    denoiser conditioned on ``prompt`` and record the maps of ``words`` as ``capture`` asks (its ``steps``
    do not apply: the one pass is the only step).

    ``seed`` fixes the noise; ``size`` is as in :func:`encode_image`.

    >>> from foundseg.models import load_sd
    >>> from foundseg.data import sample
    >>> s = sample("test", 0)
    >>> s.caption
    'an orange crescent'
    >>> maps = renoise_attention(load_sd("shapes-sd"), s.image, s.caption, ["crescent"], t=100)
    >>> maps.steps, maps.mean().shape
    ([0], torch.Size([1, 1, 16, 16]))
    """
    return renoise_attention_at(pipe, image, prompt, words, [t], capture, seed=seed, size=size)[t]


@torch.no_grad()
def renoise_attention_at(pipe, image, prompt: str, words, ts, capture: Capture = Capture(), *, seed: int = 0,
                         size=None) -> dict:
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
    with recorder(pipe, prompt, words, replace(capture, steps="all")) as rec:
        for t in ts:
            rec.reset()
            denoiser_pass(pipe, add_noise(pipe, latents, t, seed), t, prompt)
            out[t] = rec.result()
    return out


def denoise_attention(pipe, image, prompt: str, words, capture: Capture = EVERY_STEP, *, strength: float = 0.5,
                      num_inference_steps: int = 10, guidance_scale: float = 7.5, seed: int = 0) -> Generation:
    """Re-noise ``image`` once (img2img, to ``strength`` × the schedule) and denoise it again, recording the
    maps of ``words`` as ``capture`` asks (by default at every denoising step, each in ``maps.per_step``).

    ``num_inference_steps`` is the full schedule's length, of which about ``strength`` × it are run;
    ``guidance_scale`` and ``seed`` are as in :func:`generate`.

    >>> from foundseg.models import load_sd
    >>> from foundseg.data import sample
    >>> g = denoise_attention(load_sd("shapes-sd"), sample("test", 0).image, "an orange crescent", ["crescent"],
    ...                       strength=0.5, num_inference_steps=4)
    >>> g.image.shape, g.maps.steps, sorted(g.maps.per_step)
    ((32, 32, 3), [0, 1], [0, 1])
    """
    from diffusers import StableDiffusion3Img2ImgPipeline, StableDiffusionImg2ImgPipeline

    n_run = min(int(num_inference_steps * strength), num_inference_steps)  # the steps img2img runs
    rec = recorder(pipe, prompt, words, capture, total_steps=n_run, conditional_half=guidance_scale > 1)
    img2img = (StableDiffusion3Img2ImgPipeline(**pipe.components) if is_mmdit(pipe)
               else StableDiffusionImg2ImgPipeline(**pipe.components, requires_safety_checker=False))
    img2img.set_progress_bar_config(disable=True)
    arr = load_image(image, "image")
    with rec:
        out = img2img(prompt, image=arr.astype(np.float32)[None] / 255.0, strength=strength,
                      num_inference_steps=num_inference_steps, guidance_scale=guidance_scale,
                      generator=noise_generator(seed), output_type="np")
    return Generation(np.round(out.images[0] * 255).astype(np.uint8), rec.result())
