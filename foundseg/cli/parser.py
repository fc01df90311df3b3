"""The ``foundseg`` command line's arguments: their types, the parser, and which options each mode reads or
ignores."""
from __future__ import annotations

import argparse


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


DATASET_OPTIONS = {"shapes": {"--split": False}, "voc2012": {"--root": True, "--split": False},
                   "ade20k": {"--root": True, "--split": False},
                   "pascal-context59": {"--images": True, "--labels": True, "--split-file": False},
                   "coco-stuff": {"--images": True, "--labels": True},
                   "folder": {"--images": True, "--labels": True, "--classes": True, "--image-suffix": False,
                              "--label-suffix": False}}
"""The dataset options of ``foundseg eval`` that each ``--dataset`` reads, each with whether the dataset needs it
(True) or does without it (False)."""


def missing_options(args) -> list[str]:
    """The options that ``args``' ``--dataset`` needs (:data:`DATASET_OPTIONS`) and that were not given.

    >>> missing_options(argparse.Namespace(dataset="folder", images="img", labels=None, classes=None))
    ['--labels', '--classes']
    >>> missing_options(argparse.Namespace(dataset="shapes", split=None))
    []
    """
    return [o for o, needed in DATASET_OPTIONS[args.dataset].items()
            if needed and getattr(args, o[2:].replace("-", "_")) is None]


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


def refuse_ignored(args, argv: list[str]) -> None:
    """Raise a :class:`CommandError` naming the options given in ``argv`` that ``args``' mode ignores."""
    given = {token.split("=", 1)[0] for token in argv if token.startswith("--")}
    options, why = ignored_options(args)
    clash = [o for o in options if o in given]
    if clash:
        raise CommandError(f"{' and '.join(clash)} {'has' if len(clash) == 1 else 'have'} no effect {why}")


def build_parser() -> argparse.ArgumentParser:
    """The ``foundseg`` parser, its defaults from the current scale; ``args.command`` (and ``args.action`` under
    ``zoo``) name the chosen command."""
    from ..config import current_scale

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
    card = zoo.add_parser("card", parents=[debug], help="measure the models in ZOO and write their model cards")
    card.add_argument("zoo", metavar="ZOO", help="a directory `foundseg zoo train` wrote")
    card.add_argument("--force", action="store_true", help="rewrite cards already there")
    card.add_argument("--images", type=positive_int, default=1000, help="test images for the CLIP metrics")
    card.add_argument("--seeds", type=positive_int, default=3, help="samples per (colour, shape) prompt for the SD metrics")

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

    feat = sub.add_parser("features", parents=[debug], help="UNet features of an image noised once, and their k-means clusters")
    feat.add_argument("image")
    feat.add_argument("--t", type=timestep, default=0, help="timestep of the single noising, or 'none' for no noise")
    feat.add_argument("--last", type=positive_int, help="number of last output-side layers averaged "
                      "(default 6 as in the paper, or all of them if the UNet has fewer)")
    feat.add_argument("--k", type=positive_int, default=4, help="k-means clusters")
    feat.add_argument("--size", **size,
                      help="the image is resized to this many pixels (default: its shorter side to the model's resolution)")
    common(feat, scale.sd_model)

    ev = sub.add_parser("eval", parents=[debug], help="mIoU of a method over a dataset (run under `accelerate launch` to shard)")
    ev.add_argument("--dataset", required=True, choices=list(DATASET_OPTIONS))
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
    return parser
