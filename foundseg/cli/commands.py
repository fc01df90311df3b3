"""The ``foundseg`` commands' bodies, their outputs staged in a hidden folder inside ``--out`` and moved into
place only when the command succeeds, and JSON with its NaNs made null. Each command imports the libraries it
needs when it runs, not when the parser is built."""
from __future__ import annotations

import json
import math
import shutil
import tempfile
from pathlib import Path

from .parser import CommandError, missing_options


def json_text(obj, reason: str) -> str:
    """``obj`` as valid JSON: every NaN becomes null, and a ``"null"`` entry gives ``reason`` when there was one.

    >>> json_text({"a": float("nan"), "b": [1.0]}, "no pixel of that class")
    '{\\n  "a": null,\\n  "b": [\\n    1.0\\n  ],\\n  "null": "no pixel of that class"\\n}'
    """
    found = []

    def clean(x):
        if isinstance(x, float) and math.isnan(x):
            found.append(x)
            return None
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        return x

    out = clean(obj)
    if found:
        out["null"] = reason
    return json.dumps(out, indent=2, allow_nan=False)


def read_config(path: str, option: str):
    """The YAML (or JSON) file ``path`` given as ``option``, parsed; a file that does not parse is a
    :class:`CommandError` naming the option, the file and the line."""
    import yaml

    try:
        return yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise CommandError(f"{option} {path}{where}: not valid YAML or JSON ({problem})") from None


def _out_dir(args, names) -> Path:
    """A staging folder for the outputs ``names``; :func:`finish_outputs` moves them into ``--out`` when the
    command succeeds. Refuses a file as ``--out`` and, without --force, an ``--out`` that holds any of ``names``."""
    final = Path(args.out).expanduser()
    if final.exists() and not final.is_dir():
        raise CommandError(f"--out {final} is a file; name a directory")
    clash = [n for n in names if (final / n).exists()]
    if clash and not args.force:
        raise CommandError(f"--out {final} already holds {', '.join(clash)}; pass --force to overwrite")
    created = not final.exists()
    final.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".foundseg-", dir=final))
    args.staged = (staging, final, created)
    return staging


def finish_outputs(args, succeeded: bool) -> list[str]:
    """Move the staged outputs into ``--out`` (success) or remove them (failure); returns the written paths."""
    staged = getattr(args, "staged", None)
    if staged is None:
        return []
    staging, final, created = staged
    written = []
    if succeeded:
        from ..cache import move_into_place

        for path in sorted(staging.iterdir()):
            move_into_place(path, final / path.name)
            written.append(str(final / path.name))
    shutil.rmtree(staging, ignore_errors=True)
    if not succeeded and created and not any(final.iterdir()):
        final.rmdir()
    return written


def _device(args) -> str:
    import torch

    if args.device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise CommandError(f"--device {args.device}: no CUDA device here; use --device cpu")
    return args.device


def _load_sd(name, device):
    """The pipeline in the scale's dtype for ``device`` (float16 on CUDA at full scale)."""
    from ..config import current_scale
    from ..models import load_sd

    return load_sd(name, device=device, dtype=current_scale().sd_dtype(device))


def _check_timestep(pipe, t) -> None:
    n = pipe.scheduler.config.num_train_timesteps
    if t is not None and t >= n:
        raise CommandError(f"--t {t}: this model's timesteps run from 0 to {n - 1} (or 'none' for no noise)")


def _fit(image, name: str, short_side: int, multiple: int, size=None):
    """``image`` resized to ``size`` (h, w), or with its shorter side at the model's ``short_side``."""
    from ..data.images import fit_size, resize_image

    return resize_image(image, size or fit_size(image.shape, short_side, multiple, name))


