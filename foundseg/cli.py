"""The ``foundseg`` command line."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _zoo_train(args) -> None:
    from .training import train_zoo, write_cards

    train_zoo(args.out, args.seed)
    if not args.no_card:
        write_cards(args.out)


def _zoo_card(args) -> None:
    from .training import write_cards

    metrics = write_cards(args.out, n_images=args.images, seeds=args.seeds)
    print(json.dumps(metrics, indent=2))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="foundseg", description="CLIP and Stable Diffusion for dense recognition.")
    sub = parser.add_subparsers(dest="command", required=True)
    zoo = sub.add_parser("zoo", help="the shapes-world model zoo").add_subparsers(dest="action", required=True)
    default_out = str(Path(__file__).parent / "models" / "zoo")
    train = zoo.add_parser("train", help="train shapes-clip and shapes-sd from scratch, then write their model cards")
    train.add_argument("--out", default=default_out, help="directory for shapes-clip/ and shapes-sd/ (default: the package's zoo)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--no-card", action="store_true", help="skip the evaluation and model cards")
    train.set_defaults(func=_zoo_train)
    card = zoo.add_parser("card", help="re-measure the models in --out and rewrite their model cards")
    card.add_argument("--out", default=default_out)
    card.add_argument("--images", type=int, default=1000, help="test images for the CLIP metrics")
    card.add_argument("--seeds", type=int, default=3, help="samples per (colour, shape) prompt for the SD metrics")
    card.set_defaults(func=_zoo_card)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    args.func(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
