"""The full-scale architectures, built from their published configs with random weights.

Used by the tests and benchmarks to run foundseg's code on CLIP ViT-B/16 and Stable Diffusion 1.5 shapes
without downloading them. The weights are random: only shapes, memory and speed mean anything.

>>> REAL_CONFIGS[:2]
('clip-vit-base-patch16', 'sd15-unet')
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from ..data.vocab import write_tokenizer

CONFIG_DIR = Path(__file__).parent / "configs"
REAL_CONFIGS = ("clip-vit-base-patch16", "sd15-unet", "sd15-vae", "sd15-text-encoder", "sd15-scheduler")
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


def _strip(config: dict) -> dict:
    return {k: v for k, v in config.items() if not k.startswith("_") and k != "architectures"}


def random_clip(seed: int = 0):
    """CLIP ViT-B/16 with random weights, in memory (build it under ``with torch.device("cuda"):`` to place it).

    ``seed`` seeds torch's global generator before the weights are drawn. Under ``torch.device("meta")``
    no memory is allocated, which is enough to inspect the architecture:

    >>> with torch.device("meta"):
    ...     model = random_clip()
    >>> type(model).__name__, model.config.vision_config.patch_size, model.config.projection_dim
    ('CLIPModel', 16, 512)
    >>> round(sum(p.numel() for p in model.parameters()) / 1e6)
    150
    """
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(seed)
    return CLIPModel(CLIPConfig(**_strip(real_config("clip-vit-base-patch16"))))


def random_sd(tokenizer, seed: int = 0):
    """A Stable Diffusion 1.5 pipeline with random weights around ``tokenizer``, in memory.

    ``tokenizer`` is a ``transformers.CLIPTokenizer`` (for example the shapes-world one from
    :func:`foundseg.data.write_tokenizer`); ``seed`` seeds torch's global generator. Under
    ``torch.device("meta")`` no memory is allocated:

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
    """
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    return StableDiffusionPipeline(
        vae=AutoencoderKL(**_strip(real_config("sd15-vae"))),
        text_encoder=CLIPTextModel(CLIPTextConfig(**_strip(real_config("sd15-text-encoder")))),
        tokenizer=tokenizer,
        unet=UNet2DConditionModel(**_strip(real_config("sd15-unet"))),
        scheduler=PNDMScheduler.from_config(real_config("sd15-scheduler")),  # ignores keys PNDM does not take
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)


def save_random_clip(directory, seed: int = 0) -> Path:
    """Write CLIP ViT-B/16 with random weights (and the shapes-world tokenizer) to ``directory``.

    ``directory`` is created if needed and returned; ``seed`` is as in :func:`random_clip`. The weights
    take about 600 MB on disk, so the example is not run:

    >>> from foundseg.models import load_clip
    >>> clip = load_clip(save_random_clip("random-clip"))  # doctest: +SKIP
    """
    directory = Path(directory)
    random_clip(seed).save_pretrained(directory)
    write_tokenizer(directory)
    return directory


def save_random_sd(directory, seed: int = 0) -> Path:
    """Write a Stable Diffusion 1.5 pipeline with random weights to ``directory`` (several GB on disk).

    ``directory`` is created if needed and returned; ``seed`` is as in :func:`random_sd`. Too large to run
    as an example:

    >>> from foundseg.models import load_sd
    >>> pipe = load_sd(save_random_sd("random-sd"))  # doctest: +SKIP
    """
    from transformers import CLIPTokenizer

    directory = Path(directory)
    tokenizer = CLIPTokenizer.from_pretrained(write_tokenizer(directory / "tokenizer"))
    random_sd(tokenizer, seed).save_pretrained(directory)
    return directory
