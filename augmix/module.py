"""The LightningModule: a timm backbone trained with CE on the clean view plus the JSD term."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl
import timm
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from torch import Tensor
from torch.optim import Optimizer
from torchmetrics import MaxMetric, MeanMetric
from torchmetrics.classification import MulticlassAccuracy

import augmix.models  # noqa: F401  (registers the paper's CIFAR architectures in timm)
from augmix.errors import ConfigError
from augmix.losses import JSDLoss
from augmix.models.split_bn import convert_split_bn

OptimizerFactory = Callable[..., Optimizer]
SchedulerFactory = Callable[..., torch.optim.lr_scheduler.LRScheduler]
CONFIG_KEY = "augmix_config"  # where checkpoints keep the run's fully resolved config
WANDB_RUN_ID_KEY = "wandb_run_id"  # lets a resumed run log into the same wandb run


class AugMixModule(pl.LightningModule):
    """Trains ``timm.create_model(backbone)`` on AugMix batches.

    With three views the loss is ``CE(clean) + weight * JS(clean, aug1, aug2)`` from one forward
    pass over the concatenated 3B batch, so BatchNorm sees all views as in the paper. With one
    view it is plain CE. ``lr_reference_batch`` scales the lr linearly with the global batch
    (ImageNet recipe: 0.1 x batch / 256). ``split_bn`` gives the augmented views their own
    auxiliary BatchNorm in training (keys ``*.aux_bn.*``); evaluation uses the clean BN.
    """

    def __init__(
        self,
        backbone: str,
        num_classes: int,
        optimizer: OptimizerFactory,
        scheduler: SchedulerFactory | None = None,
        loss: JSDLoss | None = None,
        pretrained: bool = False,
        backbone_kwargs: dict[str, Any] | None = None,
        lr_reference_batch: int | None = None,
        channels_last: bool = False,
        compile: bool = False,
        split_bn: bool = False,
    ) -> None:
        super().__init__()
        # Plain containers only: checkpoints must load with torch.load(weights_only=True).
        backbone_kwargs = OmegaConf.to_container(backbone_kwargs) if isinstance(backbone_kwargs, DictConfig) else backbone_kwargs
        self.save_hyperparameters(ignore=["optimizer", "scheduler", "loss"], logger=False)
        self.net = timm.create_model(backbone, num_classes=num_classes, pretrained=pretrained, **(backbone_kwargs or {}))
        if split_bn:
            convert_split_bn(self.net, num_views=3)
            if not any(name.endswith("aux_bn") for name, _ in self.net.named_modules()):
                raise ConfigError(f"model.split_bn=true is invalid: {backbone} has no BatchNorm layers to split")
        self.loss = loss if loss is not None else JSDLoss()
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        top5 = num_classes > 5
        self.train_acc = MulticlassAccuracy(num_classes, average="micro", validate_args=False)
        self.val_acc = MulticlassAccuracy(num_classes, average="micro", validate_args=False)
        self.val_acc5 = MulticlassAccuracy(num_classes, top_k=5, average="micro", validate_args=False) if top5 else None
        self.test_acc = MulticlassAccuracy(num_classes, average="micro", validate_args=False)
        self.val_corrupted_acc = MulticlassAccuracy(num_classes, average="micro", validate_args=False)
        self.val_loss, self.test_loss = MeanMetric(), MeanMetric()
        # epoch means of the loss terms, reduced across DDP ranks when the epoch ends
        self.train_means = torch.nn.ModuleDict({name: MeanMetric() for name in ("loss", "ce", "jsd")})
        self.val_acc_best = MaxMetric()
        self.val_acc_best.persistent(True)  # survives resume: it is part of the checkpoint
        self.run_config: dict | None = None

    def configure_model(self) -> None:
        if self.hparams.channels_last:
            self.net.to(memory_format=torch.channels_last)
        if self.hparams.compile and not getattr(self, "_compiled", False):
            self.net.compile()  # in place: state_dict keys stay those of the plain backbone
            self._compiled = True

    def forward(self, images: Tensor) -> Tensor:
        if self.hparams.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return self.net(images)

    # ------------------------------------------------------------------------------------ training

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        views: list[Tensor] = batch["views"]
        target: Tensor = batch["target"]
        if self.hparams.split_bn and len(views) != 3:
            raise ValueError(f"split_bn needs the (clean, aug1, aug2) triplet, got {len(views)} view(s): set augmix.jsd=true")
        logits = self(torch.cat(views) if len(views) > 1 else views[0])
        chunks = logits.split(len(views[0]))
        clean, augmented = chunks[0], list(chunks[1:]) if len(views) == 3 else []
        parts = self.loss(clean, augmented, target)
        batch_size = len(target)
        self.train_acc(clean.detach(), target if target.dim() == 1 else target.argmax(dim=1))
        terms = {"loss": parts.total, "ce": parts.cross_entropy}
        if augmented:
            terms["jsd"] = parts.consistency
        for name, value in terms.items():
            self.log(f"train/{name}_step", value.detach(), prog_bar=name == "loss", batch_size=batch_size)
            self.train_means[name].update(value.detach(), weight=batch_size)
            self.log(f"train/{name}_epoch", self.train_means[name], on_step=False, on_epoch=True, batch_size=batch_size)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, prog_bar=True, batch_size=batch_size)
        return parts.total

    # ---------------------------------------------------------------------------------- evaluation

    def _evaluate(self, batch: dict) -> tuple[Tensor, Tensor, Tensor]:
        logits = self(batch["views"][0])
        target = batch["target"]
        return logits, target, F.cross_entropy(logits.float(), target)

    def validation_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> None:
        logits, target, loss = self._evaluate(batch)
        if dataloader_idx == 1:  # held-out corruptions of the validation split (equal-sized sets)
            self.val_corrupted_acc.update(logits, target)
            return
        self.val_loss.update(loss, weight=len(target))
        self.val_acc.update(logits, target)
        if self.val_acc5 is not None:
            self.val_acc5.update(logits, target)

    def on_validation_epoch_end(self) -> None:
        acc = self.val_acc.compute()
        if not self.trainer.sanity_checking:  # a few sanity batches are not the validation set
            self.val_acc_best.update(acc)
        self.log("val/acc", acc, prog_bar=True)
        self.log("val/loss", self.val_loss.compute(), prog_bar=True)
        self.log("val/acc_best", self.val_acc_best.compute())
        if self.val_acc5 is not None:
            self.log("val/acc5", self.val_acc5.compute())
            self.val_acc5.reset()
        if self.val_corrupted_acc.update_called:
            self.log("val/corruption_error", 1.0 - self.val_corrupted_acc.compute(), prog_bar=True)
            self.val_corrupted_acc.reset()
        self.val_acc.reset()
        self.val_loss.reset()

    def test_step(self, batch: dict, batch_idx: int) -> None:
        logits, target, loss = self._evaluate(batch)
        self.test_loss.update(loss, weight=len(target))
        self.test_acc.update(logits, target)

    def on_test_epoch_end(self) -> None:
        self.log("test/acc", self.test_acc.compute())
        self.log("test/loss", self.test_loss.compute())
        self.test_acc.reset()
        self.test_loss.reset()

    # -------------------------------------------------------------------------- optimisation, state

    def configure_optimizers(self) -> dict:
        lr = None
        if self.hparams.lr_reference_batch:
            trainer = self.trainer
            global_batch = trainer.datamodule.batch_size * trainer.world_size * trainer.accumulate_grad_batches
            lr = self.optimizer_factory.keywords["lr"] * global_batch / self.hparams.lr_reference_batch
        optimizer = self.optimizer_factory(params=self.parameters(), **({"lr": lr} if lr else {}))
        if self.scheduler_factory is None:
            return {"optimizer": optimizer}
        total_steps = int(self.trainer.estimated_stepping_batches)
        steps_per_epoch = max(total_steps // max(self.trainer.max_epochs or 1, 1), 1)
        scheduler = self.scheduler_factory(optimizer, total_steps=total_steps, steps_per_epoch=steps_per_epoch)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.run_config is not None:
            checkpoint[CONFIG_KEY] = self.run_config
        for logger in self.loggers:
            if isinstance(logger, pl.loggers.WandbLogger):
                checkpoint[WANDB_RUN_ID_KEY] = logger.version
