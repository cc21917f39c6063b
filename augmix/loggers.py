"""Experiment loggers from config, with wandb made safe for unattended and offline runs."""

from __future__ import annotations

import netrc
import os
import socket
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict
from pytorch_lightning.loggers import Logger, WandbLogger

from augmix.environment import is_global_rank_zero

WANDB_TARGET = "pytorch_lightning.loggers.WandbLogger"
#: Seconds the wandb server gets to answer one request before the run logs offline instead.
PROBE_TIMEOUT_S = 5.0
#: wandb.init's own limit (wandb's default is 90 s), unless WANDB_INIT_TIMEOUT says otherwise.
INIT_TIMEOUT_S = 30.0
#: wandb's folders outside its run folder, kept inside the run dir (<save_dir>/wandb/<name>) so
#: that nothing lands in ~/.cache/wandb, ~/.local/share/wandb or ./artifacts. Values the user
#: set win. (WANDB_CONFIG_DIR is left alone: it holds the user's own settings, and runs don't
#: write to it.)
WANDB_FOLDERS = {"WANDB_CACHE_DIR": "cache", "WANDB_DATA_DIR": "data", "WANDB_ARTIFACT_DIR": "artifacts"}
# the values this process set, so that a later run (the next job of a sweep) moves them to its
# own run dir while a value from the user's environment is never touched
_set_here: dict[str, str] = {}


def wandb_base_url() -> str:
    """The server wandb would talk to: WANDB_BASE_URL, else `wandb login --host`'s setting, else
    wandb's default."""
    from wandb.sdk.wandb_settings import Settings

    settings = Settings()
    config_dir = Path(os.environ.get("WANDB_CONFIG_DIR", "~/.config/wandb")).expanduser()
    settings.settings_system = str(config_dir / "settings")
    settings.update_from_system_settings()
    settings.update_from_env_vars(dict(os.environ))
    return settings.base_url


def wandb_has_credentials(base_url: str | None = None) -> bool:
    """True when wandb could log in without asking: an API key in the environment or ~/.netrc."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    hosts = {"api.wandb.ai", urlsplit(base_url).netloc} if base_url else {"api.wandb.ai"}
    try:
        entries = netrc.netrc()
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False
    return any(entries.authenticators(host) is not None for host in hosts)


def unreachable_reason(url: str, timeout: float | None = None) -> str | None:
    """None when an HTTP server at ``url`` answers within ``timeout`` seconds (any status; default
    ``PROBE_TIMEOUT_S``), else why not. The whole probe, name resolution included, is bounded."""
    timeout = PROBE_TIMEOUT_S if timeout is None else timeout
    outcome: list[str | None] = []

    def probe() -> None:
        try:
            urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout).close()
            outcome.append(None)
        except urllib.error.HTTPError:
            outcome.append(None)  # an error status is still an answer
        except (OSError, ValueError) as error:  # URLError, timeouts, resets, a malformed URL
            outcome.append(_describe(getattr(error, "reason", error), timeout))

    thread = threading.Thread(target=probe, name="wandb-probe", daemon=True)
    thread.start()
    thread.join(timeout)
    return outcome[0] if outcome else f"no answer within {timeout:g} s"


def _describe(reason: object, timeout: float) -> str:
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return f"no answer within {timeout:g} s"
    if isinstance(reason, socket.gaierror):
        return "host name not resolved"
    return str(reason) or type(reason).__name__


def keep_wandb_files_in(folder: Path) -> None:
    """Point wandb's cache, data and artifact folders into ``folder``, except where the user set them."""
    for variable, name in WANDB_FOLDERS.items():
        current = os.environ.get(variable)
        if current is None or current == _set_here.get(variable):
            os.environ[variable] = _set_here[variable] = str(folder / name)


def _go_offline(config: DictConfig) -> None:
    with open_dict(config):
        config.offline = True
        # WandbLogger turns offline=true into WANDB_MODE=dryrun, which wandb reads only once per
        # process: wandb.init's own mode holds for the next run (a sweep's next job, a retry) too
        config.mode = "offline"
        config.log_model = False  # WandbLogger refuses log_model offline: nothing could be uploaded


