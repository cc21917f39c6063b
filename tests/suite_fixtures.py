"""Tiny robustness-suite fixtures in the released on-disk formats, built at test time (nothing committed).

-P sets are written by make_perturbed's own writer (CIFAR-P .npy, ImageNet-P lossless mp4) from the
digits test split; CIFAR-10.1 / 10.2 files hold digits test images in their release layouts; an
ImageNet val split with the 1000 real wnid folders (one tiny image each) and a 1000-way model whose
logits are a fixed bias make restricted and 1000-way argmaxes differ on purpose.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import timm
import torch
from omegaconf import DictConfig, OmegaConf
from PIL import Image

from augmix.evaluation import evaluate
from augmix.perturbations.make import write_perturbed
from tests.evaluation_fixtures import compose_config, evaluate_config

IMAGENET_WNIDS = Path(timm.__file__).parent / "data" / "_info" / "imagenet_synsets.txt"  # the sorted 1000


def digits_data() -> DictConfig:
    return compose_config("make_perturbed", ["data=digits", "out=unused"]).data


def write_digits_p(out: Path, fmt: str, perturbations: Sequence[str], limit: int) -> Path:
    """make_perturbed.py's output for the first ``limit`` digits test images, difficulty 1 only."""
    return write_perturbed(digits_data(), fmt, out, list(perturbations), difficulties=[1], limit=limit)


def write_cifar10_1(root: Path, images: np.ndarray, labels: np.ndarray) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    np.save(root / "cifar10.1_v6_data.npy", images.astype(np.uint8))
    np.save(root / "cifar10.1_v6_labels.npy", labels.astype(np.int64))
    return root


def write_cifar10_2(root: Path, images: np.ndarray, labels: np.ndarray) -> Path:
    """``cifar102_test.npz`` with the release's keys (the unused ones included)."""
    root.mkdir(parents=True, exist_ok=True)
    np.savez(root / "cifar102_test.npz", images=images.astype(np.uint8), labels=labels.astype(np.int64),
             label_names=np.array(["airplane"] * 10), ti_indices=np.arange(len(labels)), keywords=np.array(["k"] * len(labels)))
    return root


def imagenet_wnids() -> list[str]:
    return IMAGENET_WNIDS.read_text().split()


def write_png_folders(root: Path, folders: Sequence[str], per_folder: int = 1, size: int = 8, seed: int = 0) -> Path:
    """``root/<folder>/<i>.png`` small random images."""
    rng = np.random.default_rng(seed)
    for folder in folders:
        (root / folder).mkdir(parents=True, exist_ok=True)
        for i in range(per_folder):
            Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(root / folder / f"{folder}_{i}.png")
    return root


def bias_model(path: Path, bias: dict[int, float]) -> Path:
    """A 1000-way cifar_wrn16_1 state_dict whose logits are ``bias`` (0 elsewhere) for every image:
    its classifier's weights are zero."""
    model = timm.create_model("cifar_wrn16_1", num_classes=1000)
    state = model.state_dict()
    state["fc.weight"] = torch.zeros_like(state["fc.weight"])
    state["fc.bias"] = torch.zeros(1000)
    for index, value in bias.items():
        state["fc.bias"][index] = value
    torch.save(state, path)
    return path


def imagenet_config(checkpoint: Path, imagenet_root: Path, out: Path, overrides: Sequence[str] = ()) -> DictConfig:
    """evaluate.yaml for a plain 1000-way state_dict on a tiny ImageNet val split at 32px."""
    return evaluate_config(checkpoint, out, [
        "model.backbone=cifar_wrn16_1", "data=imagenet", f"data.root={imagenet_root}", "data.image_size=32",
        "data.eval_transform.resize=32", "data.eval_transform.crop=32", "data.num_workers=0", "data.eval_batch_size=64",
        *overrides,
    ])


def with_members(cfg: DictConfig, members: dict[str, dict]) -> DictConfig:
    """``cfg`` with suite members added or replaced, as ``suite.members.NAME={...}`` would."""
    OmegaConf.set_struct(cfg, False)
    for name, node in members.items():
        OmegaConf.update(cfg, f"suite.members.{name}", node, merge=False, force_add=True)
    return cfg


def run(cfg: DictConfig, data_keys: Sequence[str] = ()) -> dict:
    """evaluate.py on ``cfg``; ``data_keys``: the ``data.KEY`` overrides a Lightning checkpoint's data config takes."""
    return evaluate(cfg, data_overrides=(list(data_keys), False))