def _save_maps_png(path: Path, image, maps, titles, colour_scale: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot

    from ..viz import map_panels

    fig = map_panels(image, maps, titles, colour_scale)
    fig.savefig(path, dpi=100)
    matplotlib.pyplot.close(fig)


def _zoo_train(args) -> None:
    from ..training import train_zoo

    overrides = {}
    if args.settings:
        overrides = read_config(args.settings, "--settings") or {}
        if not isinstance(overrides, dict) or set(overrides) - {"clip", "vae", "unet", "dit"}:
            raise CommandError(f"--settings {args.settings} may only hold 'clip', 'vae', 'unet' and 'dit' mappings")
    train_zoo(args.out, args.seed, device=args.device, force=args.force, **overrides)
    if not args.no_card:
        _write_cards(args.out, 1000, 3)


def _write_cards(zoo, images: int, seeds: int) -> dict:
    from ..eval.zoo import measure_zoo
    from ..training import write_cards

    metrics = measure_zoo(zoo, n_images=images, seeds=seeds)
    write_cards(zoo, metrics)
    return metrics


def _zoo_card(args) -> None:
    from ..training import MODELS

    zoo = Path(args.zoo)
    missing = [m for m in MODELS if not (zoo / m / "train_log.json").is_file()]
    if missing:
        raise CommandError(f"ZOO {zoo} holds no trained {', '.join(missing)} (name a directory `foundseg zoo train` "
                           "wrote)")
    cards = [str(zoo / m / f) for m in MODELS for f in ("README.md", "metrics.json") if (zoo / m / f).exists()]
    if cards and not args.force:
        raise CommandError(f"ZOO {zoo} already has model cards ({', '.join(cards)}); pass --force to rewrite them")
    print(json.dumps(_write_cards(zoo, args.images, args.seeds), indent=2))


def _cam(args) -> None:
    import numpy as np

    from ..clip import SHAPES_BACKGROUND, ClassPrompts, dense_clip, gradcam
    from ..data import load_image
    from ..models import load_clip

    paths = [Path(p) for p in args.image]
    stems = [p.stem for p in paths]
    if len(set(stems)) < len(stems):
        raise CommandError(f"IMAGE: several images are named {sorted({s for s in stems if stems.count(s) > 1})}; "
                           "their outputs would overwrite each other")
    names = ["cam"] if len(paths) == 1 else [f"{stem}-cam" for stem in stems]
    out = _out_dir(args, [n + ext for n in names for ext in (".png", ".npz")] + ["cam.json"])
    images = [load_image(p, "IMAGE") for p in paths]  # before any model loads, so that a bad path fails at once
    clip = load_clip(args.model, device=_device(args))
    vision = clip.model.config.vision_config
    images = [_fit(image, "IMAGE", vision.image_size, vision.patch_size) for image in images]
    normalise = "joint" if args.joint else "per_class"
    prompts = ClassPrompts(clip, args.classes, background=SHAPES_BACKGROUND if args.background else None)
    if args.dense:
        results = dense_clip(clip, images, prompts)
    else:
        results = gradcam(clip, images, prompts, normalise=normalise)
    for name, image, result in zip(names, images, results):
        np.savez_compressed(out / f"{name}.npz", maps=result.maps, classes=np.array(result.class_names),
                            scores=result.scores)
        titles = [f"{c}  {score:.3f}" for c, score in zip(result.class_names, result.scores)]
        _save_maps_png(out / f"{name}.png", image, result.maps, titles,
                       "cosine similarity" if args.dense else f"Grad-CAM, min-max scaled {normalise.replace('_', ' ')}")
    scores = {str(p): [round(float(v), 6) for v in r.scores] for p, r in zip(paths, results)}
    (out / "cam.json").write_text(json.dumps({
        "model": args.model, "method": "dense_clip" if args.dense else "gradcam", "classes": list(args.classes),
        "scores": scores[str(paths[0])] if len(paths) == 1 else scores,
        "score": "cosine similarity of image and prompt" if not args.background else "softmax over classes and "
                 "background prompts", "normalise": "none (raw similarities)" if args.dense else normalise}, indent=2))


def _attention(args) -> None:

    from ..data import load_image
    from ..diffusion import generate, renoise_attention
    from ..diffusion.latents import latent_multiple, native_size
    from ..maps import minmax, resize_maps

    out = _out_dir(args, ["attention.png", "attention.npz", "attention.json", "generated.png"])
    photo = load_image(args.image, "--image") if args.image else None  # before the model loads
    pipe = _load_sd(args.model, _device(args))
    if args.image:
        _check_timestep(pipe, args.t)
        image = _fit(photo, "--image", native_size(pipe), latent_multiple(pipe), args.size)
        maps = renoise_attention(pipe, image, args.prompt, args.word, t=args.t, seed=args.seed, size=image.shape[:2])
    else:
        g = generate(pipe, args.prompt, args.word, num_inference_steps=args.steps, seed=args.seed)
        image, maps = g.image, g.maps
        from PIL import Image

        Image.fromarray(image).save(out / "generated.png")
    import numpy as np

    mean = resize_maps(maps.mean(), image.shape[:2])[0].numpy()
    np.savez_compressed(out / "attention.npz", mean=mean, **{k: v.numpy() for k, v in maps.per_layer.items()})
    _save_maps_png(out / "attention.png", image, minmax(mean), args.word,
                   "cross-attention, min-max scaled per word")
    (out / "attention.json").write_text(json.dumps({"model": args.model, "prompt": args.prompt, "words": args.word,
                                                    "mode": "renoise" if args.image else "generate",
                                                    "t": args.t if args.image else None,
                                                    "layers": {k: list(v) for k, v in maps.resolutions.items()}},
                                                   indent=2))


def _features(args) -> None:
    import numpy as np

    from ..clustering import cluster_features
    from ..data import load_image
    from ..diffusion import extract_features, output_layers
    from ..diffusion.denoiser import denoiser
    from ..diffusion.latents import latent_multiple, native_size

    out = _out_dir(args, ["features.npz", "clusters.png"])
    photo = load_image(args.image, "IMAGE")  # before the model loads
    pipe = _load_sd(args.model, _device(args))
    _check_timestep(pipe, args.t)
    layers = len(output_layers(denoiser(pipe)))
    if args.last is not None and args.last > layers:
        raise CommandError(f"--last {args.last}: this denoiser has {layers} output-side layers")
    image = _fit(photo, "IMAGE", native_size(pipe), latent_multiple(pipe), args.size)
    feats = extract_features(pipe, image, t=args.t, last=args.last or min(6, layers), size=image.shape[:2])
    labels = cluster_features(feats, args.k, size=image.shape[:2]).cpu().numpy()
    np.savez_compressed(out / "features.npz", features=feats.cpu().numpy(), clusters=labels)
    from PIL import Image

    from ..viz import overlay_labels

    Image.fromarray((overlay_labels(image, labels + 1) * 255).astype("uint8")).save(out / "clusters.png")


def _dataset(args):
    from ..data import ShapesDataset, ade20k, coco_stuff, label_folder, pascal_context59, voc2012

    missing = missing_options(args)
    if missing:
        raise CommandError(f"--dataset {args.dataset} needs {' and '.join(missing)}")
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
    import torch
    from accelerate import Accelerator

    from ..eval.segmentation import evaluate, named_method
    from ..models import load_clip

    # without a GPU, processes started by torchrun / accelerate launch form a multi-CPU (gloo) group
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    dataset = _dataset(args)
    out = _out_dir(args, ["metrics.json"]) if accelerator.is_main_process else None
    clip = None if args.method == "disc" else load_clip(args.model, device=accelerator.device)
    method, vocabulary = named_method(args.method, clip)
    try:
        result = evaluate(method, dataset, vocabulary=vocabulary, limit=args.limit, accelerator=accelerator)
        if accelerator.is_main_process:
            result.update(dataset=dataset.name, method=args.method, model=args.model,
                          processes=accelerator.num_processes)
            (out / "metrics.json").write_text(json_text(result, "IoU undefined: the class is in neither the ground "
                                                                "truth nor the predictions of these images"))
            print(f"{dataset.name} {args.method}: mIoU {result['mIoU']:.4f} over {result['images']} images "
                  f"({accelerator.num_processes} processes)")
        accelerator.wait_for_everyone()
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def _ablation_rows(args) -> dict:
    from ..diffusion import OdiseConfig
    from ..experiments.odise_parts import CLIP_ONLY, NEW_ROWS, PAPER_ROWS

    known = {**PAPER_ROWS, **NEW_ROWS}
    if args.config:
        spec = read_config(args.config, "--config")
        if not isinstance(spec, dict) or not isinstance(spec.get("rows"), dict) or not spec["rows"]:
            raise CommandError(f"--config {args.config} must hold a non-empty 'rows' mapping")
        rows = {}
        for name, fields in spec["rows"].items():
            if fields == "clip":
                rows[name] = CLIP_ONLY
                continue
            fields = {k: tuple(v) if isinstance(v, list) else v for k, v in (fields or {}).items()}
            if "text" in fields and fields["text"] is None:
                fields["text"] = "null"  # YAML reads `text: null` as None: it means the null text
            try:
                rows[name] = OdiseConfig(**fields)
            except (TypeError, ValueError) as err:
                raise CommandError(f"--config row {name!r}: {err}") from None
        return rows
    if args.rows == ["all"]:
        return known
    unknown = [r for r in args.rows if r not in known]
    if unknown:
        raise CommandError(f"unknown --rows {unknown}; known rows: {list(known)}")
    return {r: known[r] for r in args.rows}


def _ablate(args) -> None:
    import csv

    from ..config import current_scale
    from ..experiments.odise_parts import run_ablation, summarise
    from ..models import load_clip

    rows = _ablation_rows(args)
    out = _out_dir(args, ["ablation.csv", "ablation.json"])
    device = _device(args)
    s = current_scale()
    if args.captioner_steps > args.steps:
        raise CommandError(f"--captioner-steps {args.captioner_steps} must not exceed --steps {args.steps}")
    results = run_ablation(_load_sd(args.sd_model, device), load_clip(args.model, device=device), rows,
                           args.n_train, args.n_test, tuple(range(args.seeds)), args.steps, args.captioner_steps,
                           args.cache, args.image_size, feature_batch=s.feature_batch,
                           captioner_batch=s.captioner_batch)
    table = summarise(results)
    with open(out / "ablation.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
    settings = {k: getattr(args, k) for k in ("n_train", "n_test", "seeds", "steps", "captioner_steps", "image_size",
                                              "model", "sd_model")}
    (out / "ablation.json").write_text(json_text({"settings": settings, "results": results},
                                                 "mIoU undefined: no test pixel of those classes"))
    for row in table:
        print(f"{row['row']:<48} {row['variant']:<9} seen {row['seen_mean']:.3f}±{row['seen_std']:.3f}  "
              f"unseen {row['unseen_mean']:.3f}±{row['unseen_std']:.3f}  all {row['all_mean']:.3f}±{row['all_std']:.3f}")


COMMANDS = {"zoo train": _zoo_train, "zoo card": _zoo_card, "cam": _cam, "attention": _attention,
            "features": _features, "eval": _eval, "ablate": _ablate}
"""Each command's body, by the words that name it on the command line."""
