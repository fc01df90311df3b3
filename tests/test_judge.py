import numpy as np
import pytest

from foundseg.data import sample
from foundseg.eval import classify_shape, judge


def test_shape_classifier_knows_true_masks():
    hits = [classify_shape(s.mask == s.objects[0].class_id) == s.objects[0].shape
            for s in (sample("test", i) for i in range(600)) if len(s.objects) == 1]
    assert np.mean(hits) >= 0.95


def test_judge_reads_real_renderings():
    s = next(x for x in (sample("val", i) for i in range(50)) if len(x.objects) == 1)
    o = s.objects[0]
    assert judge(s.image, o.colour, o.shape)["shape_ok"]
    other = next(c for c in ("red", "green", "blue") if c != o.colour)
    assert not judge(s.image, other, o.shape)["colour_ok"]
    with pytest.raises(ValueError, match="colour"):
        judge(s.image, "pink", o.shape)
