"""Time and peak GPU memory of each chapter's full-scale work, on CLIP ViT-B/16 and Stable Diffusion 1.5 built
from their real configs with random weights (same shapes, same cost as the real checkpoints):

- ch. 2: Grad-CAM of 4 classes and dense CLIP on a 224 px image (float32), and foundseg's Grad-CAM vs a naive
  per-class Grad-CAM with 10 classes (the ratio of benchmarks/gradcam_speed.py);
- ch. 3: a 50-step 512 px generation with last-step capture of a word vs the plain pipeline (float16), every-step
  capture, and re-noising a 512 px image once;
- ch. 4: ODISE features of a batch of 8 images at 256 px (float16, one timestep, implicit-captioner text slot);
- ch. 5: the diffusion classifier on one 256 px image, 8 classes x 5 timesteps.

    python benchmarks/full_scale_gpu.py            # needs a CUDA GPU
"""
import json
import sys
import time

import numpy as np
import torch

from foundseg.clip import dense_clip, gradcam
from foundseg.diffusion import EVERY_STEP, OdiseConfig, denoising_errors, generate, odise_features, renoise_attention
from foundseg.models import CLIP, load_clip, load_sd
from foundseg.testing import random_clip, random_sd

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from gradcam_speed import NAMES, naive_gradcam  # noqa: E402

PROMPT, WORD = "a horse on the grass", ["horse"]


def measure(fn, repeats=3):
    """Mean seconds per call after one warm-up, and peak memory (GiB) of the calls."""
    fn()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats, torch.cuda.max_memory_allocated() / 2**30


def build_clip():
    with torch.device("cuda"):
        return CLIP(random_clip().eval(), load_clip("shapes-clip").tokenizer)


def build_sd(dtype=torch.float16):
    with torch.device("cuda"):
        pipe = random_sd(load_sd("shapes-sd").tokenizer).to("cuda", dtype)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def main():
    rows = []

    def row(chapter, what, seconds, gib):
        rows.append(dict(chapter=chapter, what=what, seconds=round(seconds, 3), peak_gib=round(gib, 2)))
        print(f"{chapter:<6}{what:<64}{seconds:>9.3f} s{gib:>8.2f} GiB", flush=True)

    print(torch.cuda.get_device_name(), f"torch {torch.__version__}")
    rng = np.random.default_rng(0)
    clip = build_clip()
    image = rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)
    row("ch2", "Grad-CAM, 4 classes, 224 px", *measure(lambda: gradcam(clip, image, NAMES[:4])))
    row("ch2", "dense CLIP, 4 classes, 224 px", *measure(lambda: dense_clip(clip, image, NAMES[:4])))
    ours = measure(lambda: gradcam(clip, image, NAMES))
    naive = measure(lambda: naive_gradcam(clip, image, NAMES))
    row("ch2", "Grad-CAM, 10 classes, 224 px (foundseg)", *ours)
    row("ch2", f"Grad-CAM, 10 classes, 224 px (naive; foundseg = {ours[0] / naive[0]:.2f}x)", *naive)
    clip = None  # free the GPU for Stable Diffusion
    torch.cuda.empty_cache()

    pipe = build_sd()
    plain = measure(lambda: pipe(PROMPT, num_inference_steps=50, output_type="latent",
                                 generator=torch.Generator().manual_seed(0)), repeats=2)
    row("ch3", "50-step 512 px generation, plain pipeline (fp16)", *plain)
    last = measure(lambda: generate(pipe, PROMPT, WORD, num_inference_steps=50), repeats=2)
    row("ch3", f"... with last-step capture of one word ({last[0] / plain[0]:.2f}x)", *last)
    row("ch3", "... with every-step capture, per-step trajectory", *measure(
        lambda: generate(pipe, PROMPT, WORD, EVERY_STEP, num_inference_steps=50), repeats=1))
    photo = rng.integers(0, 256, (512, 512, 3), dtype=np.uint8)
    row("ch3", "re-noise a 512 px image once (t = 200), all layers", *measure(
        lambda: renoise_attention(pipe, photo, PROMPT, WORD, t=200)))

    batch = torch.rand(8, 3, 256, 256, device="cuda", dtype=torch.float16) * 2 - 1
    config = OdiseConfig(text="null")
    with torch.no_grad():
        row("ch4", "ODISE features, batch of 8 at 256 px (UNet + VAE)", *measure(lambda: odise_features(pipe, batch, config)))
    small = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    prompts = [f"a {n}" for n in NAMES[:8]]
    row("ch5", "diffusion classifier, 8 classes x 5 timesteps, 256 px", *measure(
        lambda: denoising_errors(pipe, small, prompts)))
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
