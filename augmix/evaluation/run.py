"""Running the model over every pending set: one DataLoader, ranks sharded, results stored per set.

The loop: one DataLoader streams the batches of all pending sets in order, so loader workers stay
busy across set boundaries; uint8 batches become normalised floats on the device. When a set's last
batch is done its per-sample outcomes (``augmix.evaluation.metrics.outcomes``) are gathered from all
ranks, its metrics computed from the complete set and written atomically by rank zero; a resumed run
skips the sets already written. An unreadable image on one rank stops every rank at that set's end
with its message. A stop signal (see ``augmix.interrupts``) stops at the next batch: the sets finished
so far are kept, the one in progress is computed again by the resumed run.

Sharding: each rank takes one contiguous block of every set (contiguous rows are the cheapest to read
from a memory-mapped .npy), with no padding, so every image is evaluated exactly once. The gathered
outcomes are reassembled in dataset order, so no figure depends on the number of ranks. Before each
gather the ranks agree on whether any of them met bad input, so all stop together with its message.

A per-image set's rows are its images' outcomes (over the classes it covers, ``EvalSet.restrict``);
a -P set makes one row of stability figures per video (``EvalSet.measure``) and its own figures from
them (``EvalSet.figures``); the loop itself only shards, gathers and stores. A -P set's
item is a video of ``frames`` images, so its batches hold ``batch_size // frames`` videos (at least
one): a batch never splits a video, whose figures need all of its frames.

The store: ``<dir>/run.json`` records what is being evaluated (checkpoint hash, benchmark,
preprocessing, limit); each ``<dir>/<set>.json`` carries that fingerprint too, so a resumed run only
reuses sets computed under identical conditions and never mixes two evaluations in one folder. A
suite keeps one such folder per member (``StoreGroup``), so adding a member or a newly downloaded
set to a suite never invalidates the members already computed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import torch
from lightning_fabric import Fabric
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text
from torch import Tensor, nn
from torch.utils.data import DataLoader

from augmix import interrupts
from augmix.errors import CheckpointError, ConfigError, DataError, RunDirError
from augmix.evaluation.inputs.sets import BatchDataset, EvalSet
from augmix.evaluation.metrics import metrics_from_outcomes, outcomes
from augmix.files import remove_stale_temporaries, write_json
from augmix.fingerprint import config_hash

# ---------------------------------------------------------------------------------------- the store

MANIFEST = "run.json"
SETS_FOLDER = "robustness_sets"  # in the output folder


class ResultStore:
    """The folder of finished sets of one evaluation."""

    def __init__(self, directory: str | Path, description: dict[str, Any], replace_stale: bool = False) -> None:
        self.directory = Path(directory)
        self.description = description
        self.fingerprint = config_hash(description)
        self.replace_stale = replace_stale

    def open(self) -> None:
        """Create the folder or check it belongs to this evaluation (rank zero only, before any write;
        temp files that a killed run left behind are removed)."""
        remove_stale_temporaries(self.directory)
        manifest = self.directory / MANIFEST
        if manifest.is_file():
            existing = self._manifest(manifest)
            if existing.get("fingerprint") != self.fingerprint:
                if not self.replace_stale:
                    changed = sorted(
                        key
                        for key in set(existing.get("description", {})) | set(self.description)
                        if existing.get("description", {}).get(key) != self.description.get(key)
                    )
                    raise ConfigError(
                        f"{self.directory} holds results of a different evaluation (differs in {changed}); "
                        "choose another output folder (hydra.run.dir=...) or delete that folder to start over"
                    )
                for stale in self.directory.glob("*.json"):
                    stale.unlink(missing_ok=True)  # another process may have removed it meanwhile
        self.directory.mkdir(parents=True, exist_ok=True)
        write_json(manifest, {"fingerprint": self.fingerprint, "description": self.description})

    def _manifest(self, manifest: Path) -> dict[str, Any]:
        """The folder's record of what it holds, read as data; damaged, it names the folder to remove
        (or, with ``replace_stale``, counts as another evaluation's and is replaced)."""
        try:
            existing = json.loads(manifest.read_bytes())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            existing = error
        if isinstance(existing, dict) and isinstance(existing.get("description", {}), dict):
            return existing
        if self.replace_stale:
            return {}
        raise RunDirError(
            f"{manifest} is damaged ({existing if isinstance(existing, Exception) else 'not a manifest'}), so the set results "
            f"beside it cannot be matched to this evaluation; delete {self.directory} to evaluate every set again"
        )

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}.json"

    def read(self, key: str) -> dict | None:
        """The finished set's metrics, or None if it has not been computed under this fingerprint."""
        path = self._path(key)
        if not path.is_file():
            return None
        try:
            record = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None  # cannot happen with atomic writes, but never trust a damaged file
        if not isinstance(record, dict) or not isinstance(record.get("metrics"), dict):
            return None
        return record["metrics"] if record.get("fingerprint") == self.fingerprint else None

    def write(self, key: str, metrics: dict) -> None:
        write_json(self._path(key), {"fingerprint": self.fingerprint, "set": key, "metrics": metrics})


