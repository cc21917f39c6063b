"""JPEG folder -> JSD training batch (clean + two AugMix views, normalised): triplets per second per
CPU core, this project against timm's loader pipeline for ``--aa augmix-m1 --aug-splits 3``.

Images are photo-like JPEGs (``augmix.data.photo_jpegs``: crops of the sample photographs under a
faint gradient and sensor-like noise), 500x375 and 375x500 at quality 90, all rows decoding the
same files from the same folder. Rows, each making one training batch of ``--batch`` triplets per
call from the next files of the folder:

* ``augmix workers (cpu)``: a loader worker with ``augmix.placement=workers``: ``BatchAssembler``
  (decode, ``RandomResizedCropFlip`` 224, stack, both AugMix views normalised inside the mix), then
  the DataModule's ``finish_batch`` (normalises the clean view), the ImageNet recipe's settings
  (AugMix severity 1, width 3, random depth, the paper's 9 ops; ImageNet mean/std).
* ``augmix workers, decode=draft (cpu)``: the same with ``data.decode=draft``.
* ``augmix device (cpu)``: ``placement=device``: the worker decodes, crops and stacks; the views
  are made after the transfer (``finish_batch``), here on the CPU.
* ``augmix device (cuda)``: the same with the views made on the GPU, when there is one (process CPU
  time, synchronised: what the host spends per triplet).
* ``timm``: what timm's train.py builds for ``--aa augmix-m1 --aug-splits 3`` (its argparse
  defaults: RandomResizedCrop 224 scale 0.08-1 with random bilinear/bicubic interpolation, hflip
  0.5, no colour jitter under AugMix, no random erasing): ``create_transform(..., separate=True)``
  under ``AugMixDataset(ImageDataset(folder), num_splits=3)``, called per image as its loader does
  (PIL decode, crop, 2 x ``augment_and_mix_transform``, ``ToTensor + Normalize`` per split), then
  the default collate; ``use_prefetcher=False`` (normalised on the CPU, like the rows above).
* ``timm, prefetcher (uint8 out)``: train.py's default on a GPU: the splits leave as uint8 and
  ``fast_collate`` packs them; normalising is left to the GPU and not counted.

CPU rows run with one torch thread and are timed in process CPU time (per core); rounds interleave
all rows and the table shows medians, each row's ratio to timm as the median over rounds of the
per-round ratio (as ``augmix_throughput.py``). A second table times each stage on its own (decode,
crop/resize/flip, AugMix, normalise, stack) over the same files.

    python perf/loader_throughput.py            # full: 256 files, B=32 and 256, 5 rounds
    python perf/loader_throughput.py --quick    # under 3 minutes
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from augmix_throughput import RESULTS, machine, timed
from PIL import Image
from timm.data import AugMixDataset, ImageDataset, create_transform
from timm.data.loader import fast_collate
from torch.utils.data import default_collate

from augmix.augment import AugMix
from augmix.data.batches import AugMixViews, BatchAssembler, BatchKey, Normalize
from augmix.data.datamodule import AugMixDataModule, TrainingViews
from augmix.data.decoding import draft_scale
from augmix.data.photo_jpegs import IMAGENET_SIZES, write_photo_jpegs
from augmix.data.sources import FolderSource, decode_file
from augmix.data.transforms import RandomResizedCropFlip
from augmix.files import strict_json

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # ImageNet (configs/data/imagenet.yaml, timm's default)
TIMM = "timm"


def project_row(folder: Path, batch: int, placement: str, decode: str, size: int, device: torch.device) -> Callable[[], object]:
    """A training batch as the DataModule makes it: the worker's ``BatchAssembler`` and the training
    process's ``finish_batch``, with a fresh batch key (next files, fresh draws) every call."""
    views = TrainingViews(AugMix(severity=1), jsd=True, placement=placement)
    data = AugMixDataModule(
        name="imagenet", root=str(folder.parent), num_classes=1, image_size=size, mean=MEAN, std=STD,
        train_transform=RandomResizedCropFlip(size), eval_transform=RandomResizedCropFlip(size),
        training_views=views, num_workers=0, seed=0, decode=decode,
    )
    source = FolderSource(folder)
    worker_views = data.augmix_views(0) if placement == "workers" else None
    assembler = BatchAssembler(source, data.train_transform, seed=0, views=worker_views, decode=decode)
    calls = iter(range(1 << 30))

    def make() -> list[torch.Tensor]:
        index = next(calls)
        samples = tuple((index * batch + i) % len(source) for i in range(batch))
        out = assembler[BatchKey(0, index, samples)]
        if device.type == "cuda":
            out = {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in out.items()}
            out["views"] = [v.to(device) for v in out["views"]] if "views" in out else None
            if out["views"] is None:
                del out["views"]
        return data.finish_batch(out, training=True)["views"]

    return make


