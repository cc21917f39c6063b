"""The ``regenerated.json`` marker of a user-made -C or -P set, shared by both writers.

A set's folder is claimed before anything is written (it must be empty or hold this generator's
own set with the same settings), carries a hidden in-progress marker while a run is under way, and
is labelled regenerated only once the set is complete, so reports can tell synthesised sets from
the released ones and a failed run never passes for a finished one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from augmix.files import write_text

MARKER_NAME = "regenerated.json"
IN_PROGRESS_NAME = ".regenerated.json.in-progress"  # becomes MARKER_NAME when the run succeeds


def claim_folder(out_dir: Path, generator: str, settings: Mapping[str, Any]) -> None:
    """Make ``out_dir`` this run's: empty (hidden files aside), or holding a set of ``generator``
    with the same ``settings`` (resumed or extended). It is marked in progress until
    ``mark_regenerated``, so a folder of released files is refused before anything is written next
    to them, and a failed run never labels a folder regenerated."""
    marker = {"regenerated": True, "generator": generator, **settings}
    for path in (out_dir / MARKER_NAME, out_dir / IN_PROGRESS_NAME):
        if path.exists():
            existing = json.loads(path.read_text())
            if existing != marker:
                raise ValueError(f"{out_dir} already holds a set made with {existing}, not {marker}; "
                                 "use another directory to generate a different set")
            return
    foreign = sorted(entry.name for entry in os.scandir(out_dir) if not entry.name.startswith("."))
    if foreign:
        shown = ", ".join(foreign[:5]) + (" ..." if len(foreign) > 5 else "")
        raise ValueError(f"{out_dir} already holds files this generator did not write ({shown}); "
                         "write the set into a new or empty folder")
    write_text(out_dir / IN_PROGRESS_NAME, json.dumps(marker, indent=2) + "\n")


def mark_regenerated(out_dir: Path) -> None:
    """The set in ``out_dir`` is complete: its in-progress marker becomes ``regenerated.json``."""
    pending = out_dir / IN_PROGRESS_NAME
    if pending.exists():
        os.replace(pending, out_dir / MARKER_NAME)

