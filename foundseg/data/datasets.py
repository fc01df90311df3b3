"""Readers for the layouts real segmentation benchmarks ship in.

Each reader returns a :class:`SegmentationDataset`: pairs of image and label
PNG paths, the class names, the ignore label and whether labels are shifted
down by one (the reduce-zero-label convention of ADE20K and Pascal Context
59, where 0 means "unlabelled"). Items are read lazily and checked: a missing
file, an image and label of different sizes, or a label outside the classes
raises a ``ValueError`` naming the file.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .images import load_image

CLASSNAMES_DIR = Path(__file__).parent / "classnames"


def read_class_names(path) -> list[str]:
    """One class name per line (blank lines skipped); ``path`` is the class-name text file.

    >>> names = read_class_names(CLASSNAMES_DIR / "voc21.txt")
    >>> len(names), names[:3]
    (21, ['background', 'aeroplane', 'bicycle'])
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"class_file: no such file {str(path)!r}")
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not names:
        raise ValueError(f"class_file {str(path)!r} lists no class")
    return names


@dataclass
class SegmentationDataset:
    """Image/label pairs with class names; ``dataset[i]`` is (image (H, W, 3) uint8, label (H, W) int64, id).

    ``name`` is used in error messages, ``pairs`` lists (image path, label PNG path), ``class_names`` gives
    the name of each label value, ``ignore_index`` marks pixels left out of scoring and ``reduce_zero_label``
    maps label 0 to ``ignore_index`` and shifts the others down by one. The id is the image file's stem.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     Image.new("RGB", (3, 2)).save(Path(tmp, "a.png"))
    ...     Image.fromarray(np.array([[0, 1, 2]] * 2, np.uint8)).save(Path(tmp, "a_label.png"))
    ...     ds = SegmentationDataset("demo", [(Path(tmp, "a.png"), Path(tmp, "a_label.png"))], ["cat", "dog"],
    ...                              reduce_zero_label=True)
    ...     image, label, name = ds[0]
    >>> len(ds), image.shape, label.tolist(), name
    (1, (2, 3, 3), [[255, 0, 1], [255, 0, 1]], 'a')
    """

    name: str
    pairs: list[tuple[Path, Path]]
    class_names: list[str]
    ignore_index: int = 255
    reduce_zero_label: bool = False

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int):
        image_path, label_path = self.pairs[i]
        for p in (image_path, label_path):
            if not p.is_file():
                raise ValueError(f"{self.name}: missing file {p}")
        image = load_image(image_path, f"image {image_path}")
        with Image.open(label_path) as img:
            if img.mode not in ("P", "L", "I", "I;16"):
                raise ValueError(f"{self.name}: label {label_path} must be a palette or grayscale PNG, got mode {img.mode}")
            label = np.asarray(img, dtype=np.int64)
        if label.shape != image.shape[:2]:
            raise ValueError(f"{self.name}: label {label_path} is {label.shape[1]}x{label.shape[0]} but image "
                             f"{image_path} is {image.shape[1]}x{image.shape[0]}")
        if self.reduce_zero_label:
            label = np.where(label == 0, self.ignore_index, label - 1)
            label[label == self.ignore_index - 1] = self.ignore_index
        bad = (label != self.ignore_index) & ((label < 0) | (label >= len(self.class_names)))
        if bad.any():
            raise ValueError(f"{self.name}: label {label_path} holds {sorted(set(label[bad].tolist()))[:5]}, outside "
                             f"the {len(self.class_names)} classes (ignore {self.ignore_index})")
        return image, label, image_path.stem


def _ids_from_split(split_file: Path, name: str) -> list[str]:
    if not split_file.is_file():
        raise ValueError(f"{name}: missing split file {split_file}")
    return [line.strip() for line in split_file.read_text().splitlines() if line.strip()]


