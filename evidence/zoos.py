"""The evidence behind the book's conclusions: control models and independently trained zoos.

    python evidence/zoos.py            # train what is missing, then measure; writes book/data/evidence.json
    python evidence/zoos.py --measure-only --seeds 0 & python evidence/zoos.py --measure-only --no-controls --seeds 1
                                       # two measurements at once, one per core
    python evidence/zoos.py --train-only --device cuda   # train on a GPU (a zoo in minutes instead of hours)

Models go to ``.foundseg-zoos/`` (not shipped): ``seed-1/`` and ``seed-2/`` are whole zoos trained from scratch
by the zoo's own training code (what ``foundseg zoo train`` runs) with other seeds (seed 0 is the shipped
zoo); ``control-no-region/shapes-clip`` and ``control-no-word/shapes-clip`` are shapes-clip trained by the same
code and budget without the region loss (at the final tokens and at the tokens entering the last block) or
without the word loss.
"""
from __future__ import annotations

import argparse
import fcntl
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
DIT_SEEDS = (1, 2)
"""shapes-dit's other training seeds, each trained on the shipped zoo's shapes-clip and autoencoder (so their
spread is the transformer's training alone)."""
OUT = ROOT / "book" / "data" / "evidence.json"
ABLATION_RESULTS = ROOT / "book" / "data" / "ablation"  # chapter 4's results, one file per zoo


def _train_into(target: Path, train, device: str) -> None:
    """Run ``train(directory)`` into a fresh temporary directory beside ``target``, then rename it into place with
    its log (which records ``device``): a model is there whole or not at all, and a stopped run resumes at the
    model it stopped in."""
    from foundseg.cache import move_into_place
    from foundseg.training.common import write_train_log

    tmp = target.with_name(f".{target.name}.training")
    shutil.rmtree(tmp, ignore_errors=True)
    write_train_log(tmp, train(tmp), device)
    move_into_place(tmp, target)


def train_missing(threads: int, seeds=SEEDS, controls: bool = True, device: str = "cpu", progress: bool = False,
                  dit_seeds=DIT_SEEDS):
    """Train every control (if ``controls``), every model of the zoos of ``seeds`` and the shapes-dit of each of
    ``dit_seeds`` that is neither in ``MODELS`` nor measured in ``OUT`` with the current protocol
    (:func:`up_to_date`), one model at a time, on ``device`` (``threads`` CPU threads). Each model is kept as
    soon as it is trained, so the zoo's two models may be trained in different runs."""
    import torch

    from foundseg.experiments.across_zoos import read_evidence
    from foundseg.models.loader import ZOO_DIR
    from foundseg.training import train_clip, train_dit, train_sd

    measured = read_evidence(OUT)
    torch.set_num_threads(threads)
    for name, overrides in CONTROLS.items() if controls else ():
        target = MODELS / name / "shapes-clip"
        if not up_to_date(measured, "controls", name) and not target.exists():
            print(f"training {name}", flush=True)
            target.parent.mkdir(parents=True, exist_ok=True)
            _train_into(target, lambda d: train_clip(d, 0, progress, device, **overrides), device)
    for seed in seeds:
        zoo = MODELS / f"seed-{seed}"
        if up_to_date(measured, "zoos", f"seed {seed}"):
            continue
        zoo.mkdir(parents=True, exist_ok=True)
        if not (zoo / "shapes-clip").exists():
            print(f"training zoo seed {seed}: shapes-clip", flush=True)
            _train_into(zoo / "shapes-clip", lambda d: train_clip(d, seed, progress, device), device)
        if not (zoo / "shapes-sd").exists():
            print(f"training zoo seed {seed}: shapes-sd", flush=True)
            _train_into(zoo / "shapes-sd", lambda d: train_sd(d, zoo / "shapes-clip", seed, progress, device=device),
                        device)
    for seed in dit_seeds:
        target = MODELS / f"dit-seed-{seed}" / "shapes-dit"
        if not up_to_date(measured, "dit", f"seed {seed}") and not target.exists():
            print(f"training shapes-dit seed {seed}", flush=True)
            target.parent.mkdir(parents=True, exist_ok=True)
            _train_into(target, lambda d: train_dit(d, ZOO_DIR / "shapes-clip", ZOO_DIR / "shapes-sd", seed, progress,
                                                    device), device)


CURRENT = {"controls": "odise_clip_only", "zoos": "odise_ablation", "dit": "renoised"}
"""The measurement each kind of model lacks when it was measured before the chapters' current protocol."""


def up_to_date(measured: dict, kind: str, name: str) -> bool:
    """Whether ``measured[kind][name]`` exists and holds the current protocol's measurements (:data:`CURRENT`)."""
    return CURRENT[kind] in measured.get(kind, {}).get(name, {})


