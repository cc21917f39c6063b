"""Everything evaluation reads, checked before any compute: the ``benchmark`` node and the sets of images.

* ``spec``: a -C ``benchmark`` config node, checked and frozen into a ``BenchmarkSpec``; the released
  benchmarks' download sources and layouts (for the "missing files" hints). ``perturbed`` and
  ``shift`` do the same for -P and distribution-shift nodes, ``suite`` for the ``suite`` node.
* ``sets``: what the run loop reads: ``EvalSet`` and its kinds (``SourceSet`` over an image source,
  ``ArraySet`` over a block of a .npy array) and ``BatchDataset``, one DataLoader item per batch.
* ``corrupted``: a spec's -C sets in whichever format, with its protocol's preprocessing and the
  regenerated label.
* one module per released format family, each checking its files and building its sets:
  ``cifar_c`` (``<corruption>.npy`` + ``labels.npy``, also CIFAR-10-C-bar), ``imagenet_c``
  (``<corruption>/<severity>/<wnid>/``, also ImageNet-C-bar), ``synthetic`` (corrupted on the fly),
  ``cifar_p`` (``<perturbation>.npy`` of sequences), ``imagenet_p`` (``<perturbation>/<wnid>/*.mp4``),
  ``imagenet_shift`` (ImageNet-R/A/Sketch/V2 folders; the R/A class lists are ``imagenet_classes``)
  and ``cifar_shift`` (CIFAR-10.1 .npy, CIFAR-10.2 .npz).

-C-bar is the -C layouts with its own names (a family in ``augmix.corruptions.names``). The clean
split itself is the data config's (``augmix.data.clean``), shared with ``make_corrupted.py`` and
``make_perturbed.py``.
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
