"""The pipeline's denoiser behind one call: a UNet with cross-attention (Stable Diffusion 1.x / 2.x) or a
multi-modal diffusion transformer with joint attention (Stable Diffusion 3).

The two take their inputs under different names (``sample`` against ``hidden_states``) and SD3's also reads
the pooled text embedding; :func:`denoiser_pass` hides that, so re-noising, feature extraction and the
recorders read both kinds the same way.
"""
from __future__ import annotations

import torch


def is_mmdit(pipe) -> bool:
    """Whether ``pipe`` denoises with a diffusion transformer (``pipe.transformer``) rather than a UNet.

    >>> from foundseg.models import load_sd
    >>> is_mmdit(load_sd("shapes-sd")), is_mmdit(load_sd("shapes-dit"))
    (False, True)
    """
    return getattr(pipe, "transformer", None) is not None


def denoiser(pipe) -> torch.nn.Module:
    """The pipeline's denoising network: ``pipe.transformer`` or ``pipe.unet``."""
    return pipe.transformer if is_mmdit(pipe) else pipe.unet


def check_single_stream_text(pipe) -> None:
    """Refuse a pipeline whose text the capture functions cannot place: they read SD 1.x / 2.x and SD3, whose
    first text tokens are the CLIP tokenizer's (``pipe.tokenizer``); FLUX's text is T5's alone."""
    if is_mmdit(pipe) and not hasattr(pipe, "tokenizer_3"):
        raise ValueError(f"pipe ({type(pipe).__name__}) is not a Stable Diffusion 1.x/2.x/3 pipeline; for FLUX use "
                         "JointAttentionRecorder or ConceptAttention on pipe.transformer directly")


def text_condition(pipe, prompt: str, device) -> dict:
    """The denoiser's text inputs for ``prompt`` (no classifier-free guidance), by keyword."""
    check_single_stream_text(pipe)
    if is_mmdit(pipe):
        text, _, pooled, _ = pipe.encode_prompt(prompt, None, None, device, 1, False)
        return dict(encoder_hidden_states=text, pooled_projections=pooled)
    return dict(encoder_hidden_states=pipe.encode_prompt(prompt, device, 1, False)[0])


@torch.no_grad()
def denoiser_pass(pipe, latents: torch.Tensor, t: int | list[int] | None, prompt: str = ""):
    """One pass of the denoiser over ``latents`` at timestep ``t`` (``None``: 0; or one timestep per latent),
    conditioned on ``prompt``.

    >>> import torch
    >>> from foundseg.models import load_sd
    >>> denoiser_pass(load_sd("shapes-dit"), torch.zeros(1, 4, 16, 16), 500, "a red circle").sample.shape
    torch.Size([1, 4, 16, 16])
    """
    net = denoiser(pipe)
    steps = t if isinstance(t, (list, tuple)) else [0 if t is None else t]
    timestep = torch.tensor([int(step) for step in steps], device=latents.device)
    condition = text_condition(pipe, prompt, latents.device)
    condition = {k: v.expand(len(latents), *v.shape[1:]) for k, v in condition.items()}  # one prompt, every latent
    if is_mmdit(pipe):
        return net(hidden_states=latents, timestep=timestep.to(latents.dtype), **condition)
    return net(latents, timestep, **condition)
