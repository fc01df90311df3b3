"""Train variants of the zoo's settings side by side and print their behaviour bars: how shapes-clip's and
shapes-sd's settings are chosen. SD variants train on the shipped shapes-clip's text tower.

Each variant runs in its own process; on a CPU use ``--jobs 1``. On an H100 a UNet step took 0.09 s (about
8× faster than two CPU cores; 3,600 steps ≈ 5.5 min) and one generation 0.4–0.6 s, but five UNet-only
variants run at once had not finished after 7 minutes: run a few at a time. Results land in ``--out`` as one
JSON per variant, so an interrupted sweep keeps what finished.

    python benchmarks/zoo_sweep.py --out sweep/ --only "sd shipped" "sd 4 heads per level"
"""
import argparse
import json
import multiprocessing as mp
import tempfile
import time
from pathlib import Path

LEVEL_1 = (True, False, False)  # no self-attention at the UNet's first level (16x16 latents), its costliest attention
F4_VAE = {"channels": (32, 64, 64), "latent_channels": 16, "mid_attention": False, "lr": 2e-3, "steps": 1800}
VARIANTS = {
    "sd shipped": {},
    "sd shipped seed 1": {"seed": 1},
    "sd f=4 VAE, 8x8x16 latents": {"vae": F4_VAE},
    "sd VAE without mid-block attention": {"vae": {"mid_attention": False}},
    "sd 3000 unet steps": {"unet": {"steps": 3000}},
    "sd 4 heads per level": {"unet": {"heads": 4}},
    "sd no 16x16 self-attention": {"unet": {"only_cross_attention": LEVEL_1}},
    "sd no 16x16 self-attention batch 32 4200 steps": {"unet": {"only_cross_attention": LEVEL_1, "batch": 32,
                                                                "steps": 4200}},
    "sd no 16x16 self-attention batch 32 4200 steps seed 1": {"seed": 1, "unet": {"only_cross_attention": LEVEL_1,
                                                                                  "batch": 32, "steps": 4200}},
    "sd no 16x16 self-attention 2100 steps": {"unet": {"only_cross_attention": LEVEL_1, "steps": 2100}},
    "sd batch 32 3200 steps": {"unet": {"batch": 32, "steps": 3200}},
    "clip shipped": {"clip": {}},
    "clip 2000 steps": {"clip": {"steps": 2000}},
    "clip 3000 steps": {"clip": {"steps": 3000}},
    "clip colour 0.1": {"clip": {"colour_prob": 0.1}},
    "clip lr 1e-3": {"clip": {"lr": 1e-3}},
    "clip patch-mean pooling": {"clip": {"pooling": "patch_mean"}},
    "clip no inner region loss": {"clip": {"inner_region_weight": 0.0}},
    "clip centred 3-5 windows": {"clip": {"window_sizes": (3, 5), "window_anchor": "centroid"}},
    "clip lr 4e-3": {"clip": {"lr": 4e-3}},
}


def run_variant(name: str, spec: dict, device: str, out: str) -> None:
    import torch

    from foundseg.models import load_clip
    from foundseg.models.loader import resolve
    from foundseg.eval.zoo import clip_metrics, sd_metrics, vae_shape_rate
    from foundseg.training.clip import train_clip
    from foundseg.training.sd import train_pipeline

    torch.set_num_threads(1)
    seed = spec.get("seed", 0)
    start = time.perf_counter()
    if "clip" in spec:
        with tempfile.TemporaryDirectory() as tmp:
            log = train_clip(tmp, seed, False, device, **spec["clip"])
            result = clip_metrics(load_clip(tmp, device=device), n_images=500)
    else:
        pipe, log = train_pipeline(resolve("shapes-clip", "clip"), seed, False, spec.get("vae"), spec.get("unet"),
                                   device)
        pipe.set_progress_bar_config(disable=True)
        result = dict(sd_metrics(pipe), vae_shape_rate=vae_shape_rate(pipe.vae, 500))
    result.update(variant=name, spec=spec, seconds=round(time.perf_counter() - start, 1), device=device)
    (Path(out) / f"{name.replace(' ', '_').replace('/', '-')}.json").write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if not isinstance(v, dict)}), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--out", required=True)
    parser.add_argument("--only", nargs="*", help="variant names to run (default: all)")
    parser.add_argument("--deadline", type=float, default=None, help="seconds after which unfinished variants are dropped")
    args = parser.parse_args()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    names = args.only or list(VARIANTS)
    ctx = mp.get_context("spawn")
    with ctx.Pool(args.jobs, maxtasksperchild=1) as pool:
        jobs = [pool.apply_async(run_variant, (n, VARIANTS[n], args.device, args.out)) for n in names]
        stop = time.monotonic() + (args.deadline or float("inf"))
        for name, job in zip(names, jobs):
            try:
                job.get(timeout=max(1.0, stop - time.monotonic()))
            except mp.TimeoutError:
                print(f"{name}: unfinished at the deadline", flush=True)
            except Exception as exc:  # one failed variant must not lose the others
                print(f"{name}: failed: {exc!r}", flush=True)


if __name__ == "__main__":
    main()
