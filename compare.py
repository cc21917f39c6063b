"""Compare the robustness reports of several runs: comparison.md, .csv and .png. Composes
configs/compare.yaml; see README.md.

    python compare.py runs=[outputs/quickstart/A,outputs/quickstart/B]
    python compare.py runs=[multirun/quickstart_photos/2024-06-13_12-00-00]
"""

import hydra
from omegaconf import DictConfig

from augmix.cli import report_errors
from augmix.comparison import compare_command


@hydra.main(version_base="1.3", config_path="configs", config_name="compare")
@report_errors
def main(cfg: DictConfig) -> dict:
    return compare_command(cfg)


if __name__ == "__main__":
    main()
