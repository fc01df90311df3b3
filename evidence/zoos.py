"""The evidence behind the book's conclusions: control models and independently trained zoos.

    python evidence/zoos.py            # train what is missing, then measure; writes book/data/evidence.json

Models go to ``.foundseg-zoos/`` (not shipped): ``seed-1/`` and ``seed-2/`` are whole zoos trained from scratch
by ``foundseg zoo train`` with other seeds (seed 0 is the shipped zoo); ``control-no-region/shapes-clip`` and
``control-no-word/shapes-clip`` are shapes-clip trained by the same code and budget without the region loss
(at the final tokens and at the tokens entering the last block) or without the word loss.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / ".foundseg-zoos"
CONTROLS = {
    "control-no-region": dict(region_weight=0.0, inner_region_weight=0.0),
    "control-no-word": dict(word_weight=0.0),
}
SEEDS = (1, 2)
OUT = ROOT / "book" / "data" / "evidence.json"
ABLATION_RESULTS = ROOT / "book" / "data" / "ablation"  # chapter 4's results, one file per zoo


def train_missing(threads: int, progress: bool = False) -> None:
    """Train every control and zoo not yet in ``MODELS``, one at a time (each is written whole or not at all),
    on ``threads`` CPU threads."""
    import torch

    from foundseg.training import train_clip, train_zoo

    torch.set_num_threads(threads)
    for name, overrides in CONTROLS.items():
        target = MODELS / name / "shapes-clip"
        if not (target / "train_log.json").exists():
            print(f"training {name}", flush=True)
            tmp = MODELS / name / ".training"
            shutil.rmtree(tmp, ignore_errors=True)
            log = train_clip(tmp, 0, progress, **overrides)
            (tmp / "train_log.json").write_text(json.dumps(log))
            tmp.rename(target)
    for seed in SEEDS:
        zoo = MODELS / f"seed-{seed}"
        if not all((zoo / m / "train_log.json").exists() for m in ("shapes-clip", "shapes-sd")):
            print(f"training zoo seed {seed}", flush=True)
            train_zoo(zoo, seed=seed, progress=progress, threads=threads, force=True)  # replaces a half-written one


def measure_clip(clip_dir, n_images: int = 500) -> dict:
    """Chapter 2's numbers for one shapes-clip: zero-shot top-1 and class-presence AUC (the model card's
    measures, on the first 1000 test images), Grad-CAM and dense-CLIP mIoU on the chapter's first ``n_images``
    test images at 64 px, with seen and unseen classes, and Grad-CAM mIoU at each block on the chapter's 200
    "which layer" images."""
    from foundseg.data import ShapesDataset
    from foundseg.eval import dense_clip_method, evaluate, gradcam_method
    from foundseg.eval.zoo import clip_metrics
    from foundseg.models import load_clip

    clip = load_clip(str(clip_dir))
    card = clip_metrics(clip, 1000)
    data = ShapesDataset("test", n_images, size=clip.model.config.vision_config.image_size)
    out = {"zero_shot_top1": card["zero_shot_top1"], "presence_auc": card["presence_auc_multi"]}
    for name, method in (("gradcam", gradcam_method(clip)), ("dense_clip", dense_clip_method(clip))):
        result = evaluate(method, data, progress=False)
        out.update({f"{name}_miou": result["mIoU"], f"{name}_seen": result["seen"], f"{name}_unseen": result["unseen"]})
    layers = ShapesDataset("test", 200, size=data.size)  # chapter 2's "which layer" images
    out["gradcam_by_layer"] = [evaluate(gradcam_method(clip, layer=k), layers, progress=False)["mIoU"]
                               for k in range(len(clip.model.vision_model.encoder.layers))]
    return out


def measure_controls() -> dict:
    """:func:`measure_clip` for the shipped shapes-clip and each control, by name."""
    from foundseg.models.loader import ZOO_DIR

    models = {"shipped (region and word losses)": ZOO_DIR / "shapes-clip"}
    models.update({name: MODELS / name / "shapes-clip" for name in CONTROLS})
    return {name: measure_clip(path) for name, path in models.items() if path.exists()}


def measure_zoo(zoo_dir) -> dict:
    """Every conclusion of chapters 2–5, measured on the zoo in ``zoo_dir`` with the chapters' own functions and
    the shapes scale's counts (the chapters' settings)."""
    import numpy as np

    from foundseg.clip import ENSEMBLE_TEMPLATES, SHAPES_BACKGROUND
    from foundseg.data import SYNONYMS, ShapesDataset, sample
    from foundseg.data.shapes import article
    from foundseg.diffusion import output_layers
    from foundseg.eval import (cluster_quality, denoise_curve, disc_method, evaluate, generated_scenes, gradcam_method,
                               last_step_scores, renoise_curve)
    from foundseg.eval.ablation import NEW_ROWS, PAPER_ROWS, ablation_setting, run_ablation
    from foundseg.eval.classification import zero_shot_accuracy
    from foundseg.models import current_scale, load_clip, load_sd

    S = current_scale()
    clip, pipe = load_clip(str(Path(zoo_dir) / "shapes-clip")), load_sd(str(Path(zoo_dir) / "shapes-sd"))
    test = ShapesDataset("test", S.count("cam_images"), size=S.clip_size)
    variants = {"single template": {}, "background prompts": {"background": SHAPES_BACKGROUND},
                "template ensemble": {"templates": ENSEMBLE_TEMPLATES},
                "ensemble + synonyms": {"templates": ENSEMBLE_TEMPLATES, "synonyms": SYNONYMS},
                "bare class name": {"templates": ["{}"]}}
    out = {"gradcam": {name: evaluate(gradcam_method(clip, **kw), test, progress=False)["mIoU"]
                       for name, kw in variants.items()},
           "disc": evaluate(disc_method(), test, progress=False)["mIoU"]}
    layers = ShapesDataset("test", S.count("layer_images"), size=S.clip_size)
    n_layers = len(clip.model.vision_model.encoder.layers)
    out["by_layer"] = [evaluate(gradcam_method(clip, layer=k), layers, progress=False)["mIoU"] for k in range(n_layers)]
    scenes = generated_scenes(pipe, S.count("scenes"), steps=S.count("gen_steps"))
    out["last_step"] = last_step_scores(scenes)["all"]
    ts = (None, 0, 200, 800)
    items = [(s.image, s.prompt, s.word, s.mask) for s in scenes]
    out["renoise_generated"] = {str(t): v for t, v in renoise_curve(pipe, items, ts)["all"].items()}
    images = [sample("test", i, size=S.sd_size) for i in range(S.count("scenes"))]
    first = [(x.objects[0].shape, x.mask == x.objects[0].class_id) for x in images]
    caption = [(x.image, x.caption, w, m) for x, (w, m) in zip(images, first)]
    word = [(x.image, f"{article(w)} {w}", w, m) for x, (w, m) in zip(images, first)]
    out["renoise_test_caption"] = {str(t): v for t, v in renoise_curve(pipe, caption, ts)["all"].items()}
    out["renoise_test_word"] = {str(t): v for t, v in renoise_curve(pipe, word, ts)["all"].items()}
    out["denoise_generated"] = denoise_curve(pipe, items, 0.5, S.count("denoise_steps"))
    out["denoise_test"] = denoise_curve(pipe, caption, 0.5, S.count("denoise_steps"))
    clustered, n_out = images[:S.count("cluster_images")], len(output_layers(pipe.unet))
    out["kmeans_oracle_k"] = {str(t): cluster_quality(pipe, clustered, t, n_out)["miou"] for t in ts}
    out["kmeans_auto_k"] = {str(t): cluster_quality(pipe, clustered, t, n_out, k="auto")["miou"] for t in ts}
    ablation = run_ablation(pipe, clip, {**PAPER_ROWS, **NEW_ROWS}, progress=False, results_dir=ABLATION_RESULTS,
                            **ablation_setting(S))
    out["ablation_all"] = {row: float(np.mean(v["all"])) for row, v in ablation.items()}
    out["ablation_all_std"] = {row: float(np.std(v["all"])) for row, v in ablation.items()}
    out["classifier_top1"] = zero_shot_accuracy(pipe, clip, S.count("classifier_images"), S.sd_size, S.clip_size,
                                                S.feature_batch)["top1"]
    return out


def conclusions(z: dict) -> dict:
    """Each chapter's conclusion as true or false on one zoo's :func:`measure_zoo` numbers."""
    import numpy as np

    g, a = z["gradcam"], z["ablation_all"]
    ic, null = "ODISE (implicit captioner, UNet, VAE, noise)", "w/o IC (null text)"
    return {
        "ch2: Grad-CAM beats the centred disc by 0.05 mIoU or more": g["single template"] >= z["disc"] + 0.05,
        "ch2: no prompt variant beats the single template": max(v for k, v in g.items() if k != "single template")
        <= g["single template"],
        "ch2: the last block is the best layer for the CAM": int(np.argmax(z["by_layer"])) == len(z["by_layer"]) - 1,
        "ch3: re-noised once at t = 0, the map keeps the last step's IoU (within 0.03)":
            abs(z["renoise_generated"]["0"] - z["last_step"]) <= 0.03,
        "ch3: the map degrades with the noise (t = 800 below t = 0 by 0.1 or more)":
            z["renoise_generated"]["800"] <= z["renoise_generated"]["0"] - 0.1,
        "ch3: denoising again sharpens generated images' maps (last step above first)":
            z["denoise_generated"][max(z["denoise_generated"])] > z["denoise_generated"][1],
        "ch3: k-means on the features degrades with the noise (t = 800 below t = 0)":
            z["kmeans_oracle_k"]["800"] < z["kmeans_oracle_k"]["0"],
        "ch4: the implicit captioner adds more than 0.02 mIoU over the null text": a[ic] - a[null] > 0.02,
        "ch4: the CLIP-only head beats full ODISE": a["SAN-like: CLIP features only"] > a[ic],
        "ch5: CLIP zero-shot classifies at least as well as the diffusion classifier":
            z["classifier_top1"]["clip"] >= z["classifier_top1"]["diffusion"],
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-only", action="store_true", help="train the missing models, measure nothing")
    parser.add_argument("--measure-only", action="store_true", help="measure the models trained so far")
    parser.add_argument("--controls-only", action="store_true", help="measure the controls, not the zoos")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for training (1 when the machine is "
                        "shared: two threads collapse when another process keeps a core busy)")
    args = parser.parse_args(argv)
    if not args.measure_only:
        train_missing(args.threads)
    if args.train_only:
        return 0
    from foundseg.models import apply_thread_policy

    apply_thread_policy()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    from foundseg.models.loader import ZOO_DIR

    results = json.loads(OUT.read_text()) if OUT.exists() else {}
    results["controls"] = measure_controls()
    zoos = {"seed 0 (shipped)": ZOO_DIR, **{f"seed {s}": MODELS / f"seed-{s}" for s in SEEDS}}
    measured = results.setdefault("zoos", {})
    for name, path in zoos.items():
        if not args.controls_only and name not in measured and (path / "shapes-sd" / "train_log.json").exists():
            print(f"measuring zoo {name}", flush=True)
            measured[name] = measure_zoo(path)
            OUT.write_text(json.dumps(results, indent=1) + "\n")  # kept as each zoo is done
    results["conclusions"] = {name: conclusions(z) for name, z in measured.items()}
    OUT.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
