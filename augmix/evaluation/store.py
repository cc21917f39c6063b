"""Per-set results on disk: written atomically as each set finishes, read back on resume.

``<dir>/run.json`` records what is being evaluated (checkpoint hash, benchmark, preprocessing,
limit); each ``<dir>/<set>.json`` carries that fingerprint too, so a resumed run only reuses sets
computed under identical conditions and never mixes two evaluations in one folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from augmix.errors import ConfigError, RunDirError
from augmix.files import remove_stale_temporaries, write_json
from augmix.fingerprint import config_hash

MANIFEST = "run.json"


class ResultStore:
    """The folder of finished sets of one evaluation."""

    def __init__(self, directory: str | Path, description: dict[str, Any], replace_stale: bool = False) -> None:
        self.directory = Path(directory)
        self.description = description
        self.fingerprint = config_hash(description)
        self.replace_stale = replace_stale

    def open(self) -> None:
        """Create the folder or check it belongs to this evaluation (rank zero only, before any write;
        temp files that a killed run left behind are removed)."""
        remove_stale_temporaries(self.directory)
        manifest = self.directory / MANIFEST
        if manifest.is_file():
            existing = self._manifest(manifest)
            if existing.get("fingerprint") != self.fingerprint:
                if not self.replace_stale:
                    changed = sorted(
                        key
                        for key in set(existing.get("description", {})) | set(self.description)
                        if existing.get("description", {}).get(key) != self.description.get(key)
                    )
                    raise ConfigError(
                        f"{self.directory} holds results of a different evaluation (differs in {changed}); "
                        "choose another output folder (hydra.run.dir=...) or delete that folder to start over"
                    )
                for stale in self.directory.glob("*.json"):
                    stale.unlink(missing_ok=True)  # another process may have removed it meanwhile
        self.directory.mkdir(parents=True, exist_ok=True)
        write_json(manifest, {"fingerprint": self.fingerprint, "description": self.description})

    def _manifest(self, manifest: Path) -> dict[str, Any]:
        """The folder's record of what it holds, read as data; damaged, it names the folder to remove
        (or, with ``replace_stale``, counts as another evaluation's and is replaced)."""
        try:
            existing = json.loads(manifest.read_bytes())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            existing = error
        if isinstance(existing, dict) and isinstance(existing.get("description", {}), dict):
            return existing
        if self.replace_stale:
            return {}
        raise RunDirError(
            f"{manifest} is damaged ({existing if isinstance(existing, Exception) else 'not a manifest'}), so the set results "
            f"beside it cannot be matched to this evaluation; delete {self.directory} to evaluate every set again"
        )

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}.json"

    def read(self, key: str) -> dict | None:
        """The finished set's metrics, or None if it has not been computed under this fingerprint."""
        path = self._path(key)
        if not path.is_file():
            return None
        try:
            record = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None  # cannot happen with atomic writes, but never trust a damaged file
        if not isinstance(record, dict) or not isinstance(record.get("metrics"), dict):
            return None
        return record["metrics"] if record.get("fingerprint") == self.fingerprint else None

    def write(self, key: str, metrics: dict) -> None:
        write_json(self._path(key), {"fingerprint": self.fingerprint, "set": key, "metrics": metrics})
