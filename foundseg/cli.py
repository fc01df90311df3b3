"""The ``foundseg`` command line."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _zoo_train(args) -> None:
    from .training import train_zoo, write_cards

    overrides = {}
    if args.settings:
        import yaml

        overrides = yaml.safe_load(Path(args.settings).read_text()) or {}
        if not isinstance(overrides, dict) or set(overrides) - {"clip", "vae", "unet"}:
            raise SystemExit(f"foundseg: --settings {args.settings} may only hold 'clip', 'vae' and 'unet' mappings")
    train_zoo(args.out, args.seed, device=args.device, **overrides)
    if not args.no_card:
        write_cards(args.out)


def _device(args) -> str:
    import torch

    return args.device or ("cuda" if torch.cuda.is_available() else "cpu")


def _load_sd(name, device):
    """The pipeline in the scale's dtype for ``device`` (float16 on CUDA at full scale)."""
    from .models import current_scale, load_sd

    return load_sd(name, device=device, dtype=current_scale().sd_dtype(device))


def _zoo_card(args) -> None:
    from .training import write_cards

    metrics = write_cards(args.out, n_images=args.images, seeds=args.seeds)
    print(json.dumps(metrics, indent=2))


def _out_dir(args, names) -> Path:
    """The output directory, refusing to overwrite any of ``names`` there without --force."""
    out = Path(args.out)
    clash = [n for n in names if (out / n).exists()]
    if clash and not args.force:
        raise SystemExit(f"foundseg: {out} already holds {', '.join(clash)}; pass --force to overwrite")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _save_maps_png(path: Path, image, maps, titles) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot

    from .viz import image_grid, overlay_heatmap

    fig = image_grid([image] + [overlay_heatmap(image, m) for m in maps], ["image"] + list(titles),
                     ncols=len(maps) + 1, size=2.4)
    fig.savefig(path, dpi=100)
    matplotlib.pyplot.close(fig)


def _photo(path, name: str, short_side: int, multiple: int, size=None):
    """The image at ``path`` resized to ``size`` (h, w), or with its shorter side at the model's ``short_side``."""
    from .data import load_image
    from .data.images import fit_size, resize_image

    image = load_image(path, name)
    return resize_image(image, size or fit_size(image.shape, short_side, multiple, name))


def _cam(args) -> None:
    import numpy as np

    from .clip import SHAPES_BACKGROUND, dense_clip, gradcam
    from .models import load_clip

    out = _out_dir(args, ["cam.png", "cam.npz", "cam.json"])
    clip = load_clip(args.model, device=_device(args))
    vision = clip.model.config.vision_config
    image = _photo(args.image, "IMAGE", vision.image_size, vision.patch_size)
    fn = dense_clip if args.dense else gradcam
    kwargs = {} if args.dense else {"background": SHAPES_BACKGROUND if args.background else None}
    result = fn(clip, image, args.classes, **kwargs)
    np.savez_compressed(out / "cam.npz", maps=result.maps, classes=np.array(result.class_names))
    _save_maps_png(out / "cam.png", image, result.maps, result.class_names)
    (out / "cam.json").write_text(json.dumps({"model": args.model, "method": "dense_clip" if args.dense else "gradcam",
                                              "classes": result.class_names,
                                              "scores": [round(float(v), 6) for v in result.scores]}, indent=2))
    print(f"wrote {out}/cam.png, cam.npz, cam.json")


