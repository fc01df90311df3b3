"""Images in and out of the latent space: pixel ranges, sizes the pipeline accepts, VAE encoding, noising once."""
from __future__ import annotations

import numpy as np
import torch

from ..data.images import fit_size, load_image, model_input
from .denoiser import denoiser, is_mmdit


def to_unit_range(images: np.ndarray) -> torch.Tensor:
    """uint8 images (B, H, W, 3) → float (B, 3, H, W) in [-1, 1], as the VAE expects.

    >>> to_unit_range(np.array([[[[0, 255, 0]]]], np.uint8)).flatten().tolist()
    [-1.0, 1.0, -1.0]
    """
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1


def noise_generator(seed: int) -> torch.Generator:
    """A CPU generator seeded with ``seed``: the same noise on any device."""
    return torch.Generator("cpu").manual_seed(int(seed))


def native_size(pipe) -> int:
    """The side in pixels a pipeline was trained at: the UNet's sample size times the VAE's downsampling.

    >>> from foundseg.models import load_sd
    >>> native_size(load_sd("shapes-sd")), native_size(load_sd("shapes-dit"))
    (32, 32)
    """
    return denoiser(pipe).config.sample_size * pipe.vae_scale_factor


def latent_multiple(pipe) -> int:
    """The multiple of pixels an image side must be for the pipeline's VAE and denoiser (64 for Stable Diffusion
    1.5, 16 for Stable Diffusion 3: its VAE's 8 times the transformer's 2 × 2 patches).

    >>> from foundseg.models import load_sd
    >>> latent_multiple(load_sd("shapes-sd")), latent_multiple(load_sd("shapes-dit"))
    (8, 4)
    """
    if is_mmdit(pipe):
        return pipe.vae_scale_factor * pipe.transformer.config.patch_size
    return pipe.vae_scale_factor * 2 ** (len(pipe.unet.config.block_out_channels) - 1)


@torch.no_grad()
def encode_image(pipe, image, size: tuple[int, int] | None = None) -> torch.Tensor:
    """VAE latents (1, C, h, w), scaled as the denoiser expects, of ``image`` resized to ``size``.

    ``image`` is anything :func:`foundseg.data.load_image` reads (an (H, W, 3) uint8 array, a path, a
    PIL image, ...), of any size; ``size`` is (height, width) in pixels, multiples of what the denoiser accepts.
    By default the shorter side goes to the pipeline's own resolution (512 px for Stable Diffusion 1.5, 32 for
    shapes-sd), the aspect kept (see :func:`foundseg.data.images.fit_size`).

    >>> import numpy as np
    >>> from foundseg.models import load_sd
    >>> from foundseg.data import sample
    >>> pipe = load_sd("shapes-sd")
    >>> encode_image(pipe, sample("test", 0).image).shape
    torch.Size([1, 4, 16, 16])
    >>> encode_image(pipe, np.zeros((20, 30, 3), np.uint8)).shape  # resized to 32 x 48 pixels
    torch.Size([1, 4, 16, 24])
    """
    arr = load_image(image, "image")
    m = latent_multiple(pipe)
    h, w = size or fit_size(arr.shape, native_size(pipe), m, "image")
    if h % m or w % m or h < m or w < m:
        raise ValueError(f"size must be positive multiples of {m} for this pipeline, got {(h, w)}")
    return vae_latents(pipe.vae, model_input(arr, (h, w), lambda a: to_unit_range(a[None])))


def vae_latents(vae, images: torch.Tensor, scaled: bool = True, with_std: bool = False):
    """Latents of ``images`` ((B, 3, H, W) in [-1, 1]) as the denoiser expects them: the posterior mean, less the
    VAE's shift factor where it has one (SD3's), times its scaling factor; with ``scaled=False`` the mean as the
    VAE gives it (what a scaling factor is computed from). ``with_std`` returns (latents, the posterior's std in
    the same units). Gradients flow if the caller allows them.

    >>> from foundseg.models import load_sd
    >>> vae, x = load_sd("shapes-sd").vae, torch.zeros(2, 3, 32, 32)
    >>> mean, std = vae_latents(vae, x, scaled=False, with_std=True)
    >>> latents, latent_std = vae_latents(vae, x, with_std=True)
    >>> factor = vae.config.scaling_factor
    >>> latents.shape, torch.equal(latents, mean * factor), torch.equal(latent_std, std * factor)
    (torch.Size([2, 4, 16, 16]), True, True)
    """
    posterior = vae.encode(images.to(vae.device, vae.dtype)).latent_dist
    if not scaled:
        return (posterior.mean, posterior.std) if with_std else posterior.mean
    factor = vae.config.scaling_factor
    latents = (posterior.mean - (vae.config.get("shift_factor") or 0.0)) * factor
    return (latents, posterior.std * factor) if with_std else latents


def add_noise(pipe, latents: torch.Tensor, t: int | None, seed: int = 0) -> torch.Tensor:
    """Latents noised once to timestep ``t`` with a fixed noise tensor drawn from ``seed``; ``None`` adds none.

    ``t`` is a training timestep of the pipeline's scheduler, in [0, ``num_train_timesteps``). A diffusion
    transformer's pipeline (SD3) noises by rectified flow, (1 − σ) x + σ ε with σ = t / ``num_train_timesteps``
    (the σ its transformer reads as timestep t); a UNet's by its scheduler's ``add_noise``.

    >>> import torch
    >>> from foundseg.models import load_sd
    >>> pipe = load_sd("shapes-sd")
    >>> latents = torch.zeros(1, 4, 16, 16)
    >>> add_noise(pipe, latents, 500).shape
    torch.Size([1, 4, 16, 16])
    >>> torch.equal(add_noise(pipe, latents, 500, seed=1), add_noise(pipe, latents, 500, seed=1))
    True
    >>> add_noise(pipe, latents, None) is latents
    True
    """
    if t is None:
        return latents
    n_train = pipe.scheduler.config.num_train_timesteps
    if not isinstance(t, (int, np.integer)) or not 0 <= t < n_train:
        raise ValueError(f"t must be an integer timestep in [0, {n_train}) or None, got {t!r}")
    noise = torch.randn(latents.shape, generator=noise_generator(seed)).to(latents.device, latents.dtype)
    return noised(pipe, latents, noise, torch.tensor([int(t)]))


def noised(pipe, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
    """``latents`` noised with ``noise`` at the training ``timesteps`` (one for all latents, or one each): by
    rectified flow, (1 − σ) x + σ ε with σ = t / ``num_train_timesteps``, for a diffusion transformer's pipeline;
    by its scheduler's ``add_noise`` for a UNet's."""
    if not is_mmdit(pipe):
        return pipe.scheduler.add_noise(latents, noise, timesteps)
    sigma = (timesteps.double() / pipe.scheduler.config.num_train_timesteps).reshape(-1, 1, 1, 1)
    return (1 - sigma).to(latents.device, latents.dtype) * latents + sigma.to(latents.device, latents.dtype) * noise
