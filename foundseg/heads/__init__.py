"""Light heads trained on frozen foundation-model features."""
from .open_vocab import OpenVocabHead, predict, segmentation_loss

__all__ = ["OpenVocabHead", "predict", "segmentation_loss"]
