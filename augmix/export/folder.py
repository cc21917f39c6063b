"""The exported folder: ``model.safetensors``, ``config.json`` and ``README.md`` at its top level,
the layout timm's ``save_for_hf``/``push_to_hf_hub`` write and ``huggingface_hub`` uploads.

* ``model.safetensors``: the plain network's ``state_dict`` (timm key names, no ``net.`` prefix, no
  auxiliary BatchNorm), weights only.
* ``config.json``: written by timm's own ``save_config_for_hf``, so ``timm.create_model(
  "hf-hub:USER/NAME")`` or ``("local-dir:DIR")`` rebuilds the architecture with the run's class
  count, input size, normalisation and crop. The architecture's own provenance (the tag, licence
  and paper of timm's pretrained weights) is left out: these weights are this run's. One extra
  top-level key, ``augmix``, holds the run's data config (its ``root`` removed) and the
  checkpoint's sha256, for evaluating the folder with this project; timm ignores it.

The folder is built beside ``out`` and renamed into place, so ``out`` is either the previous export
or the complete new one, never a mix.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save as safetensors_bytes

from augmix.data.photos import CLASSES as PHOTO_CLASSES
from augmix.errors import ConfigError
from augmix.export.model import TrainedModel
from augmix.files import atomic_write, strict_json

WEIGHTS, CONFIG, CARD = "model.safetensors", "config.json", "README.md"
EXPORT_FILES = (WEIGHTS, CONFIG, CARD)
# Class names of the bundled and fixed-order datasets (folder datasets name theirs on disk).
LABEL_NAMES = {
    "digits": [str(d) for d in range(10)],
    "photos": list(PHOTO_CLASSES),
    "cifar10": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
}
# pretrained_cfg keys that describe timm's own pretrained weights, not an exported run's
PROVENANCE = (
    "tag", "url", "file", "hf_hub_id", "hf_hub_filename", "source", "license", "origin_url", "paper_ids", "paper_name",
    "notes", "description", "label_names", "label_descriptions", "label_offset", "state_dict",
    "test_input_size", "test_crop_pct", "test_pool_size",
)


def weights_bytes(model: torch.nn.Module) -> bytes:
    """The model's state_dict in safetensors (each tensor its own contiguous copy: safetensors
    refuses shared storage)."""
    tensors = {key: value.detach().to("cpu").clone().contiguous() for key, value in model.state_dict().items()}
    return safetensors_bytes(tensors, metadata={"format": "pt"})


def data_config(data: dict[str, Any]) -> dict[str, Any]:
    """timm's preprocessing fields for the run's evaluation transform and normalisation."""
    transform = data["eval_transform"]
    target = str(transform.get("_target_", "")).rsplit(".", 1)[-1]
    if target == "ResizeCenterCrop":
        size, crop_pct = transform["crop"], transform["crop"] / transform["resize"]
    else:  # CenterCropOrPad: images already at size, used as they are
        size, crop_pct = transform.get("size", data["image_size"]), 1.0
    return {
        "input_size": (3, int(size), int(size)),
        "interpolation": "bilinear",
        "crop_pct": float(crop_pct),
        "crop_mode": "center",
        "mean": tuple(float(v) for v in data["mean"]),
        "std": tuple(float(v) for v in data["std"]),
    }


def config_json(trained: TrainedModel, path: Path) -> None:
    """timm's config.json for the trained network, plus the ``augmix`` block."""
    from timm.models._hub import save_config_for_hf

    model = trained.model
    kept = {key: value for key, value in trained.source_cfg.items() if key not in PROVENANCE}
    model.pretrained_cfg = kept
    extra: dict[str, Any] = {}
    labels = LABEL_NAMES.get(trained.data["name"])
    if labels is not None and len(labels) == trained.data["num_classes"]:
        extra["label_names"] = labels
    save_config_for_hf(model, str(path), model_config=extra, data_config=data_config(trained.data))
    config = json.loads(path.read_text())
    data = {key: value for key, value in trained.data.items() if key != "root"}
    config["augmix"] = {"checkpoint_sha256": trained.checkpoint.sha256, "data": data}
    path.write_text(strict_json(config, indent=2) + "\n")


def _previous_export(out: Path) -> bool:
    """Whether ``out`` may be replaced: absent, empty, or a previous export (only export files)."""
    if not out.exists():
        return False
    if not out.is_dir():
        raise ConfigError(f"out={out} is a file; give a new folder (or a previous export) to write the model folder into")
    foreign = sorted(entry.name for entry in os.scandir(out) if entry.name not in EXPORT_FILES)
    if foreign:
        shown = ", ".join(foreign[:5]) + (" ..." if len(foreign) > 5 else "")
        raise ConfigError(f"out={out} holds files an export does not write ({shown}); give a new or empty folder")
    return True


def write_folder(out: Path, writers: dict[str, Callable[[Path], None]]) -> Path:
    """Build the folder beside ``out`` (each file by ``writers[name](path)``) and rename it into place."""
    out = Path(out).absolute()
    replace = _previous_export(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.export-", dir=out.parent))
    try:
        for name, write in writers.items():
            write(staging / name)
        os.chmod(staging, 0o777 & ~_umask())
        if replace:
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.previous-", dir=out.parent))
            os.replace(out, old / out.name)
            os.replace(staging, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, out)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return out


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def export_files(trained: TrainedModel, card: str) -> dict[str, Callable[[Path], None]]:
    """The writers of the three files."""
    weights = weights_bytes(trained.model)
    return {
        WEIGHTS: lambda path: atomic_write(path, lambda handle: handle.write(weights)),
        CONFIG: lambda path: config_json(trained, path),
        CARD: lambda path: atomic_write(path, lambda handle: handle.write(card.encode())),
    }
