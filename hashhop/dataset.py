"""Dataset files: write samples as JSONL (or one raw prompt), atomically; read them back.

A file is written under a temporary name beside its destination and renamed when complete,
so an interrupted run never leaves a half file under the final name.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from pathlib import Path
from typing import IO

from hashhop.errors import HashHopError
from hashhop.fit import make_sample
from hashhop.interrupts import signals_raise_exit
from hashhop.render import prompt_chunks, record_chunks
from hashhop.task import TaskSpec

PROGRESS_MIN_BYTES = 50_000_000
"""Outputs estimated above this size show a progress bar (on a terminal)."""

RECORD_FIELDS = ("prompt", "completion", "targets")


@contextmanager
def atomic_output(path: Path) -> Iterator[IO[bytes]]:
    """A binary file that appears at `path` only if the block completes without error.

    The temporary file is removed on any error or termination signal (SIGINT, SIGTERM,
    SIGHUP), after which the process exits with that signal's conventional status.
    """
    path = Path(path)
    if path.is_dir():
        raise HashHopError(f"{path} is a directory, not a file path")
    check_parent_dir(path)
    with signals_raise_exit():
        handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            os.chmod(temp_name, _default_file_mode())  # mkstemp makes it private; outputs are for sharing
            with os.fdopen(handle, "wb") as file:
                yield file
            os.replace(temp_name, path)
        except BaseException:
            with suppress(FileNotFoundError):  # a signal may land just after the rename
                os.unlink(temp_name)
            raise


def check_parent_dir(path: Path) -> None:
    """Outputs go into directories that exist: a mistyped path is an error, not a new tree."""
    if not Path(path).parent.is_dir():
        raise HashHopError(f"directory {Path(path).parent} does not exist")


def check_output_dir(path: Path) -> None:
    """Refuse an output directory that `make_output_dir` could not make, before slow work."""
    if Path(path).exists() and not Path(path).is_dir():
        raise HashHopError(f"{path} is a file, not a directory")
    check_parent_dir(path)


def make_output_dir(path: Path) -> Path:
    """The output directory `path`, created if needed; like a file's, its parent must exist."""
    check_output_dir(path)
    Path(path).mkdir(exist_ok=True)
    return Path(path)


def _default_file_mode() -> int:
    """The mode `open()` would give a new file: 0o666 less the process umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_dataset(path: Path, specs: list[TaskSpec], prompt_only: bool = False) -> int:
    """Write one JSONL record per spec (or, with `prompt_only`, the single raw prompt).

    Returns the number of bytes written.
    """
    if prompt_only and len(specs) != 1:
        raise HashHopError("--prompt-only writes a single raw prompt: use one sample")
    samples = [make_sample(spec) for spec in specs]
    estimate = sum(spec.char_budget for spec in specs)
    chunks: Iterable[bytes] = (
        prompt_chunks(samples[0])
        if prompt_only
        else (chunk for sample in samples for chunk in record_chunks(sample))
    )
    written = 0
    with atomic_output(path) as file, _progress_bar(estimate, f"writing {Path(path).name}") as progress:
        for chunk in chunks:
            file.write(chunk)
            written += len(chunk)
            if progress is not None:
                progress.update(len(chunk))
    return written


def _progress_bar(total_bytes: int, description: str) -> AbstractContextManager:
    """A tqdm bar (on a terminal) for outputs of PROGRESS_MIN_BYTES or more; None below,
    without importing tqdm: its import was a tenth of a small `generate`'s start-up."""
    if total_bytes < PROGRESS_MIN_BYTES:
        return nullcontext()
    from tqdm import tqdm

    return tqdm(total=total_bytes, unit="B", unit_scale=True, desc=description, disable=None)


def read_records(path: Path, fields: tuple[str, ...] = RECORD_FIELDS) -> list[dict]:
    """The JSON objects of a JSONL file, each checked for `fields`; one-line errors otherwise."""
    path = Path(path)
    if not path.is_file():
        raise HashHopError(f"{path}: no such file")
    records = []
    with path.open(encoding="utf-8") as file:
        for line_number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise HashHopError(f"{path}:{line_number}: not valid JSON ({error.msg})") from None
            if not isinstance(record, dict):
                raise HashHopError(f"{path}:{line_number}: expected a JSON object")
            missing = [name for name in fields if name not in record]
            if missing:
                raise HashHopError(f"{path}:{line_number}: missing field(s) {', '.join(missing)}")
            records.append(record)
    if not records:
        raise HashHopError(f"{path}: no records")
    return records
