"""The ``benchmark`` config node of a -C set (or -C-bar set), checked once at start-up and frozen
into a ``BenchmarkSpec``.

Every mistake here is reported as a one-line ``ConfigError`` naming the key, before a checkpoint
or an image is read; so is a key the node does not have (``+benchmark.limit_per_sets=10``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from augmix.config_checks import unknown_key
from augmix.corruptions.names import CORRUPTION_SETS, SEVERITIES, check_severities, select_corruptions
from augmix.rules import fail, is_int

FORMATS = ("cifar_c", "imagenet_c", "synthetic")
PROTOCOLS = ("benchmark", "augmix_official")
IMAGENET_CLASSES = 1000
RELEASES = {
    "cifar10c": "CIFAR-10-C from https://zenodo.org/records/2535967",
    "cifar100c": "CIFAR-100-C from https://zenodo.org/records/3555552",
    "imagenetc": "ImageNet-C from https://zenodo.org/records/2235448",
    "tinyimagenetc": "Tiny-ImageNet-C from https://zenodo.org/records/2536630",
    "imagenetcbar": "ImageNet-C-bar from https://dl.fbaipublicfiles.com/inc_bar/imagenet_c_bar.tar.gz",
    "cifar10cbar": "CIFAR-10-C-bar (written by make_cifar10_c_bar.py of github.com/facebookresearch/augmentation-corruption)",
}
LAYOUTS = {
    "cifar_c": ("<corruption>.npy and labels.npy", "format=cifar_c"),
    "imagenet_c": ("<corruption>/<severity>/<class>/", "format=imagenet_c"),
}


#: Every key a -C node may have (configs/benchmark/default.yaml).
KEYS = (
    "name", "format", "root", "num_classes", "corruption_set", "corruptions", "extra", "severities",
    "limit_per_set", "protocol", "top5", "alexnet_baseline", "seed", "batch_size", "num_workers",
    "verify_files", "progress",
)


def check_keys(node: Mapping, known: tuple[str, ...], prefix: str, kind: str) -> None:
    """Refuse a key that nothing reads (a typo added with ``+``), suggesting the closest known one."""
    for key in node:
        if key not in known:
            raise unknown_key(f"{prefix}{key}", list(known), prefix, prefix.rstrip("."), f"the keys of {kind}")


def check_identity(node: Mapping, prefix: str, formats: tuple[str, ...] | dict, rootless: tuple[str, ...] = ()) -> tuple[str, str, str | None]:
    """A benchmark node's ``name``, ``format`` (one of ``formats``) and ``root`` (a folder, unless the
    format is ``rootless``)."""
    name, fmt, root = node.get("name"), node.get("format"), node.get("root")
    if not isinstance(name, str) or not name:
        fail(prefix + "name", name, "must be a non-empty string naming the benchmark in reports")
    if fmt not in formats:
        fail(prefix + "format", fmt, f"must be one of {list(formats)}")
    if fmt not in rootless and (not isinstance(root, str) or not root):
        fail(prefix + "root", root, f"must be the folder holding the {name} files ({prefix}root=DIR)")
    return name, fmt, root


@dataclass(frozen=True)
class BenchmarkSpec:
    """What to evaluate: which sets, where they live and how their images are preprocessed."""

    name: str
    format: str
    root: Path | None
    corruptions: tuple[str, ...]
    severities: tuple[int, ...]
    num_classes: int | None  # None: the data config's
    limit_per_set: int | None = None
    protocol: str = "benchmark"
    top5: bool = False
    alexnet_baseline: bool = False  # mCE and relative mCE (ImageNet-C only, see reports_mce)
    seed: int = 0  # synthetic corruptions
    corruption_set: str = "c"  # which names: -C's, or a -C-bar family (augmix.corruptions.names.CORRUPTION_SETS)
    batch_size: int | None = None  # None: data.eval_batch_size
    num_workers: int | None = None  # None: data.num_workers
    verify_files: bool = True  # check every image file's signature before computing
    progress: bool = True

    @property
    def complete(self) -> bool:
        """True when the figures are comparable with published ones: every benchmark corruption,
        every severity, every image."""
        return (
            set(self.test_corruptions) <= set(self.corruptions)
            and tuple(self.severities) == SEVERITIES
            and self.limit_per_set is None
        )

    @property
    def test_corruptions(self) -> tuple[str, ...]:
        """The corruptions whose mean is the benchmark's figure (-C's 15, or the 10 of a -C-bar)."""
        return CORRUPTION_SETS[self.corruption_set][0]

    def reports_mce(self, num_classes: int) -> bool:
        """mCE divides by AlexNet's ImageNet-C errors, so it means something on ImageNet-C's 1000
        classes only (the released files or a regenerated copy, whose reports say so)."""
        return (
            self.alexnet_baseline
            and self.corruption_set == "c"
            and self.format == "imagenet_c"
            and num_classes == IMAGENET_CLASSES
        )


def download_hint(spec: BenchmarkSpec) -> str:
    """Where the benchmark's files come from, or how to make a regenerated set instead."""
    layout, fmt = LAYOUTS[spec.format]
    source = RELEASES.get(spec.name, "the released files")
    return (
        f"Download {source} and set benchmark.root to the folder holding {layout}, "
        f"or write a regenerated set with `python make_corrupted.py {fmt} out=DIR` (see README)."
    )


