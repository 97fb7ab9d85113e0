"""The learned channel of code search: a query tower and a code tower that map text to unit
vectors, so a description lands near the code it describes. Inference is numpy only (a
search must not wait seconds for torch to import); `encoder_training.py` trains the same
arithmetic in torch and exports these arrays.

A word's vector is a learned row (words seen in training; others share hashed rows) plus a
learned projection of the word's fixed random features (`hashhop.tokenize.random_features`,
the project's identifier features): every identifier, even one never seen in training, gets
its own direction, so an exact identifier in a query still matches its code. Each tower
pools its words by a learned per-word weight (a learned IDF) and projects the mean. The
code tower reads the symbol's name and its body as two bags, so a name word counts as a
name word.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from hashhop.code.reranker import RERANKER_FILES, Reranker
from hashhop.code.stored_arrays import from_stored, to_stored
from hashhop.code.symbols import Symbol
from hashhop.code.words import search_words, symbol_words
from hashhop.dataset import atomic_output
from hashhop.errors import HashHopError
from hashhop.tokenize import random_features

ENCODER_FORMAT = "hashhop-code-encoder"
ENCODER_VERSION = 1
QUERY, NAME, BODY = 0, 1, 2
"""Rows of `pool_weights`: one pooling weight per word for each bag."""
PAD = -1
"""Index of no word, padding a batch of bags to one length in training."""
MAX_BODY_WORDS = 512
"""A body's first words; the rest of a long function adds cost and little meaning."""


def symbol_bags(symbol: Symbol) -> tuple[list[str], list[str]]:
    """(name words, body words) of a symbol as the code tower reads it: the body cut short."""
    name, body = symbol_words(symbol)
    return name, body[:MAX_BODY_WORDS]


def word_rows(words: list[str], vocabulary: dict[str, int], n_buckets: int) -> np.ndarray:
    """Row of each word: its own below len(vocabulary), else one of `n_buckets` shared rows
    chosen by a stable hash (crc32), the same on every machine."""
    size = len(vocabulary)
    return np.array(
        [vocabulary[word] if word in vocabulary else size + zlib.crc32(word.encode()) % n_buckets for word in words],
        dtype=np.int64,
    )


@dataclass
class CodeEncoder:
    vocabulary: dict[str, int]
    n_buckets: int
    table: np.ndarray  # [V + n_buckets, d]
    feature_projection: np.ndarray  # [F, d]
    pool_weights: np.ndarray  # [3, V + n_buckets], log-weights for QUERY, NAME, BODY
    query_out: np.ndarray  # [d, d]
    code_out: np.ndarray  # [d, d]
    body_scale: float
    meta: dict
    reranker: Reranker | None = None
    """The second stage trained with this encoder (`reranker.py`); None: fused order only."""

    @cached_property
    def digest(self) -> str:
        """Content digest of the weights and vocabulary: an index reuses vectors only from the
        same encoder."""
        digest = hashlib.sha256()
        for data in self.to_files().values():
            digest.update(data)
        return digest.hexdigest()

    @property
    def feature_dim(self) -> int:
        return self.feature_projection.shape[0]

    def word_vectors(self, words: list[str]) -> np.ndarray:
        """[len(words), d]: each word's learned row plus its projected random features."""
        rows = word_rows(words, self.vocabulary, self.n_buckets)
        return self.table[rows] + random_features(words, self.feature_dim) @ self.feature_projection

    def _pool(self, vectors: np.ndarray, rows: np.ndarray, bag: int) -> np.ndarray:
        """Weighted mean of word vectors by the bag's learned weights; zeros for no words."""
        if not len(rows):
            return np.zeros(self.table.shape[1], dtype=np.float32)
        logits = self.pool_weights[bag, rows]
        weights = np.exp(logits - logits.max())
        return (weights @ vectors) / weights.sum()

    def encode_query(self, text: str) -> np.ndarray:
        words = search_words(text)
        rows = word_rows(words, self.vocabulary, self.n_buckets)
        return _unit(self._pool(self.word_vectors(words), rows, QUERY) @ self.query_out)

    def encode_symbols(self, symbols: list[Symbol]) -> np.ndarray:
        """[n, d] float32 unit vectors, one per symbol. Each distinct word's vector is
        computed once: a tree repeats its words, and random features are the slow part."""
        bags = [symbol_bags(symbol) for symbol in symbols]
        distinct = list(dict.fromkeys(word for name, body in bags for word in name + body))
        position = {word: index for index, word in enumerate(distinct)}
        vectors = self.word_vectors(distinct)
        rows = word_rows(distinct, self.vocabulary, self.n_buckets)
        pooled = np.zeros((len(symbols), self.table.shape[1]), dtype=np.float32)
        for index, (name, body) in enumerate(bags):
            name_at = np.array([position[word] for word in name], dtype=np.int64)
            body_at = np.array([position[word] for word in body], dtype=np.int64)
            pooled[index] = self._pool(vectors[name_at], rows[name_at], NAME) + self.body_scale * self._pool(
                vectors[body_at], rows[body_at], BODY
            )
        return _unit(pooled @ self.code_out)

    def to_files(self) -> dict[str, bytes]:
        """`encoder.npz` (float16 arrays, no pickle) and `encoder.json` (vocabulary and
        settings): what `save` writes to a directory and a code index stores in its own file.
        float16 halves the index; rankings are computed in float32 after loading."""
        arrays = {name: getattr(self, name).astype(np.float16) for name in _ARRAYS}  # half the bytes
        settings = {"format": ENCODER_FORMAT, "version": ENCODER_VERSION, "n_buckets": self.n_buckets,
                    "body_scale": self.body_scale, "meta": self.meta, "vocabulary": list(self.vocabulary)}
        files = to_stored("encoder", arrays, settings)
        return files | (self.reranker.to_files() if self.reranker is not None else {})

    @classmethod
    def from_files(cls, files: dict[str, bytes], where: str) -> CodeEncoder:
        settings, arrays = from_stored(files, "encoder", _ARRAYS, where, "code encoder")
        if settings.get("format") != ENCODER_FORMAT or settings.get("version") != ENCODER_VERSION:
            raise HashHopError(f"{where} holds no version {ENCODER_VERSION} code encoder")
        vocabulary = {word: row for row, word in enumerate(settings["vocabulary"])}
        reranker = Reranker.from_files(files, where) if "reranker.json" in files else None
        return cls(vocabulary=vocabulary, n_buckets=settings["n_buckets"], body_scale=settings["body_scale"],
                   meta=settings["meta"], reranker=reranker, **arrays)

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for name, data in self.to_files().items():
            with atomic_output(directory / name) as file:
                file.write(data)
        if self.reranker is None:  # an earlier run's reranker belongs to an earlier encoder
            for name in RERANKER_FILES:
                (directory / name).unlink(missing_ok=True)

    @classmethod
    def load(cls, directory: Path) -> CodeEncoder:
        directory = Path(directory)
        try:
            files = {name: (directory / name).read_bytes() for name in ("encoder.npz", "encoder.json")}
            files |= {name: (directory / name).read_bytes() for name in RERANKER_FILES if (directory / name).is_file()}
        except OSError as error:
            raise HashHopError(f"{directory} holds no code encoder ({error.strerror}); train one with: hashhop code train") from None
        return cls.from_files(files, str(directory))


_ARRAYS = ("table", "feature_projection", "pool_weights", "query_out", "code_out")


def _unit(vectors: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return (vectors / np.maximum(norm, 1e-12)).astype(np.float32)
