"""Models from elsewhere in formats that hold no code: an exported model folder (``config.json`` +
``model.safetensors``, as ``export.py`` writes it and the Hugging Face Hub serves timm models) or a
bare ``.safetensors`` file (with ``model.backbone=NAME``).

Nothing is unpickled: weights are read with ``safetensors`` and ``config.json`` as strict JSON (no
NaN or Infinity). The folder's ``architecture`` and ``model_args`` pass the allowlist of a
``train.py`` checkpoint's stored model (``allowlist.check_backbone``: a registered name, plain
arguments that cannot name files or downloads; ``num_classes`` kept apart), and its ``augmix.data``
entry the data allowlist (``allowlist.check_data``); the rest of ``config.json`` (``pretrained_cfg``:
URLs, files, hub ids) is never followed. They become the stored config of a ``Checkpoint``, so the
rest of evaluation treats the folder like a ``train.py`` checkpoint: ``data.root`` and other
``data.KEY`` come from the command line, ``ignore_checkpoint_config=true`` keeps the weights alone.
A timm folder from elsewhere (no ``augmix`` entry) is evaluated on ``data=NAME``, whose normalisation
must match the folder's. The sha256 in reports is that of ``model.safetensors``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from augmix.allowlist import USER_CONFIG, Origin, check_backbone, check_data
from augmix.errors import CheckpointError, ConfigError
from augmix.evaluation.checkpoints import Checkpoint, file_sha256, read_checkpoint, usable_weights
from augmix.files import read_json_object
from augmix.rules import is_number, show

WEIGHTS, CONFIG = "model.safetensors", "config.json"  # the names export.py and timm's save_for_hf give them
EXPORTED, SAFETENSORS = "exported", "safetensors"  # Checkpoint.kind of a folder / a bare file
CONFIG_KEYS = ("architecture", "model_args", "num_classes")  # config.json's names of model.backbone, _kwargs, num_classes
NORMALISATION = "normalisation"  # in the stored config of a folder without an augmix entry: its pretrained_cfg mean/std


def open_checkpoint(path: str | Path, weights: str = "model") -> Checkpoint:
    """A checkpoint of any kind evaluation accepts: an exported folder, a ``.safetensors`` file, or a
    ``torch.save`` file (``read_checkpoint``; ``weights="ema"`` takes a train.py run's EMA set)."""
    path = Path(path)
    if weights != "model" and (path.is_dir() or path.suffix == ".safetensors"):
        raise CheckpointError(
            f"{path} holds one set of weights (exported models carry no EMA set); evaluate it with checkpoint_weights=model"
        )
    if path.is_dir():
        return read_folder(path)
    if path.suffix == ".safetensors":
        state, dropped = usable_weights(read_safetensors(path), path)
        return Checkpoint(path, state, None, file_sha256(path), dropped, format=SAFETENSORS)
    return read_checkpoint(path, weights)


def read_safetensors(path: Path) -> dict[str, Any]:
    """The tensors of a safetensors file on the CPU; any failure is one line."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; pass checkpoint=PATH to a .safetensors file or an exported model folder")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes); the download or copy did not complete, fetch it again")
    try:
        state = load_file(path, device="cpu")
    except (SafetensorError, OSError, ValueError) as error:
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"cannot read {path} ({detail}): it is not a safetensors file, or it is damaged; fetch it again") from None
    if not state:
        raise CheckpointError(f"{path} holds no tensors")
    return state


def read_config(path: Path) -> dict[str, Any]:
    """``config.json`` as strict JSON: a mapping, no NaN or Infinity."""
    try:
        return read_json_object(path, "a model config")
    except ValueError as error:
        raise CheckpointError(f"{path} is not a strict JSON model config ({error}); export the model again or fetch the folder again") from None


def folder_origin(config_path: Path) -> Origin:
    return Origin(
        f"{config_path} key ",
        "nothing named in an exported model's config.json is imported. To use only its weights, evaluate its "
        f"{WEIGHTS} with model.backbone=NAME data=NAME",
    )


def read_folder(folder: Path) -> Checkpoint:
    """An exported model folder as a Checkpoint whose stored config holds the checked model (and
    data, when the folder has an ``augmix`` entry)."""
    missing = [name for name in (CONFIG, WEIGHTS) if not (folder / name).is_file()]
    if missing:
        run = f"; for a train.py run, pass checkpoint={folder / 'checkpoints' / 'last.ckpt'}" if (folder / "checkpoints").is_dir() else ""
        raise CheckpointError(
            f"{folder} is not an exported model folder: it lacks {' and '.join(missing)} (export.py writes {CONFIG} and "
            f"{WEIGHTS}; copy the whole folder){run}"
        )
    config_path = folder / CONFIG
    config, origin = read_config(config_path), folder_origin(config_path)
    model_args = config.get("model_args") or {}
    if not isinstance(model_args, Mapping):
        raise ConfigError(f"{origin.prefix}model_args={show(model_args)} is invalid: must be a mapping")
    model_args = dict(model_args)
    num_classes = config.get("num_classes", model_args.get("num_classes"))
    if "num_classes" in model_args and model_args.pop("num_classes") != num_classes:
        raise ConfigError(f"{origin.prefix}num_classes={num_classes!r} differs from model_args.num_classes; export the model again")
    backbone, kwargs = check_backbone(config.get("architecture"), model_args, origin, num_classes, keys=CONFIG_KEYS)
    stored: dict[str, Any] = {"model": {"backbone": backbone, "backbone_kwargs": kwargs, "num_classes": num_classes}}
    project = config.get("augmix")
    if project is not None:
        if not isinstance(project, Mapping):
            raise ConfigError(f"{origin.prefix}augmix holds {type(project).__name__}: it must be a mapping (export.py's data config)")
        data = project.get("data")
        if isinstance(data, Mapping):  # the folder never says where data is read: data.root comes from the command line
            data = {key: value for key, value in data.items() if key != "root"}
            check_data({**data, "root": "data"}, origin, key="augmix.data")
        else:
            check_data(data, origin, key="augmix.data")  # one line naming what it holds
        stored["data"] = data
    else:
        stored[NORMALISATION] = _normalisation(config.get("pretrained_cfg"))
    weights = folder / WEIGHTS
    state, dropped = usable_weights(read_safetensors(weights), weights)
    return Checkpoint(weights, state, stored, file_sha256(weights), dropped, format=EXPORTED)


def _normalisation(pretrained_cfg: Any) -> dict[str, list[float]] | None:
    """The mean and std timm's pretrained_cfg gives, when both are three numbers."""
    if not isinstance(pretrained_cfg, Mapping):
        return None
    values = {key: pretrained_cfg.get(key) for key in ("mean", "std")}
    if all(isinstance(v, list) and len(v) == 3 and all(is_number(x) for x in v) for v in values.values()):
        return {key: [float(x) for x in v] for key, v in values.items()}
    return None


def is_foreign_folder(checkpoint: Checkpoint) -> bool:
    """An exported folder that brings no data config of this project (a timm folder from elsewhere)."""
    return checkpoint.kind == EXPORTED and checkpoint.config is not None and "data" not in checkpoint.config


def foreign_folder_data(checkpoint: Checkpoint, data: Mapping[str, Any], group_chosen: bool) -> dict[str, Any]:
    """The command line's ``data=NAME`` config for a timm folder from elsewhere, checked against the
    folder's normalisation: a model fed other statistics than it was trained on is measured wrongly."""
    folder = checkpoint.path.parent
    if not group_chosen:
        raise ConfigError(
            f"{folder} has no data config of this project ({CONFIG} has no 'augmix' entry, as in a timm model from "
            "elsewhere): name the data set whose test split is the clean set with data=NAME (and data.root=DIR)"
        )
    checked = check_data(data, USER_CONFIG)
    expected = checkpoint.config.get(NORMALISATION)
    if expected is not None:
        given = {key: [float(x) for x in checked[key]] for key in ("mean", "std")}
        if any(abs(a - b) > 1e-6 for key in given for a, b in zip(given[key], expected[key])):
            raise ConfigError(
                f"{folder / CONFIG} normalises inputs with mean {expected['mean']} / std {expected['std']} but data "
                f"{checked['name']} with {given['mean']} / {given['std']}; add data.mean={_override(expected['mean'])} "
                f"data.std={_override(expected['std'])} to evaluate the model as it was trained"
            )
    return checked


def _override(values: list[float]) -> str:
    return "[" + ",".join(f"{v:g}" for v in values) + "]"