def voc2012(root, split: str = "val") -> SegmentationDataset:
    """PASCAL VOC 2012 (``root`` = VOC2012 folder): JPEGImages/, palette PNGs in SegmentationClass/,
    ImageSets/Segmentation/{split}.txt; 21 classes with background, 255 = object boundaries (ignored).

    ``split`` names the id list in ImageSets/Segmentation (``train``, ``val``, ``trainval``).

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     root = Path(tmp)
    ...     for d in ("ImageSets/Segmentation", "JPEGImages", "SegmentationClass"):
    ...         (root / d).mkdir(parents=True)
    ...     _ = (root / "ImageSets/Segmentation/val.txt").write_text("2007_000033")
    ...     Image.new("RGB", (6, 4)).save(root / "JPEGImages/2007_000033.jpg")
    ...     Image.new("L", (6, 4), 15).save(root / "SegmentationClass/2007_000033.png")
    ...     ds = voc2012(root)
    ...     image, label, name = ds[0]
    >>> len(ds), len(ds.class_names), image.shape, ds.class_names[label[0, 0]], name
    (1, 21, (4, 6, 3), 'person', '2007_000033')
    """
    root = Path(root)
    ids = _ids_from_split(root / "ImageSets" / "Segmentation" / f"{split}.txt", "voc2012")
    pairs = [(root / "JPEGImages" / f"{i}.jpg", root / "SegmentationClass" / f"{i}.png") for i in ids]
    return SegmentationDataset("voc2012", pairs, read_class_names(CLASSNAMES_DIR / "voc21.txt"))


def _folder_pairs(images_dir: Path, labels_dir: Path, image_suffix: str, label_suffix: str, name: str, ids=None):
    for d, what in ((images_dir, "images_dir"), (labels_dir, "labels_dir")):
        if not d.is_dir():
            raise ValueError(f"{name}: {what} {d} is not a directory")
    stems = ids if ids is not None else sorted(p.name[: -len(image_suffix)] for p in images_dir.glob(f"*{image_suffix}"))
    if not stems:
        raise ValueError(f"{name}: no *{image_suffix} image in {images_dir}")
    return [(images_dir / f"{s}{image_suffix}", labels_dir / f"{s}{label_suffix}") for s in stems]


def ade20k(root, split: str = "validation") -> SegmentationDataset:
    """ADE20K scene parsing (``root`` = ADEChallengeData2016): ``images/{split}/*.jpg``, ``annotations/{split}/*.png``;
    150 classes, 0 = unlabelled (reduce-zero-label).

    ``split`` is the sub-folder name (``training`` or ``validation``).

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     root = Path(tmp)
    ...     for d in ("images/validation", "annotations/validation"):
    ...         (root / d).mkdir(parents=True)
    ...     Image.new("RGB", (4, 2)).save(root / "images/validation/ADE_val_00000001.jpg")
    ...     label = Image.fromarray(np.array([[0, 1, 3, 3]] * 2, np.uint8))
    ...     label.save(root / "annotations/validation/ADE_val_00000001.png")
    ...     ds = ade20k(root)
    ...     image, label, name = ds[0]
    >>> len(ds.class_names), label[0].tolist(), ds.class_names[2], name
    (150, [255, 0, 2, 2], 'sky', 'ADE_val_00000001')
    """
    root = Path(root)
    pairs = _folder_pairs(root / "images" / split, root / "annotations" / split, ".jpg", ".png", "ade20k")
    return SegmentationDataset("ade20k", pairs, read_class_names(CLASSNAMES_DIR / "ade150.txt"), reduce_zero_label=True)


def pascal_context59(images_dir, labels_dir, split_file=None) -> SegmentationDataset:
    """Pascal Context 59 as a label-PNG folder (mmseg's SegmentationClassContext layout): 0 = background,
    ignored (reduce-zero-label), 59 classes; ``split_file`` lists image ids (optional).

    ``images_dir`` holds ``*.jpg`` images and ``labels_dir`` the ``*.png`` labels of the same stem; without
    ``split_file`` every image in ``images_dir`` is used.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     images, labels = Path(tmp, "JPEGImages"), Path(tmp, "SegmentationClassContext")
    ...     images.mkdir(); labels.mkdir()
    ...     for stem in ("2008_000002", "2008_000003"):
    ...         Image.new("RGB", (4, 2)).save(images / f"{stem}.jpg")
    ...         Image.new("L", (4, 2), 1).save(labels / f"{stem}.png")
    ...     _ = Path(tmp, "val.txt").write_text("2008_000003")
    ...     ds = pascal_context59(images, labels, Path(tmp, "val.txt"))
    ...     image, label, name = ds[0]
    >>> len(ds), name, len(ds.class_names), ds.class_names[label[0, 0]]
    (1, '2008_000003', 59, 'aeroplane')
    """
    ids = _ids_from_split(Path(split_file), "pascal_context59") if split_file else None
    pairs = _folder_pairs(Path(images_dir), Path(labels_dir), ".jpg", ".png", "pascal_context59", ids)
    return SegmentationDataset("pascal_context59", pairs, read_class_names(CLASSNAMES_DIR / "pc59.txt"),
                               reduce_zero_label=True)


