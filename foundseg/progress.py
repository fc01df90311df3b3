"""Progress bars that the user can switch off, and that ``TQDM_DISABLE=1`` (set under test) always silences."""
from __future__ import annotations

from tqdm.auto import tqdm


def progress_bar(iterable, desc: str, enabled: bool = True, **kwargs):
    """``tqdm(iterable)`` when ``enabled``; the environment's ``TQDM_DISABLE`` still wins."""
    if not enabled:
        kwargs["disable"] = True
    return tqdm(iterable, desc=desc, **kwargs)
