"""A run's identity: a hash of the settings that change what it trains.

A run dir is only resumed or skipped by a run with the same fingerprint, so re-running a sweep
whose grid (or Optuna's suggestions) changed can never pass off one job's results as another's.
Budget, paths, logging and loader settings are left out: extending ``trainer.max_epochs`` or
moving the dataset still resumes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

IGNORED = {"paths", "ckpt_path", "resume", "logger", "callbacks", "test", "evaluate_after_fit", "optimized_metric", "task_name", "tags", "hydra"}
IGNORED_IN = {
    "trainer": {"max_epochs", "max_time", "enable_progress_bar", "log_every_n_steps", "default_root_dir"},
    # verify_files and on_bad_image change nothing while every file is good, and a run stopped by a bad
    # file resumes exactly with on_bad_image=skip (the batches before it had no bad file)
    "data": {"root", "download", "num_workers", "pin_memory", "persistent_workers", "eval_batch_size",
             "verify_files", "on_bad_image"},
}


def run_fingerprint(config: Mapping[str, Any]) -> str:
    """16 hex digits identifying a resolved training config (a plain dict)."""
    kept: dict[str, Any] = {k: v for k, v in config.items() if k not in IGNORED}
    for section, keys in IGNORED_IN.items():
        if isinstance(kept.get(section), Mapping):
            kept[section] = {k: v for k, v in kept[section].items() if k not in keys}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()[:16]
