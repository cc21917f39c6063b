"""AugMix triplets per second per CPU core: the project against its peers, in one run.

A triplet is what JSD training consumes per sample: the clean view and two AugMix views. Rows:

* ``augmix workers (cpu)``: a loader worker's normalised AugMix views of the collated uint8 batch
  (``AugMixViews``), then the DataModule's after-transfer step (``finish_batch``), which
  normalises the clean view.
* ``augmix device (cpu)``: the DataModule's after-transfer path with ``placement=device``
  (``finish_batch`` makes the views), on the CPU.
* ``augmix device (cuda)``: the same on the GPU, when there is one (wall time, not per core).
* ``torchvision``, ``timm``, ``official``: per-image pipelines (``perf/peers.py``).

CPU rows run single-threaded and are timed in process CPU time, i.e. per core, which other work
on a shared machine disturbs far less than wall time. Rounds interleave all rows; the table
shows medians over rounds, and each row's ratio to the fastest peer as the median over rounds
of its ratio to that round's fastest peer.

    python perf/augmix_throughput.py            # full: 32 and 224 px, batch 1 and 256
    python perf/augmix_throughput.py --quick    # a minute or so, for a quick look
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import peers
import PIL
import timm
import torch
import torchvision
from PIL import Image

from augmix.augment import AugMix
from augmix.data.datamodule import AugMixDataModule, TrainingViews
from augmix.files import strict_json
from augmix.profiling import PeakMemory

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
PEERS = ("torchvision", "timm", "official")
RESULTS = Path(__file__).resolve().parent / "results"


def sample_images(count: int, size: int, seed: int = 0) -> torch.Tensor:
    """Random crops of scikit-image's sample photographs, resized: real image statistics, offline."""
    from skimage import data

    photos = [torch.from_numpy(getattr(data, n)()).permute(2, 0, 1) for n in ("astronaut", "coffee", "chelsea", "rocket")]
    g = torch.Generator().manual_seed(seed)
    crops = []
    for i in range(count):
        photo = photos[i % len(photos)]
        h, w = photo.shape[1:]
        side = int(torch.randint(min(h, w) // 4, min(h, w) + 1, (1,), generator=g))
        top = int(torch.randint(0, h - side + 1, (1,), generator=g))
        left = int(torch.randint(0, w - side + 1, (1,), generator=g))
        crop = photo[None, :, top : top + side, left : left + side].float()
        crops.append(torch.nn.functional.interpolate(crop, size=(size, size), mode="bilinear", antialias=True))
    return torch.cat(crops).round_().clamp_(0, 255).to(torch.uint8)


def datamodule(size: int, placement: str, all_ops: bool) -> AugMixDataModule:
    """A DataModule as training builds it, without data: only its batch finishing is used."""
    return AugMixDataModule(
        name="cifar10", root=".", num_classes=10, image_size=size, mean=MEAN, std=STD,
        train_transform=lambda image, g: image, eval_transform=lambda image, g: image,
        training_views=TrainingViews(AugMix(all_ops=all_ops), jsd=True, placement=placement), num_workers=0, seed=0,
    )


class ProjectRow:
    """Makes the triplets of a whole batch per call, with a fresh batch key every call."""

    def __init__(
        self, images: torch.Tensor, placement: str, device: torch.device, all_ops: bool, check_syncs: bool = False
    ) -> None:
        self.dm = datamodule(images.shape[-1], placement, all_ops)
        self.check_syncs = check_syncs
        self.views = self.dm.augmix_views(0) if placement == "workers" else None
        self.images = images.to(device)
        self.target = torch.zeros(len(images), dtype=torch.long, device=device)
        self.calls = 0

    def __call__(self) -> list[torch.Tensor]:
        key = (0, self.calls)
        self.calls += 1
        batch = {"image": self.images, "target": self.target, "key": key}
        if self.views is not None:  # made in the loader worker, on the CPU
            batch["views"] = self.views(self.images, *key)
        if not self.check_syncs:
            return self.dm.finish_batch(batch, training=True)["views"]
        torch.cuda.set_sync_debug_mode("error")  # any operation that waits for the GPU raises
        try:
            return self.dm.finish_batch(batch, training=True)["views"]
        finally:
            torch.cuda.set_sync_debug_mode("default")


def peer_row(name: str, images: torch.Tensor, all_ops: bool) -> Callable[[], object]:
    size = images.shape[-1]
    if name == "torchvision":
        triplet, inputs = peers.torchvision_triplet(all_ops), list(images)
    else:
        inputs = [Image.fromarray(image.permute(1, 2, 0).numpy()) for image in images]
        triplet = peers.timm_triplet(size, MEAN) if name == "timm" else peers.official_triplet(size)
    return lambda: [triplet(image) for image in inputs]


def timed(fn: Callable[[], object], min_time: float, cuda: bool) -> tuple[float, float, int]:
    """Calls ``fn`` until ``min_time`` seconds of the clock that matters passed: (cpu s, wall s, calls).

    One untimed call first: a training loop calls the same pipeline over and over, so caches and
    the allocator's free lists hold its memory, not that of the row timed before it.
    """
    fn()
    calls, cpu, wall = 0, 0.0, 0.0
    while calls == 0 or (wall if cuda else cpu) < min_time:
        if cuda:
            torch.cuda.synchronize()
        c, w = time.process_time(), time.perf_counter()
        fn()
        if cuda:
            torch.cuda.synchronize()
        cpu += time.process_time() - c
        wall += time.perf_counter() - w
        calls += 1
    return cpu, wall, calls


def peak_memory(fn: Callable[[], object], device: torch.device) -> int:
    """Peak bytes of the tensors ``fn`` allocates, its result included (CUDA: the allocator's
    statistics; CPU: ``augmix.profiling.PeakMemory``)."""
    if device.type == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    with PeakMemory() as memory:
        fn()
    return memory.peak


def machine() -> dict:
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next((line.split(":", 1)[1].strip() for line in lscpu.splitlines() if line.startswith("Model name")), "")
    except (OSError, subprocess.CalledProcessError):
        model = platform.processor()
    return {
        "cpu": model, "cores": os.cpu_count(), "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "python": platform.python_version(), "torch": torch.__version__, "torchvision": torchvision.__version__,
        "timm": timm.__version__, "pillow": PIL.__version__, "numpy": np.__version__, "torch_threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 224])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 256])
    parser.add_argument("--rounds", type=int, help="interleaved rounds; the table shows medians (5; quick: 3)")
    parser.add_argument("--min-time", type=float, help="seconds per row per round (1.0; quick: 0.3)")
    parser.add_argument("--peer-images", type=int, help="images a peer round cycles through (64; quick: 16)")
    parser.add_argument("--all-ops", action="store_true", help="13 ops (timm's list) for the project and torchvision")
    parser.add_argument("--no-cuda", action="store_true")
    parser.add_argument("--check-syncs", action="store_true", help="fail if the CUDA device path ever waits for the GPU")
    parser.add_argument("--quick", action="store_true", help="shorter defaults, for a look in about a minute")
    parser.add_argument("--out", type=Path, default=None, help="JSON result file (default: perf/results/)")
    args = parser.parse_args()
    for name, full, quick in (("rounds", 5, 3), ("min_time", 1.0, 0.3), ("peer_images", 64, 16)):
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    torch.set_num_threads(1)
    use_cuda = torch.cuda.is_available() and not args.no_cuda

    rows: dict[tuple[int, int], dict[str, tuple[Callable[[], object], int, bool]]] = {}
    memory: dict[str, dict] = {}
    for size in args.sizes:
        photos = sample_images(max(args.batch_sizes + [args.peer_images]), size)
        for batch in args.batch_sizes:
            images = photos[:batch]
            config = {
                "augmix workers (cpu)": (ProjectRow(images, "workers", torch.device("cpu"), args.all_ops), batch, False),
                "augmix device (cpu)": (ProjectRow(images, "device", torch.device("cpu"), args.all_ops), batch, False),
            }
            if use_cuda:
                cuda_row = ProjectRow(images, "device", torch.device("cuda"), args.all_ops, args.check_syncs)
                config["augmix device (cuda)"] = (cuda_row, batch, True)
            count = min(batch, args.peer_images) if batch > 1 else 1
            for name in PEERS:
                config[name] = (peer_row(name, photos[:count], args.all_ops), count, False)
            rows[(size, batch)] = config
            for label, (fn, _, cuda) in config.items():
                fn()  # warm up
                if label.startswith("augmix device") and batch == max(args.batch_sizes):
                    device = torch.device("cuda" if cuda else "cpu")
                    peak = peak_memory(fn, device)
                    view = batch * 3 * size * size * 4
                    memory[f"{label} {size}px B={batch}"] = {"peak_bytes": peak, "views": peak / view}

    samples: dict[str, list[dict]] = {}
    for round_ in range(args.rounds):
        for (size, batch), config in rows.items():
            for label, (fn, triplets, cuda) in config.items():
                cpu, wall, calls = timed(fn, args.min_time, cuda)
                rate = triplets * calls / (wall if cuda else cpu)
                samples.setdefault(f"{label}|{size}|{batch}", []).append(
                    {"triplets_per_s": rate, "cpu_s": cpu, "wall_s": wall, "calls": calls, "triplets_per_call": triplets}
                )
        print(f"round {round_ + 1}/{args.rounds} done", file=sys.stderr, flush=True)

    results = []
    for (size, batch), config in rows.items():
        rates = {label: [s["triplets_per_s"] for s in samples[f"{label}|{size}|{batch}"]] for label in config}
        fastest_peer = [max(rates[p][r] for p in PEERS) for r in range(args.rounds)]
        for label in config:
            results.append({
                "row": label, "size": size, "batch": batch, "triplets_per_s": statistics.median(rates[label]),
                # per round, against the fastest peer of that round: load drifts cancel out
                "vs_fastest_peer": statistics.median(rate / peer for rate, peer in zip(rates[label], fastest_peer)),
                "clock": "wall" if "cuda" in label else "cpu", "rounds": samples[f"{label}|{size}|{batch}"],
            })

    report = {"machine": machine(), "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
              "time": time.strftime("%Y-%m-%d %H:%M:%S"), "results": results, "peak_memory": memory}
    out = args.out or RESULTS / f"augmix_throughput_{time.strftime('%Y%m%d_%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(strict_json(report, indent=2))  # no bare NaN: the file stays valid JSON
    print_table(results, memory, report["machine"], out)


def print_table(results: list[dict], memory: dict[str, dict], info: dict, out: Path) -> None:
    columns = sorted({(r["size"], r["batch"]) for r in results})
    labels = list(dict.fromkeys(r["row"] for r in results))
    cell = {(r["row"], r["size"], r["batch"]): r for r in results}
    header = "| row | " + " | ".join(f"{s}px B={b}" for s, b in columns) + " |"
    print(f"\nAugMix triplets/s per core, median of rounds (x fastest peer, same rounds); {info['cpu']}, {info['cores']} cores")
    print(header)
    print("|---|" + "---:|" * len(columns))
    for label in labels:
        values = []
        for s, b in columns:
            r = cell.get((label, s, b))
            values.append(f"{r['triplets_per_s']:,.0f} (x{r['vs_fastest_peer']:.2f})" if r else "")
        print(f"| {label} | " + " | ".join(values) + " |")
    for name, m in memory.items():
        print(f"peak memory {name}: {m['peak_bytes'] / 2**20:.1f} MiB = {m['views']:.2f} float32 views of the batch")
    print(f"results: {out}")


if __name__ == "__main__":
    main()
