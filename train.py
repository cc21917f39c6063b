"""Train with AugMix + JSD. Composes configs/train.yaml; see README.md for recipes.

    python train.py                          # the paper's CIFAR-10 WRN-40-2 recipe
    python train.py experiment=quickstart    # offline, digits, a few minutes on CPU
"""

from omegaconf import DictConfig

from augmix.cli import hydra_command
from augmix.training import run


@hydra_command("train")
def main(cfg: DictConfig) -> float | None:
    """Returns ``optimized_metric`` for Hydra sweepers (Optuna)."""
    return run(cfg)


if __name__ == "__main__":
    main()