def timm_dataset(folder: Path, size: int, prefetcher: bool) -> AugMixDataset:
    """timm's train.py dataset for ``--aa augmix-m1 --aug-splits 3`` (its argparse defaults otherwise),
    as ``create_loader`` sets it up."""
    dataset = AugMixDataset(ImageDataset(str(folder)), num_splits=3)
    dataset.transform = create_transform(
        size, is_training=True, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), hflip=0.5, vflip=0.0, color_jitter=0.4,
        auto_augment="augmix-m1", interpolation="random", mean=MEAN, std=STD, re_prob=0.0, re_num_splits=0,
        use_prefetcher=prefetcher, separate=True,
    )
    return dataset


def timm_row(folder: Path, batch: int, size: int, prefetcher: bool) -> Callable[[], object]:
    dataset = timm_dataset(folder, size, prefetcher)
    collate = fast_collate if prefetcher else default_collate
    calls = iter(range(1 << 30))

    def make() -> object:
        index = next(calls)
        return collate([dataset[(index * batch + i) % len(dataset)] for i in range(batch)])

    return make


def stage_timers(folder: Path, batch: int, size: int) -> dict[str, dict[str, Callable[[], object]]]:
    """Each stage of both pipelines on its own, over ``batch`` files (inputs made beforehand)."""
    files = sorted(str(p) for p in folder.rglob("*.JPEG"))[:batch]
    crop = RandomResizedCropFlip(size)
    decoded = [decode_file(path) for path in files]
    g = torch.Generator().manual_seed(0)
    cropped = torch.stack([crop(image, g) for image in decoded])
    views = AugMixViews(AugMix(severity=1), 2, seed=0, normalize=(MEAN, STD))
    normalize = Normalize(MEAN, STD)
    dataset = timm_dataset(folder, size, prefetcher=False)
    primary, augment, final = dataset.dataset.transform, dataset.augmentation, dataset.normalize
    pil = [Image.open(path).convert("RGB") for path in files]
    pil_cropped = [primary(image) for image in pil]
    splits = [(final(image), final(augment(image)), final(augment(image))) for image in pil_cropped]

    def draft() -> object:
        return [crop.from_file(path, g) for path in files]

    project = {
        "decode": lambda: [decode_file(path) for path in files],
        "crop/resize/flip": lambda: [crop(image, g) for image in decoded],
        "stack": lambda: torch.stack([image.clone() for image in cropped]),
        "AugMix (2 views)": lambda: views(cropped, 0, 0),
        "normalise": lambda: normalize(cropped),
        "decode + crop, decode=draft": draft,
    }
    timm = {
        "decode": lambda: [Image.open(path).convert("RGB") for path in files],
        "crop/resize/flip": lambda: [primary(image) for image in pil],
        "stack": lambda: default_collate([(s, 0) for s in splits]),
        "AugMix (2 views)": lambda: [(augment(image), augment(image)) for image in pil_cropped],
        "normalise": lambda: [(final(image), final(image), final(image)) for image in pil_cropped],
    }
    return {"augmix": project, TIMM: timm}


def draft_share(size: int, count: int = 4000) -> float:
    """The share of RandomResizedCrop boxes of the benchmark's image sizes that decode in draft."""
    crop, g = RandomResizedCropFlip(size), torch.Generator().manual_seed(0)
    drafted = 0
    for n in range(count):
        width, height = IMAGENET_SIZES[n % len(IMAGENET_SIZES)]
        _, _, h, w = crop.crop_box(height, width, g)
        drafted += draft_scale(h, w, size) > 1
    return drafted / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", help="triplets per batch (32 256; quick: 32)")
    parser.add_argument("--size", type=int, default=224, help="training crop (224)")
    parser.add_argument("--files", type=int, help="JPEGs in the folder (256; quick: 64)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds; the table shows medians (5; quick: 3)")
    parser.add_argument("--min-time", type=float, help="seconds per row per round (2.0; quick: 0.6)")
    parser.add_argument("--folder", type=Path, help="an ImageFolder of JPEGs to read instead (default: photo-like files written to a temp dir)")
    parser.add_argument("--no-cuda", action="store_true")
    parser.add_argument("--quick", action="store_true", help="shorter defaults: under 3 minutes")
    parser.add_argument("--out", type=Path, help="JSON result file (default: perf/results/)")
    args = parser.parse_args()
    for name, full, quick in (("batch_sizes", [32, 256], [32]), ("files", 256, 64), ("rounds", 5, 3), ("min_time", 2.0, 0.6)):
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    torch.set_num_threads(1)
    use_cuda = torch.cuda.is_available() and not args.no_cuda
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.folder or Path(scratch) / "train"
        if args.folder is None:
            write_photo_jpegs(folder, args.files, IMAGENET_SIZES, quality=90, seed=0)
        files = sorted(folder.rglob("*.JPEG"))
        kib = statistics.mean(p.stat().st_size for p in files) / 1024
        print(f"{len(files)} JPEGs in {folder}, mean {kib:.0f} KiB", file=sys.stderr, flush=True)
        report = run(folder, args, use_cuda)
    report.update(files=len(files), mean_file_kib=kib)
    out = args.out or RESULTS / f"loader_throughput_{time.strftime('%Y%m%d_%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(strict_json(report, indent=2))
    print_tables(report, out)


