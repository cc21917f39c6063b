"""Write "-C" sets of any data config's test split in the CIFAR-C (.npy) or ImageNet-C (JPEG folder)
format, marked regenerated. Composes configs/make_corrupted.yaml; see README.md.

    python make_corrupted.py data=digits format=cifar_c out=data/digits-C
    python evaluate.py checkpoint=... benchmark=cifar10c benchmark.root=data/digits-C
"""

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from augmix.cli import hydra_command
from augmix.config import validate_make_corrupted
from augmix.corruptions.make import write_corrupted
from augmix.errors import ConfigError


@hydra_command("make_corrupted")
def main(cfg: DictConfig) -> Path:
    validate_make_corrupted(cfg)
    if OmegaConf.is_missing(cfg, "out"):
        raise ConfigError("out=DIR is required: the folder to write the corrupted sets into")
    corruptions = OmegaConf.to_container(cfg.corruptions) if cfg.corruptions is not None else None
    out = write_corrupted(cfg.data, cfg.format, cfg.out, corruptions, cfg.extra, cfg.seed, cfg.limit, cfg.workers)
    print(f"Wrote {cfg.format} sets to {out}")
    return out


if __name__ == "__main__":
    main()
