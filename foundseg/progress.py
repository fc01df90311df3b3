"""Progress bars that the user can switch off, and that ``TQDM_DISABLE=1`` (set under test) always silences."""
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
