"""Train with AugMix + JSD. Composes configs/train.yaml; see README.md for recipes.

    python train.py                          # the paper's CIFAR-10 WRN-40-2 recipe
    python train.py experiment=quickstart    # offline, digits, a few minutes on CPU
"""

import hydra
from omegaconf import DictConfig

from augmix.cli import report_errors
from augmix.training import run


@hydra.main(version_base="1.3", config_path="configs", config_name="train")
@report_errors
def main(cfg: DictConfig) -> float | None:
    """Returns ``optimized_metric`` for Hydra sweepers (Optuna)."""
    return run(cfg)


if __name__ == "__main__":
    main()
