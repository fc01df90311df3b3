"""The full-scale architectures (CLIP ViT-B/16, Stable Diffusion 1.5, SD3 medium, FLUX.1 schnell) built from
their published configs with random weights, for the tests, the benchmarks and the rehearsal: foundseg's code
runs on the real shapes without a download. Not a model: its weights mean nothing."""
from .real_architectures import (REAL_CONFIGS, TRANSFORMERS, random_clip, random_sd, random_sd3, random_transformer,
                                 real_config, save_random_clip, save_random_sd, save_random_sd3)

__all__ = ["REAL_CONFIGS", "TRANSFORMERS", "random_clip", "random_sd", "random_sd3", "random_transformer", "real_config",
           "save_random_clip", "save_random_sd", "save_random_sd3"]
