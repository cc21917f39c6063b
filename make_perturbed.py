"""Write "-P" sets of any data config's test split in the CIFAR-10-P (.npy) or ImageNet-P (mp4
folder) format, marked regenerated. Composes configs/make_perturbed.yaml; see docs/evaluation.md (Perturbation stability).

    python make_perturbed.py data=digits format=cifar_p out=data/digits-P
    python make_perturbed.py data=imagenet format=imagenet_p out=data/ImageNet-P-regen workers=16
"""

from pathlib import Path

from omegaconf import DictConfig, ListConfig, OmegaConf

from augmix.cli import hydra_command
from augmix.config import validate_structure
from augmix.errors import ConfigError
from augmix.perturbations.make import write_perturbed

KEYS = dict.fromkeys(("task_name", "format", "out", "perturbations", "extra", "difficulties", "seed", "limit",
                      "workers", "codec", "data", "paths", "hydra"))


@hydra_command("make_perturbed")
def main(cfg: DictConfig) -> Path:
    validate_structure(cfg, KEYS, "make_perturbed")
    if OmegaConf.is_missing(cfg, "out"):
        raise ConfigError("out=DIR is required: the folder to write the perturbed sets into")
    perturbations, difficulties = (
        OmegaConf.to_container(node) if isinstance(node, ListConfig) else node
        for node in (cfg.perturbations, cfg.difficulties)
    )
    out = write_perturbed(cfg.data, cfg.format, cfg.out, perturbations, cfg.extra, difficulties, cfg.seed,
                          cfg.limit, cfg.workers, cfg.codec)
    print(f"Wrote {cfg.format} sets to {out}")
    return out


if __name__ == "__main__":
    main()