def measure_clip(clip_dir, n_images: int = 500) -> dict:
    """Chapter 2's numbers for one shapes-clip: zero-shot top-1 and class-presence AUC (the model card's
    measures, on the first 1000 test images), Grad-CAM and dense-CLIP mIoU on the chapter's first ``n_images``
    test images at 64 px, with seen and unseen classes, and Grad-CAM mIoU at each block on the chapter's 200
    "which layer" images; chapter 4's CLIP-only row and its control at the diffusion rows' image size
    (``odise_clip_only``, with the shipped shapes-sd's pipeline)."""
    from foundseg.eval.zoo import clip_metrics
    from foundseg.experiments.clip_localizes import by_block, compare_methods
    from foundseg.experiments.odise_parts import CLIP_AT_DIFFUSION_SIZE, CLIP_ONLY
    from foundseg.models import load_clip, load_sd

    clip = load_clip(str(clip_dir))
    card = clip_metrics(clip, 1000)
    size = clip.model.config.vision_config.image_size
    methods = compare_methods(clip, n_images, size, progress=False)["methods"]
    out = {"zero_shot_top1": card["zero_shot_top1"], "presence_auc": card["presence_auc_multi"]}
    for name, key in (("gradcam", "single template"), ("dense_clip", "dense CLIP")):
        result = methods[key]
        out.update({f"{name}_miou": result["mIoU"], f"{name}_seen": result["seen"], f"{name}_unseen": result["unseen"]})
    out["gradcam_by_layer"] = list(by_block(clip, 200, size, progress=False)["by_block"].values())  # "which layer"
    out["odise_clip_only"] = measure_ablation(load_sd("shapes-sd"), clip, {CLIP_ONLY: CLIP_ONLY,
                                                                           CLIP_AT_DIFFUSION_SIZE: CLIP_AT_DIFFUSION_SIZE})
    return out


def control_models() -> dict:
    """The shipped shapes-clip and each control's, by name."""
    from foundseg.models.loader import ZOO_DIR

    return {"shipped (region and word losses)": ZOO_DIR / "shapes-clip",
            **{name: MODELS / name / "shapes-clip" for name in CONTROLS}}


def measure_chapters(zoo_dir) -> dict:
    """Every conclusion of chapters 2–5, measured on the zoo in ``zoo_dir`` with the chapters' own functions and
    the shapes scale's counts (the chapters' settings)."""
    from foundseg.experiments.survey import zero_shot_accuracy
    from foundseg.experiments.attention_noised_once import (ABSENT, CAPTION, WORD_ONLY, clustered, denoised, generated,
                                                            renoised)
    from foundseg.experiments.clip_localizes import PROMPT_VARIANTS, by_block, compare_methods
    from foundseg.config import current_scale
    from foundseg.models import load_clip, load_sd

    S = current_scale()
    clip, pipe = load_clip(str(Path(zoo_dir) / "shapes-clip")), load_sd(str(Path(zoo_dir) / "shapes-sd"))
    methods = compare_methods(clip, S.count("cam_images"), S.clip_size, progress=False)["methods"]
    out = {"gradcam": {name: methods[name]["mIoU"] for name in PROMPT_VARIANTS}, "disc": methods["centred disc"]["mIoU"],
           "by_layer": list(by_block(clip, S.count("layer_images"), S.clip_size, progress=False)["by_block"].values())}
    n, size = S.count("scenes"), S.sd_size
    gen = generated(pipe, n, S.count("gen_steps"))
    out["last_step"] = gen["last_step"]["all"]
    ts = (None, 0, 200, 800)
    curves = renoised(pipe, gen["scenes"], n, size, ts)
    for key, curve in (("renoise_generated", "generated"), ("renoise_test_caption", CAPTION),
                       ("renoise_test_word", WORD_ONLY), ("renoise_test_absent_word", ABSENT)):
        out[key] = {str(t): v for t, v in curves[curve]["all"].items()}
    out["test_disc"] = curves["centred disc"]
    again = denoised(pipe, gen["scenes"], n, size, 0.5, S.count("denoise_steps"))
    out["denoise_generated"], out["denoise_test"] = again["generated"], again[CAPTION]
    kmeans = clustered(pipe, S.count("cluster_images"), size, ts, layers=False)
    out["kmeans_oracle_k"] = {str(t): q["miou"] for t, q in kmeans["true k (oracle)"].items()}
    out["kmeans_auto_k"] = {str(t): q["miou"] for t, q in kmeans["k from features"].items()}
    out["odise_ablation"] = measure_ablation(pipe, clip)
    out["classifier_top1"] = zero_shot_accuracy(pipe, clip, S.count("classifier_images"), S.sd_size, S.clip_size,
                                                S.feature_batch)["top1"]
    return out


