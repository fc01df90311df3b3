"""``python -m foundseg.training --out DIR``: train the zoo into DIR (``foundseg zoo train`` also writes the cards)."""
import argparse

from . import train_zoo

parser = argparse.ArgumentParser(prog="python -m foundseg.training", description=__doc__)
parser.add_argument("--out", required=True, help="directory for shapes-clip/, shapes-sd/ and shapes-dit/")
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--device", default="cpu")
parser.add_argument("--force", action="store_true", help="replace the models already in --out")
args = parser.parse_args()
try:
    train_zoo(args.out, args.seed, device=args.device, force=args.force)
except FileExistsError as err:
    parser.error(str(err))
