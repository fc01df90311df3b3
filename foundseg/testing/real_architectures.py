"""The full-scale architectures, built from their published configs with random weights.

Used by the tests and benchmarks to run foundseg's code on CLIP ViT-B/16, Stable Diffusion 1.5 and the
diffusion transformers of Stable Diffusion 3 (medium) and FLUX.1 (schnell) without downloading them. The weights are random: only shapes, memory and speed mean anything.

>>> REAL_CONFIGS[:2]
('clip-vit-base-patch16', 'sd15-unet')
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from ..data.vocab import write_tokenizer

CONFIG_DIR = Path(__file__).parent / "configs"
CONTEXT_LENGTH = 77
"""Tokens real CLIP's text encoder reads (start and end tokens included)."""
REAL_CONFIGS = ("clip-vit-base-patch16", "sd15-unet", "sd15-vae", "sd15-text-encoder", "sd15-scheduler",
                "sd3-medium-transformer", "sd3-medium-vae", "sd3-medium-scheduler", "sd3-medium-text-encoder",
                "sd3-medium-text-encoder-2", "flux1-schnell-transformer")
"""Names of the published configs shipped in ``configs/``, for :func:`real_config`."""


def real_config(name: str) -> dict:
    """The published config of ``name`` (one of :data:`REAL_CONFIGS`) as a dict.

    >>> real_config("clip-vit-base-patch16")["vision_config"]["patch_size"]
    16
    >>> real_config("sd15-unet")["cross_attention_dim"]
    768
    """
    if name not in REAL_CONFIGS:
        raise ValueError(f"name must be one of {REAL_CONFIGS}, got {name!r}")
    return json.loads((CONFIG_DIR / f"{name}.json").read_text())


NARROW = {"clip": 8, "text_encoder": 8, "unet": 10, "vae": 4, "transformer": 8}
"""Width divisors of the narrow random models (``narrow=True``): channels and hidden sizes are divided by these,
while image sizes, the 77-token context, layer counts and head counts stay as published (a transformer's heads
get narrower). CPU rehearsals of the
full scale use them; the time and memory they take mean nothing for the real checkpoints."""


def _strip(config: dict) -> dict:
    return {k: v for k, v in config.items() if not k.startswith("_") and k != "architectures"}


