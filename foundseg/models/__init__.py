"""Models: one loader for shipped shapes-world models and real checkpoints; CLIP embeddings; real configs."""
from .activations import capture_outputs
from .clip_embeddings import default_pooling, embed_images, image_embeddings, pixel_values, pool_tokens, text_embeddings
from .loader import CLIP, SHIPPED, ModelUnavailableError, load, load_clip, load_sd
from .real_configs import (REAL_CONFIGS, TRANSFORMERS, random_clip, random_sd, random_sd3, random_transformer,
                           real_config, save_random_clip, save_random_sd, save_random_sd3)

__all__ = ["CLIP", "capture_outputs", "REAL_CONFIGS", "SHIPPED", "ModelUnavailableError",
           "default_pooling", "embed_images", "image_embeddings", "load", "load_clip", "load_sd", "pixel_values", "pool_tokens",
           "random_clip", "random_sd", "random_sd3", "random_transformer", "TRANSFORMERS", "real_config", "save_random_clip",
           "save_random_sd", "save_random_sd3", "text_embeddings"]
