"""The second stage of search by description: a small learned scorer that reorders the fused
top candidates by what a weighted sum of channel scores cannot see.

The first stage adds BM25's and the encoder's scores. Whether *all* of a candidate's own
name words occur in the query, how much of the query (weighted by rarity) the candidate
holds at all, its kind and length: such evidence combines with the channel scores
non-linearly, so the reranker is a one-hidden-layer network over `FEATURES`, trained
listwise (softmax over each query's candidates) by `reranker_training.py` on packages the
encoder never saw, so that its encoder scores there look like scores on new code. Inference
is numpy: ~RERANK_DEPTH x len(FEATURES) numbers per query.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from hashhop.code.stored_arrays import from_stored, to_stored
from hashhop.code.symbols import Symbol
from hashhop.code.words import part_words, search_words
from hashhop.errors import HashHopError

if TYPE_CHECKING:  # channels imports the encoder, which carries a reranker
    from hashhop.code.channels import BM25Channel

RERANK_DEPTH = 50
"""Candidates the reranker reorders; the rest keep the first stage's order below them.
On the dev corpus the first stage holds the described symbol in its top 50 for 82% of
docstring sentences, and at rank 1 for 32%."""

FEATURES = (
    "first_stage", "bm25", "encoder", "prominence", "log_rank",
    "own_name_coverage", "own_name_covered", "name_coverage",
    "query_coverage", "query_idf_coverage", "query_idf_in_name",
    "log_lines", "function", "method", "class", "private", "dunder",
)
"""One row per candidate. Coverages: the share of the candidate's own name's parts (its last
name part: `read_lines` -> read, line) and of its qualified name's parts found in the query;
the share of the query's words the candidate's BM25 document holds, plain and weighted by
IDF; the IDF share found in its name. `function`, `method`, `class`: its kind, one-hot."""

RERANKER_FORMAT = "hashhop-code-reranker"
RERANKER_FILES = ("reranker.npz", "reranker.json")
"""What `to_files` writes (`stored_arrays.to_stored`)."""


@dataclass(frozen=True)
class QueryEvidence:
    """What every candidate's features read from the query: its distinct words, each
    word's IDF, and the BM25 documents holding it (sorted positions)."""

    words: tuple[str, ...]
    idf: np.ndarray
    documents: tuple[np.ndarray, ...]


def query_evidence(query: str, bm25: BM25Channel) -> QueryEvidence:
    words = tuple(dict.fromkeys(search_words(query)))
    postings = bm25.postings(words)
    empty = np.zeros(0, dtype=np.int64)
    documents = tuple(postings.get(word, empty) for word in words)
    idf = np.array([math.log((bm25.n_documents + 1) / (len(found) + 1)) for found in documents], dtype=np.float32)
    return QueryEvidence(words, idf, documents)


def candidate_features(
    evidence: QueryEvidence,
    symbols: list[Symbol],
    candidates: list[int],
    channel_scores: dict[str, np.ndarray],
    first_stage: np.ndarray,
    priors: np.ndarray,
) -> np.ndarray:
    """[len(candidates), len(FEATURES)] float32 for symbol positions `candidates`, in the
    first stage's order. `channel_scores` holds each candidate's `bm25` and `encoder`
    score; `first_stage` (its fused score) and `priors` are per candidate too."""
    n = len(candidates)
    positions = np.asarray(candidates, dtype=np.int64)
    query_words = set(evidence.words)
    holds = np.zeros((n, len(evidence.words)), dtype=np.float32)  # does candidate i's document hold query word j?
    for column, found in enumerate(evidence.documents):  # sorted: a binary search per candidate
        at = np.minimum(np.searchsorted(found, positions), max(len(found) - 1, 0))
        holds[:, column] = (found[at] == positions) if len(found) else 0.0
    idf_total = max(float(evidence.idf.sum()), 1e-6)
    columns = {name: np.zeros(n, dtype=np.float32) for name in FEATURES}
    columns |= {"first_stage": first_stage, "bm25": channel_scores["bm25"], "encoder": channel_scores["encoder"], "prominence": priors}
    columns["log_rank"] = np.log1p(np.arange(n)) / math.log(RERANK_DEPTH)
    columns["query_coverage"] = holds.mean(1) if evidence.words else columns["query_coverage"]
    columns["query_idf_coverage"] = holds @ evidence.idf / idf_total
    for row, position in enumerate(candidates):
        symbol = symbols[position]
        own = set(part_words(symbol.name))
        name = set(part_words(symbol.qualname.replace(".<locals>.", ".")))
        columns["own_name_coverage"][row] = len(own & query_words) / max(len(own), 1)
        columns["own_name_covered"][row] = bool(own) and own <= query_words
        columns["name_coverage"][row] = len(name & query_words) / max(len(name), 1)
        columns["query_idf_in_name"][row] = sum(idf for word, idf in zip(evidence.words, evidence.idf) if word in name) / idf_total
        columns["log_lines"][row] = math.log1p(symbol.source.count("\n")) / 8
        columns[symbol.kind][row] = 1.0
        columns["private"][row] = symbol.name.startswith("_")
        columns["dunder"][row] = symbol.name.startswith("__") and symbol.name.endswith("__")
    return np.stack([columns[name] for name in FEATURES], axis=1)


@dataclass
class Reranker:
    """score = w2 . relu(W1 x + b1): a relevance logit per candidate."""

    hidden_weight: np.ndarray  # [len(FEATURES), hidden]
    hidden_bias: np.ndarray  # [hidden]
    out_weight: np.ndarray  # [hidden]
    meta: dict

    def logits(self, features: np.ndarray) -> np.ndarray:
        """[n] relevance logits of n candidates' feature rows."""
        return np.maximum(features @ self.hidden_weight + self.hidden_bias, 0.0) @ self.out_weight

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """Softmax of the logits over one query's candidates: how likely each is the one asked for."""
        logits = self.logits(features)
        weights = np.exp(logits - logits.max())
        return weights / weights.sum()

    def to_files(self) -> dict[str, bytes]:
        settings = {"format": RERANKER_FORMAT, "features": list(FEATURES), "meta": self.meta}
        return to_stored("reranker", {name: getattr(self, name) for name in _ARRAYS}, settings)

    @classmethod
    def from_files(cls, files: dict[str, bytes], where: str) -> Reranker:
        settings, arrays = from_stored(files, "reranker", _ARRAYS, where, "reranker")
        if settings.get("format") != RERANKER_FORMAT or settings.get("features") != list(FEATURES):
            raise HashHopError(f"{where} holds a reranker of other features than this version reads: retrain it (hashhop code train) and index again with the new encoder")
        return cls(meta=settings.get("meta", {}), **arrays)


_ARRAYS = ("hidden_weight", "hidden_bias", "out_weight")
