"""Where this process stands among the processes of a run, read before Lightning starts."""

from __future__ import annotations

import os

_GLOBAL_RANK_VARIABLES = ("RANK", "SLURM_PROCID", "OMPI_COMM_WORLD_RANK", "PMI_RANK")


def is_global_rank_zero() -> bool:
    """True in exactly one process of a run: the one that does one-off work such as downloads,
    file scans and folder checks before training or evaluation starts.

    torchrun sets ``RANK``, SLURM/submitit ``SLURM_PROCID``, MPI its own rank; Lightning's DDP
    launcher starts its extra processes with ``LOCAL_RANK``/``NODE_RANK`` set.
    """
    for name in _GLOBAL_RANK_VARIABLES:
        if name in os.environ:
            return int(os.environ[name]) == 0
    node = os.environ.get("NODE_RANK", os.environ.get("GROUP_RANK", "0"))
    return int(os.environ.get("LOCAL_RANK", "0")) == 0 and int(node) == 0


def is_externally_launched() -> bool:
    """True when a scheduler or launcher (SLURM, torchrun, MPI) started one process per rank, so
    Lightning will not start processes itself."""
    return any(name in os.environ for name in (*_GLOBAL_RANK_VARIABLES, "LOCAL_RANK"))
