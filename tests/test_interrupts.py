"""Termination signals raise SystemExit inside writers, and only there."""

from __future__ import annotations

import os
import signal

import pytest

from hashhop.interrupts import signals_raise_exit


def test_sigterm_inside_the_block_raises_exit_143_and_the_default_comes_back():
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    with pytest.raises(SystemExit) as exit_info, signals_raise_exit():
        os.kill(os.getpid(), signal.SIGTERM)
    assert exit_info.value.code == 143
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_a_handler_the_program_installed_is_left_alone():
    def own_handler(number, frame):
        raise LookupError(number)

    previous = signal.signal(signal.SIGHUP, own_handler)
    try:
        with pytest.raises(LookupError), signals_raise_exit():
            os.kill(os.getpid(), signal.SIGHUP)
        assert signal.getsignal(signal.SIGHUP) is own_handler
    finally:
        signal.signal(signal.SIGHUP, previous)
