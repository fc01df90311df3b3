import sys

from ..cli import main

sys.exit(main(["zoo", "train", *sys.argv[1:]]))
