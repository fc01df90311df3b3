"""Stable Diffusion internals: cross-attention capture (joint attention and ConceptAttention for diffusion
transformers), re-noising, denoiser features."""
from .attention import CrossAttentionRecorder, cross_attention_layers, select_layers
from .capture import EVERY_STEP, Capture, Generation, denoise_attention, generate, recorder, renoise_attention, renoise_attention_at
from .classifier import denoising_errors, diffusion_classify
from .concept_attention import ConceptAttention, concept_embeddings
from .denoiser import denoiser_pass, is_mmdit
from .features import extract_features, output_layers
from .joint_attention import JointAttentionRecorder, joint_attention_layers, select_joint_layers
from .latents import add_noise, encode_image, latent_multiple, native_size, to_unit_range, vae_latents
from .odise import ImplicitCaptioner, OdiseConfig, fuse, odise_features
from .recorder import AttentionMaps
from .tokens import END, START, token_indices

__all__ = ["END", "EVERY_STEP", "START", "AttentionMaps", "Capture", "ConceptAttention", "CrossAttentionRecorder", "Generation", "ImplicitCaptioner",
           "JointAttentionRecorder", "OdiseConfig", "add_noise", "concept_embeddings",
           "cross_attention_layers", "denoise_attention", "denoiser_pass", "denoising_errors", "diffusion_classify",
           "encode_image", "extract_features", "fuse", "generate", "is_mmdit", "joint_attention_layers",
           "latent_multiple", "native_size", "odise_features", "output_layers", "recorder", "renoise_attention",
           "renoise_attention_at", "select_joint_layers", "select_layers", "to_unit_range", "token_indices", "vae_latents"]
