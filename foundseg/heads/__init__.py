"""Light heads trained on frozen foundation-model features."""
from .open_vocab import OpenVocabHead, predict, segmentation_loss
from .train import seen_labels, train_head

__all__ = ["OpenVocabHead", "predict", "seen_labels", "segmentation_loss", "train_head"]
