"""Train ``shapes-sd``: an AutoencoderKL and a UNet2DConditionModel on the shapes world.

The text encoder is shapes-clip's text tower, frozen, as Stable Diffusion
uses CLIP's. The UNet learns the usual epsilon objective with 10% caption
dropout for classifier-free guidance; the pipeline ships with a DDIM
scheduler in Stable Diffusion's settings.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DDIMScheduler, DDPMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from transformers import CLIPModel, CLIPTokenizer

from ..batching import batched
from ..data.vocab import write_tokenizer
from ..diffusion.latents import to_unit_range, vae_latents
from ..progress import progress_bar
from .common import LossLog, latent_stats, seed_everything, train_denoiser, training_pool, warmup_cosine

VAE_SETTINGS = dict(size=32, channels=(32, 64), latent_channels=4, mid_attention=True, pool=60000, steps=900,
                    batch=64, lr=1e-3, warmup=50, kl_weight=1e-6)
"""``mid_attention``: attention over the latents in the encoder's and decoder's mid blocks (diffusers' default).
Without it a step took 0.81 times as long and the round-trip shape rate was 0.811 instead of 0.813; an f = 4 VAE
with 16 latent channels (8×8 latents, a UNet step a third as long) reached 0.816, but a UNet trained on its
latents drew the captioned shape no more often than chance (0.146)."""
UNET_SETTINGS = dict(channels=(32, 64, 128), layers_per_block=1, heads=(1, 2, 4),
                     only_cross_attention=(False, False, False), steps=3600, batch=64, lr=4e-3, warmup=200,
                     caption_dropout=0.1, ema_decay=0.999)
"""``heads``: attention heads per level, each 32 channels wide (Stable Diffusion 2 also fixes the head width);
four heads at every level, 8 wide at the first, made a CPU training step about 1.3 times as long."""
SD_SCHEDULE = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                   clip_sample=False, steps_offset=1, prediction_type="epsilon")
"""Stable Diffusion's own scheduler settings (``clip_sample=True``, diffusers' default, ruins latent sampling)."""


def build_vae(s=VAE_SETTINGS) -> AutoencoderKL:
    """The shapes-sd autoencoder (random weights); ``s`` holds the architecture entries of :data:`VAE_SETTINGS`.

    >>> vae = build_vae()
    >>> vae.config.latent_channels, vae.encode(torch.zeros(1, 3, 32, 32)).latent_dist.mean.shape[-1]
    (4, 16)
    """
    n_blocks = len(s["channels"])
    return AutoencoderKL(in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * n_blocks,
                         up_block_types=["UpDecoderBlock2D"] * n_blocks, block_out_channels=list(s["channels"]),
                         layers_per_block=1, latent_channels=s["latent_channels"], norm_num_groups=16,
                         mid_block_add_attention=s["mid_attention"], sample_size=s["size"])


def vae_losses(vae: AutoencoderKL, x: torch.Tensor, gen: torch.Generator):
    """The autoencoder's training losses on images ``x`` in [-1, 1]: the L1 reconstruction error of a latent
    sampled with the CPU generator ``gen``, and the KL term per image number."""
    posterior = vae.encode(x).latent_dist
    z = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=gen).to(x.device)
    kl = posterior.kl().mean() / x[0].numel()
    return F.l1_loss(vae.decode(z).sample, x), kl


def train_vae(images: np.ndarray, seed: int = 0, progress: bool = True, device="cpu", **overrides):
    """Train the autoencoder on ``images``; returns the model (with its latent scaling factor set) and the log.

    Random draws come from a CPU generator whatever the ``device``, so a seed gives the same batches everywhere.
    """
    s = dict(VAE_SETTINGS, **overrides)
    gen = seed_everything(seed)
    vae = build_vae(s).to(device)
    opt = torch.optim.AdamW(vae.parameters(), lr=s["lr"], weight_decay=0.0)
    sched = warmup_cosine(opt, s["warmup"], s["steps"])
    log = LossLog("vae")
    vae.train()
    for _ in progress_bar(range(s["steps"]), "shapes-sd vae", progress):
        x = to_unit_range(images[torch.randint(len(images), (s["batch"],), generator=gen).numpy()]).to(device)
        rec, kl = vae_losses(vae, x, gen)
        loss = rec + s["kl_weight"] * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        log.add(l1=rec.item(), kl=kl.item())
    vae.eval()
    with torch.no_grad():
        latents = batched(lambda s: vae_latents(vae, to_unit_range(images[s]), scaled=False),
                          min(len(images), 2048), 256)
    vae.register_to_config(scaling_factor=float(1.0 / latents.std()))
    return vae, dict(log.summary(), settings=s, seed=seed)


def encode_captions(text_encoder, tokenizer, captions) -> torch.Tensor:
    """The text encoder's last hidden states for ``captions``, as the pipeline computes them."""
    ids = tokenizer(list(captions), padding="max_length", max_length=tokenizer.model_max_length,
                    truncation=True, return_tensors="pt").input_ids
    return text_encoder(ids.to(text_encoder.device))[0]


def latent_size(image_size: int, block_channels) -> int:
    """Side of the latents an AutoencoderKL with ``block_channels`` makes of ``image_size`` px images: it halves
    the size once per block after the first (diffusers' ``vae_scale_factor``).

    >>> latent_size(VAE_SETTINGS["size"], VAE_SETTINGS["channels"])
    16
    """
    return image_size // 2 ** (len(block_channels) - 1)


