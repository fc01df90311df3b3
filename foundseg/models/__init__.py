"""Models: one loader for shipped shapes-world models and real checkpoints; CLIP embeddings; real configs."""
from .activations import capture_outputs
from .clip_embeddings import default_pooling, embed_images, image_embeddings, pixel_values, pool_tokens, text_embeddings
from .loader import CLIP, SHIPPED, ModelUnavailableError, load, load_clip, load_sd
from .scale import COUNTS, FULL_SCALE, SCALES, Scale, apply_thread_policy, current_scale, default_model, scale
from .real_configs import (REAL_CONFIGS, TRANSFORMERS, random_clip, random_sd, random_sd3, random_transformer,
                           real_config, save_random_clip, save_random_sd, save_random_sd3)

__all__ = ["CLIP", "capture_outputs", "COUNTS", "FULL_SCALE", "SCALES", "Scale", "current_scale", "REAL_CONFIGS", "SHIPPED", "ModelUnavailableError", "apply_thread_policy", "default_model",
           "default_pooling", "embed_images", "image_embeddings", "load", "load_clip", "load_sd", "pixel_values", "pool_tokens",
           "random_clip", "random_sd", "random_sd3", "random_transformer", "TRANSFORMERS", "real_config", "save_random_clip",
           "save_random_sd", "save_random_sd3", "scale", "text_embeddings"]
