"""The LightningModule: a timm backbone trained with CE on the clean view plus the JSD term."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
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
from augmix.data.datamodule import VAL_CORRUPTED
from augmix.errors import ConfigError
from augmix.losses import JSDLoss
from augmix.models.split_bn import convert_split_bn
from augmix.schedules import BatchPlan, LearningRatePlan, batch_plan, constant, lr_plan, scaled_lr

log = logging.getLogger(__name__)
OptimizerFactory = Callable[..., Optimizer]
SchedulerFactory = Callable[..., torch.optim.lr_scheduler.LRScheduler]
CONFIG_KEY = "augmix_config"  # where checkpoints keep the run's fully resolved config
WANDB_RUN_ID_KEY = "wandb_run_id"  # lets a resumed run log into the same wandb run
EMA_PREFIX = "ema.module."  # state_dict keys of the EMA weights (the backbone's own keys after it)
EMA_SETTINGS = {"decay": None, "evaluate": False}  # model.ema: its keys and defaults (off)


class AugMixModule(pl.LightningModule):
    """Trains ``timm.create_model(backbone)`` on AugMix batches.

    ``num_views`` and ``jsd`` say what a training batch holds; they come from the same
    ``TrainingViews`` as the DataModule's. With ``jsd`` (three views: clean, aug1, aug2) the loss is
    ``CE(clean) + weight * JS(clean, aug1, aug2)`` from one forward pass over the concatenated 3B
    batch, so BatchNorm sees all views as in the paper. Without, it is plain CE on the one view.
    ``lr_reference_batch`` scales the lr linearly with the global batch (ImageNet recipe: 0.1 x
    global batch / 256), which follows from ``batch_size`` read with ``batch_scope`` (as the
    DataModule reads it: ``global``, the batch of one optimizer step; ``process``, each process's);
    when that lifts the lr above the configured one, ``lr_warmup_epochs`` of linear warmup lead up
    to it (``augmix.schedules``). ``split_bn`` gives the augmented views their own auxiliary
    BatchNorm in training (keys ``*.aux_bn.*``); evaluation uses the clean BN.

    ``ema={"decay": d}`` keeps an exponential moving average of the backbone's weights and buffers
    (timm's ``ModelEmaV3``), updated after every optimizer step. It is a frozen submodule, so
    checkpoints carry both sets (``net.*`` and ``ema.module.*``) and a resumed run continues both
    exactly; with ``ema={"evaluate": True}`` validation and test run on the EMA weights.
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
        num_views: int = 3,
        jsd: bool = True,
        batch_size: int | None = None,
        batch_scope: str = "process",
        lr_warmup_epochs: float = 5.0,
        ema: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if jsd and num_views < 2:
            raise ConfigError(f"jsd=True needs the clean view and AugMix views in each batch, got num_views={num_views}")
        if lr_reference_batch and batch_size is None:
            raise ConfigError("model.lr_reference_batch scales the lr by the global batch: pass the per-process batch_size")
        # Plain containers only: checkpoints must load with torch.load(weights_only=True).
        backbone_kwargs = OmegaConf.to_container(backbone_kwargs) if isinstance(backbone_kwargs, DictConfig) else backbone_kwargs
        ema = ema_settings(ema)
        self.save_hyperparameters(ignore=["optimizer", "scheduler", "loss"], logger=False)
        self.net = timm.create_model(backbone, num_classes=num_classes, pretrained=pretrained, **(backbone_kwargs or {}))
        if split_bn:
            if not jsd:
                raise ConfigError("model.split_bn=true needs clean and augmented views in each batch: set augmix.jsd=true")
            convert_split_bn(self.net, num_views=num_views)
            if not any(name.endswith("aux_bn") for name, _ in self.net.named_modules()):
                raise ConfigError(f"model.split_bn=true is invalid: {backbone} has no BatchNorm layers to split")
        self.ema = self._ema(ema["decay"])
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

    def _ema(self, decay: float | None) -> torch.nn.Module | None:
        """timm's ModelEmaV3 of the backbone: a frozen copy (no gradients, so neither the optimizer
        nor DDP's reducer sees it) whose weights and buffers follow the backbone's."""
        if decay is None:
            return None
        from timm.utils import ModelEmaV3

        ema = ModelEmaV3(self.net, decay=decay)
        ema.requires_grad_(False)
        return ema.train()  # in the module's mode, as Lightning expects: it only ever runs in evaluation

    @property
    def evaluated_net(self) -> torch.nn.Module:
        """What validation and test run: the EMA weights with ``ema.evaluate``, else the backbone."""
        return self.ema.module if self.ema is not None and self.hparams.ema["evaluate"] else self.net

    def configure_model(self) -> None:
        nets = [self.net] + ([self.ema.module] if self.ema is not None else [])
        if self.hparams.channels_last:
            for net in nets:
                net.to(memory_format=torch.channels_last)
        if self.hparams.compile and not getattr(self, "_compiled", False):
            self.net.compile()  # in place: state_dict keys stay those of the plain backbone
            if self.evaluated_net is not self.net:
                self.evaluated_net.compile()
            self._compiled = True

    def forward(self, images: Tensor, net: torch.nn.Module | None = None) -> Tensor:
        if self.hparams.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return (net or self.net)(images)

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        """The optimizer's step, then the EMA's (only steps that ran reach it: a diverged loss stops
        the run before its step, see ``DivergenceGuard``)."""
        super().optimizer_step(*args, **kwargs)
        if self.ema is not None:
            self.ema.update(self.net)

    # ------------------------------------------------------------------------------------ training

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        views: list[Tensor] = batch["views"]
        target: Tensor = batch["target"]
        if len(views) != self.hparams.num_views:
            raise ValueError(
                f"the module was built for {self.hparams.num_views} view(s) per batch (jsd={self.hparams.jsd}), "
                f"got {len(views)}: build the DataModule and the module from the same TrainingViews"
            )
        logits = self(torch.cat(views) if len(views) > 1 else views[0])
        chunks = logits.split(len(views[0]))
        clean, augmented = chunks[0], list(chunks[1:]) if self.hparams.jsd else []
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
        logits = self(batch["views"][0], self.evaluated_net)
        target = batch["target"]
        return logits, target, F.cross_entropy(logits.float(), target)

    def validation_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> None:
        logits, target, loss = self._evaluate(batch)
        if batch.get("split") == VAL_CORRUPTED:  # held-out corruptions of the validation split (equal-sized sets)
            self.val_corrupted_acc.update(logits, target)
            return
        self.val_loss.update(loss, weight=len(target))
        self.val_acc.update(logits, target)
        if self.val_acc5 is not None:
            self.val_acc5.update(logits, target)

    def on_validation_epoch_end(self) -> None:
        acc = self.val_acc.compute()
        self.log("val/acc", acc, prog_bar=True)
        self.log("val/loss", self.val_loss.compute(), prog_bar=True)
        if not self.trainer.sanity_checking:  # a few sanity batches are not the validation set
            self.val_acc_best.update(acc)
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

    def batch_plan(self) -> BatchPlan:
        """The global and per-process batch on this module's trainer (as the DataModule shares it)."""
        trainer = self.trainer
        return batch_plan(self.hparams.batch_size, self.hparams.batch_scope, trainer.world_size, trainer.accumulate_grad_batches)

    def lr_plan(self, lr: float) -> LearningRatePlan:
        """``lr`` scaled for the global batch, and the warmup that applies (none unless scaling raised it)."""
        reference = self.hparams.lr_reference_batch
        global_batch = self.batch_plan().global_batch if reference else (self.hparams.batch_size or 0)
        return lr_plan(lr, global_batch, reference, self.hparams.lr_warmup_epochs)

    def configure_optimizers(self) -> dict:
        warms_up = self.lr_plan(1.0).warmup_epochs > 0  # the warmup depends on the batches, not on the lr
        if self.scheduler_factory is None and not warms_up:
            return self.optimization(0, 1)  # no schedule: the step counts (which need the data) are not used
        total_steps = int(self.trainer.estimated_stepping_batches)
        steps_per_epoch = max(total_steps // max(self.trainer.max_epochs or 1, 1), 1)
        return self.optimization(total_steps, steps_per_epoch)

    def optimization(self, total_steps: int, steps_per_epoch: int) -> dict:
        """The optimizer (lr scaled for the global batch) and its per-step schedule over
        ``total_steps``, with the warmup composed in: the lr curve of ``augmix.schedules``."""
        optimizer = self.optimizer_factory(params=self.net.parameters())
        plan = self.lr_plan(optimizer.param_groups[0]["lr"])
        for group in optimizer.param_groups:
            group["lr"] = scaled_lr(group["lr"], plan.global_batch, plan.reference_batch)
        if self.trainer.is_global_zero and self.hparams.batch_size is not None:  # once per run (and resume)
            log.info(f"{self.batch_plan().describe()}; {plan.describe(steps_per_epoch)}")
        warmup = plan.warmup_steps(steps_per_epoch)
        if self.scheduler_factory is None and not warmup:
            return {"optimizer": optimizer}
        factory = self.scheduler_factory or constant
        extra = {"warmup_steps": warmup, "warmup_start": plan.warmup_start} if warmup else {}
        scheduler = factory(optimizer, total_steps=total_steps, steps_per_epoch=steps_per_epoch, **extra)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.run_config is not None:
            checkpoint[CONFIG_KEY] = self.run_config
        for logger in self.loggers:
            if isinstance(logger, pl.loggers.WandbLogger):
                checkpoint[WANDB_RUN_ID_KEY] = logger.version


def ema_settings(ema: Mapping[str, Any] | None) -> dict[str, Any]:
    """``model.ema`` as a plain dict with every key (``decay``: null turns EMA off), unknown keys and
    an ``evaluate`` without weights refused."""
    settings = dict(OmegaConf.to_container(ema) if isinstance(ema, DictConfig) else (ema or {}))
    unknown = sorted(set(settings) - set(EMA_SETTINGS))
    if unknown:
        raise ConfigError(f"unknown config key model.ema.{unknown[0]}; model.ema accepts only {list(EMA_SETTINGS)}")
    settings = {**EMA_SETTINGS, **settings}
    if settings["evaluate"] and settings["decay"] is None:
        raise ConfigError("model.ema.evaluate=true is invalid: needs EMA weights to evaluate: set model.ema.decay (e.g. 0.9998)")
    return settings
