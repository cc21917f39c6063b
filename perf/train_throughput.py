"""JSD training steps/s with on-the-fly AugMix, against the same training fed pre-made triplets.

Three feeds for one model, image size and batch, each a plain training loop (forward on the
concatenated 3B batch, CE + JSD, backward, SGD step) with the project's DataModule:

* ``premade``: finished triplets computed beforehand and cycled from memory, the upper bound;
* ``workers``: ``augmix.placement=workers``, AugMix in the loader workers;
* ``device``: ``augmix.placement=device``, AugMix on the training device after the transfer.

The ratios ``workers / premade`` and ``device / premade`` say how much on-the-fly AugMix costs
(1.0: nothing). Rounds interleave the feeds; the table shows medians. Data: scikit-learn's
digits upsampled to ``--size`` (offline; the content does not matter for speed).

    python perf/train_throughput.py                          # CPU, resnet18, 32 px
    python perf/train_throughput.py --device cuda --model resnet50 --size 224 --batch 256 --precision bf16
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import timm
import torch
from hydra import compose, initialize_config_dir

import augmix.config  # noqa: F401  (registers the config schemas)
from augmix.data.datamodule import AugMixDataModule
from augmix.files import strict_json
from augmix.losses import JSDLoss
from augmix.training import build_datamodule

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
RESULTS = Path(__file__).resolve().parent / "results"


def datamodule(args: argparse.Namespace, placement: str) -> AugMixDataModule:
    size = args.size
    overrides = [
        "data=digits", f"data.image_size={size}", f"data.train_transform.size={size}",
        f"data.eval_transform.size={size}", f"data.batch_size={args.batch}", f"data.num_workers={args.workers}",
        f"data.pin_memory={args.device == 'cuda'}", f"data.persistent_workers={args.workers > 0}",
        "data.drop_last=true", f"augmix.placement={placement}",
    ]
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    module: AugMixDataModule = build_datamodule(cfg)
    module.setup("fit")
    return module


def finished_batches(module: AugMixDataModule, device: torch.device) -> Iterator[dict]:
    """Training batches as the LightningModule receives them, epoch after epoch."""
    loader = module.train_dataloader()
    epoch = 0
    while True:
        loader.sampler.set_epoch(epoch)
        for raw in loader:
            raw = {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in raw.items()}
            if "views" in raw:
                raw["views"] = [v.to(device, non_blocking=True) for v in raw["views"]]
            yield module.finish_batch(raw, training=True)
        epoch += 1


class Trainer:
    def __init__(self, args: argparse.Namespace, device: torch.device) -> None:
        self.model = timm.create_model(args.model, num_classes=10).to(device)
        if args.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9)
        self.loss = JSDLoss()
        self.device, self.args = device, args

    def step(self, batch: dict) -> None:
        views, target = batch["views"], batch["target"]
        images = torch.cat(views)
        if self.args.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.args.precision == "bf16"):
            logits = self.model(images).float()
        clean, *augmented = logits.split(len(target))
        loss = self.loss(clean, augmented, target).total
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()


def steps_per_second(trainer: Trainer, batches: Iterator[dict], steps: int, warmup: int) -> float:
    cuda = trainer.device.type == "cuda"
    for _ in range(warmup):
        trainer.step(next(batches))
    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        trainer.step(next(batches))
    if cuda:
        torch.cuda.synchronize()
    return steps / (time.perf_counter() - start)


def cycle(batches: list[dict]) -> Iterator[dict]:
    while True:
        yield from batches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="resnet18", help="any timm model name (cifar_* included)")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per feed and round")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1, help="loader worker processes")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the training process")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precision", choices=["32", "bf16"], default="32")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    trainer = Trainer(args, device)

    modules = {placement: datamodule(args, placement) for placement in ("workers", "device")}
    premade = [batch for _, batch in zip(range(min(args.steps, 8)), finished_batches(modules["workers"], device))]
    feeds = {
        "premade": cycle(premade),
        "workers": finished_batches(modules["workers"], device),
        "device": finished_batches(modules["device"], device),
    }
    rates: dict[str, list[float]] = {name: [] for name in feeds}
    for round_ in range(args.rounds):
        for name, batches in feeds.items():
            rates[name].append(steps_per_second(trainer, batches, args.steps, args.warmup))
        print(f"round {round_ + 1}/{args.rounds} done", file=sys.stderr, flush=True)

    medians = {name: statistics.median(values) for name, values in rates.items()}
    report = {
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "device_name": torch.cuda.get_device_name() if device.type == "cuda" else None,
        "steps_per_s": rates, "median_steps_per_s": medians,
        "ratio_vs_premade": {name: medians[name] / medians["premade"] for name in feeds},
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    out = args.out or RESULTS / f"train_throughput_{time.strftime('%Y%m%d_%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(strict_json(report, indent=2))  # no bare NaN: the file stays valid JSON
    print(f"\nJSD training, {args.model} at {args.size}px, batch {args.batch}, {args.device}, "
          f"{args.workers} loader worker(s), {args.threads} training thread(s); medians of {args.rounds} rounds")
    print("| feed | steps/s | vs premade |\n|---|---:|---:|")
    for name in feeds:
        print(f"| {name} | {medians[name]:.3f} | {report['ratio_vs_premade'][name]:.3f} |")
    print(f"results: {out}")


if __name__ == "__main__":
    main()
