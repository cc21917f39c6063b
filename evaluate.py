"""Robustness of a checkpoint: a whole suite (clean, -C, -C-bar, -P, distribution shift) or one
benchmark. Composes configs/evaluate.yaml; see README.md and docs/evaluation.md.

    python evaluate.py checkpoint=outputs/.../checkpoints/last.ckpt suite=cifar10
    python evaluate.py checkpoint=augmix_r50.pth.tar model.backbone=resnet50 suite=imagenet data.root=data/imagenet
    python evaluate.py checkpoint=outputs/.../checkpoints/last.ckpt benchmark=cifar10c benchmark.root=data/CIFAR-10-C
    python evaluate.py checkpoint=augmix_r50.pth.tar model.backbone=resnet50 benchmark=imagenetc \
        benchmark.root=data/ImageNet-C data.root=data/imagenet trainer=gpu trainer.devices=4
"""

from omegaconf import DictConfig

from augmix.cli import hydra_command
from augmix.evaluation import evaluate


@hydra_command("evaluate")
def main(cfg: DictConfig) -> dict:
    return evaluate(cfg)


if __name__ == "__main__":
    main()
