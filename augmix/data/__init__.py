"""Data: real on-disk sources, per-sample base transforms, keyed batches and the DataModule."""

from augmix.data.datamodule import AugMixDataModule, TrainingViews
from augmix.data.transforms import CenterCropOrPad, RandomCropFlip, RandomResizedCropFlip, ResizeCenterCrop

__all__ = ["AugMixDataModule", "TrainingViews", "CenterCropOrPad", "RandomCropFlip", "RandomResizedCropFlip", "ResizeCenterCrop"]
