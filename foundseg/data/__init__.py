"""Data: the shapes world, its tokenizer vocabulary, image input."""
from .datasets import SegmentationDataset, ShapesDataset, ade20k, coco_stuff, label_folder, pascal_context59, voc2012
from .images import load_image
from .paper import table1
from .shapes import CLASSES, COLOURS, SEEN_CLASSES, SPLITS, UNSEEN_CLASSES, Sample, ShapeObject, batch, sample
from .vocab import SYNONYMS, WORDS, write_tokenizer

__all__ = ["CLASSES", "COLOURS", "SEEN_CLASSES", "SPLITS", "SYNONYMS", "UNSEEN_CLASSES", "WORDS", "Sample",
           "SegmentationDataset", "ShapeObject", "ShapesDataset", "ade20k", "batch", "coco_stuff", "label_folder", "load_image",
           "pascal_context59", "sample", "table1", "voc2012", "write_tokenizer"]
