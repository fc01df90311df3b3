"""Progress bars that the user can switch off, and that ``TQDM_DISABLE=1`` (set under test) always silences; and
the model libraries' own logging and loading bars, silenced where they tell the reader nothing to act on."""
from __future__ import annotations

import os

from tqdm.auto import tqdm


def progress_bar(iterable, desc: str, enabled: bool = True, **kwargs):
    """``tqdm(iterable)`` when ``enabled``; the environment's ``TQDM_DISABLE`` still wins.

    ``desc`` is the bar's label; other keyword arguments go to ``tqdm``. ``TQDM_DISABLE`` is read here because
    tqdm's notebook bars ignore it and would leave empty progress widgets in executed notebooks.

    >>> bar = progress_bar(range(3), "demo", enabled=False)
    >>> bar.disable, list(bar)
    (True, [0, 1, 2])
    """
    if not enabled or os.environ.get("TQDM_DISABLE", "").lower() in ("1", "true", "yes"):
        kwargs["disable"] = True
    return tqdm(iterable, desc=desc, **kwargs)


def silence_libraries() -> None:
    """Only errors from transformers, diffusers and the hub's logging, and none of their loading bars (also for
    processes they start, through their environment variables)."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import diffusers
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    diffusers.utils.logging.set_verbosity_error()
    diffusers.utils.logging.disable_progress_bar()
