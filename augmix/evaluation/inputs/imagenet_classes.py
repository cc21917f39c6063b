"""The 200 ImageNet classes (WordNet ids) of ImageNet-R and of ImageNet-A, read from the data files
``imagenet_r_wnids.txt`` and ``imagenet_a_wnids.txt`` beside this module (one wnid a line).

The two lists differ (86 wnids are in both). Their sources are the authors' evaluation scripts:

* ImageNet-R: ``imagenet_r_wnids`` in github.com/hendrycks/imagenet-r, ``eval.py``, whose comment also
  lists the 200 indices into the sorted 1000 ImageNet wnids;
* ImageNet-A: ``thousand_k_to_200`` in github.com/hendrycks/natural-adv-examples, ``eval.py`` (the
  1000-way indices whose value is not -1, in order).

Both scripts restrict the 1000-way logits to these classes (in sorted-wnid order) before the argmax and
label the images by ImageFolder over the 200 wnid folders, i.e. by each wnid's position in the sorted
list. The lists were checked against those indices: with the 1000 ImageNet wnids sorted, the
wnids at the published indices are exactly these, 200 each, sorted, no duplicates (timm ships the same
lists in timm/data/_info/imagenet_{r,a}_synsets.txt). Evaluation maps each wnid to the model's output
through the clean split's own class order, never through these indices.
"""

from importlib import resources


def _wnids(file_name: str) -> tuple[str, ...]:
    return tuple(resources.files(__package__).joinpath(file_name).read_text(encoding="ascii").split())


IMAGENET_R_WNIDS: tuple[str, ...] = _wnids("imagenet_r_wnids.txt")
IMAGENET_A_WNIDS: tuple[str, ...] = _wnids("imagenet_a_wnids.txt")
