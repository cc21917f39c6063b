"""From one benchmark's sets and their results to its section of ``robustness.json``: what was evaluated
(name, files, labels REGENERATED / PARTIAL) and its figures (``augmix.evaluation.metrics``).

A single ``benchmark=`` -C run reports one -C section with the run's details around it, as before; a
suite reports one section per member under ``benchmarks`` (``augmix.evaluation.suite``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from augmix.corruptions.names import CORRUPTION_SETS
from augmix.evaluation.checkpoints import Checkpoint
from augmix.evaluation.inputs.perturbed import PerturbationSpec
from augmix.evaluation.inputs.sets import EvalSet
from augmix.evaluation.inputs.shift import IMAGES, REFERENCE, ShiftSpec
from augmix.evaluation.inputs.spec import BenchmarkSpec
from augmix.evaluation.metrics import summarise, summarise_shift, summarise_stability
from augmix.perturbations.registry import BENCHMARK_PERTURBATIONS, EXTRA_PERTURBATIONS

#: Why ImageNet-P's normalised figures are null (docs/evaluation.md, "Perturbation stability").
ALEXNET_P_NOTE = (
    "mFR and mT5D (normalised by AlexNet) are not reported: AlexNet's per-perturbation flip rates and "
    "top-5 distances could not be verified, so the unnormalised mFP and mean top-5 distance are given"
)


def evaluated_model(checkpoint: Checkpoint, backbone: str, data_name: str, num_classes: int) -> dict:
    """What a report names the evaluated model by, the same in a single benchmark's and a suite's."""
    return {
        "checkpoint": str(checkpoint.path),
        "checkpoint_sha256": checkpoint.sha256,
        "checkpoint_kind": checkpoint.kind,
        "checkpoint_weights": checkpoint.weights,
        "backbone": backbone,
        "data": data_name,
        "num_classes": num_classes,
    }


def _results(sets: Sequence[EvalSet], results: Mapping[str, dict]) -> dict[str, dict]:
    return {evalset.key: results[evalset.result_key] for evalset in sets}


def corruption_section(spec: BenchmarkSpec, sets: Sequence[EvalSet], results: Mapping[str, dict], clean: dict,
                       num_classes: int, regenerated: dict | None) -> dict:
    """A -C or -C-bar benchmark: errors by corruption and severity, their means (and mCE where it applies)."""
    corrupted: dict[str, dict[int, dict]] = {}
    for evalset in sets:
        corrupted.setdefault(evalset.corruption, {})[evalset.severity] = results[evalset.result_key]
    tests, extras = CORRUPTION_SETS[spec.corruption_set]
    return {
        "benchmark": spec.name,
        "kind": "corruption",
        "format": spec.format,
        "root": str(spec.root) if spec.root else None,
        "corruption_set": spec.corruption_set,
        "protocol": spec.protocol,
        "regenerated": regenerated is not None,
        "regeneration": regenerated,
        "complete": spec.complete,
        "limit_per_set": spec.limit_per_set,
        "corruptions": list(spec.corruptions),
        "severities": list(spec.severities),
        **summarise(clean, corrupted, spec.reports_mce(num_classes), spec.top5, tests, extras),
        "sets": _results(sets, results),
    }


def perturbation_section(spec: PerturbationSpec, sets: Sequence[EvalSet], results: Mapping[str, dict],
                         regenerated: dict | None, clean_images: int) -> dict:
    """A -P benchmark: flip probability, top-5 and Zipf distance per perturbation, mFP and mean T5D.
    A set make_perturbed.py wrote for fewer images than the clean split has is PARTIAL."""
    whole = (regenerated or {}).get("images", clean_images) >= clean_images
    return {
        "benchmark": spec.name,
        "kind": "perturbation",
        "format": spec.format,
        "root": str(spec.root),
        "difficulty": spec.difficulty,
        "regenerated": regenerated is not None,
        "regeneration": regenerated,
        "complete": spec.complete and whole,
        "limit_per_set": spec.limit_per_set,
        "perturbations": list(spec.perturbations),
        **summarise_stability(_results(sets, results), BENCHMARK_PERTURBATIONS, EXTRA_PERTURBATIONS),
        "alexnet_normalised": ALEXNET_P_NOTE,
        "sets": _results(sets, results),
    }


def shift_section(spec: ShiftSpec, sets: Sequence[EvalSet], results: Mapping[str, dict], clean: dict) -> dict:
    """A distribution-shift set: error, calibration and the gap to its in-distribution reference."""
    found = _results(sets, results)
    restricted = sets[0].class_indices is not None
    reference = (
        ("the clean val images of its 200 classes, scored over the same 200 outputs (ImageNet-200)", found[REFERENCE])
        if REFERENCE in found
        else ("the clean test set", clean)
    )
    return {
        "benchmark": spec.name,
        "kind": "shift",
        "format": spec.format,
        "root": str(spec.root),
        "outputs": len(sets[0].class_indices) if restricted else spec.num_classes,
        "regenerated": False,
        "complete": spec.complete,
        "limit_per_set": spec.limit_per_set,
        **summarise_shift(found[IMAGES], reference[1], reference[0], spec.top5),
        "sets": found,
    }
