"""Compare the robustness reports of several runs: comparison.md, .csv and .png. Composes
configs/compare.yaml; see README.md.

    python compare.py runs=[outputs/quickstart/A,outputs/quickstart/B]
    python compare.py runs=[multirun/quickstart_photos/2024-06-13_12-00-00]
"""

from omegaconf import DictConfig

from augmix.cli import hydra_command
from augmix.comparison import compare_command


@hydra_command("compare")
def main(cfg: DictConfig) -> dict:
    return compare_command(cfg)


if __name__ == "__main__":
    main()
