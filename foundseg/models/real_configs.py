"""The full-scale architectures, built from their published configs with random weights.

Used by the tests and benchmarks to run foundseg's code on CLIP ViT-B/16 and Stable Diffusion 1.5 shapes
without downloading them. The weights are random: only shapes, memory and speed mean anything.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from ..data.vocab import write_tokenizer

CONFIG_DIR = Path(__file__).parent / "configs"
REAL_CONFIGS = ("clip-vit-base-patch16", "sd15-unet", "sd15-vae", "sd15-text-encoder", "sd15-scheduler")


def real_config(name: str) -> dict:
    """The published config of ``name`` (one of :data:`REAL_CONFIGS`) as a dict."""
    if name not in REAL_CONFIGS:
        raise ValueError(f"name must be one of {REAL_CONFIGS}, got {name!r}")
    return json.loads((CONFIG_DIR / f"{name}.json").read_text())


def _strip(config: dict) -> dict:
    return {k: v for k, v in config.items() if not k.startswith("_") and k != "architectures"}


def random_clip(seed: int = 0):
    """CLIP ViT-B/16 with random weights, in memory (build it under ``with torch.device("cuda"):`` to place it)."""
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(seed)
    return CLIPModel(CLIPConfig(**_strip(real_config("clip-vit-base-patch16"))))


def random_sd(tokenizer, seed: int = 0):
    """A Stable Diffusion 1.5 pipeline with random weights around ``tokenizer``, in memory."""
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
    """Write CLIP ViT-B/16 with random weights (and the shapes-world tokenizer) to ``directory``."""
    directory = Path(directory)
    random_clip(seed).save_pretrained(directory)
    write_tokenizer(directory)
    return directory


def save_random_sd(directory, seed: int = 0) -> Path:
    """Write a Stable Diffusion 1.5 pipeline with random weights to ``directory`` (several GB on disk)."""
    from transformers import CLIPTokenizer

    directory = Path(directory)
    tokenizer = CLIPTokenizer.from_pretrained(write_tokenizer(directory / "tokenizer"))
    random_sd(tokenizer, seed).save_pretrained(directory)
    return directory
