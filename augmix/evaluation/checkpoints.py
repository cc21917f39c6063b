"""Checkpoints of every kind users evaluate, turned into a backbone with its weights loaded.

* Lightning checkpoints from ``train.py``: weights under ``state_dict`` as ``net.<timm key>``, the
  run's resolved config under ``augmix_config`` (backbone, classes, data, normalisation); runs with
  ``model.ema.decay`` also hold the EMA weights as ``ema.module.<timm key>`` (``weights="ema"``).
* Plain state_dicts and ``.pth.tar`` dicts with a ``state_dict`` key, optionally with the
  ``module.`` prefixes of ``DataParallel`` (e.g. the official AugMix ResNet-50 release, which uses
  torchvision's resnet50 names; timm's ``resnet50`` has the same names). These need
  ``model.backbone``: a timm name, or ``torchvision:<name>`` for torchvision's own classes.

Loading is strict, with one tolerance: auxiliary BatchNorm layers of split-BN training (timm's
``SplitBatchNorm2d`` naming, ``<bn>.aux_bn.<i>.<param>``) are dropped when their main layer
``<bn>.<param>`` is present, since evaluation uses the main BN only.
"""

from __future__ import annotations

import hashlib
import pickle
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import timm
import torch
import torchvision
from torch import Tensor, nn

import augmix.models  # noqa: F401  (registers the CIFAR architectures in timm)
from augmix.errors import CheckpointError
from augmix.models.split_bn import AUX_BN_KEY
from augmix.module import CONFIG_KEY, EMA_PREFIX

WRAPPER_PREFIXES = ("module.", "_orig_mod.", "net.")
TORCHVISION_PREFIX = "torchvision:"


@dataclass
class Checkpoint:
    """Weights (prefixes stripped, auxiliary BN removed) and, for train.py checkpoints, the config."""

    path: Path
    state_dict: dict[str, Tensor]
    config: dict[str, Any] | None
    sha256: str
    dropped_auxiliary: int = 0
    format: str | None = None  # "exported" / "safetensors" for the formats of augmix.evaluation.exported
    weights: str = "model"  # which set of a train.py checkpoint: the trained weights or their EMA

    @property
    def kind(self) -> str:
        return self.format or ("lightning" if self.config is not None else "state_dict")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _strip_wrappers(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Remove prefixes that every key shares (DataParallel, torch.compile, the LightningModule)."""
    changed = True
    while changed and state:
        changed = False
        for prefix in WRAPPER_PREFIXES:
            if all(key.startswith(prefix) for key in state):
                state = {key[len(prefix) :]: value for key, value in state.items()}
                changed = True
    return state


def _drop_auxiliary_bn(state: dict[str, Tensor]) -> tuple[dict[str, Tensor], int]:
    kept, dropped = {}, 0
    for key, value in state.items():
        main = AUX_BN_KEY.sub(r"\1", key, count=1)
        if main != key and main in state:
            dropped += 1
            continue
        kept[key] = value
    return kept, dropped


def _weights(raw: Any, path: Path, weights: str = "model") -> tuple[dict[str, Tensor], dict | None]:
    lightning = isinstance(raw, Mapping) and isinstance(raw.get("state_dict"), Mapping) and "pytorch-lightning_version" in raw
    if weights == "ema":
        ema = {k[len(EMA_PREFIX) :]: v for k, v in raw["state_dict"].items() if k.startswith(EMA_PREFIX)} if lightning else {}
        if not ema:
            raise CheckpointError(
                f"{path} holds no EMA weights (only train.py runs with model.ema.decay save them); "
                "evaluate its trained weights with checkpoint_weights=model"
            )
        raw = {**raw, "state_dict": {f"net.{k}": v for k, v in ema.items()}}
    if isinstance(raw, Mapping) and isinstance(raw.get("state_dict"), Mapping):
        state, config = dict(raw["state_dict"]), raw.get(CONFIG_KEY)
        if "pytorch-lightning_version" in raw:
            state = {k[len("net.") :]: v for k, v in state.items() if k.startswith("net.")}
    elif isinstance(raw, Mapping) and raw and all(isinstance(v, Tensor) for v in raw.values()):
        state, config = dict(raw), None
    else:
        keys = list(raw)[:8] if isinstance(raw, Mapping) else type(raw).__name__
        raise CheckpointError(
            f"{path} holds no weights: expected a state_dict, or a dict with a 'state_dict' entry "
            f"(Lightning / .pth.tar); found {keys}"
        )
    if config is not None and not isinstance(config, Mapping):
        raise CheckpointError(f"{path} has a stored run config ({CONFIG_KEY}) that is not a mapping; it is not a train.py checkpoint")
    tensors = {k: v for k, v in state.items() if isinstance(v, Tensor)}
    if not tensors:
        raise CheckpointError(f"{path} has an empty state_dict")
    return tensors, config


def load_file(path: str | Path, mmap: bool = False) -> Any:
    """``torch.load(weights_only=True)`` on the CPU: tensors and plain containers, nothing that runs
    code when unpickled. Every failure is one CheckpointError line saying what was wrong."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint {path} does not exist; pass checkpoint=PATH to a .ckpt, .pth or .pth.tar file"
        )
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes); the download or copy did not complete, fetch it again")
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as error:
        refused = refused_content(str(error))
        if refused is None:
            operand = re.search(r"Unsupported operand (\d+)", str(error))
            detail = f" (pickle instruction {operand.group(1)} is not part of torch.save's format)" if operand else ""
            raise CheckpointError(
                f"cannot read checkpoint {path}: it is not a PyTorch checkpoint, or it is damaged{detail}"
            ) from None
        raise CheckpointError(
            f"{path} was not loaded, for safety: it contains {refused}, which could run code when unpickled "
            "(checkpoints are read with torch.load(weights_only=True): tensors and plain containers only). "
            "If you trust its source, re-save the weights alone with torch.save(model.state_dict(), PATH) "
            "and evaluate that file with model.backbone=NAME; otherwise do not load it"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as error:
        detail = str(error).strip().split(". ")[0].splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"cannot read checkpoint {path} ({detail}); the file is incomplete or damaged, fetch it again") from None


