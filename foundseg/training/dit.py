"""Train ``shapes-dit``: a small Stable Diffusion 3 transformer (an MMDiT) on the shapes world, by flow matching.

The pipeline is diffusers' ``StableDiffusion3Pipeline``: shapes-sd's autoencoder (frozen, reused as it is) and
shapes-clip's text tower (frozen, with its projection) in both of SD3's CLIP slots; there is no T5, so the
pipeline puts ``max_sequence_length`` zero embeddings (256 by default) where T5's tokens would be. Those
tokens are identical at every layer (SD3 gives text no position), so attending to 256 of them is attending
to one with 256 times the weight: training runs one, with log(256) added to its attention logit
(:class:`NullTokens`), which costs a quarter of the time and gives the model exactly what the pipeline
gives it at inference. The transformer learns rectified flow (SD3's objective: noise minus data, at
logit-normal noise levels) with 10% caption dropout for classifier-free guidance.
"""
from __future__ import annotations

import math
import shutil
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import (AutoencoderKL, FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel,
                       StableDiffusion3Pipeline)
from transformers import CLIPModel, CLIPTextModelWithProjection, CLIPTokenizer

from ..data.vocab import write_tokenizer
from .common import latent_stats, seed_everything, train_denoiser, training_pool

DIT_SETTINGS = dict(layers=4, heads=4, head_dim=32, patch=2, pool=30000, steps=3000, batch=64, lr=1e-3,
                    warmup=200, caption_dropout=0.1, ema_decay=0.999)
"""The transformer (``layers`` joint blocks of ``heads`` × ``head_dim`` channels, ``patch``² latent pixels a
token) and its training: the pool of rendered images, steps, batch, peak learning rate and warm-up steps,
caption dropout, EMA decay."""
WHAT_WAS_TRIED = """\
Three other trainings, judged with this card's measures (144 single-object samples, guidance 7.5), drew the
caption's colour and shape little more often than the shipped settings' 0.188: 5000 steps at learning rate
0.004 (two CPU cores, 25 minutes; final loss 0.294 against 0.343) 0.257, with word attention IoU 0.668; 5000
steps at 0.002 (on a GPU) 0.236; `patch=1` (256 image tokens) for 1800 steps (on a GPU) 0.181. Five shorter
ones (two CPU cores, 8–12 minutes each; 96 samples) did no better:

- 1500 steps at 0.004: 0.177;
- the same with DiT's adaLN-Zero initialisation (every block and the output layer starting at zero): 0.177;
- `patch=1, heads=2` (256 image tokens, 64 channels), 1500 steps at 0.004: 0.167;
- 6000 steps at batch 16 and 0.002: 0.188;
- 1500 steps at 0.004 regressing, at noise levels σ ≤ 0.75, on shapes-sd's own predictions turned into
  velocities (distillation): 0.188.

As a diffusion classifier over the eight shapes (`foundseg.diffusion.diffusion_classify`, 100 single-object
test images) the shipped model names the true shape of 0.28, shapes-sd of 0.95 (chance 0.125): the transformer
learns the colour, and barely reads the shape word its text states carry.
"""
"""The shapes-dit card's "What was tried" section: the settings other trainings used and what they gave."""
NULL_TOKENS = 256
"""Zero embeddings the SD3 pipeline puts in T5's place without a T5 (its ``max_sequence_length`` default)."""


class NullTokens:
    """Training-time attention processor: the layer's own ``inner`` processor, with torch's attention given
    log(``count``) on the logit of the text's last token, so that one zero embedding there stands for
    ``count`` identical ones. Identical tokens get identical keys, values and outputs, so the result is the
    same as running all of them."""

    def __init__(self, inner, count: int = NULL_TOKENS):
        self.inner, self.log_count = inner, math.log(count)

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, *args, **kwargs):
        original = F.scaled_dot_product_attention

        def biased(query, key, value, *a, **kw):
            bias = torch.zeros(key.shape[-2], dtype=query.dtype, device=query.device)
            bias[-1] = self.log_count  # SD3 orders keys [image, text]: the null token is the last
            return original(query, key, value, attn_mask=bias.expand(query.shape[-2], -1), **kw)

        F.scaled_dot_product_attention = biased
        try:
            return self.inner(attn, hidden_states, encoder_hidden_states, *args, **kwargs)
        finally:
            F.scaled_dot_product_attention = original


