"""Diffusion models as zero-shot classifiers (Li et al.; Clark & Jaini): the class whose prompt lets the
denoiser predict best — lowest denoising error over a fixed set of (timestep, noise) pairs. A UNet predicts the
added noise; a flow-matching transformer (SD3) the velocity, noise minus data."""
from __future__ import annotations

import torch

from .denoiser import denoiser_pass, is_mmdit
from .latents import encode_image, noise_generator, noised


@torch.no_grad()
def denoising_errors(pipe, image, prompts, timesteps=(100, 300, 500, 700, 900), seed: int = 0) -> torch.Tensor:
    """Mean squared error of the denoiser's prediction per prompt (P,), over ``timesteps`` with fixed noise.

    Every prompt sees the same noised latents, so differences come from the text alone. The target is the
    noise for a UNet and the velocity (noise − data) for a diffusion transformer, whose latents are noised by
    rectified flow at σ = t / ``num_train_timesteps`` (:func:`~foundseg.diffusion.latents.noised`).

    ``image`` is read as :func:`encode_image` reads it; ``prompts`` is a list of texts; ``timesteps`` are
    training timesteps of the scheduler, each with its own noise tensor drawn from ``seed``.

    >>> from foundseg.models import load_sd
    >>> from foundseg.data import sample
    >>> errors = denoising_errors(load_sd("shapes-sd"), sample("test", 0).image, ["a circle", "a crescent"])
    >>> errors.shape, errors.dtype
    (torch.Size([2]), torch.float32)
    """
    if not prompts:
        raise ValueError("prompts must hold at least one prompt")
    n_train = pipe.scheduler.config.num_train_timesteps
    if not timesteps or any(not 0 <= t < n_train for t in timesteps):
        raise ValueError(f"timesteps must be integers in [0, {n_train}), got {timesteps!r}")
    latents = encode_image(pipe, image).expand(len(timesteps), -1, -1, -1)
    noise = torch.randn(latents.shape, generator=noise_generator(seed)).to(latents.device, latents.dtype)
    noisy = noised(pipe, latents, noise, torch.tensor(list(timesteps), device=latents.device))
    target = noise - latents if is_mmdit(pipe) else noise
    errors = [((denoiser_pass(pipe, noisy, list(timesteps), prompt).sample.float() - target.float()) ** 2).mean()
              for prompt in prompts]
    return torch.stack(errors)


def diffusion_classify(pipe, image, class_names, template: str = "a {}", **kwargs) -> int:
    """Index of the class whose prompt gives the lowest denoising error.

    ``class_names`` fill ``template``; ``kwargs`` (``timesteps``, ``seed``) go to :func:`denoising_errors`.

    >>> from foundseg.models import load_sd
    >>> from foundseg.data import sample
    >>> s = sample("test", 0)
    >>> s.caption
    'an orange crescent'
    >>> diffusion_classify(load_sd("shapes-sd"), s.image, ["circle", "square", "crescent"])
    2
    """
    return int(denoising_errors(pipe, image, [template.format(c) for c in class_names], **kwargs).argmin())