def measure_dit(dit_dir) -> dict:
    """Chapter 6's numbers for the shapes-dit in ``dit_dir`` beside the shipped shapes-sd, with the chapter's own
    functions and the shapes scale's counts: the diffusion classifier's top-1, each kind of map's last-step IoU
    (``generated``), the noised-once curves of each word (``renoised``), the re-noise-then-denoise curves
    (``denoised``) and k-means mIoU (``clustered``: t → [oracle k, k from the features])."""
    from foundseg.config import current_scale
    from foundseg.experiments import diffusion_transformers as ch6
    from foundseg.models import load_sd

    S = current_scale()
    unet_pipe = load_sd(S.sd_model)
    dit_pipe = load_sd(str(dit_dir), text_encoder_3=None, tokenizer_3=None)
    n, steps, size = S.count("scenes") // 2, S.count("gen_steps"), S.sd_size
    return {"classifier_top1": ch6.classifier_top1({"shapes-sd": unet_pipe, "shapes-dit": dit_pipe},
                                                   S.count("classifier_images") // 2, size),
            "generated": ch6.generated(unet_pipe, dit_pipe, n, steps, ch6.GUIDANCE, size),
            "renoised": ch6.renoised(unet_pipe, dit_pipe, n, size, ch6.NOISE_LEVELS),
            "denoised": ch6.denoised(unet_pipe, dit_pipe, n, size, ch6.STRENGTH, S.count("denoise_steps"),
                                     ch6.GUIDANCE),
            "clustered": ch6.clustered({"shapes-sd": unet_pipe, "shapes-dit": dit_pipe},
                                       S.count("cluster_images") // 2, size, ch6.CLUSTER_LEVELS)}


def measure_ablation(pipe, clip, rows=None) -> dict:
    """Chapter 4's ablation (its ``rows``, by default all of them) with the chapter's own function and setting
    (stored in the chapter's ``book/data/ablation/``): each row's and variant's mean mIoU over head seeds, with
    their spread, and the all-background floor."""
    from foundseg.experiments.odise_parts import NEW_ROWS, PAPER_ROWS, ablation_setting, run_ablation, summarise
    from foundseg.config import current_scale

    results = run_ablation(pipe, clip, rows or {**PAPER_ROWS, **NEW_ROWS}, progress=False, results_dir=ABLATION_RESULTS,
                           **ablation_setting(current_scale()))
    return {f"{r['row']} | {r['variant']}" if r["variant"] else r["row"]: r for r in summarise(results)}


def store(key: str, name: str, numbers: dict) -> None:
    """Put ``numbers`` under ``results[key][name]`` in ``OUT``, under a lock (two measurements may run at once,
    one per core), written whole or not at all."""
    from foundseg.cache import write_whole
    from foundseg.experiments.across_zoos import read_evidence

    OUT.parent.mkdir(parents=True, exist_ok=True)
    with open(OUT.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        results = read_evidence(OUT)
        results.setdefault(key, {})[name] = numbers
        write_whole(OUT, lambda f: f.write(json.dumps(results, indent=1).encode() + b"\n"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-only", action="store_true", help="train the missing models, measure nothing")
    parser.add_argument("--measure-only", action="store_true", help="measure the models trained so far")
    parser.add_argument("--seeds", type=int, nargs="+", default=(0, *SEEDS),
                        help="the zoos to train and measure (default: 0 1 2; 0 is the shipped zoo, never trained)")
    parser.add_argument("--dit-seeds", type=int, nargs="*", default=(0, *DIT_SEEDS),
                        help="the shapes-dit seeds to train and measure (default: 0 1 2; 0 ships)")
    parser.add_argument("--no-controls", action="store_true", help="neither train nor measure the controls")
    parser.add_argument("--device", default="cpu", help="where to train (cuda when a GPU is there: a zoo's UNet "
                        "step takes about 0.09 s on an H100 against 0.8-1.7 s on two CPU cores)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for training (1 when the machine is "
                        "shared: two threads collapse when another process keeps a core busy)")
    args = parser.parse_args(argv)
    if not args.measure_only:
        train_missing(args.threads, [s for s in args.seeds if s != 0], not args.no_controls, args.device,
                      dit_seeds=[s for s in args.dit_seeds if s != 0])
    if args.train_only:
        return 0
    from foundseg.experiments.across_zoos import read_evidence
    from foundseg.config import apply_thread_policy
    from foundseg.models.loader import ZOO_DIR

    apply_thread_policy()
    measured = read_evidence(OUT)
    if not args.no_controls:
        for name, path in control_models().items():
            if not up_to_date(measured, "controls", name) and path.exists():
                print(f"measuring {name}", flush=True)
                store("controls", name, measure_clip(path))
    for seed in args.seeds:
        name, path = ("seed 0 (shipped)", ZOO_DIR) if seed == 0 else (f"seed {seed}", MODELS / f"seed-{seed}")
        if not (path / "shapes-sd" / "train_log.json").exists():
            continue
        if not up_to_date(measured, "zoos", name):
            print(f"measuring zoo {name}", flush=True)
            store("zoos", name, measure_chapters(path))
    for seed in args.dit_seeds:
        name, path = (("seed 0 (shipped)", ZOO_DIR / "shapes-dit") if seed == 0
                      else (f"seed {seed}", MODELS / f"dit-seed-{seed}" / "shapes-dit"))
        if path.exists() and not up_to_date(measured, "dit", name):
            print(f"measuring shapes-dit {name}", flush=True)
            store("dit", name, measure_dit(path))
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
