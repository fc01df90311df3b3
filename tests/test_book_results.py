"""Results a chapter reads instead of recomputing are recomputed here, from scratch, with the shipped models."""
import json
from pathlib import Path

import numpy as np
import pytest

BOOK_DATA = Path(__file__).resolve().parents[1] / "book" / "data"


@pytest.mark.slow
@pytest.mark.timeout(3600)  # about ten minutes on an idle two-core machine
def test_chapter_4_reads_the_ablation_its_code_computes(tmp_path):
    from foundseg.eval.ablation import NEW_ROWS, PAPER_ROWS, ablation_setting, run_ablation
    from foundseg.models import current_scale, load_clip, load_sd

    scale = current_scale()
    recomputed = run_ablation(load_sd(scale.sd_model), load_clip(scale.clip_model), {**PAPER_ROWS, **NEW_ROWS},
                              progress=False, results_dir=tmp_path, **ablation_setting(scale))
    name = next(tmp_path.iterdir()).name
    stored_path = BOOK_DATA / "ablation" / name
    assert stored_path.exists(), f"chapter 4 has no stored results for the shipped models ({name})"
    stored = json.loads(stored_path.read_text())
    assert list(stored) == list(recomputed)
    for row, scores in stored.items():
        for metric, values in scores.items():
            np.testing.assert_allclose(values, recomputed[row][metric], atol=1e-3, err_msg=f"{row}: {metric}")
