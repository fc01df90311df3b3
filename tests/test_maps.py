"""Score maps resized and normalised the one way every method and figure shares."""
import pytest
import torch

from foundseg.maps import minmax, resize_maps


def test_each_map_is_resized_on_its_own_whatever_the_stacking():
    maps = torch.rand(2, 3, 5, 7, generator=torch.Generator().manual_seed(0))
    together = resize_maps(maps, (20, 28))
    alone = torch.stack([torch.stack([resize_maps(m, (20, 28)) for m in item]) for item in maps])
    assert together.shape == (2, 3, 20, 28)
    torch.testing.assert_close(together, alone, atol=1e-6, rtol=0)
    torch.testing.assert_close(resize_maps(maps[None], (20, 28))[0], together, atol=1e-6, rtol=0)


def test_normalisation_applies_per_map():
    maps = torch.stack([torch.linspace(1, 2, 16).reshape(4, 4), 100 * torch.linspace(1, 3, 16).reshape(4, 4)])
    resized = resize_maps(maps, (8, 8))
    scaled = resize_maps(maps, (8, 8), normalise="minmax")
    torch.testing.assert_close(scaled.amin(dim=(-2, -1)), torch.zeros(2))
    torch.testing.assert_close(scaled.amax(dim=(-2, -1)), torch.ones(2))
    by_max = resize_maps(maps, (8, 8), normalise="max")
    torch.testing.assert_close(by_max, resized / resized.amax(dim=(-2, -1), keepdim=True))
    torch.testing.assert_close(resize_maps(maps, (8, 8), normalise="sigmoid"), resized.sigmoid())


def test_integer_labels_keep_their_values_with_nearest():
    labels = torch.tensor([[0, 2], [1, 3]])
    out = resize_maps(labels, (4, 4), "nearest")
    assert out.dtype == torch.float32 and out.long().unique().tolist() == [0, 1, 2, 3]
    assert out[:2, 2:].eq(2).all()


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="normalise"):
        resize_maps(torch.ones(2, 2), (4, 4), normalise="softmax")
    with pytest.raises(ValueError, match="maps"):
        resize_maps(torch.ones(4), (4, 4))


def test_a_flat_map_scales_to_zeros():
    assert minmax(torch.full((1, 3, 3), 5.0)).eq(0).all()
