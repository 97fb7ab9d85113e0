"""Termination signals become exceptions, so a writer's cleanup runs before the process ends.

`timeout`, Slurm and systemd stop a process with SIGTERM, a closed terminal sends SIGHUP.
Python's default for both is to die on the spot, skipping every `except` and `finally`, so
a half-written temporary file would stay behind. Inside `signals_raise_exit()` they raise
SystemExit(128 + signal) instead, as SIGINT already raises KeyboardInterrupt: cleanup runs,
then the process exits with the status a shell gives a process killed by that signal.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

TERMINATION_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)
SIGNAL_EXIT_BASE = 128
"""A process ended by signal N exits with status 128 + N (143 for SIGTERM, 129 for SIGHUP)."""


def _exit_for_signal(number: int, frame: FrameType | None) -> None:
    raise SystemExit(SIGNAL_EXIT_BASE + number)


@contextmanager
def signals_raise_exit() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise SystemExit where they would have killed.

    Handlers the program installed itself (or SIG_IGN) are left alone, and so are threads
    other than the main one, where Python cannot install handlers (signals go to the main
    thread anyway).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    replaced = [number for number in TERMINATION_SIGNALS if signal.getsignal(number) == signal.SIG_DFL]
    for number in replaced:
        signal.signal(number, _exit_for_signal)
    try:
        yield
    finally:
        for number in replaced:
            signal.signal(number, signal.SIG_DFL)
