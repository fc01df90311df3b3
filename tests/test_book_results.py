"""Results a chapter reads instead of recomputing are recomputed here, from scratch, with the shipped models."""
import json
from pathlib import Path

import numpy as np
import pytest

BOOK_DATA = Path(__file__).resolve().parents[1] / "book" / "data"


def _ablation_parts():
    """Chapter 4's rows, the implicit captioner's row split by seed (it trains through the UNet for each seed):
    independent parts that the test workers share."""
    from foundseg.eval.ablation import NEW_ROWS, PAPER_ROWS, ablation_setting, trains_captioner
    from foundseg.models import current_scale

    seeds = ablation_setting(current_scale())["seeds"]
    return [part for row, config in {**PAPER_ROWS, **NEW_ROWS}.items()
            for part in ([(row, (s,)) for s in seeds] if trains_captioner(config) else [(row, None)])]


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("row, seeds", _ablation_parts())
def test_chapter_4_reads_the_ablation_its_code_computes(row, seeds):
    """Each row of chapter 4's stored ablation (book/data/ablation/) is what its code computes today; rows and
    seeds are computed independently, so each part is recomputed on its own."""
    from foundseg.eval.ablation import NEW_ROWS, PAPER_ROWS, ablation_setting, results_name, run_ablation
    from foundseg.models import current_scale, load_clip, load_sd

    rows, scale = {**PAPER_ROWS, **NEW_ROWS}, current_scale()
    setting = ablation_setting(scale)
    pipe, clip = load_sd(scale.sd_model), load_clip(scale.clip_model)
    stored_path = BOOK_DATA / "ablation" / f"{results_name(pipe, clip, rows, **setting)}.json"
    assert stored_path.exists(), f"chapter 4 has no stored results for the shipped models ({stored_path.name})"
    stored = json.loads(stored_path.read_text())
    assert list(stored) == list(rows)
    picked = [setting["seeds"].index(s) for s in seeds] if seeds else list(range(len(setting["seeds"])))
    recomputed = run_ablation(pipe, clip, {row: rows[row]}, progress=False, **dict(setting, seeds=seeds or setting["seeds"]))
    for metric, values in stored[row].items():
        np.testing.assert_allclose([values[i] for i in picked], recomputed[row][metric], atol=1e-3,
                                   err_msg=f"{row}: {metric}")