def model_description(
    checkpoint_sha256: str,
    backbone: str,
    backbone_kwargs: Mapping[str, Any],
    data: Mapping[str, Any],
    clean_images: int,
    num_classes: int,
    precision: Any,
    checkpoint_weights: str = "model",
) -> dict[str, Any]:
    """The part of a store's description every set shares: the model, its preprocessing, the clean split.
    An EMA set is named (it gives other numbers); the trained weights are not, so older stores stay valid."""
    return {
        "checkpoint_sha256": checkpoint_sha256,
        **({"checkpoint_weights": checkpoint_weights} if checkpoint_weights != "model" else {}),
        "backbone": backbone,
        "backbone_kwargs": dict(backbone_kwargs),
        "data": {key: data.get(key) for key in ("name", "image_size", "mean", "std", "eval_transform")},
        "clean": {"root": str(Path(data["root"]).resolve()), "images": clean_images},
        "num_classes": num_classes,
        "precision": str(precision),
    }


class StoreGroup:
    """The stores of a suite's members under one folder: ``<dir>/<member>/``; a set's result key
    ``<member>.<key>`` is read from and written to its member's store."""

    def __init__(self, directory: str | Path, stores: dict[str, ResultStore]) -> None:
        self.directory = Path(directory)
        self.stores = stores

    def open(self) -> None:
        for store in self.stores.values():
            store.open()

    def _split(self, key: str) -> tuple[ResultStore, str]:
        member, _, name = key.partition(".")
        return self.stores[member], name

    def read(self, key: str) -> dict | None:
        store, name = self._split(key)
        return store.read(name)

    def write(self, key: str, metrics: dict) -> None:
        store, name = self._split(key)
        store.write(name, metrics)


class Store(Protocol):
    """What the loop needs of where results go: a ``ResultStore`` or a ``StoreGroup``."""

    directory: Path

    def read(self, key: str) -> dict | None: ...

    def write(self, key: str, metrics: dict) -> None: ...


# ---------------------------------------------------------------------------- sharding across ranks

class Collective(Protocol):
    """What the reduction needs from Lightning Fabric (``fabric`` satisfies it)."""

    world_size: int
    global_rank: int

    def all_gather(self, data: Tensor) -> Tensor: ...

    def all_reduce(self, data: Tensor, reduce_op: str) -> Tensor: ...

    def broadcast(self, obj: Any, src: int = 0) -> Any: ...


def shard_bounds(size: int, rank: int, world_size: int) -> tuple[int, int]:
    """This rank's block [start, stop) of a set of ``size``; blocks differ in length by at most 1."""
    return size * rank // world_size, size * (rank + 1) // world_size


def batch_bounds(start: int, stop: int, batch_size: int) -> list[tuple[int, int]]:
    """Consecutive batches covering [start, stop)."""
    return [(lo, min(lo + batch_size, stop)) for lo in range(start, stop, batch_size)]


