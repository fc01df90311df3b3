import numpy as np
import pytest
import torch
from PIL import Image

from foundseg.data import load_image


@pytest.fixture
def rgb():
    return np.random.default_rng(0).integers(0, 256, (6, 9, 3), dtype=np.uint8)


def test_path_pil_array_tensor_agree(rgb, tmp_path):
    path = tmp_path / "x.png"
    Image.fromarray(rgb).save(path)
    for source in (path, str(path), Image.fromarray(rgb), rgb, torch.from_numpy(rgb).permute(2, 0, 1)):
        out = load_image(source)
        assert out.dtype == np.uint8 and np.array_equal(out, rgb)


def test_float_array_in_unit_range(rgb):
    assert np.array_equal(load_image(rgb / 255.0), rgb)


def test_grayscale_rgba_palette_16bit(rgb, tmp_path):
    gray = load_image(Image.fromarray(rgb[..., 0]))
    assert gray.shape == (6, 9, 3) and np.array_equal(gray[..., 1], rgb[..., 0])
    rgba = np.dstack([rgb, np.full((6, 9), 255, np.uint8)])
    assert np.array_equal(load_image(Image.fromarray(rgba, "RGBA")), rgb)
    transparent = rgba.copy()
    transparent[..., 3] = 0
    assert (load_image(transparent) == 255).all()  # composited over white
    pal = Image.fromarray(rgb).convert("P")
    assert np.array_equal(load_image(pal), np.asarray(pal.convert("RGB")))
    sixteen = (rgb[..., 0].astype(np.uint16) * 257)
    path = tmp_path / "g16.png"
    Image.fromarray(sixteen).save(path)
    assert np.array_equal(load_image(path)[..., 0], rgb[..., 0])
    assert np.array_equal(load_image(sixteen)[..., 0], rgb[..., 0])


def test_exif_rotation_is_applied(rgb, tmp_path):
    img = Image.fromarray(rgb)
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    path = tmp_path / "r.jpg"
    img.save(path, exif=exif, quality=100)
    assert load_image(path).shape == (9, 6, 3)


@pytest.mark.parametrize("bad, match", [
    (np.zeros((0, 5, 3), np.uint8), "empty"),
    (np.zeros((4, 4, 3), np.int32), "dtype"),
    (np.zeros((4, 4, 2), np.uint8), "shape"),
    (np.full((4, 4, 3), 2.0), r"\[0, 1\]"),
    (np.full((4, 4, 3), np.nan), r"\[0, 1\]"),
    (12, "path, PIL image"),
])
def test_bad_arrays_raise_naming_the_argument(bad, match):
    with pytest.raises(ValueError, match=match) as err:
        load_image(bad, name="photo")
    assert "photo" in str(err.value)


def test_missing_and_non_image_files(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        load_image(tmp_path / "nope.png")
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(ValueError, match="not a readable image"):
        load_image(text)
