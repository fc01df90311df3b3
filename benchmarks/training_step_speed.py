"""One shapes-sd UNet training step (the zoo's batch, latent size and text length), side by side: float32 eager (as
``zoo train`` runs) vs bfloat16 autocast vs ``torch.compile`` vs channels-last memory format — whether the
zoo's CPU training budget could buy more steps from precision or compilation — and vs the same UNet with four
narrower heads at every level (its earlier setting) or without self-attention at its first level (16×16
latents), where attention costs most.

    python benchmarks/training_step_speed.py
"""
import statistics
import time

import torch
import torch.nn.functional as F

from foundseg.data.vocab import MODEL_MAX_LENGTH
from foundseg.training.clip import SETTINGS as CLIP_SETTINGS
from foundseg.training.sd import UNET_SETTINGS, VAE_SETTINGS, build_unet, latent_size

BATCH, TOKENS, TEXT_WIDTH = UNET_SETTINGS["batch"], MODEL_MAX_LENGTH, CLIP_SETTINGS["width"]
LATENT = latent_size(VAE_SETTINGS["size"], VAE_SETTINGS["channels"])
CHANNELS = VAE_SETTINGS["latent_channels"]
MODES = ("float32", "bfloat16 autocast", "torch.compile", "channels_last", "4 heads per level",
         "no 16×16 self-attention")


def stepper(mode: str):
    """A function that runs one training step of ``mode`` and returns its seconds."""
    torch.manual_seed(0)
    settings = UNET_SETTINGS
    if mode == "4 heads per level":
        settings = dict(UNET_SETTINGS, heads=4)
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

    def step() -> float:
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mode == "bfloat16 autocast"):
            pred = model(x, t, encoder_hidden_states=text).sample
        loss = F.mse_loss(pred.float(), x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return time.perf_counter() - start
    return step


def main(rounds: int = 10, warmup: int = 2):
    """Steps of every mode interleaved round by round, so that a CPU whose speed drifts during the run slows
    every mode alike; each mode's time is the median of its ``rounds`` steps after ``warmup``."""
    torch.set_num_threads(2)
    print(f"shapes-sd UNet {UNET_SETTINGS['channels']}, batch {BATCH}, {LATENT}×{LATENT} latents, 2 threads, "
          f"{rounds} interleaved rounds")
    steps = {mode: stepper(mode) for mode in MODES}
    times = {mode: [] for mode in MODES}
    for _ in range(warmup + rounds):
        for mode, step in steps.items():
            times[mode].append(step())
    base = statistics.median(times["float32"][warmup:])
    for mode, seconds in times.items():
        per_step = statistics.median(seconds[warmup:])
        print(f"{mode:>30}: {per_step:.3f} s/step ({per_step / base:.2f}× float32; first step {seconds[0]:.1f} s)")


if __name__ == "__main__":
    main()
