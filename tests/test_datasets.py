"""Tiny fixture datasets written in each real layout, read back."""
import numpy as np
import pytest
from PIL import Image

from foundseg.data import ade20k, coco_stuff, label_folder, pascal_context59, voc2012

RNG = np.random.default_rng(0)


def _image(path, h=6, w=8):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)


def _label(path, values):
    """A grayscale label PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(values, np.uint8)).save(path)


def _as_palette(values):
    """A palette label PNG, as VOC ships them: pixel values are palette indices."""
    img = Image.new("P", (np.shape(values)[1], np.shape(values)[0]))
    img.putpalette([v for i in range(256) for v in (i, (3 * i) % 256, (7 * i) % 256)])
    img.putdata(np.asarray(values, np.uint8).ravel().tolist())
    return img


LABEL = np.array([[0, 0, 1, 1, 15, 15, 255, 255]] * 6)


def test_voc2012_layout(tmp_path):
    root = tmp_path / "VOCdevkit" / "VOC2012"
    for i in ("2007_000032", "2007_000039"):
        _image(root / "JPEGImages" / f"{i}.jpg")
        (root / "SegmentationClass").mkdir(parents=True, exist_ok=True)
        _as_palette(LABEL).save(root / "SegmentationClass" / f"{i}.png")
    (root / "ImageSets" / "Segmentation").mkdir(parents=True)
    (root / "ImageSets" / "Segmentation" / "val.txt").write_text("2007_000032\n2007_000039\n")
    ds = voc2012(root, "val")
    assert len(ds) == 2 and ds.class_names[15] == "person" and len(ds.class_names) == 21
    image, label, name = ds[1]
    assert image.shape == (6, 8, 3) and name == "2007_000039"
    assert np.array_equal(label, LABEL)  # palette indices are the class ids; 255 stays the ignore label
    with pytest.raises(ValueError, match="missing split file .*train.txt"):
        voc2012(root, "train")


def test_ade20k_reduce_zero_label(tmp_path):
    root = tmp_path / "ADEChallengeData2016"
    _image(root / "images" / "validation" / "ADE_val_00000001.jpg")
    _label(root / "annotations" / "validation" / "ADE_val_00000001.png", [[0, 1, 150, 2, 0, 1, 1, 1]] * 6)
    ds = ade20k(root)
    _, label, _ = ds[0]
    assert label[0].tolist() == [255, 0, 149, 1, 255, 0, 0, 0]
    assert len(ds.class_names) == 150 and ds.class_names[0] == "wall"


def test_pascal_context_and_coco_stuff_folders(tmp_path):
    _image(tmp_path / "pc" / "img" / "2008_000002.jpg")
    _label(tmp_path / "pc" / "lab" / "2008_000002.png", [[0, 1, 59, 2, 2, 2, 2, 2]] * 6)
    (tmp_path / "pc" / "val.txt").write_text("2008_000002\n")
    pc = pascal_context59(tmp_path / "pc" / "img", tmp_path / "pc" / "lab", tmp_path / "pc" / "val.txt")
    assert pc[0][1][0].tolist() == [255, 0, 58, 1, 1, 1, 1, 1] and len(pc.class_names) == 59
    _image(tmp_path / "coco" / "img" / "000000000139.jpg")
    _label(tmp_path / "coco" / "lab" / "000000000139_labelTrainIds.png", [[0, 170, 255, 3, 3, 3, 3, 3]] * 6)
    cs = coco_stuff(tmp_path / "coco" / "img", tmp_path / "coco" / "lab")
    assert cs[0][1][0].tolist() == [0, 170, 255, 3, 3, 3, 3, 3] and len(cs.class_names) == 171


def test_generic_folder_and_its_errors(tmp_path):
    (tmp_path / "classes.txt").write_text("sky\nroad\n\ncar\n")
    _image(tmp_path / "img" / "a.png")
    _label(tmp_path / "lab" / "a.png", [[0, 1, 2, 2, 1, 0, 0, 0]] * 6)
    _image(tmp_path / "img" / "b.png", h=5)
    _label(tmp_path / "lab" / "b.png", [[0] * 8] * 6)
    _image(tmp_path / "img" / "c.png")
    _label(tmp_path / "lab" / "c.png", [[0, 7, 0, 0, 0, 0, 0, 0]] * 6)
    _image(tmp_path / "img" / "d.png")
    ds = label_folder(tmp_path / "img", tmp_path / "lab", tmp_path / "classes.txt", image_suffix=".png")
    assert ds.class_names == ["sky", "road", "car"] and len(ds) == 4
    assert ds[0][1][0].tolist() == [0, 1, 2, 2, 1, 0, 0, 0]
    with pytest.raises(ValueError, match=r"lab/b.png is 8x6 but image .*img/b.png is 8x5"):
        ds[1]
    with pytest.raises(ValueError, match=r"lab/c.png holds \[7\], outside the 3 classes"):
        ds[2]
    with pytest.raises(ValueError, match=r"missing file .*lab/d.png"):
        ds[3]
    with pytest.raises(ValueError, match="class_file: no such file"):
        label_folder(tmp_path / "img", tmp_path / "lab", tmp_path / "nope.txt", image_suffix=".png")
    with pytest.raises(ValueError, match="images_dir .* is not a directory"):
        label_folder(tmp_path / "nothing", tmp_path / "lab", tmp_path / "classes.txt")