def build_unet(latent_size: int, latent_channels: int, text_width: int, s=UNET_SETTINGS) -> UNet2DConditionModel:
    """The shapes-sd UNet (random weights) for latents of ``latent_size``² × ``latent_channels`` and a text
    encoder of width ``text_width``; ``s`` holds the architecture entries of :data:`UNET_SETTINGS`
    (``only_cross_attention``: per level, whether self-attention gives way to a second cross-attention).

    >>> unet = build_unet(16, 4, 96)
    >>> unet.config.block_out_channels, unet.config.cross_attention_dim
    ([32, 64, 128], 96)

    Without self-attention at the first level, its first attention attends to the caption instead of across
    the 16×16 latent pixels:

    >>> unet = build_unet(16, 4, 96, dict(UNET_SETTINGS, only_cross_attention=(True, False, False)))
    >>> [block.attentions[0].transformer_blocks[0].attn1.is_cross_attention for block in unet.down_blocks]
    [True, False, False]
    """
    n_blocks = len(s["channels"])
    return UNet2DConditionModel(
        sample_size=latent_size, in_channels=latent_channels, out_channels=latent_channels,
        down_block_types=["CrossAttnDownBlock2D"] * n_blocks, up_block_types=["CrossAttnUpBlock2D"] * n_blocks,
        block_out_channels=list(s["channels"]), layers_per_block=s["layers_per_block"],
        cross_attention_dim=text_width, attention_head_dim=s["heads"], norm_num_groups=32,
        only_cross_attention=list(s["only_cross_attention"]))


def train_unet(vae, text_encoder, tokenizer, images, captions, seed: int = 0, progress: bool = True, device="cpu",
               **overrides):
    """Train the denoising UNet on latents of ``images`` conditioned on ``captions``."""
    s = dict(UNET_SETTINGS, **overrides)
    gen = seed_everything(seed)
    latent = latent_size(vae.config.sample_size, vae.config.block_out_channels)
    unet = build_unet(latent, vae.config.latent_channels, text_encoder.config.hidden_size, s).to(device)
    noise_sched = DDPMScheduler(**SD_SCHEDULE)
    mean, std = latent_stats(vae, images)
    text_encoder.requires_grad_(False)

    def step_loss(z0, caps):
        with torch.no_grad():
            cond = encode_captions(text_encoder, tokenizer, caps)
        noise = torch.randn(z0.shape, generator=gen).to(device)
        t = torch.randint(0, noise_sched.config.num_train_timesteps, (len(z0),), generator=gen).to(device)
        return F.mse_loss(unet(noise_sched.add_noise(z0, noise, t), t, encoder_hidden_states=cond).sample, noise)

    log = train_denoiser(unet, step_loss, mean, std, vae.config.scaling_factor, captions, s, gen, device,
                         "shapes-sd unet", progress)
    unet.eval()
    return unet, dict(log.summary(), settings=s, seed=seed)


def train_pipeline(clip_dir, seed: int = 0, progress: bool = True, vae_overrides=None, unet_overrides=None,
                   device="cpu"):
    """Train the VAE, then the UNet on shapes-clip's text tower from ``clip_dir``; return the pipeline and both logs."""
    size = (vae_overrides or {}).get("size", VAE_SETTINGS["size"])
    images, samples = training_pool((vae_overrides or {}).get("pool", VAE_SETTINGS["pool"]), size, seed, progress)
    vae, vae_log = train_vae(images, seed, progress, device, **(vae_overrides or {}))
    tokenizer = CLIPTokenizer.from_pretrained(clip_dir)
    text_encoder = CLIPModel.from_pretrained(clip_dir).text_model.eval().to(device)  # a CLIPTextModel
    unet, unet_log = train_unet(vae, text_encoder, tokenizer, images, [x.caption for x in samples], seed + 1, progress,
                                device, **(unet_overrides or {}))
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=DDIMScheduler(**SD_SCHEDULE, set_alpha_to_one=False), safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)
    return pipe, {"vae": vae_log, "unet": unet_log}


def train_sd(out_dir, clip_dir, seed: int = 0, progress: bool = True, vae_overrides=None, unet_overrides=None,
             device="cpu") -> dict:
    """Train shapes-sd into ``out_dir`` on top of the shapes-clip in ``clip_dir``; return both logs.

    ``clip_dir`` is a directory :func:`train_clip` wrote (its tokenizer and frozen text tower are reused).
    ``seed`` seeds the VAE (the UNet gets ``seed + 1``); ``progress`` shows progress bars;
    ``vae_overrides`` and ``unet_overrides`` replace entries of :data:`VAE_SETTINGS` and
    :data:`UNET_SETTINGS`; ``device`` is where training runs. Returns ``{"vae": log, "unet": log}``.

    A tiny run, for illustration:

    >>> logs = train_sd("tiny-zoo/shapes-sd", "tiny-zoo/shapes-clip", progress=False,
    ...                 vae_overrides=dict(steps=3, pool=300, batch=8),
    ...                 unet_overrides=dict(steps=3, batch=8))  # doctest: +SKIP
    >>> sorted(logs), logs["vae"]["steps"], logs["unet"]["steps"]  # doctest: +SKIP
    (['unet', 'vae'], 3, 3)
    """
    out_dir = Path(out_dir)
    pipe, logs = train_pipeline(clip_dir, seed, progress, vae_overrides, unet_overrides, device)
    pipe.to("cpu")
    pipe.unet.half()  # stored in float16 to keep the shipped zoo small; loaders cast back to float32
    pipe.save_pretrained(out_dir)
    shutil.rmtree(out_dir / "tokenizer")
    write_tokenizer(out_dir / "tokenizer")  # the same vocab.json/merges.txt as shapes-clip, no tokenizer.json
    return logs
