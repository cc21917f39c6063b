"""Upload an exported folder to the Hugging Face Hub with ``huggingface_hub``.

The Hub client waits without limit on a network that drops packets, so the endpoint is first
reached with a plain connection and a timeout; any failure, there or in the upload, is one line
that says the folder is complete and how to upload it later.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path
from urllib.parse import urlsplit

from augmix.errors import AugMixError, ConfigError

REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")


class HubError(AugMixError):
    """The upload did not happen; the exported folder is complete on disk."""


def check_repo_id(repo_id: str) -> str:
    if not isinstance(repo_id, str) or not REPO_ID.fullmatch(repo_id) or ".." in repo_id:
        raise ConfigError(f"push_to_hub={repo_id!r} is invalid: must be a Hub repository id USER/NAME, e.g. push_to_hub=me/wrn16-augmix")
    return repo_id


def _endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


def _reach(endpoint: str, timeout: float) -> None:
    """Open (and close) a TCP connection to the endpoint, or raise OSError within ``timeout`` s."""
    parts = urlsplit(endpoint)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    with socket.create_connection((parts.hostname or "", port), timeout=timeout):
        pass


def push_folder(folder: Path, repo_id: str, private: bool = False, timeout: float = 10.0) -> str:
    """Create ``repo_id`` if needed and upload ``folder``'s files; returns the repository's URL."""
    from huggingface_hub import HfApi

    endpoint = _endpoint()
    later = f"the exported folder {folder} is complete: upload it later with `hf upload {repo_id} {folder} .`"
    try:
        _reach(endpoint, timeout)
    except OSError as error:
        reason = "timed out" if isinstance(error, TimeoutError) else (error.strerror or str(error) or type(error).__name__)
        raise HubError(f"cannot reach the Hugging Face Hub at {endpoint} ({reason}, {timeout:g} s limit); {later}") from None
    api = HfApi(endpoint=endpoint, library_name="augmix")
    try:
        url = api.create_repo(repo_id, private=private, exist_ok=True)
        api.upload_folder(repo_id=url.repo_id, folder_path=str(folder), commit_message="Add AugMix model (augmix export.py)")
    except Exception as error:  # the client's HTTP, auth and validation errors differ by version; all mean the same here
        detail = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise HubError(f"push_to_hub={repo_id} failed ({type(error).__name__}: {detail}); {later}") from None
    return str(url)