def unshard(gathered: Tensor, size: int) -> Tensor:
    """Inverse of sharding: ``gathered[r]`` holds rank r's rows, padded to a common length."""
    world_size = gathered.shape[0]
    parts = []
    for rank in range(world_size):
        start, stop = shard_bounds(size, rank, world_size)
        parts.append(gathered[rank, : stop - start])
    return torch.cat(parts)


def gather_set(collective: Collective, local: Tensor, size: int) -> Tensor:
    """All ranks' rows of one set, in dataset order, on every rank."""
    world_size = collective.world_size
    if world_size == 1:
        return local
    longest = -(-size // world_size)
    padded = local.new_zeros((longest, *local.shape[1:]))
    padded[: len(local)] = local
    return unshard(collective.all_gather(padded), size)


def first_error(collective: Collective, message: str | None) -> str | None:
    """The error message of the lowest rank that has one, on every rank; None when none has one.

    Every rank calls this at the same point, failed or not: a rank that stopped on its own would
    leave the others in the next collective (gloo fails with a traceback, NCCL waits forever).
    """
    if collective.world_size == 1:
        return message
    # the MAX of world_size - rank over the failed ranks names the lowest of them; 0: none failed
    mark = collective.world_size - collective.global_rank if message is not None else 0
    lowest = int(collective.all_reduce(torch.tensor(mark), reduce_op="max"))
    if lowest == 0:
        return None
    return collective.broadcast(message, src=collective.world_size - lowest)


def any_rank(collective: Collective, flag: bool) -> bool:
    """True on every rank when ``flag`` is true on any (every rank must call it at the same point)."""
    if collective.world_size == 1:
        return flag
    return bool(collective.all_reduce(torch.tensor(int(flag)), reduce_op="max"))


# ----------------------------------------------------------------------------------------- progress

class ImagesPerSecond(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} img/s" if speed else "- img/s")


class SetProgress:
    """Rank zero's view of the run; a no-op elsewhere or when disabled."""

    def __init__(self, total_images: int, total_sets: int, enabled: bool) -> None:
        self.total_sets, self.done_sets, self.done_images = total_sets, 0, 0
        self.progress = (
            Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                ImagesPerSecond(),
                TextColumn("sets {task.fields[sets]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                speed_estimate_period=60.0,
            )
            if enabled and total_sets
            else None
        )
        self.task = None
        if self.progress is not None:
            self.task = self.progress.add_task("evaluating", total=total_images, sets=f"0/{total_sets}")

    def __enter__(self) -> SetProgress:  # noqa: PYI034
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def start_set(self, key: str) -> None:
        if self.progress is not None:
            self.progress.update(self.task, description=key)

    def advance(self, images: int) -> None:
        if self.progress is not None:
            self.progress.advance(self.task, images)

    def finish_set(self, images: int) -> None:
        """``images``: the set's size over all ranks (``advance`` only estimates it from this rank's)."""
        self.done_sets += 1
        self.done_images += images
        if self.progress is not None:
            self.progress.update(self.task, completed=self.done_images, sets=f"{self.done_sets}/{self.total_sets}")


# ----------------------------------------------------------------------------------------- the loop

STOP_CHECK_EVERY = 10  # batches between the ranks' agreements on a stop request (one process: every batch)


def run_sets(
    fabric: Fabric,
    model: nn.Module,
    normalize: Callable[[Tensor], Tensor],
    sets: list[EvalSet],
    store: Store,
    batch_size: int,
    num_workers: int,
    num_classes: int,
    show_progress: bool,
) -> dict[str, dict]:
    """Evaluate the sets ``store`` does not hold yet; returns every set's metrics by result key.
    ``batch_size`` counts images (a -P set's batches hold whole videos, see above).

    Top-5 counts are stored whenever they mean something (5 classes or more), whether or not this
    run reports them, so a resumed run that does report them finds them in every stored set."""
    top5 = num_classes >= 5
    done = {s.result_key: store.read(s.result_key) for s in sets} if fabric.global_rank == 0 else {}
    pending_keys = fabric.broadcast([key for key, metrics in done.items() if metrics is None])
    pending = [s for s in sets if s.result_key in set(pending_keys)]

    rank, world = fabric.global_rank, fabric.world_size
    items = [max(1, (s.batch_size or batch_size) // s.frames) for s in pending]  # items per batch of each set
    plans = [batch_bounds(*shard_bounds(len(s), rank, world), size) for s, size in zip(pending, items)]
    keys = [(index, lo, hi) for index, plan in enumerate(plans) for lo, hi in plan]
    loader = DataLoader(
        BatchDataset(pending, keys),
        batch_size=None,
        shuffle=False,
        num_workers=num_workers,
        pin_memory=fabric.device.type == "cuda",
    )
    precision = fabric.strategy.precision
    model.eval()
    batches = iter(loader)
    results = {}
    stopped = False
    progress = SetProgress(sum(len(s) * s.frames for s in pending), len(pending), show_progress and rank == 0)
    with progress, torch.inference_mode():
        for evalset, plan, size in zip(pending, plans, items):
            progress.start_set(evalset.result_key)
            parts, error = [], None
            finite = torch.ones((), dtype=torch.bool, device=fabric.device)  # read once per set: no per-batch sync
            common = min(len(batch_bounds(*shard_bounds(len(evalset), r, world), size)) for r in range(world))
            for index in range(len(plan)):
                if stop_agreed(fabric, index < common and index % STOP_CHECK_EVERY == 0):
                    stopped = True
                    break
                batch = next(batches)
                if "error" in batch:
                    error = batch["error"]
                    break
                images = normalize(batch["images"].to(fabric.device, non_blocking=True))
                with fabric.autocast():
                    logits = model(precision.convert_input(images))
                finite &= torch.isfinite(logits).all()
                parts.append(rows(evalset, logits, batch["targets"].to(fabric.device, non_blocking=True)))
                progress.advance(len(images) * world)
            if stopped:
                break
            error = first_error(fabric, error)
            if error is not None:
                raise DataError(error)
            if any_rank(fabric, not bool(finite)):
                raise CheckpointError(
                    f"the model's outputs (logits) on set {evalset.result_key} include NaN or infinity, so its figures would be "
                    "meaningless; evaluation stopped before writing them (sets already written are kept). The weights "
                    "are broken (a diverged run?) or a half precision overflowed: try trainer.precision=32-true"
                )
            local = torch.cat(parts) if parts else rows(
                evalset, torch.zeros((0, num_classes), device=fabric.device), torch.zeros(0, dtype=torch.long, device=fabric.device)
            )
            table = gather_set(fabric, local, len(evalset))
            metrics = metrics_from_outcomes(table, top5) if evalset.per_image else evalset.figures(table)
            if rank == 0:
                store.write(evalset.result_key, metrics)
            results[evalset.result_key] = metrics
            progress.finish_set(len(evalset) * evalset.frames)
    if stopped:
        kept = len(sets) - len(pending) + len(results)
        interrupts.stop(f"stopped evaluation after {kept} of {len(sets)} sets; the finished sets are kept in {store.directory}", "continue")
    if rank == 0:
        results.update({key: metrics for key, metrics in done.items() if metrics is not None})
    return results


def launch(fabric_kwargs: Mapping[str, Any], model: nn.Module) -> tuple[Fabric, nn.Module]:
    """Lightning Fabric started on the requested devices, and the model on this rank's device in its precision."""
    fabric = Fabric(**fabric_kwargs)
    fabric.launch()
    return fabric, fabric.strategy.precision.convert_module(model).to(fabric.device)


def rows(evalset: EvalSet, logits: Tensor, targets: Tensor) -> Tensor:
    """One batch's rows of the set's table: per-image outcomes, or the set's own (-P videos)."""
    return outcomes(evalset.restrict(logits), targets) if evalset.per_image else evalset.measure(logits)


def stop_agreed(fabric: Fabric, check: bool) -> bool:
    """Did any rank receive a stop signal? Alone: asked before every batch. With several ranks only at
    the ``check`` points, which all ranks reach together (a batch every shard has, every few batches)."""
    local = interrupts.requested() is not None
    if fabric.world_size == 1:
        return local
    if not check:
        return False
    return bool(fabric.all_reduce(torch.tensor(float(local), device=fabric.device), reduce_op="max") > 0)
