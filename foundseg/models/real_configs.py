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


def save_random_clip(directory, seed: int = 0) -> Path:
    """Write CLIP ViT-B/16 with random weights (and the shapes-world tokenizer) to ``directory``."""
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(seed)
    directory = Path(directory)
    CLIPModel(CLIPConfig(**_strip(real_config("clip-vit-base-patch16")))).save_pretrained(directory)
    write_tokenizer(directory)
    return directory


def save_random_sd(directory, seed: int = 0) -> Path:
    """Write a Stable Diffusion 1.5 pipeline with random weights to ``directory`` (several GB on disk)."""
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(seed)
    directory = Path(directory)
    tokenizer = CLIPTokenizer.from_pretrained(write_tokenizer(directory / "tokenizer"))
    pipe = StableDiffusionPipeline(
        vae=AutoencoderKL(**_strip(real_config("sd15-vae"))),
        text_encoder=CLIPTextModel(CLIPTextConfig(**_strip(real_config("sd15-text-encoder")))),
        tokenizer=tokenizer,
        unet=UNet2DConditionModel(**_strip(real_config("sd15-unet"))),
        scheduler=PNDMScheduler.from_config(real_config("sd15-scheduler")),  # ignores keys PNDM does not take
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(directory)
    return directory
