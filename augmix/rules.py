"""What every setting accepts, stated once, and the one error format every check shares.

Each setting has one ``Rule`` here: a predicate and the sentence a refusal shows,
``<key>=<value> is invalid: <what is expected>``. The config schemas (``augmix.config``), the
allowlist for configs read from checkpoints (``augmix.allowlist``) and the runtime guards of
``AugMix``, ``JSDLoss``, ``MixUpCutMix`` and ``RandomErasing`` all check with these rules, so a
rule changes in one place. Choice lists (datasets, placements, mix modes, ...) are defined here
and imported wherever they are used.

Nothing here imports more than the standard library: ``from augmix import AugMix`` stays light.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn, Union

from augmix.errors import ConfigError

MAX_SHOWN = 120  # characters of a value quoted in an error


# --- predicates -------------------------------------------------------------------------------


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A finite int or float (booleans are not numbers here)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, str)) or is_number(value)


def _config_containers() -> tuple[type, ...]:
    """OmegaConf's containers, when something has loaded it (a config node cannot exist otherwise)."""
    omegaconf = sys.modules.get("omegaconf")
    return (omegaconf.DictConfig, omegaconf.ListConfig) if omegaconf is not None else ()


def is_sequence(value: Any) -> bool:
    """A list or tuple, including OmegaConf's ListConfig (not a string)."""
    lists = tuple(c for c in _config_containers() if c.__name__ == "ListConfig")
    return isinstance(value, (list, tuple, *lists))


def is_pair(value: Any) -> bool:
    return is_sequence(value) and len(value) == 2 and all(is_number(v) for v in value)


def is_share_range(value: Any) -> bool:
    """``[min, max]`` shares of a whole: 0 < min <= max <= 1."""
    return is_pair(value) and 0 < value[0] <= value[1] <= 1


def is_positive_range(value: Any) -> bool:
    """``[min, max]`` with 0 < min <= max."""
    return is_pair(value) and 0 < value[0] <= value[1]


def show(value: Any) -> str:
    """A value as the user wrote it: containers plain, strings quoted, long values cut."""
    if isinstance(value, _config_containers()):
        from omegaconf import OmegaConf

        value = OmegaConf.to_container(value)
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


def fail(key: str, value: Any, expected: str) -> NoReturn:
    raise ConfigError(f"{key}={show(value)} is invalid: {expected}")


# --- rules ------------------------------------------------------------------------------------


class Rule:
    """A check of one setting: ``accepts(value)``, and the sentence shown when it fails
    (``expected``; a callable when the sentence needs something loaded only on use)."""

    def __init__(self, accepts: Callable[[Any], bool], expected: str | Callable[[], str]) -> None:
        self.accepts, self._expected = accepts, expected

    @property
    def expected(self) -> str:
        return self._expected() if callable(self._expected) else self._expected

    def __repr__(self) -> str:
        return f"Rule({self.expected!r})"


#: What a schema maps a setting to: one rule, or several checked in order (the first refusal wins).
Rules = Union[Rule, Sequence[Rule]]


def check(key: str, value: Any, rules: Rules) -> None:
    """Raise the one-line ``ConfigError`` naming ``key`` unless ``value`` passes ``rules``."""
    for rule in (rules,) if isinstance(rules, Rule) else rules:
        if not rule.accepts(value):
            fail(key, value, rule.expected)


def check_table(node: Mapping, table: Mapping[str, Any], prefix: str = "") -> None:
    """Every key of ``table`` that ``node`` holds passes its rules; a nested table checks the
    mapping under its key in turn. Keys the node leaves out take their defaults elsewhere."""
    for key, rules in table.items():
        if key not in node:
            continue
        value = node[key]
        if isinstance(rules, Mapping):
            if isinstance(value, Mapping):
                check_table(value, rules, f"{prefix}{key}.")
            continue
        check(f"{prefix}{key}", value, rules)


def one_of(choices: Sequence[Any]) -> Rule:
    return Rule(lambda v: v in choices, f"must be one of {list(choices)}")


def int_in(low: int, high: int) -> Rule:
    return Rule(lambda v: is_int(v) and low <= v <= high, f"must be an integer in {low}..{high}")


# --- choices ----------------------------------------------------------------------------------

