"""Numbers reported by the paper, shipped inside the package so a chapter opened alone can read them."""
from __future__ import annotations

import csv
import io
from importlib import resources


def table1() -> list[dict[str, str]]:
    """The paper's Table 1 (ODISE ablation, mIoU on six benchmarks), one dict per row; empty strings mark
    numbers the paper does not give.

    >>> rows = table1()
    >>> [r["method"] for r in rows][:2], rows[1]["A-150"], rows[0]["PAS-21"]
    (['MaskCLIP', 'ODISE'], '29.9', '')
    """
    text = resources.files(__package__).joinpath("paper", "table1_odise.csv").read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text)))