def _sync_hint(config: DictConfig) -> str:
    folder = f"{config.save_dir}/wandb"
    return f"logging offline to {folder}. Upload later with: wandb sync {folder}/offline-run-*"


def prepare_wandb(config: DictConfig) -> None:
    """Force offline mode unless wandb can log in and its server answers, so a run never stops at
    a login prompt or hangs on a network that is down. Everything wandb writes stays in the run dir.

    ``WANDB_MODE`` set by the user (offline, disabled, online) always wins, except that an
    unreachable server means offline.
    """
    mode = os.environ.get("WANDB_MODE")
    os.environ.setdefault("WANDB_SILENT", "true")
    Path(config.save_dir).mkdir(parents=True, exist_ok=True)
    keep_wandb_files_in(Path(config.save_dir) / "wandb")
    if mode == "disabled" or not is_global_rank_zero():
        return  # other ranks log nothing (WandbLogger gives them a dummy run)
    if bool(config.get("offline")) or mode in ("offline", "dryrun"):
        _go_offline(config)
        print(f"wandb: offline requested; {_sync_hint(config)}")
        return
    base_url = wandb_base_url()
    if mode != "online" and not wandb_has_credentials(base_url):
        _go_offline(config)
        print(f"wandb: no API key found; {_sync_hint(config)}")
        return
    reason = unreachable_reason(base_url)
    if reason is not None:
        _go_offline(config)
        _warn(f"wandb server {base_url} is unreachable ({reason}); {_sync_hint(config)}")


def _warn(message: str) -> None:
    print(f"Warning: {message}", file=sys.stderr, flush=True)


def start_wandb(config: DictConfig) -> WandbLogger:
    """A WandbLogger whose run has started (on rank zero): online, or offline when wandb.init fails
    (a server that answers but refuses the key, or does not finish the handshake in time)."""
    import wandb

    if is_global_rank_zero() and os.environ.get("WANDB_MODE") != "disabled":
        # wandb applies WANDB_SILENT when it is set up, and wandb.init warns before setting itself up
        # (about the "anonymous" argument WandbLogger always passes): set it up first
        wandb.setup()
    settings = None if "WANDB_INIT_TIMEOUT" in os.environ else wandb.Settings(init_timeout=INIT_TIMEOUT_S)
    logger = instantiate(config, **({"settings": settings} if settings and "settings" not in config else {}))
    if config.get("offline"):
        return logger  # an offline run starts on first use, as before
    try:
        logger.experiment  # noqa: B018  (wandb.init now, so a failure cannot reach the training loop)
    except wandb.errors.Error as error:
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        _go_offline(config)
        _warn(f"wandb.init failed ({first_line}); {_sync_hint(config)}")
        logger = instantiate(config)
    return logger


def build_loggers(config: DictConfig | None, resume_id: str | None = None) -> list[Logger]:
    """Instantiate every logger under ``config`` (a mapping name -> logger config).

    ``resume_id`` (from the checkpoint a run resumes) re-attaches wandb to the same run.
    """
    loggers: list[Logger] = []
    for node in (config or {}).values():
        if not isinstance(node, DictConfig) or "_target_" not in node:
            continue
        if node._target_ == WANDB_TARGET:
            prepare_wandb(node)
            if resume_id:
                with open_dict(node):
                    node.id, node.resume = resume_id, "allow"
            loggers.append(start_wandb(node))
        else:
            loggers.append(instantiate(node))
    return loggers


def finish_wandb(loggers: list[Logger]) -> None:
    """Close this run's wandb run, so the next job of a sweep (same process) starts its own. A
    WandbLogger's run is wandb's current run (``wandb.run``) once it has started; one never used
    (offline, nothing logged) has none to close."""
    if any(isinstance(logger, WandbLogger) for logger in loggers):
        import wandb

        if wandb.run is not None:
            wandb.finish()