def _attention(args) -> None:
    import numpy as np
    import torch.nn.functional as F

    from .diffusion import generate, renoise_attention
    from .diffusion.capture import latent_multiple, native_size

    out = _out_dir(args, ["attention.png", "attention.npz", "attention.json"])
    pipe = _load_sd(args.model, _device(args))
    if args.image:
        image = _photo(args.image, "--image", native_size(pipe), latent_multiple(pipe), args.size)
        maps = renoise_attention(pipe, image, args.prompt, args.word, t=None if args.t < 0 else args.t, seed=args.seed,
                                 size=image.shape[:2])
    else:
        g = generate(pipe, args.prompt, args.word, num_inference_steps=args.steps, seed=args.seed)
        image, maps = g.image, g.maps
        from PIL import Image

        Image.fromarray(image).save(out / "generated.png")
    mean = F.interpolate(maps.mean()[:, :], size=image.shape[:2], mode="bilinear")[0].numpy()
    scaled = (mean - mean.min(axis=(1, 2), keepdims=True)) / np.maximum(np.ptp(mean, axis=(1, 2), keepdims=True), 1e-12)
    np.savez_compressed(out / "attention.npz", mean=mean, **{k: v.numpy() for k, v in maps.per_layer.items()})
    _save_maps_png(out / "attention.png", image, scaled, args.word)
    (out / "attention.json").write_text(json.dumps({"model": args.model, "prompt": args.prompt, "words": args.word,
                                                    "mode": "renoise" if args.image else "generate",
                                                    "t": args.t if args.image else None,
                                                    "layers": {k: list(v) for k, v in maps.resolutions.items()}},
                                                   indent=2))
    print(f"wrote {out}/attention.png, attention.npz, attention.json")


def _features(args) -> None:
    import numpy as np

    from .diffusion import cluster_features, extract_features, output_layers
    from .diffusion.capture import latent_multiple, native_size

    out = _out_dir(args, ["features.npz", "clusters.png"])
    pipe = _load_sd(args.model, _device(args))
    image = _photo(args.image, "IMAGE", native_size(pipe), latent_multiple(pipe), args.size)
    last = args.last or min(6, len(output_layers(pipe.unet)))
    feats = extract_features(pipe, image, t=None if args.t < 0 else args.t, last=last, size=image.shape[:2])
    labels = cluster_features(feats, args.k, size=image.shape[:2]).cpu().numpy()
    np.savez_compressed(out / "features.npz", features=feats.cpu().numpy(), clusters=labels)
    from PIL import Image

    from .viz import overlay_labels

    Image.fromarray((overlay_labels(image, labels + 1) * 255).astype("uint8")).save(out / "clusters.png")
    print(f"wrote {out}/features.npz, clusters.png")


def _dataset(args):
    from .data import ShapesDataset, ade20k, coco_stuff, label_folder, pascal_context59, voc2012

    if args.dataset == "shapes":
        return ShapesDataset(args.split or "test", args.limit or 500)
    if args.dataset == "voc2012":
        return voc2012(args.root, args.split or "val")
    if args.dataset == "ade20k":
        return ade20k(args.root, args.split or "validation")
    if args.dataset == "pascal-context59":
        return pascal_context59(args.images, args.labels, args.split_file)
    if args.dataset == "coco-stuff":
        return coco_stuff(args.images, args.labels)
    return label_folder(args.images, args.labels, args.classes, args.image_suffix, args.label_suffix)


def _eval(args) -> None:
    from accelerate import Accelerator

    from .eval.distributed import evaluate_dataset, make_segmenter
    from .models import load_clip

    import torch

    # without a GPU, processes started by torchrun / accelerate launch form a multi-CPU (gloo) group
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    out = _out_dir(args, ["metrics.json"]) if accelerator.is_main_process else Path(args.out)
    dataset = _dataset(args)
    clip = None if args.method == "disc" else load_clip(args.model, device=accelerator.device)
    segment = make_segmenter(args.method, dataset.class_names, dataset.ignore_index, clip)
    try:
        result = evaluate_dataset(segment, dataset, args.limit, accelerator)
        if accelerator.is_main_process:
            result.update(dataset=dataset.name, method=args.method, model=args.model,
                          processes=accelerator.num_processes)
            (out / "metrics.json").write_text(json.dumps(result, indent=2))
            print(f"{dataset.name} {args.method}: mIoU {result['mIoU']:.4f} over {result['images']} images "
                  f"({accelerator.num_processes} processes) -> {out}/metrics.json")
        accelerator.wait_for_everyone()
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def _ablation_rows(args) -> dict:
    from .diffusion import OdiseConfig
    from .eval.ablation import CLIP_ONLY, NEW_ROWS, PAPER_ROWS

    known = {**PAPER_ROWS, **NEW_ROWS}
    if args.config:
        import yaml

        spec = yaml.safe_load(Path(args.config).read_text())
        if not isinstance(spec, dict) or not isinstance(spec.get("rows"), dict) or not spec["rows"]:
            raise SystemExit(f"foundseg: --config {args.config} must hold a non-empty 'rows' mapping")
        rows = {}
        for name, fields in spec["rows"].items():
            if fields == CLIP_ONLY:
                rows[name] = CLIP_ONLY
                continue
            fields = {k: tuple(v) if isinstance(v, list) else v for k, v in (fields or {}).items()}
            if "text" in fields and fields["text"] is None:
                fields["text"] = "null"  # YAML reads `text: null` as None: it means the null text
            try:
                rows[name] = OdiseConfig(**fields)
            except (TypeError, ValueError) as err:
                raise SystemExit(f"foundseg: --config row {name!r}: {err}") from None
        return rows
    if args.rows == ["all"]:
        return known
    unknown = [r for r in args.rows if r not in known]
    if unknown:
        raise SystemExit(f"foundseg: unknown --rows {unknown}; known rows: {list(known)}")
    return {r: known[r] for r in args.rows}


