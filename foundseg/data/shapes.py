"""The shapes world: a deterministic synthetic dataset of coloured shapes.

Each sample is addressed by ``(split, index, seed)`` and carries an RGB image,
a per-pixel class mask (0 = background, 1..K = :data:`CLASSES`), a caption and
the list of drawn objects. Geometry is defined in relative units, so any image
size from 32 px up renders the same scene.

>>> CLASSES[:3], len(CLASSES), UNSEEN_CLASSES
(('circle', 'square', 'triangle'), 8, ('diamond', 'heart'))
>>> SEEN_CLASSES
('circle', 'square', 'triangle', 'star', 'cross', 'crescent')
>>> SPLITS, COLOURS["red"]
(('train', 'val', 'test'), (215, 40, 40))
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

CLASSES = ("circle", "square", "triangle", "diamond", "star", "cross", "heart", "crescent")
"""Shape classes; class id ``k`` in a mask means ``CLASSES[k - 1]``."""

UNSEEN_CLASSES = ("diamond", "heart")
"""Classes held out of training for open-vocabulary experiments."""

SEEN_CLASSES = tuple(c for c in CLASSES if c not in UNSEEN_CLASSES)
"""The training classes: :data:`CLASSES` without :data:`UNSEEN_CLASSES`, in class-id order."""

COLOURS = {
    "red": (215, 40, 40),
    "green": (40, 170, 60),
    "blue": (45, 85, 225),
    "yellow": (235, 210, 40),
    "purple": (150, 60, 200),
    "orange": (245, 140, 30),
}
"""Object colours by name; every object gets its colour with a small jitter."""

SPLITS = ("train", "val", "test")
"""Split names; each split is its own stream of samples."""
DEFAULT_SIZE = 32
MIN_SIZE = 32
_MAX_OBJECTS = 3
_MIN_VISIBLE = 0.55  # fraction of an object's own area that must stay visible


@dataclass(frozen=True)
class ShapeObject:
    """One drawn object: class name and id, colour name, box (x0, y0, x1, y1) in pixels, exclusive end.

    ``shape`` is a name from :data:`CLASSES`, ``class_id`` its id in the mask (1-based), ``colour`` a key of
    :data:`COLOURS` and ``bbox`` the object's full extent, including any part another object covers.

    >>> obj = sample("val", 3).objects[0]
    >>> obj.shape, obj.class_id, obj.colour
    ('diamond', 4, 'purple')
    >>> ShapeObject("circle", 1, "red", (2, 2, 10, 10))
    ShapeObject(shape='circle', class_id=1, colour='red', bbox=(2, 2, 10, 10))
    """

    shape: str
    class_id: int
    colour: str
    bbox: tuple[int, int, int, int]


@dataclass(frozen=True)
class Sample:
    """A shapes-world sample: ``image`` (H, W, 3) uint8, ``mask`` (H, W) uint8, caption, objects.

    ``objects`` holds one :class:`ShapeObject` per drawn object, in drawing order (later ones on top).

    >>> s = sample("val", 0)
    >>> s.image.shape, s.image.dtype, s.mask.shape
    ((32, 32, 3), dtype('uint8'), (32, 32))
    >>> s.caption
    'a green square, a purple diamond and a red circle'
    >>> s.class_ids, len(s.objects)
    ((1, 2, 4), 3)
    """

    image: np.ndarray
    mask: np.ndarray
    caption: str
    objects: tuple[ShapeObject, ...]

    @property
    def class_ids(self) -> tuple[int, ...]:
        """Class ids of the objects that are visible in the mask, sorted.

        >>> sample("val", 3).class_ids
        (4,)
        """
        return tuple(int(c) for c in np.unique(self.mask) if c)


def article(word: str) -> str:
    """The indefinite article for ``word`` (a lower-case word).

    >>> article("orange"), article("red")
    ('an', 'a')
    """
    return "an" if word[0] in "aeiou" else "a"


def caption_for(objects) -> str:
    """Caption naming colour and shape of each object: "a red circle and a blue square".

    ``objects`` is a non-empty sequence of :class:`ShapeObject` (anything with ``colour`` and ``shape``).

    >>> caption_for([ShapeObject("circle", 1, "red", (0, 0, 8, 8)), ShapeObject("star", 5, "orange", (8, 8, 16, 16))])
    'a red circle and an orange star'
    """
    words = [f"{article(o.colour)} {o.colour} {o.shape}" for o in objects]
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " and " + words[-1]


def _rng(split: str, index: int, seed: int) -> np.random.Generator:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if not isinstance(index, (int, np.integer)) or index < 0:
        raise ValueError(f"index must be a non-negative integer, got {index!r}")
    # The split enters the generator's key, so the three splits are disjoint streams.
    return np.random.default_rng([int(seed), zlib.crc32(split.encode()), int(index)])


def shape_mask(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Inside-test of a unit shape; ``u`` right, ``v`` down, the shape spans about [-1, 1]²."""
    au, av = np.abs(u), np.abs(v)
    if shape == "circle":
        return u * u + v * v <= 1.0
    if shape == "square":
        return np.maximum(au, av) <= 0.82
    if shape == "triangle":
        return (v <= 0.62) & (v >= -0.95 + 1.8 * au)
    if shape == "diamond":
        return au / 0.72 + av <= 1.0
    if shape == "cross":
        return ((au <= 0.32) & (av <= 1.0)) | ((av <= 0.32) & (au <= 1.0))
    if shape == "star":
        theta = np.arctan2(u, -v)  # 0 points up
        sector = np.pi / 5
        a = np.abs((theta + sector) % (2 * sector) - sector)
        # Boundary between the tip (radius 1, angle 0) and the notch (radius 0.42, angle pi/5).
        px, py = 1.0, 0.0
        qx, qy = 0.42 * np.cos(sector), 0.42 * np.sin(sector)
        nx, ny = qy - py, px - qx
        d = nx * px + ny * py
        r = np.sqrt(u * u + v * v)
        return r * (nx * np.cos(a) + ny * np.sin(a)) <= d
    if shape == "heart":
        x, y = u * 1.15, -v * 1.15 + 0.15
        return (x * x + y * y - 1.0) ** 3 - x * x * y ** 3 <= 0.0
    if shape == "crescent":
        return (u * u + v * v <= 1.0) & ((u - 0.5) ** 2 + (v + 0.1) ** 2 > 0.72)
    raise ValueError(f"unknown shape {shape!r}")


