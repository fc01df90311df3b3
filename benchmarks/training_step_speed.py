"""One shapes-sd UNet training step (the zoo's batch, latent size and text length), side by side: float32 eager (as
``zoo train`` runs) vs bfloat16 autocast vs ``torch.compile`` vs channels-last memory format — whether the
zoo's CPU training budget could buy more steps from precision or compilation — and vs the same UNet without
self-attention at its first level (16×16 latents), where attention costs most.

    python benchmarks/training_step_speed.py
"""
import time

import torch
import torch.nn.functional as F

from foundseg.data.vocab import MODEL_MAX_LENGTH
from foundseg.training.clip import SETTINGS as CLIP_SETTINGS
from foundseg.training.sd import UNET_SETTINGS, VAE_SETTINGS, build_unet, latent_size

BATCH, TOKENS, TEXT_WIDTH = UNET_SETTINGS["batch"], MODEL_MAX_LENGTH, CLIP_SETTINGS["width"]
LATENT = latent_size(VAE_SETTINGS["size"], VAE_SETTINGS["channels"])
CHANNELS = VAE_SETTINGS["latent_channels"]
MODES = ("float32", "bfloat16 autocast", "torch.compile", "channels_last", "no 16×16 self-attention")


def step_seconds(mode: str, repeats: int = 6, warmup: int = 2) -> tuple[float, float]:
    """(median seconds per step after ``warmup`` steps, seconds of the first step) for ``mode``."""
    torch.manual_seed(0)
    settings = UNET_SETTINGS
    if mode == "no 16×16 self-attention":
        settings = dict(UNET_SETTINGS, only_cross_attention=(True,) + (False,) * (len(UNET_SETTINGS["channels"]) - 1))
    unet = build_unet(LATENT, CHANNELS, TEXT_WIDTH, settings)
    if mode == "channels_last":
        unet = unet.to(memory_format=torch.channels_last)
    model = torch.compile(unet) if mode == "torch.compile" else unet
    opt = torch.optim.AdamW(unet.parameters(), lr=UNET_SETTINGS["lr"])
    x = torch.randn(BATCH, CHANNELS, LATENT, LATENT)
    if mode == "channels_last":
        x = x.to(memory_format=torch.channels_last)
    text = torch.randn(BATCH, TOKENS, TEXT_WIDTH)
    t = torch.randint(0, 1000, (BATCH,))
    times = []
    for _ in range(warmup + repeats):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mode == "bfloat16 autocast"):
            pred = model(x, t, encoder_hidden_states=text).sample
        loss = F.mse_loss(pred.float(), x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - start)
    return sorted(times[warmup:])[repeats // 2], times[0]


def main():
    torch.set_num_threads(2)
    base = None
    print(f"shapes-sd UNet {UNET_SETTINGS['channels']}, batch {BATCH}, {LATENT}×{LATENT} latents, 2 threads")
    for mode in MODES:
        per_step, first = step_seconds(mode)
        base = base or per_step
        print(f"{mode:>30}: {per_step:.3f} s/step ({per_step / base:.2f}× float32; first step {first:.1f} s)", flush=True)


if __name__ == "__main__":
    main()
