"""Models: one loader for shipped shapes-world models and real checkpoints; CLIP embeddings."""
from .activations import capture_outputs
from .clip_embeddings import default_pooling, embed_images, image_embeddings, pixel_values, pool_tokens, text_embeddings
from .loader import CLIP, SHIPPED, ModelUnavailableError, load, load_clip, load_sd

__all__ = ["CLIP", "capture_outputs", "SHIPPED", "ModelUnavailableError", "default_pooling", "embed_images",
           "image_embeddings", "load", "load_clip", "load_sd", "pixel_values", "pool_tokens", "text_embeddings"]