def optional_count(node: Mapping, key: str, minimum: int, prefix: str) -> int | None:
    value = node.get(key)
    if value is not None and (not is_int(value) or value < minimum):
        fail(prefix + key, value, f"must be null or an integer >= {minimum}")
    return value


def check_switches(node: Mapping, keys: tuple[str, ...], prefix: str) -> None:
    for key in keys:
        if not isinstance(node.get(key, False), bool):
            fail(prefix + key, node.get(key), "must be true or false")


def _severities(node: Mapping, prefix: str) -> tuple[int, ...]:
    return tuple(sorted(set(check_severities(prefix + "severities", node.get("severities", list(SEVERITIES))))))


def benchmark_spec(node: Mapping, prefix: str = "benchmark.") -> BenchmarkSpec:
    """Check the ``benchmark`` node and freeze it. Raises ConfigError naming the first bad key."""
    check_keys(node, KEYS, prefix, "a -C benchmark node (configs/benchmark/default.yaml)")
    name, fmt, root = check_identity(node, prefix, FORMATS, rootless=("synthetic",))
    protocol = node.get("protocol", "benchmark")
    if protocol not in PROTOCOLS:
        fail(prefix + "protocol", protocol, f"must be one of {list(PROTOCOLS)}")
    check_switches(node, ("top5", "alexnet_baseline", "verify_files", "progress"), prefix)
    seed = node.get("seed", 0)
    if not is_int(seed) or seed < 0:
        fail(prefix + "seed", seed, "must be a non-negative integer")
    family = node.get("corruption_set", "c")
    if family not in CORRUPTION_SETS:
        fail(prefix + "corruption_set", family, f"must be one of {list(CORRUPTION_SETS)}")
    if family != "c" and fmt == "synthetic":
        fail(prefix + "format", fmt, f"cannot synthesise {family}: only its released files are read (cifar_c or imagenet_c)")
    return BenchmarkSpec(
        name=name,
        format=fmt,
        root=Path(root) if fmt != "synthetic" else None,
        corruptions=select_corruptions(node.get("corruptions"), node.get("extra", False), prefix, family),
        severities=_severities(node, prefix),
        num_classes=optional_count(node, "num_classes", 2, prefix),
        limit_per_set=optional_count(node, "limit_per_set", 1, prefix),
        protocol=protocol,
        top5=node.get("top5", False),
        alexnet_baseline=node.get("alexnet_baseline", False),
        seed=seed,
        corruption_set=family,
        batch_size=optional_count(node, "batch_size", 1, prefix),
        num_workers=optional_count(node, "num_workers", 0, prefix),
        verify_files=node.get("verify_files", True),
        progress=node.get("progress", True),
    )
