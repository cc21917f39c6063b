"""Small benchmark fixtures in the exact on-disk formats, built at test time (nothing committed).

Shared by the tests/test_evaluation*.py files: digits test images as the clean split, CIFAR-C
``.npy`` sets, ImageNet-C style folders, genuine Lightning checkpoints and composed configs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf
from PIL import Image

import augmix.config  # noqa: F401  (registers the config schemas)
from augmix.data.sources import load_digits
from augmix.training import build_model

CONFIGS = str(Path(__file__).resolve().parents[1] / "configs")


def compose_config(name: str, overrides: list[str]) -> DictConfig:
    with initialize_config_dir(config_dir=CONFIGS, version_base="1.3"):
        return compose(name, overrides=overrides)


def digits_test(count: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``count`` digits test images as uint8 (N, 32, 32, 3) and their labels."""
    source = load_digits("test")
    images = source.images[:count].permute(0, 2, 3, 1).contiguous().numpy()
    return images, source.targets[:count].numpy()


def write_cifar_c_fixture(root: Path, blocks: dict[str, np.ndarray], labels: np.ndarray) -> Path:
    """``root/<name>.npy`` = the 5 severity blocks stacked (given as one (5N, H, W, 3) array) and
    ``root/labels.npy`` = the labels tiled 5 times, exactly as CIFAR-10-C stores them."""
    root.mkdir(parents=True, exist_ok=True)
    for name, stacked in blocks.items():
        np.save(root / f"{name}.npy", stacked)
    np.save(root / "labels.npy", np.tile(labels.astype(np.int64), 5))
    return root


def write_folder_images(
    folder: Path, images: np.ndarray, labels: np.ndarray, classes: list[str], ext: str = "png"
) -> None:
    """``folder/<class>/<index>.<ext>``; PNG keeps pixels exact, JPEG is what ImageNet-C ships."""
    for index, (image, label) in enumerate(zip(images, labels)):
        path = folder / classes[label] / f"{index:05d}.{ext}"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(path, **({"quality": 85} if ext.upper() == "JPEG" else {}))


def write_imagenet_c_fixture(
    root: Path, sets: dict[tuple[str, int], np.ndarray], labels: np.ndarray, classes: list[str], ext: str = "png"
) -> Path:
    """``root/<corruption>/<severity>/<class>/<file>`` for every (corruption, severity) given."""
    for (name, severity), images in sets.items():
        write_folder_images(root / name / str(severity), images, labels, classes, ext)
    return root


def lightning_checkpoint(path: Path, overrides: list[str] = ()) -> Path:
    """A genuine train.py checkpoint (Lightning's own writer) of the quickstart model, untrained."""
    cfg = compose_config("train", ["experiment=quickstart", f"paths.output_dir={path.parent}", *overrides])
    torch.manual_seed(0)
    model = build_model(cfg)
    model.run_config = OmegaConf.to_container(cfg, resolve=True)
    trainer = pl.Trainer(
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    trainer.strategy.connect(model)
    trainer.save_checkpoint(path)
    return path


def evaluate_config(checkpoint: Path, output_dir: Path, overrides: list[str] = ()) -> DictConfig:
    """configs/evaluate.yaml as evaluate.py would compose it, quiet and single-process."""
    return compose_config(
        "evaluate",
        [
            f"checkpoint={checkpoint}",
            f"paths.output_dir={output_dir}",
            "benchmark.progress=false",
            "trainer.accelerator=cpu",
            *overrides,
        ],
    )
