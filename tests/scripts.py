"""Run a top-level script (train.py, evaluate.py, ...) inside the test process.

The same entry point as ``python train.py ARGS`` runs, through ``runpy``, so Hydra's command line,
``report_errors`` and the exit code all take their real path; what is saved is the 5-6 s a fresh
interpreter spends importing torch, Lightning and timm. Tests about the process itself (signals,
DDP, what a fresh interpreter prints once) keep using a real subprocess.
"""

from __future__ import annotations

import logging
import os
import runpy
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from hydra.core.global_hydra import GlobalHydra

from augmix import interrupts
from tests.conftest import ROOT

STOP_SIGNALS = [getattr(signal, name) for name in interrupts.STOP_SIGNALS if hasattr(signal, name)]


@dataclass
class Finished:
    """What ``subprocess.run(..., capture_output=True, text=True)`` would have returned."""

    returncode: int
    stdout: str
    stderr: str


def run_script(capfd, script: str, *args: str, cwd: Path, env: dict[str, str] | None = None) -> Finished:
    """Run ``python ROOT/script args`` in this process from ``cwd``, with ``env`` added to the
    environment, and return its exit code and what it printed (captured at the fd level)."""
    saved_argv, saved_cwd, saved_env = sys.argv[:], os.getcwd(), dict(os.environ)
    saved_handlers = {number: signal.getsignal(number) for number in STOP_SIGNALS}
    root = logging.getLogger()
    saved_logging = (root.handlers[:], root.level)
    capfd.readouterr()  # drop what earlier code printed
    GlobalHydra.instance().clear()
    code = 0
    try:
        os.environ.update(env or {})
        os.chdir(cwd)
        sys.argv = [str(ROOT / script), *args]
        runpy.run_path(str(ROOT / script), run_name="__main__")
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    finally:
        interrupts.release_all()  # a local multirun keeps its handlers until the process ends
        GlobalHydra.instance().clear()
        sys.argv = saved_argv
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        for number, handler in saved_handlers.items():
            signal.signal(number, handler)
        for handler in root.handlers[:]:
            if handler not in saved_logging[0]:
                root.removeHandler(handler)
                handler.close()
        root.handlers[:], root.level = saved_logging
    captured = capfd.readouterr()
    return Finished(code, captured.out, captured.err)
