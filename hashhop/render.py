"""Render a Sample as Magic-format text: prompt, completion, targets, and JSONL records.

Text is built block by block with numpy (each block a byte matrix, one row per line), so
the largest prompt streams in bounded memory at disk speed. Small samples use the same
path and join the blocks.

Format (DESIGN.md): prompt lines `KEY = VALUE`, the last link of each chain quoted
`KEY = 'VALUE'`, shuffled, joined by newlines; completion
`COMPLETION:\\nHops={h}\\n\\nCoT={cot}\\n\\n` then `{H1} = '{answer}'` per asked query and a
final newline; targets `{H1: answer}` for every full chain.
"""

from __future__ import annotations

import json
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np

from hashhop.task import QUOTE, SEPARATOR, Sample

BLOCK_ROWS = 1 << 15
"""Lines (or targets) rendered per block: small enough for the scratch arrays to stay in cache."""

RENDER_THREADS = min(4, os.cpu_count() or 1)
"""Blocks rendered at once: numpy releases the GIL inside each array operation, so blocks on
separate threads overlap (benchmarks/RESULTS.md, "Generation speed")."""

COMPLETION_HEADER = "COMPLETION:\nHops={hops}\n\nCoT={cot}\n\n"

_Column = np.ndarray | bytes


def _join_columns(columns: list[_Column], n_rows: int) -> np.ndarray:
    """Place byte columns side by side: uint8 matrices [n_rows, w] or constant byte strings."""
    parts = []
    for column in columns:
        if isinstance(column, bytes):
            column = np.broadcast_to(np.frombuffer(column, dtype=np.uint8), (n_rows, len(column)))
        parts.append(column)
    return np.hstack(parts)


def _answer_columns(sample: Sample, chains: np.ndarray) -> list[_Column]:
    """The answer for each chain: its last hash (skip) or every hash after H1 (CoT)."""
    hops = sample.spec.hops
    if not sample.spec.cot:
        return [sample.hashes(sample.hash_index(chains, hops))]
    columns: list[_Column] = []
    for level in range(1, hops + 1):
        if level > 1:
            columns.append(SEPARATOR.encode())
        columns.append(sample.hashes(sample.hash_index(chains, level)))
    return columns


def _line_block(sample: Sample, positions: np.ndarray, newline: bytes) -> bytes:
    """Prompt lines at these positions, each followed by `newline`: one row of a byte matrix
    per line, quoted, then the quotes of lines that do not end a chain dropped."""
    chains, levels, ends = sample.line_links(sample.lines_at(positions))
    key_index = sample.hash_index(chains, levels)
    hash_len = sample.spec.hash_len
    open_quote = hash_len + len(SEPARATOR)
    close_quote = open_quote + 1 + hash_len
    matrix = np.empty((len(positions), close_quote + 1 + len(newline)), dtype=np.uint8)
    matrix[:, :hash_len] = sample.hashes(key_index)
    matrix[:, hash_len:open_quote] = np.frombuffer(SEPARATOR.encode(), dtype=np.uint8)
    matrix[:, [open_quote, close_quote]] = ord(QUOTE)
    matrix[:, open_quote + 1 : close_quote] = sample.hashes(sample.hash_index(chains, levels + 1))
    matrix[:, close_quote + 1 :] = np.frombuffer(newline, dtype=np.uint8)
    if ends.all():
        return matrix.tobytes()
    keep = np.ones(matrix.shape, dtype=bool)
    keep[~ends, open_quote] = False
    keep[~ends, close_quote] = False
    return matrix[keep].tobytes()


T = TypeVar("T")


def _in_order(render: Callable[[int], T], starts: range) -> Iterator[T]:
    """render(start) for each start, RENDER_THREADS at a time, yielded in order; at most twice
    that many blocks are held, so a 100M-token prompt still streams in bounded memory. One
    block is rendered in the caller's thread: starting a pool costs more than a training
    prompt's whole rendering (measured: 1.0 ms a 1200-character prompt, 2.7 ms with a pool)."""
    if len(starts) == 1:
        yield render(starts[0])
        return
    with ThreadPoolExecutor(RENDER_THREADS) as pool:
        pending: deque = deque()
        for start in starts:
            pending.append(pool.submit(render, start))
            if len(pending) >= 2 * RENDER_THREADS:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def prompt_chunks(sample: Sample, newline: bytes = b"\n") -> Iterator[bytes]:
    """The prompt as consecutive byte chunks; `newline` lets JSON writers pass b'\\\\n'."""

    def block(start: int) -> bytes:
        stop = min(start + BLOCK_ROWS, sample.n_lines)
        chunk = _line_block(sample, np.arange(start, stop), newline)
        return chunk[: -len(newline)] if stop == sample.n_lines else chunk

    return _in_order(block, range(0, sample.n_lines, BLOCK_ROWS))


def prompt_text(sample: Sample) -> str:
    return b"".join(prompt_chunks(sample)).decode("ascii")


def query_answers(sample: Sample) -> list[tuple[str, str]]:
    """(H1, answer) for each asked query, in the order the completion asks them."""
    chains = sample.query_chains
    keys = sample.hashes(sample.hash_index(chains, 0))
    answers = _join_columns(_answer_columns(sample, chains), len(chains))
    return [(key.tobytes().decode(), answer.tobytes().decode()) for key, answer in zip(keys, answers)]


def completion_text(sample: Sample) -> str:
    """The expected completion, exactly as Magic's reference writes it."""
    header = COMPLETION_HEADER.format(hops=sample.spec.hops, cot=sample.spec.cot)
    lines = [f"{key}{SEPARATOR}{QUOTE}{answer}{QUOTE}" for key, answer in query_answers(sample)]
    return header + "\n".join(lines) + "\n"


def _target_chunks(sample: Sample) -> Iterator[bytes]:
    """The body of the targets JSON object, `"H1": "answer", ...`, for every full chain."""
    for start in range(0, sample.n_chains, BLOCK_ROWS):
        chains = np.arange(start, min(start + BLOCK_ROWS, sample.n_chains))
        keys = sample.hashes(sample.hash_index(chains, 0))
        columns = [b', "', keys, b'": "', *_answer_columns(sample, chains), b'"']
        chunk = _join_columns(columns, len(chains)).tobytes()
        yield chunk[2:] if start == 0 else chunk


def targets(sample: Sample) -> dict[str, str]:
    """H1 -> answer for every full chain, in chain order (Magic's `targets`)."""
    return json.loads(b"{" + b"".join(_target_chunks(sample)) + b"}")


def record_chunks(sample: Sample) -> Iterator[bytes]:
    """One JSONL line, {prompt, completion, targets, spec}, equal to json.dumps of the dict."""
    yield b'{"prompt": "'
    yield from prompt_chunks(sample, newline=b"\\n")
    yield b'", "completion": ' + json.dumps(completion_text(sample)).encode()
    yield b', "targets": {'
    yield from _target_chunks(sample)
    yield b'}, "spec": ' + json.dumps(sample.spec.to_dict()).encode() + b"}\n"
