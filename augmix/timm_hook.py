"""The paper's CIFAR architectures in timm's registry whenever timm is used, without importing timm.

``import augmix`` calls ``register_with_timm``. If timm is already imported, ``augmix.models`` is
imported at once and its ``@register_model`` entries register. Otherwise a one-shot finder waits
on ``sys.meta_path`` for the first ``import timm``, lets timm load as usual, imports
``augmix.models`` right after, and removes itself. Either way
``import augmix, timm; timm.create_model("cifar_wrn40_2")`` works (in both import orders), so an
exported CIFAR model loads with ``import augmix`` as the only addition, while
``from augmix import AugMix, JSDLoss`` never pays for timm. Framework code that builds models
imports ``augmix.models`` itself.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any


def _register() -> None:
    import augmix.models  # noqa: F401  (its @register_model decorators add the cifar_* models)


class _RegisterAfterLoading(importlib.abc.Loader):
    """timm's own loader, followed by the registration (any other loader attribute is timm's)."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.loader.exec_module(module)
        _register()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)


class _AwaitTimm(importlib.abc.MetaPathFinder):
    """Finds timm through the other finders, once, and hands back its spec with the registering loader."""

    def find_spec(self, name: str, path: Any = None, target: ModuleType | None = None) -> ModuleSpec | None:
        if name != "timm":
            return None
        sys.meta_path.remove(self)  # one shot: the usual finders locate timm from here on
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _RegisterAfterLoading(spec.loader)
        return spec


def register_with_timm() -> None:
    """Register the CIFAR architectures now if timm is loaded, else as soon as it is."""
    timm = sys.modules.get("timm")
    if timm is not None and hasattr(timm, "create_model"):
        _register()
    elif not any(isinstance(finder, _AwaitTimm) for finder in sys.meta_path):
        sys.meta_path.insert(0, _AwaitTimm())
