"""Evaluation throughput against a plain forward pass of the same model on in-memory tensors.

    python perf/evaluation_throughput.py                       # CIFAR-C .npy sets, CPU
    python perf/evaluation_throughput.py --models cifar_wrn40_2 --images 10000 --workers 2
    python perf/evaluation_throughput.py --jpeg --models resnet18   # Tiny-ImageNet-C style JPEG folders

"evaluate" is the real loop of evaluate.py (augmix.evaluation.run.run_sets): sets read from
memory-mapped .npy files (or decoded from JPEG in loader workers), uint8 -> normalised float on the
device, per-sample outcomes gathered and per-set results written. "forward" runs the same model on
the same number of images, already normalised float tensors in memory, in the same batches.
The loader overhead is 1 - evaluate / forward, from the best of --rounds alternating measurements.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from lightning_fabric import Fabric
from PIL import Image

import augmix.models  # noqa: F401  (registers the CIFAR models)
from augmix.data import CenterCropOrPad
from augmix.data.batches import Normalize
from augmix.data.sources import FolderSource
from augmix.evaluation.checkpoints import create_backbone
from augmix.evaluation.inputs import ArraySet, SourceSet
from augmix.evaluation.run import ResultStore, run_sets

CORRUPTIONS = ("gaussian_noise", "fog", "jpeg_compression")
NORMALIZE = Normalize((0.5,) * 3, (0.5,) * 3)


def npy_sets(folder: Path, images: int, size: int) -> list[ArraySet]:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 5 * images)
    sets = []
    for name in CORRUPTIONS:
        path = folder / f"{name}.npy"
        np.save(path, rng.integers(0, 256, (5 * images, size, size, 3), dtype=np.uint8))
        sets.append(ArraySet(path, 2 * images, images, labels[2 * images : 3 * images], name, 3))
    return sets


def jpeg_sets(folder: Path, images: int, size: int) -> list[SourceSet]:
    rng = np.random.default_rng(0)
    sets = []
    for name in CORRUPTIONS:
        root = folder / name / "3"
        for i in range(images):
            path = root / f"n{i % 10:08d}" / f"{i:06d}.JPEG"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path, quality=85)
        sets.append(SourceSet(FolderSource(root), CenterCropOrPad(size), corruption=name, severity=3))
    return sets


def plain_forward(model: torch.nn.Module, data: torch.Tensor, batch: int, repeats: int) -> float:
    images = len(data)
    start = time.perf_counter()
    with torch.inference_mode():
        for _ in range(repeats):
            for lo in range(0, images, batch):
                model(data[lo : lo + batch])
    return repeats * images / (time.perf_counter() - start)


def evaluation(model: torch.nn.Module, sets: list, batch: int, workers: int, folder: Path) -> float:
    fabric = Fabric(accelerator="cpu", devices=1)
    store = ResultStore(folder / f"results-{time.time_ns()}", {"benchmark": "throughput"})
    store.open()
    start = time.perf_counter()
    run_sets(fabric, model, NORMALIZE, sets, store, batch, workers, num_classes=10, show_progress=False)
    return sum(len(s) for s in sets) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["cifar_wrn40_2", "cifar_wrn16_1"])
    parser.add_argument("--images", type=int, default=1000, help="images per set (3 sets)")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--workers", type=int, default=0, help="loader workers (JPEG decoding runs there)")
    parser.add_argument("--jpeg", action="store_true", help="64px JPEG folders instead of 32px .npy files")
    parser.add_argument("--rounds", type=int, default=3, help="alternating measurements; the best of each is shown")
    args = parser.parse_args()
    size = 64 if args.jpeg else 32
    source = "JPEG folders" if args.jpeg else ".npy memory maps"
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.images} images x {len(CORRUPTIONS)} "
        f"sets, batch {args.batch}, {args.workers} workers, {source} at {size}px"
    )
    print(f"{'model':<18}{'forward img/s':>15}{'evaluate img/s':>16}{'loader overhead':>17}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sets = (jpeg_sets if args.jpeg else npy_sets)(folder, args.images, size)
        in_memory = NORMALIZE(sets[0].load(0, len(sets[0]))[0])  # the same pixels, decoded and normalised
        for name in args.models:
            model = create_backbone(name, 10).eval()
            plain_forward(model, in_memory[: args.batch], args.batch, 1)  # warm-up
            evaluation(model, sets[:1], args.batch, args.workers, folder)  # warm-up (page cache, workers)
            forward = evaluate = 0.0
            for _ in range(args.rounds):  # alternate, so a burst of load elsewhere hits both alike
                forward = max(forward, plain_forward(model, in_memory, args.batch, len(CORRUPTIONS)))
                evaluate = max(evaluate, evaluation(model, sets, args.batch, args.workers, folder))
            print(f"{name:<18}{forward:>15,.0f}{evaluate:>16,.0f}{1 - evaluate / forward:>16.1%}")


if __name__ == "__main__":
    main()
