"""Environment for every test run, also `pytest book/<chapter>.ipynb` alone: nbval's notebook kernels inherit it."""
import os

os.environ.setdefault("TQDM_DISABLE", "1")          # progress bars never reach stderr under test
os.environ.setdefault("HF_HUB_OFFLINE", "1")        # nothing in the tests touches the network
os.environ.setdefault("FOUNDSEG_SCALE", "shapes")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
if "PYTEST_XDIST_WORKER" in os.environ:  # one test process per core (pytest -n): each on one thread, so that
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # batched work does not fight the other processes for cores

from foundseg.config import apply_thread_policy  # noqa: E402

apply_thread_policy()  # the tests run the shapes world's models as the chapters do: one thread


LONGEST_FIRST = ("book/03_attention_noised_once.ipynb", "tests/test_zoo.py", "book/06_diffusion_transformers.ipynb",
                 "book/02_clip_localizes.ipynb", "book/05_survey.ipynb", "tests/test_install.py")
"""The files that take longest, longest first, as ``make test --durations=0`` measured them on a two-core
machine."""


def pytest_collection_modifyitems(items):
    """The test workers start with :data:`LONGEST_FIRST`, so that both finish together; each file's tests keep
    their collected order."""
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))
