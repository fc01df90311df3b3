"""The ``foundseg`` command line.

Every expected failure prints one line, ``foundseg <command>: <what is wrong>``, and exits with status 2 (a
traceback only with ``--debug``); so does an option that the chosen mode would ignore. The model libraries'
logging, loading bars and warnings stay off stderr (``--debug`` shows them); foundseg's own warnings, which
the user can act on, are printed as one line each. Outputs are written to a hidden folder inside ``--out``
and moved into place only when the command succeeds, so a failed run leaves nothing behind.
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import warnings
from pathlib import Path


class CommandError(Exception):
    """An expected failure of a command: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors as one line naming the command, and options spelled out in full (so that
    :func:`ignored_options` sees which were given)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, allow_abbrev=False, **kwargs)

    def error(self, message):
        self.exit(2, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def _whole_number(text: str, what: str = "a whole number") -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1.

    >>> positive_int("3")
    3
    """
    value = _whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def timestep(text: str) -> int | None:
    """An argparse type: a diffusion timestep (an integer from 0) or ``none`` for no noise.

    >>> timestep("200"), timestep("none")
    (200, None)
    """
    if text.lower() == "none":
        return None
    value = _whole_number(text, "a timestep or 'none'")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a timestep from 0 (or 'none' for no noise), got {value}")
    return value


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


DATASET_OPTIONS = {"shapes": ["--split"], "voc2012": ["--root", "--split"], "ade20k": ["--root", "--split"],
                   "pascal-context59": ["--images", "--labels", "--split-file"],
                   "coco-stuff": ["--images", "--labels"],
                   "folder": ["--images", "--labels", "--classes", "--image-suffix", "--label-suffix"]}
"""The dataset options of ``foundseg eval`` that each ``--dataset`` reads."""


def ignored_options(args) -> tuple[list[str], str]:
    """The options that the mode ``args`` chose would ignore, and why.

    >>> ns = argparse.Namespace(command="attention", image=None)
    >>> ignored_options(ns)
    (['--t', '--size'], 'without --image (they set how --image is noised and resized)')
    """
    if args.command == "attention":
        if args.image:
            return ["--steps"], "with --image (the image is noised once, not generated)"
        return ["--t", "--size"], "without --image (they set how --image is noised and resized)"
    if args.command == "cam" and args.dense:
        return ["--background", "--joint"], "with --dense (dense CLIP gives raw similarities)"
    if args.command == "eval":
        reads = DATASET_OPTIONS[args.dataset]
        ignored = [o for o in dict.fromkeys(o for opts in DATASET_OPTIONS.values() for o in opts) if o not in reads]
        if args.method == "disc":
            return ignored + ["--model"], f"with --dataset {args.dataset} --method disc"
        return ignored, f"with --dataset {args.dataset}"
    if args.command == "ablate" and args.config:
        return ["--rows"], "with --config (the file names the rows)"
    return [], ""


def _refuse_ignored(args, argv: list[str]) -> None:
    given = {token.split("=", 1)[0] for token in argv if token.startswith("--")}
    options, why = ignored_options(args)
    clash = [o for o in options if o in given]
    if clash:
        raise CommandError(f"{' and '.join(clash)} {'has' if len(clash) == 1 else 'have'} no effect {why}")


def _out_dir(args, names) -> Path:
    """A staging folder for the outputs ``names``; :func:`main` moves them into ``--out`` when the command
    succeeds. Refuses a file as ``--out`` and, without --force, an ``--out`` that holds any of ``names``."""
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


def _finish_outputs(args, succeeded: bool) -> list[str]:
    """Move the staged outputs into ``--out`` (success) or remove them (failure); returns the written paths."""
    staged = getattr(args, "staged", None)
    if staged is None:
        return []
    staging, final, created = staged
    written = []
    if succeeded:
        from .cache import move_into_place

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
    from .models import current_scale, load_sd

    return load_sd(name, device=device, dtype=current_scale().sd_dtype(device))


def _check_timestep(pipe, t) -> None:
    n = pipe.scheduler.config.num_train_timesteps
    if t is not None and t >= n:
        raise CommandError(f"--t {t}: this model's timesteps run from 0 to {n - 1} (or 'none' for no noise)")


def _fit(image, name: str, short_side: int, multiple: int, size=None):
    """``image`` resized to ``size`` (h, w), or with its shorter side at the model's ``short_side``."""
    from .data.images import fit_size, resize_image

    return resize_image(image, size or fit_size(image.shape, short_side, multiple, name))


def _save_maps_png(path: Path, image, maps, titles, colour_scale: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot

    from .viz import map_panels

    fig = map_panels(image, maps, titles, colour_scale)
    fig.savefig(path, dpi=100)
    matplotlib.pyplot.close(fig)


def _zoo_train(args) -> None:
    from .training import train_zoo

    overrides = {}
    if args.settings:
        overrides = read_config(args.settings, "--settings") or {}
        if not isinstance(overrides, dict) or set(overrides) - {"clip", "vae", "unet", "dit"}:
            raise CommandError(f"--settings {args.settings} may only hold 'clip', 'vae', 'unet' and 'dit' mappings")
    train_zoo(args.out, args.seed, device=args.device, force=args.force, **overrides)
    if not args.no_card:
        _write_cards(args.out, 1000, 3)


def _write_cards(zoo, images: int, seeds: int) -> dict:
    from .eval.zoo import measure_zoo
    from .training import write_cards

    metrics = measure_zoo(zoo, n_images=images, seeds=seeds)
    write_cards(zoo, metrics)
    return metrics


def _zoo_card(args) -> None:
    from .training import MODELS

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

    from .clip import SHAPES_BACKGROUND, ClassPrompts, dense_clip, gradcam
    from .data import load_image
    from .models import load_clip

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
    scaling = "joint" if args.joint else "per_class"
    prompts = ClassPrompts(clip, args.classes, background=SHAPES_BACKGROUND if args.background else None)
    if args.dense:
        results = dense_clip(clip, images, prompts)
    else:
        results = gradcam(clip, images, prompts, scaling=scaling)
    for name, image, result in zip(names, images, results):
        np.savez_compressed(out / f"{name}.npz", maps=result.maps, classes=np.array(result.class_names),
                            scores=result.scores)
        titles = [f"{c}  {score:.3f}" for c, score in zip(result.class_names, result.scores)]
        _save_maps_png(out / f"{name}.png", image, result.maps, titles,
                       "cosine similarity" if args.dense else f"Grad-CAM, min-max scaled {scaling.replace('_', ' ')}")
    scores = {str(p): [round(float(v), 6) for v in r.scores] for p, r in zip(paths, results)}
    (out / "cam.json").write_text(json.dumps({
        "model": args.model, "method": "dense_clip" if args.dense else "gradcam", "classes": list(args.classes),
        "scores": scores[str(paths[0])] if len(paths) == 1 else scores,
        "score": "cosine similarity of image and prompt" if not args.background else "softmax over classes and "
                 "background prompts", "scaling": "none (raw similarities)" if args.dense else scaling}, indent=2))


def _attention(args) -> None:
    import torch.nn.functional as F

    from .data import load_image
    from .diffusion import generate, renoise_attention
    from .diffusion.latents import latent_multiple, native_size
    from .scaling import minmax_scale

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

    mean = F.interpolate(maps.mean(), size=image.shape[:2], mode="bilinear")[0].numpy()
    np.savez_compressed(out / "attention.npz", mean=mean, **{k: v.numpy() for k, v in maps.per_layer.items()})
    _save_maps_png(out / "attention.png", image, minmax_scale(mean), args.word,
                   "cross-attention, min-max scaled per word")
    (out / "attention.json").write_text(json.dumps({"model": args.model, "prompt": args.prompt, "words": args.word,
                                                    "mode": "renoise" if args.image else "generate",
                                                    "t": args.t if args.image else None,
                                                    "layers": {k: list(v) for k, v in maps.resolutions.items()}},
                                                   indent=2))


def _features(args) -> None:
    import numpy as np

    from .data import load_image
    from .diffusion import cluster_features, extract_features, output_layers
    from .diffusion.denoiser import denoiser
    from .diffusion.latents import latent_multiple, native_size

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

    from .viz import overlay_labels

    Image.fromarray((overlay_labels(image, labels + 1) * 255).astype("uint8")).save(out / "clusters.png")


def _dataset(args):
    from .data import ShapesDataset, ade20k, coco_stuff, label_folder, pascal_context59, voc2012

    needs = {"voc2012": ["root"], "ade20k": ["root"], "pascal-context59": ["images", "labels"],
             "coco-stuff": ["images", "labels"], "folder": ["images", "labels", "classes"]}.get(args.dataset, [])
    missing = [f"--{n}" for n in needs if getattr(args, n) is None]
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

    from .eval.segmentation import evaluate, named_method
    from .models import load_clip

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
    from .diffusion import OdiseConfig
    from .experiments.odise_parts import CLIP_ONLY, NEW_ROWS, PAPER_ROWS

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

    from .experiments.odise_parts import run_ablation, summarise
    from .models import current_scale, load_clip

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


def build_parser() -> argparse.ArgumentParser:
    from .models.scale import current_scale

    scale = current_scale()  # FOUNDSEG_SCALE and its overrides pick every default below
    parser = _Parser(prog="foundseg", description="CLIP and Stable Diffusion for dense recognition.",
                     epilog=f"Defaults follow FOUNDSEG_SCALE (now {scale.name!r}).")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of a failure")
    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show the full traceback of a failure")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    zoo = sub.add_parser("zoo", help="the shapes-world model zoo").add_subparsers(dest="action", required=True)
    train = zoo.add_parser("train", parents=[debug], help="train shapes-clip, shapes-sd and shapes-dit from scratch, then "
                           "write their model cards")
    train.add_argument("--out", required=True, help="directory for shapes-clip/, shapes-sd/ and shapes-dit/ (the shipped zoo is "
                       "foundseg/models/zoo; replacing it takes that path and --force)")
    train.add_argument("--force", action="store_true", help="replace the models already in --out")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--device", default="cpu", help="torch device to train on, e.g. cuda (batches are drawn on the CPU, "
                       "so a seed gives the same data on any device; the weights match bit for bit only on the same hardware)")
    train.add_argument("--no-card", action="store_true", help="skip the evaluation and model cards")
    train.add_argument("--settings", help="YAML/JSON overrides of the training settings: {clip: {...}, vae: {...}, unet: {...}, "
                       "dit: {...}}")
    train.set_defaults(func=_zoo_train)
    card = zoo.add_parser("card", parents=[debug], help="measure the models in ZOO and write their model cards")
    card.add_argument("zoo", metavar="ZOO", help="a directory `foundseg zoo train` wrote")
    card.add_argument("--force", action="store_true", help="rewrite cards already there")
    card.add_argument("--images", type=positive_int, default=1000, help="test images for the CLIP metrics")
    card.add_argument("--seeds", type=positive_int, default=3, help="samples per (colour, shape) prompt for the SD metrics")
    card.set_defaults(func=_zoo_card)

    def common(p, model, device=True):
        p.add_argument("--model", default=model, help=f"shipped name, hub id or directory (default {model})")
        if device:
            p.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")
        p.add_argument("--out", required=True, help="output directory")
        p.add_argument("--force", action="store_true", help="overwrite existing outputs")

    size = dict(type=positive_int, nargs=2, metavar=("HEIGHT", "WIDTH"))
    cam = sub.add_parser("cam", parents=[debug], help="Grad-CAM (or dense CLIP) maps of class prompts on images")
    cam.add_argument("image", nargs="+", metavar="IMAGE", help="image files (several: the text is encoded once, the "
                     "images go through the model together; outputs <name>-cam.png/.npz each)")
    cam.add_argument("--classes", nargs="+", required=True)
    cam.add_argument("--dense", action="store_true", help="dense CLIP (MaskCLIP) instead of Grad-CAM")
    cam.add_argument("--background", action="store_true", help="CLIP-ES softmax over classes + background prompts")
    cam.add_argument("--joint", action="store_true", help="scale the Grad-CAM maps jointly across classes (a weak "
                     "class stays dim) instead of each map to [0, 1]")
    common(cam, scale.clip_model)
    cam.set_defaults(func=_cam)

    att = sub.add_parser("attention", parents=[debug], help="cross-attention maps of words: while generating, or --image re-noised once")
    att.add_argument("--prompt", required=True)
    att.add_argument("--word", nargs="+", required=True)
    att.add_argument("--image", help="re-noise this image once (ODISE mode) instead of generating")
    att.add_argument("--t", type=timestep, default=0, help="timestep of the single noising, or 'none' for no noise")
    att.add_argument("--steps", type=positive_int, default=25, help="denoising steps when generating")
    att.add_argument("--seed", type=int, default=0)
    att.add_argument("--size", **size,
                     help="--image is resized to this many pixels (default: its shorter side to the model's resolution)")
    common(att, scale.sd_model)
    att.set_defaults(func=_attention)

    feat = sub.add_parser("features", parents=[debug], help="UNet features of an image noised once, and their k-means clusters")
    feat.add_argument("image")
    feat.add_argument("--t", type=timestep, default=0, help="timestep of the single noising, or 'none' for no noise")
    feat.add_argument("--last", type=positive_int, help="number of last output-side layers averaged "
                      "(default 6 as in the paper, or all of them if the UNet has fewer)")
    feat.add_argument("--k", type=positive_int, default=4, help="k-means clusters")
    feat.add_argument("--size", **size,
                      help="the image is resized to this many pixels (default: its shorter side to the model's resolution)")
    common(feat, scale.sd_model)
    feat.set_defaults(func=_features)

    ev = sub.add_parser("eval", parents=[debug], help="mIoU of a method over a dataset (run under `accelerate launch` to shard)")
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
    ev.add_argument("--limit", type=positive_int, help="evaluate the first N images only")
    common(ev, scale.clip_model, device=False)  # accelerate places each process
    ev.set_defaults(func=_eval)

    ab = sub.add_parser("ablate", parents=[debug], help="the ODISE mini-ablation: any rows, from flags or a YAML/JSON config")
    ab.add_argument("--rows", nargs="+", default=["all"], help="row names (default: all built-in rows)")
    ab.add_argument("--config", help="YAML/JSON file: {rows: {name: {OdiseConfig fields} or 'clip'}}")
    ab.add_argument("--n-train", type=positive_int, default=scale.count("ablation_train"))
    ab.add_argument("--n-test", type=positive_int, default=scale.count("ablation_test"))
    ab.add_argument("--seeds", type=positive_int, default=scale.count("ablation_seeds"),
                    help="head trainings per row (seeds 0..N-1)")
    ab.add_argument("--steps", type=positive_int, default=scale.count("head_steps"), help="head training steps")
    ab.add_argument("--captioner-steps", type=int, default=scale.count("captioner_steps"),
                    help="of those, the first steps that train the implicit captioner too")
    ab.add_argument("--image-size", type=positive_int, default=scale.sd_size,
                    help="shapes-world image size fed to the SD pipeline")
    ab.add_argument("--cache", default=".foundseg-cache/odise", help="feature cache directory")
    ab.add_argument("--sd-model", default=scale.sd_model)
    common(ab, scale.clip_model)
    ab.set_defaults(func=_ablate)
    return parser


EXPECTED_ERRORS = (CommandError, ValueError, OSError)
"""Failures of bad input (arguments, files, models): one line and exit status 2, not a traceback."""


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    command = "foundseg " + " ".join(filter(None, [args.command, getattr(args, "action", None)]))
    if not args.debug:
        from .progress import silence_libraries

        silence_libraries()

    def one_line_warning(message, category, filename, lineno, file=None, line=None):
        if args.debug or category.__module__.startswith("foundseg"):  # the model libraries' only with --debug
            print(f"{command}: warning: {message}", file=sys.stderr)

    if args.command != "zoo":  # training sets its own threads
        from .models import apply_thread_policy

        apply_thread_policy()
    succeeded = False
    try:
        with warnings.catch_warnings():
            warnings.showwarning = one_line_warning
            _refuse_ignored(args, argv)
            args.func(args)
        succeeded = True
    except EXPECTED_ERRORS as err:
        if args.debug:
            raise
        print(f"{command}: {err}", file=sys.stderr)
        return 2
    finally:
        written = _finish_outputs(args, succeeded)
    if written:
        print(f"wrote {', '.join(written)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
