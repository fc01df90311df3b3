"""One way to compare two settings measured several times (seeds or zoos): a difference counts only when the
two ranges of values do not overlap."""
from __future__ import annotations

import numpy as np


def compare(a, b) -> dict:
    """Compare the values ``a`` and ``b`` of two settings (one per seed or zoo, in the same order): the
    difference of the means, ``beyond`` (True when every value of one lies above every value of the other),
    and how many paired values agree with the sign of the mean difference (``agree`` of ``n``).

    >>> r = compare([0.62, 0.60, 0.65], [0.45, 0.50, 0.48])
    >>> round(r["diff"], 3), r["beyond"], r["agree"], r["n"], r["reading"]
    (0.147, True, 3, 3, 'beyond the spread (3 of 3 agree)')
    >>> compare([0.50, 0.60], [0.55, 0.52])["reading"]
    'within the spread (1 of 2 agree)'
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.size == 0 or a.shape != b.shape:
        raise ValueError(f"a and b must hold the same non-zero number of values, got {a.size} and {b.size}")
    diff = float(a.mean() - b.mean())
    beyond = bool(a.min() > b.max() or b.min() > a.max())
    agree = int(np.sum(np.sign(a - b) == np.sign(diff))) if diff else 0
    reading = f"{'beyond' if beyond else 'within'} the spread ({agree} of {a.size} agree)"
    return {"diff": diff, "beyond": beyond, "agree": agree, "n": int(a.size), "reading": reading}
