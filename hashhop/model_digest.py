"""A model's content digest: the name results use for it instead of a path on one machine.

Two machines that hold the same weights under different paths must produce results that
merge, and a model replaced at the same path must not pass for the old one. So a model file
is named by the SHA-256 of its bytes, and a model directory by the SHA-256 over its files'
relative names and digests (weights, config and tokenizer alike: each can change answers).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

DIGEST_PREFIX = "sha256:"


def _file_sha256(path: Path) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


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


def checkpoint_digest(weights: Path, settings: object) -> str:
    """'sha256:<hex>' of a checkpoint's weights and the settings that rebuild the model around
    them (its model config and tokenizer spec, as JSON): the same weights read by another
    tokenizer answer differently. Never the training settings, which hold a machine path."""
    digest = hashlib.sha256(model_digest(weights).encode())
    digest.update(json.dumps(settings, sort_keys=True).encode())
    return DIGEST_PREFIX + digest.hexdigest()
