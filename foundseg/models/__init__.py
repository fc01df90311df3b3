"""Models: one loader for shipped shapes-world models and real checkpoints; CLIP embeddings."""
from .clip_embeddings import default_pooling, image_embeddings, pixel_values, text_embeddings
from .loader import CLIP, FULL_SCALE, SHIPPED, ModelUnavailableError, default_model, load, load_clip, load_sd, scale

__all__ = ["CLIP", "FULL_SCALE", "SHIPPED", "ModelUnavailableError", "default_model", "default_pooling",
           "image_embeddings", "load", "load_clip", "load_sd", "pixel_values", "scale", "text_embeddings"]
