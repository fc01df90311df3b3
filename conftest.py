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


PARTS_FILES = ("tests/test_book_results.py",)
"""Files whose tests are independent, long parts: any test worker may take each one."""


def pytest_collection_modifyitems(items):
    """The longest work first, so that the test workers finish together: the notebooks (each a file a worker
    runs whole), then the parts of :data:`PARTS_FILES`, then the rest; each group in its collected order."""
    def group(item):
        path = item.nodeid.split("::")[0]
        return 0 if path.endswith(".ipynb") else 1 if path in PARTS_FILES else 2

    items.sort(key=group)


def pytest_xdist_make_scheduler(config, log):
    """Test workers take whole files (module fixtures are built once, a notebook's cells run in order in one
    kernel), except the files of :data:`PARTS_FILES`, whose tests they share out one by one."""
    from xdist.scheduler import LoadFileScheduling

    class FilesAndParts(LoadFileScheduling):
        def _split_scope(self, nodeid):
            scope = super()._split_scope(nodeid)
            return nodeid if scope in PARTS_FILES else scope

    return FilesAndParts(config, log)