# What torch's weights-only unpickler refused, from its message (the part worth showing).
REFUSALS = (
    (re.compile(r"unsupported GLOBAL ([\w.]+) whose module"), "a reference to {} (a blocked module)"),
    (re.compile(r"Unsupported global: GLOBAL ([\w.]+)"), "Python objects other than tensors and plain containers ({})"),
    (re.compile(r"call reduce for unrecognized function (.+?)(?: which belongs|$)", re.M), "a call of {}"),
    (re.compile(r"(?:create new object|only build).*but got (.+)$", re.M), "an object of {}"),
)


def refused_content(message: str) -> str | None:
    """What the weights-only unpickler refused to load, or None when the file is simply not a checkpoint."""
    if "Weights only load failed" not in message or "Unsupported operand" in message:
        return None  # not a refusal: bytes that are no torch.save pickle at all
    for pattern, template in REFUSALS:
        found = pattern.search(message)
        if found:
            return template.format(found.group(1).strip())
    return "content other than tensors and plain containers"


def read_checkpoint(path: str | Path, weights: str = "model") -> Checkpoint:
    """Load weights (and config, when present) on the CPU without unpickling arbitrary objects;
    ``weights="ema"`` takes a train.py checkpoint's EMA weights instead of its trained ones."""
    path = Path(path)
    raw = load_file(path)
    state, config = _weights(raw, path, weights)
    state, dropped = usable_weights(state, path)
    return Checkpoint(path=path, state_dict=state, config=config, sha256=file_sha256(path), dropped_auxiliary=dropped,
                      weights=weights)


