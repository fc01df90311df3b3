"""Progress bars that the user can switch off, and that ``TQDM_DISABLE=1`` (set under test) always silences."""
from __future__ import annotations

from tqdm.auto import tqdm


def progress_bar(iterable, desc: str, enabled: bool = True, **kwargs):
    """``tqdm(iterable)`` when ``enabled``; the environment's ``TQDM_DISABLE`` still wins.

    ``desc`` is the bar's label; other keyword arguments go to ``tqdm``.

    >>> bar = progress_bar(range(3), "demo", enabled=False)
    >>> bar.disable, list(bar)
    (True, [0, 1, 2])
    """
    if not enabled:
        kwargs["disable"] = True
    return tqdm(iterable, desc=desc, **kwargs)