def run(folder: Path, args: argparse.Namespace, use_cuda: bool) -> dict:
    cpu, size = torch.device("cpu"), args.size
    rows: dict[int, dict[str, tuple[Callable[[], object], bool]]] = {}
    for batch in args.batch_sizes:
        config = {
            "augmix workers (cpu)": (project_row(folder, batch, "workers", "full", size, cpu), False),
            "augmix workers, decode=draft (cpu)": (project_row(folder, batch, "workers", "draft", size, cpu), False),
            "augmix device (cpu)": (project_row(folder, batch, "device", "full", size, cpu), False),
        }
        if use_cuda:
            config["augmix device (cuda)"] = (project_row(folder, batch, "device", "full", size, torch.device("cuda")), True)
        config[TIMM] = (timm_row(folder, batch, size, prefetcher=False), False)
        config["timm, prefetcher (uint8 out)"] = (timm_row(folder, batch, size, prefetcher=True), False)
        rows[batch] = config
    stages = stage_timers(folder, min(args.batch_sizes), size)

    samples: dict[str, list[float]] = {}
    stage_samples: dict[str, list[float]] = {}
    for round_ in range(args.rounds):
        for batch, config in rows.items():
            for label, (fn, cuda) in config.items():
                seconds, _, calls = timed(fn, args.min_time, cuda=False)  # CPU time, also for the CUDA row
                samples.setdefault(f"{label}|{batch}", []).append(batch * calls / seconds)
        for pipeline, timers in stages.items():
            for stage, fn in timers.items():
                seconds, _, calls = timed(fn, args.min_time / 2, cuda=False)
                stage_samples.setdefault(f"{pipeline}|{stage}", []).append(seconds / calls / min(args.batch_sizes) * 1e3)
        print(f"round {round_ + 1}/{args.rounds} done", file=sys.stderr, flush=True)

    results = []
    for batch, config in rows.items():
        reference = samples[f"{TIMM}|{batch}"]
        for label in config:
            rates = samples[f"{label}|{batch}"]
            results.append({
                "row": label, "batch": batch, "triplets_per_s": statistics.median(rates),
                "vs_timm": statistics.median(r / t for r, t in zip(rates, reference)), "rounds": rates,
            })
    stage_ms = {key: statistics.median(values) for key, values in stage_samples.items()}
    return {
        "machine": machine(), "time": time.strftime("%Y-%m-%d %H:%M:%S"), "size": size,
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "results": results, "stage_ms_per_triplet": stage_ms, "draft_share": draft_share(size),
    }


def print_tables(report: dict, out: Path) -> None:
    info, results = report["machine"], report["results"]
    batches = sorted({r["batch"] for r in results})
    labels = list(dict.fromkeys(r["row"] for r in results))
    cell = {(r["row"], r["batch"]): r for r in results}
    print(
        f"\nJPEG -> normalised JSD triplets at {report['size']} px, per core (x timm, same rounds); "
        f"{report['files']} files, mean {report['mean_file_kib']:.0f} KiB; {info['cpu']}, {info['cores']} cores"
    )
    print("| row | " + " | ".join(f"B={b}" for b in batches) + " |")
    print("|---|" + "---:|" * len(batches))
    for label in labels:
        values = [f"{cell[(label, b)]['triplets_per_s']:,.1f} (x{cell[(label, b)]['vs_timm']:.2f})" for b in batches]
        print(f"| {label} | " + " | ".join(values) + " |")
    stage_ms = report["stage_ms_per_triplet"]
    names = ["decode", "crop/resize/flip", "AugMix (2 views)", "normalise", "stack"]
    totals = {p: sum(stage_ms[f"{p}|{n}"] for n in names) for p in ("augmix", TIMM)}
    print(f"\nWhere the time goes, ms of one core per triplet (B={min(batches)}; share of the stages' sum)")
    print("| stage | augmix (workers) | timm |")
    print("|---|---:|---:|")
    for name in names:
        a, t = stage_ms[f"augmix|{name}"], stage_ms[f"{TIMM}|{name}"]
        print(f"| {name} | {a:.2f} ({a / totals['augmix']:.0%}) | {t:.2f} ({t / totals[TIMM]:.0%}) |")
    print(f"| sum | {totals['augmix']:.2f} | {totals[TIMM]:.2f} |")
    draft = stage_ms["augmix|decode + crop, decode=draft"]
    print(
        f"decode + crop with decode=draft: {draft:.2f} ms (full: "
        f"{stage_ms['augmix|decode'] + stage_ms['augmix|crop/resize/flip']:.2f}); draft applies to "
        f"{report['draft_share']:.1%} of {report['size']} px crops of these image sizes"
    )
    print(f"results: {out}")


if __name__ == "__main__":
    main()