def usable_weights(state: dict[str, Tensor], path: Path) -> tuple[dict[str, Tensor], int]:
    """Wrapper prefixes stripped and auxiliary BatchNorm dropped (with how many were); non-finite weights refused."""
    state, dropped = _drop_auxiliary_bn(_strip_wrappers(state))
    broken = [key for key, value in state.items() if value.is_floating_point() and not torch.isfinite(value).all()]
    if broken:
        raise CheckpointError(
            f"{path} holds non-finite weights (NaN or infinity in {len(broken)} tensor(s), first {broken[0]!r}); "
            "a model with them gives meaningless results. The run that saved it diverged or the file is damaged: "
            "evaluate an earlier checkpoint"
        )
    return state, dropped


def create_backbone(backbone: str, num_classes: int, backbone_kwargs: Mapping[str, Any] | None = None) -> nn.Module:
    """A timm model by name, or a torchvision one as ``torchvision:<name>``; never downloads."""
    kwargs = dict(backbone_kwargs or {})
    try:
        if backbone.startswith(TORCHVISION_PREFIX):
            return torchvision.models.get_model(
                backbone[len(TORCHVISION_PREFIX) :], weights=None, num_classes=num_classes, **kwargs
            )
        return timm.create_model(backbone, pretrained=False, num_classes=num_classes, **kwargs)
    except (RuntimeError, ValueError, TypeError, KeyError) as error:
        raise CheckpointError(
            f"cannot build model.backbone={backbone!r}: {error}. Use a timm name (timm.list_models()) "
            f"or torchvision:<name> for torchvision's models."
        ) from None


def classifier_weight_key(model: nn.Module) -> str | None:
    """State-dict key of the final classifier's weight: timm's declared head, else the last Linear."""
    head = (getattr(model, "pretrained_cfg", None) or {}).get("classifier")
    if isinstance(head, (list, tuple)):
        head = head[0] if head else None
    if isinstance(head, str) and f"{head}.weight" in model.state_dict():
        return f"{head}.weight"
    linear = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    return f"{linear[-1]}.weight" if linear else None


def checkpoint_classes(checkpoint: Checkpoint, model: nn.Module) -> int | None:
    """How many classes the checkpoint's classifier predicts (None if it has no such layer)."""
    key = classifier_weight_key(model)
    weight = checkpoint.state_dict.get(key) if key else None
    return int(weight.shape[0]) if weight is not None else None


def load_weights(model: nn.Module, checkpoint: Checkpoint, backbone: str) -> nn.Module:
    """Strict load; a mismatch names the keys and points at model.backbone."""
    try:
        missing, unexpected = model.load_state_dict(checkpoint.state_dict, strict=False)
    except RuntimeError as error:  # shape mismatches
        detail = "; ".join(line.strip() for line in str(error).splitlines()[1:4])
        raise CheckpointError(f"{checkpoint.path} does not fit backbone {backbone!r}: {detail}") from None
    if missing or unexpected:
        raise CheckpointError(
            f"{checkpoint.path} does not fit backbone {backbone!r}: "
            f"{len(missing)} missing key(s) {missing[:5]}, {len(unexpected)} unexpected key(s) {unexpected[:5]}. "
            "Check model.backbone (and model.backbone_kwargs)."
        )
    return model



def check_class_count(checkpoint: Checkpoint, found: int, classes: int, against: str) -> None:
    """One line when the checkpoint predicts ``found`` classes where ``against`` ("benchmark
    cifar10c") has ``classes``."""
    if found != classes:
        raise CheckpointError(
            f"{checkpoint.path} was trained for {found} classes but {against} has {classes}; "
            "evaluate it on the benchmark of its own dataset"
        )


def build_model(checkpoint: Checkpoint, backbone: str, backbone_kwargs: Mapping[str, Any], classes: int,
                against: str) -> nn.Module:
    """The backbone for ``classes`` outputs with the checkpoint's weights, once its classifier is
    checked to predict that many (``check_class_count``)."""
    model = create_backbone(backbone, classes, backbone_kwargs)
    found = checkpoint_classes(checkpoint, model)
    if found is not None:
        check_class_count(checkpoint, found, classes, against)
    return load_weights(model, checkpoint, backbone)
