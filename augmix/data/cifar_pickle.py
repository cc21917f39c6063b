"""Read the CIFAR python batches as data: a pickle that names anything else is refused, not run.

The official archives were written by Python 2's cPickle (protocol 2): dicts of byte strings, lists
of ints and uint8 numpy arrays, whose only globals are numpy's array and dtype reconstructors.
Files re-saved by Python 3 add ``_codecs.encode`` (protocol 2 bytes) or numpy's ``_frombuffer``
(protocol 5). Those, under numpy 1's and numpy 2's module names, are the whole allowlist; every
other global, however harmless it looks, stops the load with one line naming the file.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from augmix.errors import DataError

LATIN1 = ("latin1", "iso88591", "l1")


def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    """``_codecs.encode`` as Python 3 uses it to pickle bytes at protocol 2: latin-1 only, so no codec
    is looked up by a name taken from the file."""
    if not isinstance(encoding, str) or encoding.lower().replace("-", "").replace("_", "") not in LATIN1:
        raise _Refused(f"_codecs.encode (encoding {encoding!r})")
    return text.encode("latin-1")


def _numpy_globals() -> dict[tuple[str, str], Any]:
    """The numpy callables the pickles name, taken from numpy's own reduce output rather than
    imported, under both the numpy 1 (``numpy.core``) and numpy 2 (``numpy._core``) module names."""
    reconstruct = np.zeros(0, np.uint8).__reduce__()[0]
    frombuffer = np.zeros(0, np.uint8).__reduce_ex__(5)[0]
    scalar = np.uint8(0).__reduce__()[0]
    allowed: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for core in ("numpy.core", "numpy._core"):
        allowed[(f"{core}.multiarray", "_reconstruct")] = reconstruct
        allowed[(f"{core}.multiarray", "scalar")] = scalar
        allowed[(f"{core}.numeric", "_frombuffer")] = frombuffer
    return allowed


ALLOWED = {**_numpy_globals(), ("_codecs", "encode"): _latin1_encode}


class _Refused(pickle.UnpicklingError):
    """A global outside the allowlist; ``name`` is what the file asked for."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class CifarUnpickler(pickle.Unpickler):
    """An unpickler whose only globals are ``ALLOWED``; Python 2 strings are read as latin-1."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED[(module, name)]
        except KeyError:
            raise _Refused(f"{module}.{name}") from None


def load_cifar_pickle(path: Path) -> Any:
    """The object in ``path``, built only from plain containers, strings, numbers and numpy arrays."""
    try:
        with open(path, "rb") as handle:
            return CifarUnpickler(handle, encoding="latin1").load()
    except _Refused as refused:
        raise DataError(
            f"{path} contains a Python object of type {refused.name}, which is not loaded for safety: CIFAR files "
            "hold only dicts, lists, strings, numbers and numpy arrays; re-download the dataset"
        ) from None
    except (pickle.UnpicklingError, EOFError, OSError, ValueError, TypeError, AttributeError, IndexError) as error:
        reason = "the file is empty" if path.is_file() and path.stat().st_size == 0 else str(error)
        raise DataError(f"{path} is not a readable CIFAR pickle ({reason}); re-download the dataset") from None


def cifar_entry(path: Path, required: tuple[str, ...]) -> dict[str, Any]:
    """``path``'s dict with str keys (Python 2 byte-string keys decoded), checked to hold ``required``."""
    entry = load_cifar_pickle(path)
    if not isinstance(entry, dict):
        raise DataError(
            f"{path} holds a {type(entry).__name__}, not the dict a CIFAR batch holds; re-download the dataset"
        )
    entry = {key.decode("latin-1") if isinstance(key, bytes) else key: value for key, value in entry.items()}
    missing = [key for key in required if key not in entry]
    if missing:
        found = sorted(str(key) for key in entry)[:10]
        raise DataError(
            f"{path} has no {', '.join(repr(k) for k in missing)} entry (it has {found}); "
            "is it a file of this CIFAR variant? Re-download the dataset"
        )
    return entry
