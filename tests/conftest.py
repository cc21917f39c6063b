"""Shared fixtures: tiny datasets written in the real on-disk formats, and composed configs."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from PIL import Image

import augmix.config  # noqa: F401  (registers the config schemas that compose_train needs)

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = str(ROOT / "configs")

# Tests never talk to wandb's servers.
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory) -> Path:
    """An untrained train.py checkpoint of the quickstart model, shared read-only by the evaluation tests."""
    from tests.evaluation_fixtures import lightning_checkpoint

    return lightning_checkpoint(tmp_path_factory.mktemp("run") / "last.ckpt")


@pytest.fixture
def one_thread():
    """torch on one thread for the test, for runs compared bitwise or with several processes."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def compose_train(*overrides: str):
    """The composed training config, as `python train.py <overrides>` would see it."""
    with initialize_config_dir(config_dir=CONFIGS, version_base="1.3"):
        return compose("train", overrides=list(overrides))


def _cifar_rows(count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(count, 3 * 32 * 32), dtype=np.uint8)


def write_cifar10(root: Path, per_batch: int = 12, test: int = 20) -> Path:
    """CIFAR-10 exactly as the authors' python archive lays it out, just with fewer rows."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for i in range(1, 6):
        rows = _cifar_rows(per_batch, i)
        entry = {"batch_label": f"training batch {i} of 5", "data": rows, "labels": [int(v) for v in np.arange(per_batch) % 10]}
        with open(folder / f"data_batch_{i}", "wb") as handle:
            pickle.dump(entry, handle)
    entry = {"batch_label": "testing batch 1 of 1", "data": _cifar_rows(test, 99), "labels": [int(v) for v in np.arange(test) % 10]}
    with open(folder / "test_batch", "wb") as handle:
        pickle.dump(entry, handle)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    with open(folder / "batches.meta", "wb") as handle:
        pickle.dump({"label_names": names, "num_cases_per_batch": per_batch, "num_vis": 3072}, handle)
    return root


def write_cifar100(root: Path, train: int = 40, test: int = 20) -> Path:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    for name, count, seed in (("train", train, 1), ("test", test, 2)):
        fine = [int(v) for v in np.arange(count) % 100]
        entry = {"data": _cifar_rows(count, seed), "fine_labels": fine, "coarse_labels": [v // 5 for v in fine]}
        with open(folder / name, "wb") as handle:
            pickle.dump(entry, handle)
    with open(folder / "meta", "wb") as handle:
        pickle.dump({"fine_label_names": [f"class{i}" for i in range(100)], "coarse_label_names": []}, handle)
    return root


def write_image_folder(root: Path, classes=("n01", "n02", "n03"), per_class: int = 4, size: int = 40) -> Path:
    """ImageNet layout: root/{train,val}/<wnid>/*.JPEG."""
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for wnid in classes:
            folder = root / split / wnid
            folder.mkdir(parents=True)
            for i in range(per_class):
                pixels = rng.integers(0, 256, size=(size, size + 8, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{wnid}_{i}.JPEG", quality=90)
    return root


@pytest.fixture
def cifar10_root(tmp_path: Path) -> Path:
    return write_cifar10(tmp_path / "data")


@pytest.fixture
def image_folder_root(tmp_path: Path) -> Path:
    return write_image_folder(tmp_path / "imagenet")
