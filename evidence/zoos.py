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


def train_missing(progress: bool = False) -> None:
    """Train every control and zoo not yet in ``MODELS``, one at a time (each is written whole or not at all)."""
    from foundseg.training import train_clip, train_zoo

    for name, overrides in CONTROLS.items():
        target = MODELS / name / "shapes-clip"
        if not (target / "train_log.json").exists():
            print(f"training {name}", flush=True)
            tmp = MODELS / name / ".training"
            log = train_clip(tmp, 0, progress, **overrides)
            (tmp / "train_log.json").write_text(json.dumps(log))
            tmp.rename(target)
    for seed in SEEDS:
        zoo = MODELS / f"seed-{seed}"
        if not all((zoo / m / "train_log.json").exists() for m in ("shapes-clip", "shapes-sd")):
            print(f"training zoo seed {seed}", flush=True)
            train_zoo(zoo, seed=seed, progress=progress)


def measure_clip(clip_dir, n_images: int = 500) -> dict:
    """Chapter 2's numbers for one shapes-clip: zero-shot top-1 and class-presence AUC (the model card's
    measures, on the first 1000 test images), Grad-CAM and dense-CLIP mIoU on the chapter's first ``n_images``
    test images at 64 px, with seen and unseen classes."""
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
    return out


def measure_controls() -> dict:
    """:func:`measure_clip` for the shipped shapes-clip and each control, by name."""
    from foundseg.models.loader import ZOO_DIR

    models = {"shipped (region and word losses)": ZOO_DIR / "shapes-clip"}
    models.update({name: MODELS / name / "shapes-clip" for name in CONTROLS})
    return {name: measure_clip(path) for name, path in models.items() if path.exists()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-only", action="store_true", help="train the missing models, measure nothing")
    parser.add_argument("--measure-only", action="store_true", help="measure the models trained so far")
    args = parser.parse_args(argv)
    if not args.measure_only:
        train_missing()
    if args.train_only:
        return 0
    from foundseg.models import apply_thread_policy

    apply_thread_policy()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    results = {"controls": measure_controls()}
    OUT.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
