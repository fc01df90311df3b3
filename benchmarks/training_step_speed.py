"""One shapes-sd training step (the zoo's batch, latent size and text length), side by side.

The UNet: float32 eager (as ``zoo train`` runs) vs bfloat16 autocast vs ``torch.compile`` vs channels-last
memory format — whether the zoo's CPU budget could buy more steps from precision or compilation — and vs its
earlier four narrower heads at every level, vs no self-attention at its first level (16×16 latents), where
attention costs most, and vs 8×8×16 latents (an f = 4 VAE with 16 latent channels) instead of 16×16×4.
The VAE (its training loss as ``zoo train`` computes it): as shipped vs without attention over the latents in
its mid blocks.

    python benchmarks/training_step_speed.py
"""
import statistics
import time

import torch
import torch.nn.functional as F

from foundseg.data.vocab import MODEL_MAX_LENGTH
from foundseg.training.clip import SETTINGS as CLIP_SETTINGS
from foundseg.training.sd import UNET_SETTINGS, VAE_SETTINGS, build_unet, build_vae, latent_size, vae_losses

BATCH, TOKENS, TEXT_WIDTH = UNET_SETTINGS["batch"], MODEL_MAX_LENGTH, CLIP_SETTINGS["width"]
LATENT = latent_size(VAE_SETTINGS["size"], VAE_SETTINGS["channels"])
CHANNELS = VAE_SETTINGS["latent_channels"]
UNET_MODES = ("float32", "bfloat16 autocast", "torch.compile", "channels_last", "4 heads per level",
              "no 16×16 self-attention", "8×8×16 latents")
VAE_MODES = ("VAE", "VAE without mid-block attention")


def unet_stepper(mode: str):
    """A function that runs one UNet training step of ``mode`` and returns its seconds."""
    torch.manual_seed(0)
    settings = UNET_SETTINGS
    if mode == "4 heads per level":
        settings = dict(UNET_SETTINGS, heads=4)
    if mode == "no 16×16 self-attention":
        settings = dict(UNET_SETTINGS, only_cross_attention=(True,) + (False,) * (len(UNET_SETTINGS["channels"]) - 1))
    latent, channels = (LATENT // 2, 4 * CHANNELS) if mode == "8×8×16 latents" else (LATENT, CHANNELS)
    unet = build_unet(latent, channels, TEXT_WIDTH, settings)
    if mode == "channels_last":
        unet = unet.to(memory_format=torch.channels_last)
    model = torch.compile(unet) if mode == "torch.compile" else unet
    opt = torch.optim.AdamW(unet.parameters(), lr=UNET_SETTINGS["lr"])
    x = torch.randn(BATCH, channels, latent, latent)
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


def vae_stepper(mode: str):
    """A function that runs one VAE training step of ``mode`` (the zoo's VAE batch) and returns its seconds."""
    torch.manual_seed(0)
    vae = build_vae(dict(VAE_SETTINGS, mid_attention=mode == "VAE"))
    opt = torch.optim.AdamW(vae.parameters(), lr=VAE_SETTINGS["lr"])
    x = torch.rand(VAE_SETTINGS["batch"], 3, VAE_SETTINGS["size"], VAE_SETTINGS["size"]) * 2 - 1
    gen = torch.Generator().manual_seed(0)

    def step() -> float:
        start = time.perf_counter()
        rec, kl = vae_losses(vae, x, gen)
        loss = rec + VAE_SETTINGS["kl_weight"] * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return time.perf_counter() - start
    return step


def compare(steps: dict, rounds: int, warmup: int) -> None:
    """Run ``steps`` interleaved round by round, so that a CPU whose speed drifts during the run slows every
    mode alike; print each one's median over ``rounds`` after ``warmup`` as a ratio to the first."""
    times = {mode: [] for mode in steps}
    for _ in range(warmup + rounds):
        for mode, step in steps.items():
            times[mode].append(step())
    base_mode = next(iter(steps))
    base = statistics.median(times[base_mode][warmup:])
    for mode, seconds in times.items():
        per_step = statistics.median(seconds[warmup:])
        print(f"{mode:>32}: {per_step:.3f} s/step ({per_step / base:.2f}× {base_mode}; first step {seconds[0]:.1f} s)")


def main(rounds: int = 10, warmup: int = 2):
    torch.set_num_threads(2)
    print(f"shapes-sd UNet {UNET_SETTINGS['channels']}, batch {BATCH}, {LATENT}×{LATENT}×{CHANNELS} latents, "
          f"2 threads, {rounds} interleaved rounds")
    compare({mode: unet_stepper(mode) for mode in UNET_MODES}, rounds, warmup)
    print(f"shapes-sd VAE {VAE_SETTINGS['channels']}, batch {VAE_SETTINGS['batch']}, {VAE_SETTINGS['size']} px")
    compare({mode: vae_stepper(mode) for mode in VAE_MODES}, rounds, warmup)


if __name__ == "__main__":
    main()
