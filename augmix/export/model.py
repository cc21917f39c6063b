"""The trained network of a train.py checkpoint, rebuilt from checked data, as timm will load it.

The checkpoint is read with ``read_checkpoint`` (``torch.load(weights_only=True)``; auxiliary
BatchNorm dropped); its stored run config is data: the backbone must be a registered timm
architecture with plain keyword arguments (``allowlist.check_backbone``) and the data node must
pass ``allowlist.check_data``. Nothing named in the checkpoint is instantiated or imported.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

from augmix.allowlist import CHECKPOINT, TORCHVISION_PREFIX, check_backbone, check_data
from augmix.errors import CheckpointError
from augmix.evaluation.checkpoints import Checkpoint, create_backbone, load_weights, read_checkpoint


@dataclass
class TrainedModel:
    """The rebuilt network (eval mode, plain timm names) and the checked parts of its run config."""

    checkpoint: Checkpoint
    model: nn.Module
    backbone: str
    backbone_kwargs: dict[str, Any]
    data: dict[str, Any]
    config: dict[str, Any]
    source_cfg: dict[str, Any]  # timm's pretrained_cfg of the architecture before export, for the card


def _section(config: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    node = config.get(key)
    if not isinstance(node, Mapping):
        raise CheckpointError(f"checkpoint config key {key} holds {type(node).__name__}: it must be a mapping (the run's {key} config)")
    return node


def load_trained(path: str) -> TrainedModel:
    """The network of the train.py checkpoint at ``path``, weights loaded strictly."""
    checkpoint = read_checkpoint(path)
    if checkpoint.config is None:
        raise CheckpointError(
            f"{checkpoint.path} is a plain state_dict: export needs a train.py checkpoint, whose stored run config "
            "gives the architecture, classes and preprocessing that config.json and the model card describe"
        )
    config = copy.deepcopy(dict(checkpoint.config))
    trained = _section(config, "model")
    data = check_data(dict(_section(config, "data")), CHECKPOINT)
    backbone, kwargs = check_backbone(trained.get("backbone"), trained.get("backbone_kwargs"), CHECKPOINT, data["num_classes"])
    if backbone.startswith(TORCHVISION_PREFIX):
        raise CheckpointError(
            f"{checkpoint.path} holds a {backbone} model: export writes timm model folders, and torchvision's "
            "architectures are not timm's; save its state_dict instead"
        )
    model = create_backbone(backbone, data["num_classes"], kwargs)
    source_cfg = dict(getattr(model, "pretrained_cfg", None) or {})
    load_weights(model, checkpoint, backbone)
    return TrainedModel(checkpoint, model.eval(), backbone, kwargs, data, config, source_cfg)
