"""Checks over a whole composed config: every key is known, every number is finite.

Hydra's ``+key=value`` (and ``++``) inserts a key even into a node that has a schema, so a typo
written that way would be silently ignored. These walks compare what was composed with what a
schema, or the callable a ``_target_`` names, accepts, and fail with one line naming the key.

They run on configs composed from the project's files and the command line only. The target
check imports the modules ``_target_`` names (as instantiating would); never call it on a config
read from a checkpoint or another file from elsewhere.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import inspect
import math
import typing
from collections.abc import Mapping
from typing import Any, Union

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import InterpolationResolutionError, MissingMandatoryValue

from augmix.errors import ConfigError

#: What a node may hold: a dataclass (its fields; fields that are dataclasses are checked in
#: turn), or a mapping of key -> the schema of that key's subtree, None where it is open.
KeySchema = Union[type, Mapping[str, Any]]


def schema_fields(schema: KeySchema) -> dict[str, KeySchema | None]:
    """The keys a schema allows, each with the schema of its subtree (None: open)."""
    if dataclasses.is_dataclass(schema):
        hints = typing.get_type_hints(schema)
        nested = {name: hint for name, hint in hints.items() if dataclasses.is_dataclass(hint)}
        return {f.name: nested.get(f.name) for f in dataclasses.fields(schema)}
    return dict(schema)


def _describe(schema: KeySchema, prefix: str) -> str:
    if dataclasses.is_dataclass(schema):
        return f"the fields of {schema.__module__}.{schema.__qualname__}"
    if len(schema) <= 4:
        return " and ".join(f"{prefix}{key}" for key in schema)
    return "its own keys and config groups"


def unknown_key(path: str, candidates: list[str], prefix: str, owner: str, accepted: str) -> ConfigError:
    """The one-line error for a key nobody reads, with the closest known key as a suggestion."""
    key = path[len(prefix) :]
    close = difflib.get_close_matches(key, candidates, n=1)
    hint = f" (did you mean {prefix}{close[0]}?)" if close else ""
    return ConfigError(
        f"unknown config key {path}{hint}; check the spelling: `+` adds new keys, and {owner} accepts only {accepted}"
    )


def check_known_keys(node: DictConfig, schema: KeySchema, prefix: str = "", owner: str | None = None) -> None:
    """Every key of ``node`` must be in ``schema``; subtrees with a schema of their own are checked
    in turn. ``prefix`` is the node's key path (``"augmix."``), ``owner`` how the message names it."""
    fields = schema_fields(schema)
    owner = owner or prefix.rstrip(".")
    for key in node.keys():
        if key not in fields:
            raise unknown_key(f"{prefix}{key}", list(fields), prefix, owner, _describe(schema, prefix))
        child = node._get_node(key)
        if fields[key] is not None and isinstance(child, DictConfig) and not child._is_none():
            check_known_keys(child, fields[key], f"{prefix}{key}.")


def check_target_arguments(node: DictConfig | ListConfig, path: str = "") -> None:
    """Every key of a node with ``_target_`` must be an argument of the callable it names (unless
    that takes ``**kwargs``), so ``+trainer.limit_train_batchs=2`` fails before anything starts."""
    if isinstance(node, ListConfig):
        for index in range(len(node)):
            child = node._get_node(index)
            if isinstance(child, (DictConfig, ListConfig)):
                check_target_arguments(child, f"{path}[{index}]")
        return
    if node._is_none() or node._is_missing() or node._is_interpolation():
        return
    if "_target_" in node:
        _check_arguments(node, path)
    for key in node.keys():
        child = node._get_node(key)
        if isinstance(child, (DictConfig, ListConfig)):
            check_target_arguments(child, f"{path}.{key}" if path else str(key))


def locate(path: str) -> Any:
    """The object a dotted ``_target_`` names: the longest importable module prefix, then attributes
    (how Hydra resolves it; ``hydra.utils.get_object`` would also log every miss)."""
    parts = path.split(".")
    for split in range(len(parts), 0, -1):
        try:
            found = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for name in parts[split:]:
            found = getattr(found, name)
        return found
    raise ImportError(f"cannot import {path}")


def _check_arguments(node: DictConfig, path: str) -> None:
    target = node._target_
    try:
        parameters = inspect.signature(locate(target)).parameters
    except (ImportError, AttributeError, ValueError, TypeError):
        return  # not importable, or a builtin without a signature: instantiating it will say so
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    for key in node.keys():
        if str(key).startswith("_") and str(key).endswith("_"):
            continue  # Hydra's own keys: _target_, _partial_, _convert_, _recursive_, _args_
        if key not in parameters:
            candidates = [name for name in parameters if name != "self"]
            raise unknown_key(f"{path}.{key}", candidates, f"{path}.", path, f"the arguments of {target}")


def check_finite(node: DictConfig | ListConfig, path: str = "") -> None:
    """No number anywhere may be nan or inf: none of the settings means anything with them, and
    they would only surface later as a diverged run. Interpolations are checked resolved; those
    that cannot be resolved yet (``${hydra:...}`` outside a Hydra run) are left to later checks."""
    if isinstance(node, ListConfig):
        keys: list[Any] = list(range(len(node)))
    else:
        keys = list(node.keys())
    for key in keys:
        here = f"{path}[{key}]" if isinstance(node, ListConfig) else (f"{path}.{key}" if path else str(key))
        if OmegaConf.is_missing(node, key):
            continue
        try:
            value = node[key]
        except (InterpolationResolutionError, MissingMandatoryValue):
            continue
        if isinstance(value, (DictConfig, ListConfig)):
            check_finite(value, here)
        elif isinstance(value, float) and not math.isfinite(value):
            why = "(nan and inf mean nothing in any setting)"
            if isinstance(node, ListConfig):  # name the list the user wrote
                raise ConfigError(f"{path}={OmegaConf.to_container(node)} is invalid: must hold finite numbers only {why}")
            raise ConfigError(f"{here}={value} is invalid: must be a finite number {why}")
