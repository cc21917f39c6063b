"""Everything evaluation reads, checked before any compute: the ``benchmark`` node and the sets of images.

* ``spec``: the ``benchmark`` config node, checked and frozen into a ``BenchmarkSpec``; the released
  benchmarks' download sources and layouts (for the "missing files" hints).
* ``sets``: what the run loop reads: ``EvalSet`` and its kinds (``SourceSet`` over an image source,
  ``ArraySet`` over a block of a .npy array) and ``BatchDataset``, one DataLoader item per batch.
* ``corrupted``: a spec's -C sets in whichever format, with its protocol's preprocessing and the
  regenerated label.
* one module per released format family, each checking its files and building its sets:
  ``cifar_c`` (``<corruption>.npy`` + ``labels.npy``), ``imagenet_c`` (``<corruption>/<severity>/<wnid>/``)
  and ``synthetic`` (corrupted on the fly).

Why a subpackage: the robustness suite adds format families, and each belongs here, not beside the
run/metrics/report stages. -C-bar is the -C layouts with its own names (a group in
``augmix.corruptions.names``); perturbation sequences (-P: frames along an axis of a .npy, or videos)
and distribution-shift sets (an ImageFolder with a class mask, CIFAR-10.1's .npy) are new set kinds,
each a module here and a lister beside ``corrupted``. The clean split itself is the data config's
(``augmix.data.clean``), shared with ``make_corrupted.py``.
"""

from augmix.evaluation.inputs.corrupted import corrupted_sets, corrupted_transform, regeneration_info
from augmix.evaluation.inputs.sets import CLEAN, ArraySet, BatchDataset, EvalSet, SourceSet
from augmix.evaluation.inputs.spec import BenchmarkSpec, benchmark_spec, download_hint
from augmix.evaluation.inputs.synthetic import SyntheticSet

__all__ = [
    "CLEAN",
    "ArraySet",
    "BatchDataset",
    "BenchmarkSpec",
    "EvalSet",
    "SourceSet",
    "SyntheticSet",
    "benchmark_spec",
    "corrupted_sets",
    "corrupted_transform",
    "download_hint",
    "regeneration_info",
]
