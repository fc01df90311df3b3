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
    """One class name per line (blank lines skipped)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"class_file: no such file {str(path)!r}")
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not names:
        raise ValueError(f"class_file {str(path)!r} lists no class")
    return names


@dataclass
class SegmentationDataset:
    """Image/label pairs with class names; ``dataset[i]`` is (image (H, W, 3) uint8, label (H, W) int64, id)."""

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
    ImageSets/Segmentation/{split}.txt; 21 classes with background, 255 = object boundaries (ignored)."""
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
    150 classes, 0 = unlabelled (reduce-zero-label)."""
    root = Path(root)
    pairs = _folder_pairs(root / "images" / split, root / "annotations" / split, ".jpg", ".png", "ade20k")
    return SegmentationDataset("ade20k", pairs, read_class_names(CLASSNAMES_DIR / "ade150.txt"), reduce_zero_label=True)


def pascal_context59(images_dir, labels_dir, split_file=None) -> SegmentationDataset:
    """Pascal Context 59 as a label-PNG folder (mmseg's SegmentationClassContext layout): 0 = background,
    ignored (reduce-zero-label), 59 classes; ``split_file`` lists image ids (optional)."""
    ids = _ids_from_split(Path(split_file), "pascal_context59") if split_file else None
    pairs = _folder_pairs(Path(images_dir), Path(labels_dir), ".jpg", ".png", "pascal_context59", ids)
    return SegmentationDataset("pascal_context59", pairs, read_class_names(CLASSNAMES_DIR / "pc59.txt"),
                               reduce_zero_label=True)


def coco_stuff(images_dir, labels_dir) -> SegmentationDataset:
    """COCO-Stuff 164k as a label-PNG folder: ``*.jpg`` images, ``*_labelTrainIds.png`` labels, 171 classes, 255 ignored."""
    pairs = _folder_pairs(Path(images_dir), Path(labels_dir), ".jpg", "_labelTrainIds.png", "coco_stuff")
    return SegmentationDataset("coco_stuff", pairs, read_class_names(CLASSNAMES_DIR / "cocostuff171.txt"))


def label_folder(images_dir, labels_dir, class_file, image_suffix: str = ".jpg", label_suffix: str = ".png",
                 ignore_index: int = 255, reduce_zero_label: bool = False) -> SegmentationDataset:
    """Any folder of images and label PNGs with the same stem, and a class-name file (one name per line)."""
    pairs = _folder_pairs(Path(images_dir), Path(labels_dir), image_suffix, label_suffix, "label_folder")
    return SegmentationDataset("label_folder", pairs, read_class_names(class_file), ignore_index, reduce_zero_label)


class ShapesDataset:
    """The shapes world's ``split`` as a segmentation dataset: ``n`` images, background + the shape classes."""

    name = "shapes"
    ignore_index = 255

    def __init__(self, split: str = "test", n: int = 500, size: int = 32, seed: int = 0):
        from .shapes import CLASSES

        self.split, self.n, self.size, self.seed = split, n, size, seed
        self.class_names = ["background", *CLASSES]

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        from .shapes import sample

        s = sample(self.split, i, self.seed, self.size)
        return s.image, s.mask.astype(np.int64), f"{self.split}-{i}"
