import subprocess
import sys

import numpy as np
import pytest

from foundseg.data import CLASSES, COLOURS, SEEN_CLASSES, UNSEEN_CLASSES, batch, sample
from foundseg.data.shapes import caption_for


def test_sample_arrays_and_labels():
    s = sample("train", 3)
    assert s.image.shape == (32, 32, 3) and s.image.dtype == np.uint8
    assert s.mask.shape == (32, 32) and s.mask.dtype == np.uint8
    assert set(np.unique(s.mask)) <= set(range(len(CLASSES) + 1))
    assert s.caption == caption_for(s.objects)
    for o in s.objects:
        assert o.shape == CLASSES[o.class_id - 1] and o.colour in COLOURS
        assert o.shape in s.caption and o.colour in s.caption
        x0, y0, x1, y1 = o.bbox
        assert 0 <= x0 < x1 <= 32 and 0 <= y0 < y1 <= 32


def test_world_has_the_promised_variety():
    samples = [sample("train", i) for i in range(600)]
    assert len(CLASSES) >= 8 and len(COLOURS) >= 6
    assert {len(s.objects) for s in samples} == {1, 2, 3}
    assert {o.shape for s in samples for o in s.objects} == set(CLASSES)
    assert {o.colour for s in samples for o in s.objects} == set(COLOURS)
    # occlusion: some object loses pixels to a later one, yet every object stays visible
    occluded = 0
    for s in samples:
        for i, o in enumerate(s.objects):
            assert (s.mask == o.class_id).any()
            occluded += any(later.bbox[0] < o.bbox[2] and o.bbox[0] < later.bbox[2] and later.bbox[1] < o.bbox[3]
                            and o.bbox[1] < later.bbox[3] for later in s.objects[i + 1:])
    assert occluded > 20
    # plain and textured backgrounds: number of distinct background colours (before pixel noise) varies
    bg_std = [s.image[s.mask == 0].std() for s in samples[:100]]
    assert min(bg_std) < 6 < max(bg_std)
    sizes = [(o.bbox[2] - o.bbox[0]) for s in samples for o in s.objects]
    assert min(sizes) < 10 and max(sizes) > 20


def test_any_size_renders_the_same_scene():
    small, large = sample("val", 5, size=32), sample("val", 5, size=96)
    assert large.image.shape == (96, 96, 3)
    assert small.caption == large.caption
    assert [o.shape for o in small.objects] == [o.shape for o in large.objects]


@pytest.mark.parametrize("kwargs, word", [({"split": "dev"}, "split"), ({"index": -1}, "index"),
                                          ({"size": 16}, "size"), ({"size": 40.0}, "size")])
def test_bad_arguments_name_themselves(kwargs, word):
    args = {"split": "train", "index": 0, **kwargs}
    with pytest.raises(ValueError, match=word):
        sample(**args)


def test_splits_never_share_an_image():
    seen = {sample("train", i).image.tobytes() for i in range(500)}
    assert not seen & {sample("test", i).image.tobytes() for i in range(500)}
    assert not seen & {sample("val", i).image.tobytes() for i in range(500)}


def test_seen_unseen_partition_classes():
    assert set(SEEN_CLASSES) | set(UNSEEN_CLASSES) == set(CLASSES)
    assert not set(SEEN_CLASSES) & set(UNSEEN_CLASSES) and UNSEEN_CLASSES


def test_batch_stacks_samples():
    images, masks, samples = batch("test", range(4), size=48)
    assert images.shape == (4, 48, 48, 3) and masks.shape == (4, 48, 48)
    assert np.array_equal(images[2], sample("test", 2, size=48).image)
    with pytest.raises(ValueError, match="indices"):
        batch("test", [])


def test_same_arguments_same_arrays_in_two_processes():
    code = ("import hashlib; from foundseg.data import sample; "
            "print(hashlib.sha256(b''.join(sample('train', i, 7, 64).image.tobytes() + sample('train', i, 7, 64)"
            ".mask.tobytes() for i in range(50))).hexdigest())")
    digests = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
               for _ in range(2)}
    assert len(digests) == 1
    assert sample("train", 1, seed=1).image.tobytes() != sample("train", 1, seed=2).image.tobytes()