def _narrowed(config: dict, keys, divisor: int) -> dict:
    """``config`` with the widths under ``keys`` divided by ``divisor`` (lists element by element)."""
    out = dict(config)
    for key in keys:
        value = out[key]
        out[key] = [v // divisor for v in value] if isinstance(value, list) else value // divisor
    return out


def random_clip(seed: int = 0, narrow: bool = False):
    """CLIP ViT-B/16 with random weights, in memory (build it under ``with torch.device("cuda"):`` to place it).

    ``seed`` seeds torch's global generator before the weights are drawn; ``narrow`` divides the widths by
    :data:`NARROW` (layers, heads and sizes unchanged). Under ``torch.device("meta")`` no memory is allocated,
    which is enough to inspect the architecture:

    >>> with torch.device("meta"):
    ...     model = random_clip()
    >>> type(model).__name__, model.config.vision_config.patch_size, model.config.projection_dim
    ('CLIPModel', 16, 512)
    >>> round(sum(p.numel() for p in model.parameters()) / 1e6)
    150
    >>> with torch.device("meta"):
    ...     narrow = random_clip(narrow=True).config
    >>> narrow.vision_config.hidden_size, narrow.vision_config.num_attention_heads, narrow.vision_config.num_hidden_layers
    (96, 12, 12)
    """
    from transformers import CLIPConfig, CLIPModel

    config = _strip(real_config("clip-vit-base-patch16"))
    if narrow:
        widths = ("hidden_size", "intermediate_size")
        config = dict(config, projection_dim=config["projection_dim"] // NARROW["clip"],
                      text_config=_narrowed(config["text_config"], widths, NARROW["clip"]),
                      vision_config=_narrowed(config["vision_config"], widths, NARROW["clip"]))
    torch.manual_seed(seed)
    return CLIPModel(CLIPConfig(**config))


def random_sd(tokenizer, seed: int = 0, narrow: bool = False):
    """A Stable Diffusion 1.5 pipeline with random weights around ``tokenizer``, in memory.

    ``tokenizer`` is a ``transformers.CLIPTokenizer`` (for example the shapes-world one from
    :func:`foundseg.data.write_tokenizer`); ``seed`` seeds torch's global generator; ``narrow`` divides the
    widths by :data:`NARROW`. Under ``torch.device("meta")`` no memory is allocated:

    >>> import tempfile
    >>> from transformers import CLIPTokenizer
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     tokenizer = CLIPTokenizer.from_pretrained(write_tokenizer(tmp))
    >>> with torch.device("meta"):
    ...     pipe = random_sd(tokenizer)
    >>> type(pipe).__name__, pipe.unet.config.cross_attention_dim
    ('StableDiffusionPipeline', 768)
    >>> round(sum(p.numel() for p in pipe.unet.parameters()) / 1e6)
    860
    >>> with torch.device("meta"):
    ...     unet = random_sd(tokenizer, narrow=True).unet
    >>> unet.config.block_out_channels, unet.config.cross_attention_dim, unet.config.sample_size
    ([32, 64, 128, 128], 96, 64)
    """
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    vae, unet, text = (_strip(real_config(n)) for n in ("sd15-vae", "sd15-unet", "sd15-text-encoder"))
    if narrow:
        text = _narrowed(text, ("hidden_size", "intermediate_size", "projection_dim"), NARROW["text_encoder"])
        vae = _narrowed(vae, ("block_out_channels",), NARROW["vae"])
        unet = dict(_narrowed(unet, ("block_out_channels",), NARROW["unet"]), cross_attention_dim=text["hidden_size"])
    torch.manual_seed(seed)
    return StableDiffusionPipeline(
        vae=AutoencoderKL(**vae),
        text_encoder=CLIPTextModel(CLIPTextConfig(**text)),
        tokenizer=tokenizer,
        unet=UNet2DConditionModel(**unet),
        scheduler=PNDMScheduler.from_config(real_config("sd15-scheduler")),  # ignores keys PNDM does not take
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)


TRANSFORMERS = {"sd3-medium": ("sd3-medium-transformer", "SD3Transformer2DModel"),
                "flux-schnell": ("flux1-schnell-transformer", "FluxTransformer2DModel")}
"""Diffusion transformers (MMDiT) with a published config: name → (config, diffusers class)."""


def random_transformer(name: str, seed: int = 0, **overrides):
    """The diffusion transformer ``name`` (one of :data:`TRANSFORMERS`) with random weights, in memory; an
    ``overrides`` entry replaces a config value (fewer layers, narrower heads: a small instance of the same
    class). Under ``torch.device("meta")`` no memory is allocated:

    >>> with torch.device("meta"):
    ...     flux = random_transformer("flux-schnell")
    ...     sd3 = random_transformer("sd3-medium")
    >>> type(flux).__name__, len(flux.transformer_blocks), len(flux.single_transformer_blocks)
    ('FluxTransformer2DModel', 19, 38)
    >>> round(sum(p.numel() for p in flux.parameters()) / 1e9, 1), round(sum(p.numel() for p in sd3.parameters()) / 1e9, 1)
    (11.9, 2.0)
    """
    if name not in TRANSFORMERS:
        raise ValueError(f"name must be one of {tuple(TRANSFORMERS)}, got {name!r}")
    import diffusers

    config_name, cls = TRANSFORMERS[name]
    torch.manual_seed(seed)
    return getattr(diffusers, cls).from_config({**real_config(config_name), **overrides})


def random_sd3(tokenizer, seed: int = 0, narrow: bool = False):
    """A Stable Diffusion 3 (medium) pipeline with random weights around ``tokenizer`` (in both CLIP slots), in
    memory, without its T5 encoder (as :func:`foundseg.models.load_sd` runs SD3 with ``text_encoder_3=None``).

    ``seed`` and ``narrow`` are as in :func:`random_sd`. Under ``torch.device("meta")`` no memory is allocated:

    >>> import tempfile
    >>> from transformers import CLIPTokenizer
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     tokenizer = CLIPTokenizer.from_pretrained(write_tokenizer(tmp))
    >>> with torch.device("meta"):
    ...     pipe = random_sd3(tokenizer, narrow=True)
    >>> type(pipe).__name__, len(pipe.transformer.transformer_blocks), pipe.transformer.config.num_attention_heads
    ('StableDiffusion3Pipeline', 24, 24)
    >>> pipe.transformer.config.attention_head_dim, pipe.vae.config.latent_channels, pipe.vae.config.shift_factor
    (8, 16, 0.0609)
    """
    from diffusers import (AutoencoderKL, FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel,
                           StableDiffusion3Pipeline)
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    vae, transformer = (_strip(real_config(n)) for n in ("sd3-medium-vae", "sd3-medium-transformer"))
    texts = [_strip(real_config(n)) for n in ("sd3-medium-text-encoder", "sd3-medium-text-encoder-2")]
    if narrow:
        n = NARROW["transformer"]
        texts = [_narrowed(t, ("hidden_size", "intermediate_size", "projection_dim"), NARROW["text_encoder"])
                 for t in texts]
        vae = _narrowed(vae, ("block_out_channels",), NARROW["vae"])
        transformer = dict(_narrowed(transformer, ("attention_head_dim", "caption_projection_dim",
                                                   "joint_attention_dim"), n),
                           pooled_projection_dim=sum(t["projection_dim"] for t in texts))
    torch.manual_seed(seed)
    encoders = [CLIPTextModelWithProjection(CLIPTextConfig(**t)) for t in texts]
    return StableDiffusion3Pipeline(
        transformer=SD3Transformer2DModel(**transformer), vae=AutoencoderKL(**vae),
        scheduler=FlowMatchEulerDiscreteScheduler.from_config(real_config("sd3-medium-scheduler")),
        text_encoder=encoders[0], tokenizer=tokenizer, text_encoder_2=encoders[1], tokenizer_2=tokenizer,
        text_encoder_3=None, tokenizer_3=None)


def save_random_clip(directory, seed: int = 0, narrow: bool = False) -> Path:
    """Write CLIP ViT-B/16 with random weights (and the shapes-world tokenizer, read 77 tokens at a time) to
    ``directory``.

    ``directory`` is created if needed and returned; ``seed`` and ``narrow`` are as in :func:`random_clip`.
    The weights take about 600 MB on disk (20 MB narrow), so the example is not run:

    >>> from foundseg.models import load_clip
    >>> clip = load_clip(save_random_clip("random-clip"))  # doctest: +SKIP
    """
    directory = Path(directory)
    random_clip(seed, narrow).save_pretrained(directory)
    write_tokenizer(directory, CONTEXT_LENGTH)
    return directory


def save_random_sd(directory, seed: int = 0, narrow: bool = False) -> Path:
    """Write a Stable Diffusion 1.5 pipeline with random weights to ``directory`` (several GB on disk; about
    80 MB narrow).

    ``directory`` is created if needed and returned; ``seed`` and ``narrow`` are as in :func:`random_sd`. Too
    large to run as an example:

    >>> from foundseg.models import load_sd
    >>> pipe = load_sd(save_random_sd("random-sd"))  # doctest: +SKIP
    """
    from transformers import CLIPTokenizer

    directory = Path(directory)
    tokenizer = CLIPTokenizer.from_pretrained(write_tokenizer(directory / "tokenizer", CONTEXT_LENGTH))
    random_sd(tokenizer, seed, narrow).save_pretrained(directory)
    return directory


def save_random_sd3(directory, seed: int = 0, narrow: bool = False) -> Path:
    """Write a Stable Diffusion 3 (medium) pipeline without T5, with random weights, to ``directory`` (about
    5 GB on disk; much less narrow).

    ``directory`` is created if needed and returned; ``seed`` and ``narrow`` are as in :func:`random_sd3`.

    >>> from foundseg.models import load_sd
    >>> pipe = load_sd(save_random_sd3("random-sd3", narrow=True))  # doctest: +SKIP
    """
    from transformers import CLIPTokenizer

    directory = Path(directory)
    tokenizer = CLIPTokenizer.from_pretrained(write_tokenizer(directory / "tokenizer", CONTEXT_LENGTH))
    random_sd3(tokenizer, seed, narrow).save_pretrained(directory)
    return directory
