"""Stop requests for a whole command: ``train.py`` with its post-fit steps, ``evaluate.py``, a local sweep.

SIGTERM, SIGINT (Ctrl-C), SIGUSR1 and SIGUSR2 only record a request. Each phase acts on it at its
next batch boundary (``augmix.callbacks.reliability.Preemption`` in Lightning's loops, the evaluation loop, the
start of every run or sweep job): it keeps what is finished, prints one line saying what was kept
and how to continue, calls the handlers that were installed before ours (submitit's SIGUSR2
requeue) and exits with status 0, or 130 after Ctrl-C (the shell's convention, so that
``train.py && evaluate.py`` does not go on). A second Ctrl-C aborts at once; every file is written
atomically, so even then none is left half-written.

The handler never does more than record: no I/O beyond one acknowledgement of Ctrl-C, and no
collective, so ranks agree on stopping at a batch boundary instead (see ``Preemption``).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

from augmix.environment import is_global_rank_zero

STOP_SIGNALS = ("SIGTERM", "SIGINT", "SIGUSR1", "SIGUSR2")
EXIT_INTERRUPTED = 128 + signal.SIGINT


class Stopped(SystemExit):
    """Raised once the work done so far is safe: no traceback, exit status 0 (130 after Ctrl-C)."""


class _Requests:
    def __init__(self) -> None:
        self.received: list[int] = []  # stop signals in order of arrival, each once
        self.interrupts = 0  # Ctrl-C presses
        self.previous: dict[int, Any] = {}  # handlers installed before ours
        self.depth = 0  # nested install() calls (train() around Lightning's stages, a sweep's jobs)
        self.aborted = False  # a second Ctrl-C came; stays set for the entry point's last word
        self.owner = 0  # the process that installed the handlers (forked loader workers inherit them)


_requests = _Requests()


def _numbers() -> list[int]:
    return [getattr(signal, name) for name in STOP_SIGNALS if hasattr(signal, name)]


def _on_signal(signum: int, frame: Any) -> None:
    if not _requests.depth:  # left behind by a library that restores the handlers it saw: act as before us
        previous = _requests.previous.get(signum)
        signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
        if callable(previous):
            previous(signum, frame)
        elif previous in (None, signal.SIG_DFL):
            os.kill(os.getpid(), signum)
        return
    if signum not in _requests.received:
        _requests.received.append(signum)
    if signum == signal.SIGINT:
        _requests.interrupts += 1
        if _requests.interrupts > 1:
            _requests.aborted = True
            raise KeyboardInterrupt  # the second Ctrl-C: abort at once
        if os.getpid() == _requests.owner and is_global_rank_zero():  # os.write: print() may be mid-write
            os.write(2, b"\nCtrl-C: stopping at the next batch boundary to save; press Ctrl-C again to abort at once.\n")


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def install() -> None:
    """Route the stop signals to the request flag (nested calls are counted; the outermost wins)."""
    _requests.depth += 1
    if _requests.depth > 1:
        return
    _requests.aborted, _requests.owner = False, os.getpid()
    if not _main_thread():
        return
    for number in _numbers():
        current = signal.signal(number, _on_signal)
        if current is not _on_signal:  # not ours left behind (see _on_signal): keep the real previous
            _requests.previous[number] = current


def uninstall() -> None:
    """Undo one ``install``; the outermost restores the previous handlers and forgets requests."""
    _requests.depth = max(_requests.depth - 1, 0)
    if _requests.depth:
        return
    if _main_thread():
        for number, handler in _requests.previous.items():
            signal.signal(number, handler if handler is not None else signal.SIG_DFL)
    _requests.received, _requests.interrupts = [], 0  # previous stays: see _on_signal


def release_all() -> None:
    """Undo every ``install``, the process-long ones too, as the end of the process would: for
    running several commands in one process (the test suite runs train.py in-process)."""
    while _requests.depth:
        uninstall()


@contextmanager
def handling_stops(for_the_process: bool = False) -> Iterator[None]:
    """Stop signals become requests inside the block; ``for_the_process`` keeps them so until the
    process ends (a local sweep: a signal between two jobs stops the sweep before the next job)."""
    install()
    try:
        yield
    finally:
        if not for_the_process:
            uninstall()


def reclaim() -> None:
    """Take back signals another library re-routed after ``install`` (Lightning's signal connector
    replaces the SIGTERM handler at the start of every stage; its own handler would raise
    SystemExit(0) inside the validation loop before anything is saved, and under DDP would run a
    collective inside the signal handler). Lightning restores ours when the stage ends."""
    if not _requests.depth or not _main_thread():
        return
    for number in _numbers():
        if signal.getsignal(number) is not _on_signal:
            signal.signal(number, _on_signal)


def requested() -> int | None:
    """The first stop signal this process received, if any."""
    return _requests.received[0] if _requests.received else None


def aborted() -> bool:
    """Did a second Ctrl-C abort this command? (Lightning turns the KeyboardInterrupt into exit 1.)"""
    return _requests.aborted


def stop(kept: str, then: str = "resume") -> NoReturn:
    """Print ``<SIGNAL>: <kept>; run the same command again to <then>.`` (rank zero), hand the
    signal to the handlers installed before ours, and exit."""
    first = requested()
    name = signal.Signals(first).name if first is not None else "stop"
    if is_global_rank_zero():
        print(f"{name}: {kept}; run the same command again to {then}.", file=sys.stderr, flush=True)
    for number in list(_requests.received):
        previous = _requests.previous.get(number)
        if callable(previous) and previous is not signal.default_int_handler:
            previous(number, None)  # e.g. submitit: requeue this job
    raise Stopped(EXIT_INTERRUPTED if first == signal.SIGINT else 0)


def stop_if_requested(kept: str, then: str = "resume") -> None:
    """A boundary outside Lightning's loops (a run or sweep job about to start, a post-fit step)."""
    if requested() is not None:
        stop(kept, then)
