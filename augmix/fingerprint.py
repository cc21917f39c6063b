"""A run's identity: a hash of the settings that change what it trains.

A run dir is only resumed or skipped by a run with the same fingerprint, so re-running a sweep
whose grid (or Optuna's suggestions) changed can never pass off one job's results as another's.
Paths, logging and loader settings are left out: moving the dataset still resumes. The run's
length (``trainer.max_epochs`` / ``max_steps``) counts whenever the learning-rate schedule is laid
out over it (cosine, step_thirds, any scheduler not known to be constant): a longer run then has
another schedule from its first step, so continuing a shorter one could never equal it. With
``model/scheduler=constant`` the length is left out and a finished run can be extended.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

IGNORED = {"paths", "ckpt_path", "resume", "logger", "callbacks", "test", "evaluate_after_fit", "optimized_metric", "task_name", "tags", "hydra"}
IGNORED_IN = {
    "trainer": {"max_time", "enable_progress_bar", "log_every_n_steps", "default_root_dir"},
    # verify_files and on_bad_image change nothing while every file is good, and a run stopped by a bad
    # file resumes exactly with on_bad_image=skip (the batches before it had no bad file)
    "data": {"root", "download", "num_workers", "pin_memory", "persistent_workers", "eval_batch_size",
             "verify_files", "on_bad_image"},
}
LENGTH_KEYS = ("max_epochs", "max_steps")  # trainer keys that set how long the run is
# How a run's steps are shared among processes: covered, so a run resumes only on its own layout
# (its keyed per-rank streams, data shards and mid-epoch position depend on it).
PROCESS_KEYS = ("trainer.devices", "trainer.num_nodes", "trainer.accumulate_grad_batches")
LENGTH_FREE_SCHEDULERS = {"augmix.schedules.constant"}  # schedules whose lr never depends on the length


def scheduler_target(config: Mapping[str, Any]) -> str | None:
    model = config.get("model")
    scheduler = model.get("scheduler") if isinstance(model, Mapping) else None
    return scheduler.get("_target_") if isinstance(scheduler, Mapping) else None


def schedule_depends_on_length(config: Mapping[str, Any]) -> bool:
    target = scheduler_target(config)
    return target is not None and target not in LENGTH_FREE_SCHEDULERS


def fingerprinted(config: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a resolved training config (a plain dict) that the fingerprint covers."""
    kept: dict[str, Any] = {k: v for k, v in config.items() if k not in IGNORED}
    length_free = not schedule_depends_on_length(config)
    for section, keys in IGNORED_IN.items():
        if section == "trainer" and length_free:
            keys = keys | set(LENGTH_KEYS)
        if isinstance(kept.get(section), Mapping):
            kept[section] = {k: v for k, v in kept[section].items() if k not in keys}
    return kept


def config_hash(description: Any) -> str:
    """16 hex digits identifying plain data (key order does not matter): the one hash behind run
    fingerprints and evaluation result stores."""
    return hashlib.sha256(json.dumps(description, sort_keys=True, default=str).encode()).hexdigest()[:16]


def run_fingerprint(config: Mapping[str, Any]) -> str:
    """16 hex digits identifying a resolved training config (a plain dict)."""
    return config_hash(fingerprinted(config))


def _flat(node: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(node, Mapping) or not node:
        return {prefix: node} if prefix else {}
    flat: dict[str, Any] = {}
    for key, value in node.items():
        flat.update(_flat(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def differences(stored: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """The fingerprinted keys whose values differ, as "key stored vs current" (missing: <unset>)."""
    old, new = _flat(fingerprinted(stored)), _flat(fingerprinted(current))
    unset = "<unset>"
    return [
        f"{key} {old.get(key, unset)!r} vs {new.get(key, unset)!r}".replace(f"'{unset}'", unset)
        for key in sorted(set(old) | set(new))
        if old.get(key, unset) != new.get(key, unset)
    ]


def describe_differences(found: list[str], limit: int = 6) -> str:
    """The first ``limit`` differences on one line."""
    shown = ", ".join(found[:limit])
    return shown + (f" and {len(found) - limit} more" if len(found) > limit else "")


def process_layout_hint(found: list[str], stored: Mapping[str, Any]) -> str:
    """When ``found`` (from ``differences``) includes the process layout: why that blocks a resume,
    and the stored layout to resume with; empty otherwise."""
    changed = [item.split(" ")[0] for item in found if item.split(" ")[0] in PROCESS_KEYS]
    if not changed:
        return ""
    trainer = stored.get("trainer") if isinstance(stored.get("trainer"), Mapping) else {}
    layout = " ".join(f"{key}={trainer.get(key.split('.', 1)[1], 1)}" for key in PROCESS_KEYS)
    return (
        f". It ran on another process layout ({', '.join(changed)}): a run's data shards, per-process augmentation "
        "streams and mid-epoch position are laid out for its own processes, so it resumes only on them (a global "
        f"data.batch_size stays the same, but the continued run would not equal the run itself); resume with {layout}"
    )
