"""Corruption robustness of a checkpoint on CIFAR-10-C, CIFAR-100-C, ImageNet-C, Tiny-ImageNet-C or
synthetic -C sets. Composes configs/evaluate.yaml; see README.md.

    python evaluate.py checkpoint=outputs/.../checkpoints/last.ckpt benchmark=cifar10c benchmark.root=data/CIFAR-10-C
    python evaluate.py checkpoint=augmix_r50.pth.tar model.backbone=resnet50 benchmark=imagenetc \
        benchmark.root=data/ImageNet-C data.root=data/imagenet trainer=gpu trainer.devices=4
"""

import hydra
from omegaconf import DictConfig

from augmix.cli import report_errors
from augmix.evaluation import evaluate


@hydra.main(version_base="1.3", config_path="configs", config_name="evaluate")
@report_errors
def main(cfg: DictConfig) -> dict:
    return evaluate(cfg)


if __name__ == "__main__":
    main()