def coco_stuff(images_dir, labels_dir) -> SegmentationDataset:
    """COCO-Stuff 164k as a label-PNG folder: ``*.jpg`` images, ``*_labelTrainIds.png`` labels, 171 classes, 255 ignored.

    ``images_dir`` holds the images (e.g. ``images/val2017``), ``labels_dir`` the train-id label PNGs.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     images, labels = Path(tmp, "images"), Path(tmp, "labels")
    ...     images.mkdir(); labels.mkdir()
    ...     Image.new("RGB", (4, 2)).save(images / "000000000139.jpg")
    ...     Image.new("L", (4, 2), 0).save(labels / "000000000139_labelTrainIds.png")
    ...     ds = coco_stuff(images, labels)
    ...     image, label, name = ds[0]
    >>> len(ds.class_names), ds.class_names[label[0, 0]], name
    (171, 'person', '000000000139')
    """
    pairs = _folder_pairs(Path(images_dir), Path(labels_dir), ".jpg", "_labelTrainIds.png", "coco_stuff")
    return SegmentationDataset("coco_stuff", pairs, read_class_names(CLASSNAMES_DIR / "cocostuff171.txt"))


def label_folder(images_dir, labels_dir, class_file, image_suffix: str = ".jpg", label_suffix: str = ".png",
                 ignore_index: int = 255, reduce_zero_label: bool = False) -> SegmentationDataset:
    """Any folder of images and label PNGs with the same stem, and a class-name file (one name per line).

    ``images_dir`` and ``labels_dir`` are the two folders; an image ``{stem}{image_suffix}`` pairs with the
    label ``{stem}{label_suffix}``. ``class_file`` names one class per label value; ``ignore_index`` and
    ``reduce_zero_label`` are as in :class:`SegmentationDataset`.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     root = Path(tmp)
    ...     (root / "img").mkdir(); (root / "lbl").mkdir()
    ...     _ = (root / "classes.txt").write_text("road\\ncar\\n")
    ...     Image.new("RGB", (4, 2)).save(root / "img/x.png")
    ...     Image.fromarray(np.array([[0, 1, 255, 1]] * 2, np.uint8)).save(root / "lbl/x.png")
    ...     ds = label_folder(root / "img", root / "lbl", root / "classes.txt", image_suffix=".png")
    ...     image, label, name = ds[0]
    >>> ds.class_names, label[0].tolist(), name
    (['road', 'car'], [0, 1, 255, 1], 'x')
    """
    pairs = _folder_pairs(Path(images_dir), Path(labels_dir), image_suffix, label_suffix, "label_folder")
    return SegmentationDataset("label_folder", pairs, read_class_names(class_file), ignore_index, reduce_zero_label)


class ShapesDataset:
    """The shapes world's ``split`` as a segmentation dataset: ``n`` images, background + the shape classes,
    with the seen and unseen classes as ``subsets``.

    ``size`` and ``seed`` are passed to :func:`foundseg.data.sample`; item ``i`` is sample ``i`` of ``split``.

    >>> ds = ShapesDataset("val", n=4)
    >>> image, label, name = ds[3]
    >>> len(ds), image.shape, label.dtype, name
    (4, (32, 32, 3), dtype('int64'), 'val-3')
    >>> ds.class_names[:3], sorted(set(label.flatten().tolist()))
    (['background', 'circle', 'square'], [0, 4])
    """

    name = "shapes"
    ignore_index = 255

    def __init__(self, split: str = "test", n: int = 500, size: int = 32, seed: int = 0):
        from .shapes import CLASSES, SEEN_CLASSES, UNSEEN_CLASSES

        self.split, self.n, self.size, self.seed = split, n, size, seed
        self.class_names = ["background", *CLASSES]
        self.subsets = {"seen": SEEN_CLASSES, "unseen": UNSEEN_CLASSES}

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        from .shapes import sample

        s = sample(self.split, i, self.seed, self.size)
        return s.image, s.mask.astype(np.int64), f"{self.split}-{i}"
