"""Data: the shapes world, its tokenizer vocabulary, image input."""
from .images import load_image
from .shapes import CLASSES, COLOURS, SEEN_CLASSES, SPLITS, UNSEEN_CLASSES, Sample, ShapeObject, batch, sample
from .vocab import SYNONYMS, WORDS, write_tokenizer

__all__ = ["CLASSES", "COLOURS", "SEEN_CLASSES", "SPLITS", "SYNONYMS", "UNSEEN_CLASSES", "WORDS", "Sample",
           "ShapeObject", "batch", "load_image", "sample", "write_tokenizer"]
