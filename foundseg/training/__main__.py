import argparse

from . import train_zoo, write_cards

parser = argparse.ArgumentParser(prog="python -m foundseg.training", description=train_zoo.__doc__)
parser.add_argument("--out", default="foundseg/models/zoo", help="directory that receives shapes-clip/ and shapes-sd/")
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()
train_zoo(args.out, args.seed)
write_cards(args.out)
