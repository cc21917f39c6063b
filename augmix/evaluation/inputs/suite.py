"""The ``suite`` config node: one evaluation over several benchmarks (members), checked once at
start-up and frozen into a ``SuiteSpec``.

A suite names its members under ``members``, each a benchmark node of one of three kinds, told apart
by its ``format``:

* -C and -C-bar sets (``cifar_c``, ``imagenet_c``, ``synthetic``): ``augmix.evaluation.inputs.spec``;
* -P sets (``cifar_p``, ``imagenet_p``): ``augmix.evaluation.inputs.perturbed``;
* distribution-shift sets (``imagenet_r``, ..., ``cifar10_2``): ``augmix.evaluation.inputs.shift``.

Each member keeps every key of its kind (``suite.members.cifar10p.root=DIR``); a member set to null
is left out (``suite.members.cifar10_2=null``). ``limit_per_set`` limits the clean set and every
member that has no limit of its own; ``progress: false`` silences them all. A single ``benchmark=``
of a kind other than -C runs as a suite of that one member.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Union

from augmix.evaluation.inputs.perturbed import FORMATS as PERTURBATION_FORMATS
from augmix.evaluation.inputs.perturbed import PerturbationSpec, perturbation_spec
from augmix.evaluation.inputs.sets import CLEAN
from augmix.evaluation.inputs.shift import FORMATS as SHIFT_FORMATS
from augmix.evaluation.inputs.shift import ShiftSpec, shift_spec
from augmix.evaluation.inputs.spec import FORMATS as CORRUPTION_FORMATS
from augmix.evaluation.inputs.spec import BenchmarkSpec, benchmark_spec, check_keys, check_switches, optional_count
from augmix.rules import fail

Member = Union[BenchmarkSpec, PerturbationSpec, ShiftSpec]
KEYS = ("name", "members", "limit_per_set", "progress")
MEMBER_NAME = re.compile(r"^[a-z0-9_]+$")  # it names a results folder and prefixes set keys
KINDS = {
    **dict.fromkeys(CORRUPTION_FORMATS, "corruption"),
    **dict.fromkeys(PERTURBATION_FORMATS, "perturbation"),
    **dict.fromkeys(SHIFT_FORMATS, "shift"),
}


@dataclass(frozen=True)
class SuiteSpec:
    """The members to evaluate (in order) next to the clean test set."""

    name: str
    members: dict[str, Member]
    limit_per_set: int | None = None  # the clean set's (and that of members without one)
    progress: bool = True


def kind(member: Member) -> str:
    """``corruption``, ``perturbation`` or ``shift``."""
    return KINDS[member.format]


def is_corruption_node(node: Mapping) -> bool:
    """Whether a benchmark node is a -C (or -C-bar) set, the kind a single-benchmark run reports as before."""
    return node.get("format") in CORRUPTION_FORMATS


def member_spec(node: Mapping, prefix: str) -> Member:
    """Check one benchmark node of any kind and freeze it."""
    fmt = node.get("format")
    if fmt not in KINDS:
        fail(prefix + "format", fmt, f"must be one of {list(KINDS)}")
    if KINDS[fmt] == "corruption":
        return benchmark_spec(node, prefix)
    if KINDS[fmt] == "perturbation":
        return perturbation_spec(node, prefix)
    return shift_spec(node, prefix)


def single_suite(node: Mapping, prefix: str = "benchmark.") -> SuiteSpec:
    """A ``benchmark=`` node of the -P or distribution-shift kind as a suite of that one member."""
    spec = member_spec(node, prefix)
    return SuiteSpec(name=spec.name, members={spec.name: spec}, limit_per_set=spec.limit_per_set, progress=spec.progress)


def suite_spec(node: Mapping, prefix: str = "suite.") -> SuiteSpec:
    """Check the ``suite`` node and freeze it. Raises ConfigError naming the first bad key."""
    check_keys(node, KEYS, prefix, "a suite node (configs/suite/)")
    name = node.get("name")
    if not isinstance(name, str) or not name:
        fail(prefix + "name", name, "must be a non-empty string naming the suite in reports")
    check_switches(node, ("progress",), prefix)
    limit = optional_count(node, "limit_per_set", 1, prefix)
    progress = node.get("progress", True)
    nodes = node.get("members")
    if not isinstance(nodes, Mapping) or not nodes:
        fail(prefix + "members", nodes, "must map member names to benchmark nodes (configs/benchmark/)")
    members: dict[str, Member] = {}
    for key, member in nodes.items():
        if not MEMBER_NAME.match(str(key)) or key == CLEAN:
            fail(f"{prefix}members", key, f"member names are lower-case letters, digits and _, other than {CLEAN!r}")
        if member is None:
            continue  # left out on the command line
        if not isinstance(member, Mapping):
            fail(f"{prefix}members.{key}", member, "must be a benchmark node (configs/benchmark/) or null")
        spec = member_spec(member, f"{prefix}members.{key}.")
        members[str(key)] = dataclasses.replace(
            spec,
            limit_per_set=spec.limit_per_set if spec.limit_per_set is not None else limit,
            progress=spec.progress and progress,
        )
    return SuiteSpec(name=name, members=members, limit_per_set=limit, progress=progress)