DATASETS = ("cifar10", "cifar100", "imagenet", "tinyimagenet", "imagefolder", "digits", "photos")
PLACEMENTS = ("auto", "workers", "device")  # auto: device when the trainer has an accelerator
EXECUTORS = ("auto", "grouped", "fused")
MIX_MODES = ("batch", "pair", "elem")
ERASE_MODES = ("const", "rand", "pixel")
ERASE_VIEWS = ("augmented", "all")
BAD_IMAGE_POLICIES = ("error", "skip")
BATCH_SCOPES = ("global", "process")  # what data.batch_size counts: images per optimizer step, or per process
DECODE_MODES = ("full", "draft")  # draft: JPEG DCT scaling where the crop is at least twice the output
CHECKPOINT_WEIGHTS = ("model", "ema")
MAX_SEVERITY = 10
MAX_DEPTH = 3  # ops per chain; depth -1 draws 1..MAX_DEPTH per chain (the paper)
MAX_SIDE = 8192  # pixels; larger crops are a typo or an attempt to exhaust memory
MAX_BATCH = 1 << 20
MAX_WORKERS = 1024
MAX_CLASSES = 1_000_000


def _op_names() -> tuple[str, ...]:
    from augmix.augment.ops.registry import ALL_OPS  # the op registry owns the names

    return ALL_OPS


# --- shared value shapes ----------------------------------------------------------------------

BOOLEAN = Rule(lambda v: isinstance(v, bool), "must be true or false")
TEXT = Rule(lambda v: isinstance(v, str), "must be a string")
POSITIVE_NUMBER = Rule(lambda v: is_number(v) and v > 0, "must be a number > 0")
NON_NEGATIVE_NUMBER = Rule(lambda v: is_number(v) and v >= 0, "must be a number >= 0")
NON_NEGATIVE_INT = Rule(lambda v: is_int(v) and v >= 0, "must be a non-negative integer")
PROBABILITY = Rule(lambda v: is_number(v) and 0.0 <= v <= 1.0, "must be a probability in [0, 1]")
SIDE = int_in(1, MAX_SIDE)
CROP_SCALE = Rule(is_share_range, "must be [min, max] with 0 < min <= max <= 1")
CROP_RATIO = Rule(is_positive_range, "must be [min, max] with 0 < min <= max")
CHANNELS = Rule(
    lambda v: is_sequence(v) and len(v) == 3 and all(is_number(x) for x in v),
    "must be a list of 3 numbers, one per RGB channel",
)
PLAIN = Rule(
    lambda v: is_scalar(v) or (is_sequence(v) and all(is_scalar(x) for x in v)),
    "must be a plain value (a number, string, boolean or null, or a list of them)",
)

# --- augmix ------------------------------------------------------------------------------------

SEVERITY = Rule(
    lambda v: is_int(v) and 1 <= v <= MAX_SEVERITY,
    f"must be an integer in 1..{MAX_SEVERITY} (paper: 3 on CIFAR, 1 on ImageNet)",
)
WIDTH = Rule(lambda v: is_int(v) and v >= 1, "must be an integer >= 1 (paper: 3)")
DEPTH = Rule(
    lambda v: is_int(v) and (v == -1 or 1 <= v <= MAX_DEPTH),
    f"must be -1 (random 1-{MAX_DEPTH} per chain) or {', '.join(map(str, range(1, MAX_DEPTH)))} or {MAX_DEPTH}",
)
ALPHA = Rule(lambda v: is_number(v) and v > 0, "must be a number > 0 (paper: 1)")
OP_LIST = Rule(
    lambda v: v is None or (is_sequence(v) and len(v) > 0 and all(op in _op_names() for op in v)),
    lambda: f"must be a non-empty list drawn from {list(_op_names())}",
)


def _is_fill(value: Any) -> bool:
    values = list(value) if is_sequence(value) else [value]
    return len(values) in (1, 3) and all(is_number(v) and 0 <= v <= 255 for v in values)


FILL = Rule(_is_fill, "must be a number in 0..255 or a list of 3 (one per channel)")
PLACEMENT = one_of(PLACEMENTS)
EXECUTOR = one_of(EXECUTORS)
CHUNK_SIZE = Rule(lambda v: v is None or (is_int(v) and v >= 1), "must be null (chosen per device) or an integer >= 1")

