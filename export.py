"""Export a train.py checkpoint as a model folder timm and the Hugging Face Hub load without this
project (model.safetensors, config.json, README.md). Composes configs/export.yaml; see README.md.

    python export.py checkpoint=outputs/quickstart/<time>/checkpoints/last.ckpt out=exported/wrn16-digits
    python -c 'import timm, augmix; timm.create_model("local-dir:exported/wrn16-digits", pretrained=True)'
"""

from pathlib import Path

from omegaconf import DictConfig

from augmix.cli import hydra_command
from augmix.export import export_command


@hydra_command("export")
def main(cfg: DictConfig) -> Path:
    return export_command(cfg)


if __name__ == "__main__":
    main()