def _ablate(args) -> None:
    import csv

    from .eval.ablation import run_ablation, summarise
    from .models import current_scale, load_clip

    rows = _ablation_rows(args)
    out = _out_dir(args, ["ablation.csv", "ablation.json"])
    device = _device(args)
    s = current_scale()
    results = run_ablation(_load_sd(args.sd_model, device), load_clip(args.model, device=device), rows,
                           args.n_train, args.n_test, tuple(range(args.seeds)), args.steps, args.cache, args.image_size,
                           feature_batch=s.feature_batch, captioner_batch=s.captioner_batch)
    table = summarise(results)
    with open(out / "ablation.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
    settings = {k: getattr(args, k) for k in ("n_train", "n_test", "seeds", "steps", "image_size", "model", "sd_model")}
    (out / "ablation.json").write_text(json.dumps({"settings": settings, "results": results}, indent=2))
    for row in table:
        print(f"{row['row']:<48} seen {row['seen_mean']:.3f}±{row['seen_std']:.3f}  "
              f"unseen {row['unseen_mean']:.3f}±{row['unseen_std']:.3f}  all {row['all_mean']:.3f}±{row['all_std']:.3f}")


def build_parser() -> argparse.ArgumentParser:
    from .models.scale import current_scale

    scale = current_scale()  # FOUNDSEG_SCALE and its overrides pick every default below
    parser = argparse.ArgumentParser(prog="foundseg", description="CLIP and Stable Diffusion for dense recognition.",
                                     epilog=f"Defaults follow FOUNDSEG_SCALE (now {scale.name!r}).")
    sub = parser.add_subparsers(dest="command", required=True)
    zoo = sub.add_parser("zoo", help="the shapes-world model zoo").add_subparsers(dest="action", required=True)
    default_out = str(Path(__file__).parent / "models" / "zoo")
    train = zoo.add_parser("train", help="train shapes-clip and shapes-sd from scratch, then write their model cards")
    train.add_argument("--out", default=default_out, help="directory for shapes-clip/ and shapes-sd/ (default: the package's zoo)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--device", default="cpu", help="torch device to train on, e.g. cuda (batches are drawn on the CPU, "
                       "so a seed gives the same data on any device; the weights match bit for bit only on the same hardware)")
    train.add_argument("--no-card", action="store_true", help="skip the evaluation and model cards")
    train.add_argument("--settings", help="YAML/JSON overrides of the training settings: {clip: {...}, vae: {...}, unet: {...}}")
    train.set_defaults(func=_zoo_train)
    card = zoo.add_parser("card", help="re-measure the models in --out and rewrite their model cards")
    card.add_argument("--out", default=default_out)
    card.add_argument("--images", type=int, default=1000, help="test images for the CLIP metrics")
    card.add_argument("--seeds", type=int, default=3, help="samples per (colour, shape) prompt for the SD metrics")
    card.set_defaults(func=_zoo_card)

    def common(p, model, device=True):
        p.add_argument("--model", default=model, help=f"shipped name, hub id or directory (default {model})")
        if device:
            p.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")
        p.add_argument("--out", required=True, help="output directory")
        p.add_argument("--force", action="store_true", help="overwrite existing outputs")

    cam = sub.add_parser("cam", help="Grad-CAM (or dense CLIP) maps of class prompts on an image")
    cam.add_argument("image", help="image file")
    cam.add_argument("--classes", nargs="+", required=True)
    cam.add_argument("--dense", action="store_true", help="dense CLIP (MaskCLIP) instead of Grad-CAM")
    cam.add_argument("--background", action="store_true", help="CLIP-ES softmax over classes + background prompts")
    common(cam, scale.clip_model)
    cam.set_defaults(func=_cam)

    att = sub.add_parser("attention", help="cross-attention maps of words: while generating, or --image re-noised once")
    att.add_argument("--prompt", required=True)
    att.add_argument("--word", nargs="+", required=True)
    att.add_argument("--image", help="re-noise this image once (ODISE mode) instead of generating")
    att.add_argument("--t", type=int, default=0, help="timestep of the single noising (-1: no noise)")
    att.add_argument("--steps", type=int, default=25, help="denoising steps when generating")
    att.add_argument("--seed", type=int, default=0)
    att.add_argument("--size", type=int, nargs=2, metavar=("HEIGHT", "WIDTH"),
                     help="--image is resized to this many pixels (default: its shorter side to the model's resolution)")
    common(att, scale.sd_model)
    att.set_defaults(func=_attention)

    feat = sub.add_parser("features", help="UNet features of an image noised once, and their k-means clusters")
    feat.add_argument("image")
    feat.add_argument("--t", type=int, default=0, help="timestep of the single noising (-1: no noise)")
    feat.add_argument("--last", type=int, help="number of last output-side layers averaged "
                      "(default 6 as in the paper, or all of them if the UNet has fewer)")
    feat.add_argument("--k", type=int, default=4, help="k-means clusters")
    feat.add_argument("--size", type=int, nargs=2, metavar=("HEIGHT", "WIDTH"),
                      help="the image is resized to this many pixels (default: its shorter side to the model's resolution)")
    common(feat, scale.sd_model)
    feat.set_defaults(func=_features)

    ev = sub.add_parser("eval", help="mIoU of a method over a dataset (run under `accelerate launch` to shard)")
    ev.add_argument("--dataset", required=True,
                    choices=["shapes", "voc2012", "ade20k", "pascal-context59", "coco-stuff", "folder"])
    ev.add_argument("--method", required=True, choices=["gradcam", "dense-clip", "disc"])
    ev.add_argument("--root", help="dataset root (voc2012: the VOC2012 folder; ade20k: ADEChallengeData2016)")
    ev.add_argument("--split", help="split name (voc2012 split file / ade20k folder / shapes split)")
    ev.add_argument("--split-file", help="pascal-context59: file listing image ids")
    ev.add_argument("--images", help="images folder (folder, pascal-context59, coco-stuff)")
    ev.add_argument("--labels", help="label PNG folder (folder, pascal-context59, coco-stuff)")
    ev.add_argument("--classes", help="folder: class-name file, one per line")
    ev.add_argument("--image-suffix", default=".jpg")
    ev.add_argument("--label-suffix", default=".png")
    ev.add_argument("--limit", type=int, help="evaluate the first N images only")
    common(ev, scale.clip_model, device=False)  # accelerate places each process
    ev.set_defaults(func=_eval)

    ab = sub.add_parser("ablate", help="the ODISE mini-ablation: any rows, from flags or a YAML/JSON config")
    ab.add_argument("--rows", nargs="+", default=["all"], help="row names (default: all built-in rows)")
    ab.add_argument("--config", help="YAML/JSON file: {rows: {name: {OdiseConfig fields} or 'clip'}}")
    ab.add_argument("--n-train", type=int, default=scale.count("ablation_train"))
    ab.add_argument("--n-test", type=int, default=scale.count("ablation_test"))
    ab.add_argument("--seeds", type=int, default=scale.count("ablation_seeds"), help="head trainings per row (seeds 0..N-1)")
    ab.add_argument("--steps", type=int, default=scale.count("head_steps"), help="head training steps")
    ab.add_argument("--image-size", type=int, default=scale.sd_size, help="shapes-world image size fed to the SD pipeline")
    ab.add_argument("--cache", default=".foundseg-cache/odise", help="feature cache directory")
    ab.add_argument("--sd-model", default=scale.sd_model)
    common(ab, scale.clip_model)
    ab.set_defaults(func=_ablate)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    args.func(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
