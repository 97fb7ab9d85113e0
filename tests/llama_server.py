"""Start llama.cpp's OpenAI-compatible server on a loopback port, for tests that need one."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

SERVER_START_TIMEOUT_S = 120
READY_LINE = "Uvicorn running on"


@dataclass(frozen=True)
class LlamaServer:
    url: str
    """The API root, http://127.0.0.1:PORT/v1."""
    process: subprocess.Popen


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def llama_server(model: Path, alias: str, port: int | None = None, n_ctx: int = 2048) -> Iterator[LlamaServer]:
    """Serve `model` as `alias` until the block ends (or a test kills the process)."""
    port = port or free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model)]
    command += ["--model_alias", alias, "--host", "127.0.0.1", "--port", str(port)]
    command += ["--n_ctx", str(n_ctx)]
    log: list[str] = []
    ready = threading.Event()
    with subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) as server:

        def drain_log() -> None:
            for line in server.stderr:
                log.append(line)
                if READY_LINE in line:
                    ready.set()
            ready.set()

        drainer = threading.Thread(target=drain_log, daemon=True)
        drainer.start()
        try:
            ready.wait(SERVER_START_TIMEOUT_S)
            if not any(READY_LINE in line for line in log):
                pytest.fail("llama.cpp server did not start:\n" + "".join(log[-20:]))
            yield LlamaServer(f"http://127.0.0.1:{port}/v1", server)
        finally:
            server.terminate()
            drainer.join()
