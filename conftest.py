"""Environment for every test run, also `pytest book/<chapter>.ipynb` alone: nbval's notebook kernels inherit it."""
import os

os.environ.setdefault("TQDM_DISABLE", "1")          # progress bars never reach stderr under test
os.environ.setdefault("HF_HUB_OFFLINE", "1")        # nothing in the tests touches the network
os.environ.setdefault("FOUNDSEG_SCALE", "shapes")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
if "PYTEST_XDIST_WORKER" in os.environ:  # one test process per core (pytest -n): each on one thread, so that
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # batched work does not fight the other processes for cores

from foundseg.models import apply_thread_policy  # noqa: E402

apply_thread_policy()  # the tests run the shapes world's models as the chapters do: one thread