def _background(rng: np.random.Generator, size: int, yy, xx) -> np.ndarray:
    """A low-saturation background: plain, stripes, checker board or blotchy noise."""
    base = rng.uniform(70, 190)
    tint = rng.uniform(-18, 18, size=3)
    c1 = np.clip(base + tint, 0, 255)
    c2 = np.clip(c1 + rng.choice([-1, 1]) * rng.uniform(20, 45), 0, 255)
    kind = rng.integers(4)
    if kind == 0:
        return np.broadcast_to(c1, (size, size, 3)).astype(np.float32)
    period = rng.uniform(0.12, 0.3) * size
    if kind == 1:
        angle = rng.uniform(0, np.pi)
        pattern = np.sin((np.cos(angle) * xx + np.sin(angle) * yy) * (2 * np.pi / period)) > 0
    elif kind == 2:
        pattern = ((xx // (period / 2)).astype(int) + (yy // (period / 2)).astype(int)) % 2 == 0
    else:
        coarse = rng.uniform(0, 1, size=(5, 5))
        idx = (yy * 5 // size).astype(int), (xx * 5 // size).astype(int)
        pattern = coarse[idx] > 0.5
    return np.where(pattern[..., None], c1, c2).astype(np.float32)


def sample(split: str, index: int, seed: int = 0, size: int = DEFAULT_SIZE) -> Sample:
    """Render sample ``index`` of ``split``; the same arguments always give the same arrays.

    ``split`` is one of :data:`SPLITS`, ``index`` a non-negative integer, ``seed`` picks another world
    (other scenes for every index) and ``size`` is the image side in pixels (at least 32); the scene
    does not depend on ``size``.

    >>> s = sample("train", 0, size=64)
    >>> s.image.shape, s.mask.shape, s.caption
    ((64, 64, 3), (64, 64), 'a yellow crescent, a blue star and a blue cross')
    >>> sample("train", 0).caption == s.caption
    True
    >>> sample("train", 0, seed=1).caption
    'a purple heart'
    """
    if not isinstance(size, (int, np.integer)) or size < MIN_SIZE:
        raise ValueError(f"size must be an integer of at least {MIN_SIZE} pixels, got {size!r}")
    rng = _rng(split, index, seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    image = _background(rng, size, yy, xx)
    n_obj = int(rng.choice([1, 2, 3], p=[0.4, 0.35, 0.25]))
    shapes = rng.choice(len(CLASSES), size=n_obj, replace=False)
    colours = rng.choice(len(COLOURS), size=n_obj)
    colour_names = list(COLOURS)
    for _attempt in range(30):
        radii = rng.uniform(0.13, 0.3 if n_obj > 1 else 0.38, size=n_obj) * size
        centres = rng.uniform(radii[:, None], size - radii[:, None], size=(n_obj, 2))
        masks = [shape_mask(CLASSES[s], (xx - cx) / r, (yy - cy) / r) for s, r, (cx, cy) in zip(shapes, radii, centres)]
        label = np.zeros((size, size), np.uint8)
        for s, m in zip(shapes, masks):
            label[m] = s + 1
        areas = [m.sum() for m in masks]
        if all(a > 0 and (label == s + 1).sum() >= _MIN_VISIBLE * a for s, a in zip(shapes, areas)):
            break
    objects = []
    for s, c, m in zip(shapes, colours, masks):
        rgb = np.clip(np.array(COLOURS[colour_names[c]]) + rng.uniform(-15, 15, size=3), 0, 255)
        image[m] = rgb
        ys, xs = np.nonzero(m)
        bbox = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
        objects.append(ShapeObject(CLASSES[s], int(s) + 1, colour_names[c], bbox))
    image += rng.normal(0, 4, size=image.shape).astype(np.float32)
    image = np.clip(image, 0, 255).astype(np.uint8)
    return Sample(image, label, caption_for(objects), tuple(objects))


def single_object_indices(samples) -> list[int]:
    """Positions in ``samples`` of those that show exactly one object: the single-object images on which
    classification, the shape judge and the VAE round trip are measured.

    >>> single_object_indices(sample("test", i) for i in range(9))
    [0, 3, 8]
    """
    return [i for i, s in enumerate(samples) if len(s.objects) == 1]


def batch(split: str, indices, seed: int = 0, size: int = DEFAULT_SIZE) -> tuple[np.ndarray, np.ndarray, list[Sample]]:
    """Render several samples; returns images (N, H, W, 3), masks (N, H, W) and the samples.

    ``indices`` is a non-empty iterable of sample indices; ``split``, ``seed`` and ``size`` are as in
    :func:`sample`.

    >>> images, masks, samples = batch("val", [0, 3])
    >>> images.shape, masks.shape
    ((2, 32, 32, 3), (2, 32, 32))
    >>> [s.caption for s in samples]
    ['a green square, a purple diamond and a red circle', 'a purple diamond']
    """
    samples = [sample(split, int(i), seed, size) for i in indices]
    if not samples:
        raise ValueError("indices must name at least one sample")
    return np.stack([s.image for s in samples]), np.stack([s.mask for s in samples]), samples
