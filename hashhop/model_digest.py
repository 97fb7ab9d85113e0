"""A model's content digest: the name results use for it instead of a path on one machine.

Two machines that hold the same weights under different paths must produce results that
merge, and a model replaced at the same path must not pass for the old one. So a model file
is named by the SHA-256 of its bytes, and a model directory by the SHA-256 over its files'
relative names and digests (weights, config and tokenizer alike: each can change answers).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

DIGEST_PREFIX = "sha256:"
READ_CHUNK_BYTES = 1 << 20


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(READ_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def model_digest(path: Path) -> str:
    """'sha256:<hex>' of a model file, or of every visible file under a model directory."""
    path = Path(path)
    if path.is_file():
        return DIGEST_PREFIX + _file_sha256(path)
    digest = hashlib.sha256()
    for file in sorted(path.rglob("*")):
        relative = file.relative_to(path)
        if file.is_file() and not any(part.startswith(".") for part in relative.parts):
            digest.update(f"{relative.as_posix()}\0{_file_sha256(file)}\n".encode())
    return DIGEST_PREFIX + digest.hexdigest()
