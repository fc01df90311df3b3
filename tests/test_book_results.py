"""Results a chapter reads instead of recomputing are recomputed here, from scratch, with the shipped models.

Marked ``recompute``: `make recompute` runs them one after the other on every core (the stored results' own
thread count), and CI runs that after `make test`, which leaves them out."""
import json
from unittest import mock
from pathlib import Path

import numpy as np
import pytest

BOOK_DATA = Path(__file__).resolve().parents[1] / "book" / "data"


def _ablation_rows():
    from foundseg.experiments.odise_parts import NEW_ROWS, PAPER_ROWS

    return list({**PAPER_ROWS, **NEW_ROWS})


@pytest.mark.recompute
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("row", _ablation_rows())
def test_chapter_4_reads_the_ablation_its_code_computes(row):
    """Each row of chapter 4's stored ablation (book/data/ablation/) is what its code computes today, for the
    first head seed (every variant, the k-means score and the floor), recomputed from scratch row by row."""
    from foundseg.experiments.odise_parts import NEW_ROWS, PAPER_ROWS, ablation_setting, results_name, run_ablation
    from foundseg.config import current_scale
    from foundseg.models import load_clip, load_sd

    rows, scale = {**PAPER_ROWS, **NEW_ROWS}, current_scale()
    setting = ablation_setting(scale)
    pipe, clip = load_sd(scale.sd_model), load_clip(scale.clip_model)
    stored_path = BOOK_DATA / "ablation" / f"{results_name(pipe, clip, rows, **setting)}.json"
    assert stored_path.exists(), f"chapter 4 has no stored results for the shipped models ({stored_path.name})"
    stored = json.loads(stored_path.read_text())
    assert list(stored["rows"]) == list(rows)
    first = setting["seeds"][:1]
    with mock.patch("foundseg.config.CORE_THREADS", stored["threads"]):  # the stored run's float sums
        recomputed = run_ablation(pipe, clip, {row: rows[row]}, progress=False, **dict(setting, seeds=first))
    assert recomputed["threads"] == stored["threads"]
    assert recomputed["floor"] == pytest.approx(stored["floor"], abs=1e-6)
    for variant, scores in stored["rows"][row].items():
        if variant == "kmeans":
            assert recomputed["rows"][row]["kmeans"] == pytest.approx(scores, abs=1e-3)
            continue
        for metric, values in scores.items():
            np.testing.assert_allclose(values[:1], recomputed["rows"][row][variant][metric], atol=1e-3,
                                       err_msg=f"{row}, {variant}: {metric}")
