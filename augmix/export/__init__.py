"""``export.py``: a train.py checkpoint as a folder the ecosystem loads without this project
(``model.safetensors``, timm's ``config.json``, a model card ``README.md``), optionally pushed to
the Hugging Face Hub."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from augmix.comparison.reading import REPORT, read_report
from augmix.errors import ConfigError
from augmix.export.card import model_card
from augmix.export.folder import export_files, write_folder
from augmix.export.hub import check_repo_id, push_folder
from augmix.export.model import TrainedModel, load_trained

__all__ = ["export", "export_command"]
log = logging.getLogger(__name__)


def checkpoint_report(trained: TrainedModel, given: str | Path | None) -> tuple[dict[str, Any] | None, str | None]:
    """The robustness.json of this checkpoint (``given``, else the one in its run dir) and, when
    there is none, why. A report of another checkpoint is never put on this one's card."""
    path = Path(given) if given else trained.checkpoint.path.parent.parent / REPORT
    if not path.is_file():
        if given:
            raise ConfigError(f"robustness={given} does not exist; give the robustness.json of this checkpoint's evaluation")
        return None, f"No robustness report: evaluate the checkpoint (evaluate.py checkpoint={trained.checkpoint.path}) and export again."
    report = read_report(path.parent) if path.name == REPORT else None
    if report is None:
        raise ConfigError(f"robustness={given} is not a robustness.json; give the file evaluate.py wrote")
    if report.get("checkpoint_sha256") != trained.checkpoint.sha256:
        message = (
            f"{path} reports on another checkpoint ({report.get('checkpoint')}), not {trained.checkpoint.path}"
        )
        if given:
            raise ConfigError(f"robustness={given}: {message}; give the report of this checkpoint's evaluation")
        log.warning(f"{message}; the model card has no robustness table (pass robustness=PATH of this checkpoint's)")
        return None, f"No robustness report of this checkpoint (the run's {REPORT} is of {Path(str(report.get('checkpoint'))).name})."
    return report, None


def export(
    checkpoint: str | Path,
    out: str | Path,
    robustness: str | Path | None = None,
    push_to_hub: str | None = None,
    private: bool = False,
    hub_timeout: float = 10.0,
) -> Path:
    """Write the model folder ``out`` (replacing a previous export) and push it when asked."""
    repo_id = check_repo_id(push_to_hub) if push_to_hub else None
    trained = load_trained(str(checkpoint))
    report, note = checkpoint_report(trained, robustness)
    card = model_card(trained, repo_id or f"USER/{Path(out).name}", report, note)
    folder = write_folder(Path(out), export_files(trained, card))
    print(f"Exported {trained.backbone} ({trained.data['name']}, {trained.data['num_classes']} classes) to {folder}")
    if repo_id:
        print(f"Pushed to {push_folder(folder, repo_id, private, hub_timeout)}")
    return folder


def export_command(cfg: DictConfig) -> Path:
    """``export.py``: configs/export.yaml as composed by Hydra."""
    for key, what in (("checkpoint", "a train.py checkpoint (.ckpt)"), ("out", "the folder to write")):
        if OmegaConf.is_missing(cfg, key) or not cfg.get(key):
            raise ConfigError(f"{key}=PATH is required: {what}")
    timeout = cfg.get("hub_timeout")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 600:
        raise ConfigError(f"hub_timeout={timeout!r} is invalid: must be a number of seconds in (0, 600]")
    return export(cfg.checkpoint, cfg.out, cfg.get("robustness"), cfg.get("push_to_hub"), bool(cfg.get("private")), float(timeout))
