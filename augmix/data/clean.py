"""The clean test split that evaluation reads and that -C sets are made from (``make_corrupted.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from augmix.data.sources import FolderSource, ImageSource
from augmix.environment import is_global_rank_zero
from augmix.errors import DataError

if TYPE_CHECKING:
    from augmix.data.datamodule import AugMixDataModule

FOLDER_DATASETS = ("imagenet", "tinyimagenet", "imagefolder")


def clean_source(datamodule: AugMixDataModule) -> ImageSource:
    """The data config's test split. An ImageFolder dataset whose ``val/`` has class folders is read
    directly, so evaluating needs ``val/`` only, not the training images (1.28M for ImageNet)."""
    val = Path(datamodule.root) / "val"
    if datamodule.name in FOLDER_DATASETS and val.is_dir() and not (val / "val_annotations.txt").is_file():
        source = FolderSource(val)
        if source.num_classes != datamodule.num_classes:
            raise DataError(
                f"{val} has {source.num_classes} class folders but data.num_classes={datamodule.num_classes}; "
                "set data.root to the dataset whose val/ holds one folder per class"
            )
        return source
    if is_global_rank_zero():
        datamodule.prepare_data()  # e.g. CIFAR's test split: downloaded when missing and allowed
    return datamodule.source("test")