def build_transformer(latent_size: int, latent_channels: int, text_width: int, pooled_width: int,
                      s=DIT_SETTINGS) -> SD3Transformer2DModel:
    """The shapes-dit transformer (random weights) for latents of ``latent_size``² × ``latent_channels``, text
    states ``text_width`` wide (both CLIP slots side by side) and pooled text ``pooled_width`` wide.

    >>> t = build_transformer(16, 4, 192, 128)
    >>> len(t.transformer_blocks), t.config.num_attention_heads * t.config.attention_head_dim
    (4, 128)
    """
    inner = s["heads"] * s["head_dim"]
    return SD3Transformer2DModel(sample_size=latent_size, patch_size=s["patch"], in_channels=latent_channels,
                                 out_channels=latent_channels, num_layers=s["layers"], attention_head_dim=s["head_dim"],
                                 num_attention_heads=s["heads"], joint_attention_dim=text_width,
                                 caption_projection_dim=inner, pooled_projection_dim=pooled_width,
                                 pos_embed_max_size=latent_size // s["patch"])


def text_tower(clip_dir, device="cpu") -> CLIPTextModelWithProjection:
    """shapes-clip's text tower with its projection, as SD3's CLIP slots hold it (frozen, in eval mode)."""
    clip = CLIPModel.from_pretrained(clip_dir)
    tower = CLIPTextModelWithProjection(clip.config.text_config)
    tower.config.projection_dim = clip.config.projection_dim
    tower.text_projection = torch.nn.Linear(clip.config.text_config.hidden_size, clip.config.projection_dim,
                                            bias=False)
    tower.text_model.load_state_dict(clip.text_model.state_dict())
    tower.text_projection.load_state_dict(clip.text_projection.state_dict())
    return tower.eval().requires_grad_(False).to(device)


def assemble(vae: AutoencoderKL, text_encoder, tokenizer, transformer) -> StableDiffusion3Pipeline:
    """The SD3 pipeline of shapes-dit: one text tower in both CLIP slots, no T5, the flow-matching Euler
    scheduler without SD3's resolution shift (latents here are 16 × 16, not 128 × 128)."""
    if vae.config.get("shift_factor") is None:
        vae.register_to_config(shift_factor=0.0)  # SD3's pipeline reads it; shapes-sd's latents are centred
    return StableDiffusion3Pipeline(transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(shift=1.0),
                                    vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                                    text_encoder_2=text_encoder, tokenizer_2=tokenizer, text_encoder_3=None,
                                    tokenizer_3=None)


def train_transformer(pipe: StableDiffusion3Pipeline, images, captions, seed: int = 0, progress: bool = True,
                      device="cpu", **overrides):
    """Train a new transformer for ``pipe`` (whose VAE and text towers stay frozen) on ``images`` and
    ``captions``; returns it and the log."""
    s = dict(DIT_SETTINGS, **overrides)
    gen = seed_everything(seed)
    vae = pipe.vae
    mean, std = latent_stats(vae, images)
    transformer = build_transformer(mean.shape[-1], mean.shape[1], 2 * pipe.text_encoder.config.hidden_size,
                                    2 * pipe.text_encoder.config.projection_dim, s).to(device)
    pipe.register_modules(transformer=transformer)  # the pipeline's prompt encoding reads its config
    originals = dict(transformer.attn_processors)
    transformer.set_attn_processor({name: NullTokens(p) for name, p in originals.items()})

    def step_loss(x0, caps):
        with torch.no_grad():
            text, pooled = pipe.encode_prompt(caps, None, None, device, do_classifier_free_guidance=False,
                                              max_sequence_length=1)[::2]
        noise = torch.randn(x0.shape, generator=gen).to(device)
        sigma = torch.sigmoid(torch.randn(len(x0), generator=gen)).to(device)  # logit-normal, as SD3 trains
        s4 = sigma[:, None, None, None]
        pred = transformer(hidden_states=(1 - s4) * x0 + s4 * noise, timestep=sigma * 1000,
                           encoder_hidden_states=text, pooled_projections=pooled).sample
        return F.mse_loss(pred, noise - x0)

    log = train_denoiser(transformer, step_loss, mean, std, vae.config.scaling_factor, captions, s, gen, device,
                         "shapes-dit transformer", progress)
    transformer.set_attn_processor(originals)
    return transformer.eval(), dict(log.summary(), settings=s, seed=seed)


def train_dit(out_dir, clip_dir, sd_dir, seed: int = 0, progress: bool = True, device="cpu", **overrides) -> dict:
    """Train shapes-dit into ``out_dir`` on shapes-clip's text tower (``clip_dir``) and shapes-sd's autoencoder
    (``sd_dir``); ``overrides`` replace entries of :data:`DIT_SETTINGS`. Returns the transformer's log.

    A tiny run, for illustration:

    >>> from foundseg.models.loader import ZOO_DIR
    >>> log = train_dit("tiny-zoo/shapes-dit", ZOO_DIR / "shapes-clip", ZOO_DIR / "shapes-sd", progress=False,
    ...                 steps=3, pool=64, batch=8)  # doctest: +SKIP
    >>> log["steps"]  # doctest: +SKIP
    3
    """
    out_dir = Path(out_dir)
    vae = AutoencoderKL.from_pretrained(Path(sd_dir) / "vae").eval().requires_grad_(False).to(device)
    tokenizer = CLIPTokenizer.from_pretrained(clip_dir)
    pipe = assemble(vae, text_tower(clip_dir, device), tokenizer, None)
    s = dict(DIT_SETTINGS, **overrides)
    images, samples = training_pool(s["pool"], vae.config.sample_size, seed, progress)
    _, log = train_transformer(pipe, images, [x.caption for x in samples], seed + 1, progress, device, **overrides)
    pipe.to("cpu")
    pipe.transformer.half()  # float16 on disk, as shapes-sd's UNet; loaders cast back to float32
    pipe.save_pretrained(out_dir)
    for name in ("tokenizer", "tokenizer_2"):
        shutil.rmtree(out_dir / name)
        write_tokenizer(out_dir / name)  # the same vocab.json/merges.txt as shapes-clip, no tokenizer.json
    return log