# --- MixUp / CutMix, random erasing ------------------------------------------------------------

MIXUP_ALPHA = Rule(lambda v: is_number(v) and v >= 0, "must be a number >= 0 (0 disables MixUp; 1 is usual on CIFAR)")
CUTMIX_ALPHA = Rule(lambda v: is_number(v) and v >= 0, "must be a number >= 0 (0 disables CutMix; 1 is usual on CIFAR)")
MIX_MODE = one_of(MIX_MODES)
ERASE_AREA = Rule(
    is_share_range, "must be [min, max] with 0 < min <= max <= 1 (shares of the image; timm: [0.02, 1/3])"
)
ERASE_RATIO = Rule(is_positive_range, "must be [min, max] with 0 < min <= max (aspect ratios; timm: [0.3, 1/0.3])")
ERASE_MODE = one_of(ERASE_MODES)
ERASE_VIEW = one_of(ERASE_VIEWS)

# --- loss --------------------------------------------------------------------------------------

JSD_WEIGHT = Rule(lambda v: is_number(v) and v >= 0, "must be a number >= 0 (the JSD weight lambda; paper: 12)")
LABEL_SMOOTHING = Rule(lambda v: is_number(v) and 0.0 <= v < 1.0, "must be in [0, 1) (paper: 0)")

# --- data --------------------------------------------------------------------------------------

DATASET = one_of(DATASETS)
CLASS_COUNT = int_in(2, MAX_CLASSES)
BATCH_SIZE = int_in(1, MAX_BATCH)
BATCH_SCOPE = Rule(
    lambda v: v in BATCH_SCOPES,
    "must be 'global' (data.batch_size is the batch of one optimizer step over all processes; each takes an equal "
    "share) or 'process' (data.batch_size is each process's batch)",
)
DECODE = Rule(
    lambda v: v in DECODE_MODES,
    "must be 'full' (decode every image at full size) or 'draft' (JPEG DCT scaling, only where the training crop "
    "is at least twice the output size)",
)
WORKERS = int_in(0, MAX_WORKERS)
VAL_FRACTION = Rule(
    lambda v: is_number(v) and 0.0 <= v < 1.0,
    "must be in [0, 1): the share of the training set held out for validation",
)
STD = (CHANNELS, Rule(lambda v: all(x > 0 for x in v), "must be positive"))
VERIFY_FILES = Rule(lambda v: isinstance(v, bool), "must be true or false (check every image file before training)")
ON_BAD_IMAGE = Rule(
    lambda v: v in BAD_IMAGE_POLICIES, "must be 'error' (stop, naming the file) or 'skip' (leave it out)"
)

# --- model, trainer, top level -----------------------------------------------------------------

LEARNING_RATE = POSITIVE_NUMBER
LR_REFERENCE_BATCH = Rule(
    lambda v: v is None or (is_int(v) and v >= 1), "must be null (no scaling) or an integer >= 1 (ImageNet: 256)"
)
LR_WARMUP_EPOCHS = Rule(
    lambda v: is_number(v) and v >= 0,
    "must be a number >= 0: epochs of linear warmup from model.optimizer.lr to the scaled lr, applied when the "
    "global batch exceeds model.lr_reference_batch (0 disables; Goyal et al. 2017: 5)",
)
EMA_DECAY = Rule(
    lambda v: v is None or (is_number(v) and 0 < v < 1),
    "must be null (no EMA weights) or a number in (0, 1), e.g. 0.9998 (timm's --model-ema-decay)",
)
CHECKPOINT_WEIGHT_SET = Rule(
    lambda v: v in CHECKPOINT_WEIGHTS,
    "must be 'model' (the trained weights) or 'ema' (their moving average, saved by runs with model.ema.decay)",
)
MAX_EPOCHS = Rule(lambda v: v is None or (is_int(v) and v >= 1), "must be an integer >= 1")
KEYED_SAMPLER = Rule(
    lambda v: v is False,
    "must be false: the keyed, rank-aware sampler shards the data itself, and Lightning's DistributedSampler "
    "would replace it (the bundled trainer configs set it false)",
)
SEED = Rule(lambda v: is_int(v) and 0 <= v < 2**63, "must be a non-negative integer (below 2**63)")
