"""Search a code index: each channel proposes scored candidates, a weighted sum ranks them,
and for a description a learned reranker reorders the top RERANK_DEPTH.

Channels: `names` (exact and fuzzy names), `bm25` (words of names, signatures and bodies)
and, when the index carries a trained encoder, `encoder` (learned query and code vectors).
The weights are named constants so an ablation can drop a channel and say what it was worth;
`rerank=False` drops the reranker (`reranker.py`), which an encoder may carry.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from hashhop.code.channels import BM25Channel, EncoderChannel, NameChannel, prominence
from hashhop.code.index import CodeIndex
from hashhop.code.reranker import RERANK_DEPTH, candidate_features, query_evidence
from hashhop.code.symbols import Symbol
from hashhop.errors import HashHopError

CHANNEL_WEIGHTS = {"names": 1.0, "bm25": 0.5, "encoder": 0.5}
"""Fusion weights. A name match decides where there is one; words rank the rest."""
PROMINENCE_WEIGHT = 0.1
"""How much `prominence` (public, shallow) moves a symbol among nearly equally scored ones.
On the dev corpus's docstring sentences 0.05 / 0.1 / 0.2 / 0.3 gave Acc@1 32.9 / 33.3 /
33.0 / 33.2% (benchmarks/code_fusion_dev.py's queries)."""
DESCRIPTION_ONLY = frozenset({"encoder"})
"""Channels asked only when the query has several words: one word is a name, and the
encoder, trained on descriptions, only reorders names at random (measured: typo Acc@1
95.5% without it, 91.1% with it on the benchmark's one-word typo queries)."""
CANDIDATES_PER_CHANNEL = 100
"""Each channel proposes this many; fusion ranks their union."""
MAX_QUERY_CHARS = 2000


@dataclass(frozen=True)
class Hit:
    symbol: Symbol
    score: float
    """The fused channel scores plus the prior; for a reranked description, the reranker's
    probability that this is the symbol asked for (0 below the reranked top)."""
    position: int
    """Index into `CodeIndex.symbols`."""

    def as_dict(self) -> dict:
        symbol = self.symbol
        return {
            "name": symbol.full_name,
            "kind": symbol.kind,
            "path": symbol.path,
            "line": symbol.line,
            "signature": symbol.signature,
            "summary": symbol.docstring.strip().split("\n", 1)[0],
            "score": round(self.score, 4),
        }


class CodeSearcher:
    """Ranked search over one index; build once, then `search` as often as needed."""

    def __init__(self, index: CodeIndex, channels: tuple[str, ...] | None = None, rerank: bool = True):
        """`channels` picks a subset (an ablation); by default every channel the index
        supports: `encoder` needs an index built with one (`hashhop code index --encoder`).
        `rerank` reorders a description's top candidates by the encoder's reranker, where
        the encoder has one and the encoder and BM25 channels are both on."""
        available = {"names": NameChannel, "bm25": BM25Channel}
        if index.search_state:
            available["bm25"] = lambda symbols: BM25Channel.from_state(symbols, index.search_state)
        if index.encoder is not None:
            available["encoder"] = lambda symbols: EncoderChannel(index.encoder, index.vectors)
        chosen = channels if channels is not None else tuple(available)
        unknown = [name for name in chosen if name not in available]
        if unknown == ["encoder"]:
            raise HashHopError("this index has no encoder: build it with `hashhop code index --encoder DIR`")
        if unknown or not chosen:
            raise HashHopError(f"unknown search channel {unknown[0] if unknown else '(none)'!r}; choose from: {', '.join(available)}")
        self.symbols = index.symbols
        self.channels = {name: available[name](self.symbols) for name in chosen}
        self.priors = np.array([PROMINENCE_WEIGHT * prominence(symbol) for symbol in self.symbols], dtype=np.float32)
        can_rerank = rerank and index.encoder is not None and {"bm25", "encoder"} <= set(chosen)
        self.reranker = index.encoder.reranker if can_rerank else None

    def search(self, query: str, k: int = 10) -> list[Hit]:
        """The `k` best symbols for `query`: a name (exact, misspelled, any case or
        separators, optionally dotted) or words describing what the code does."""
        query = query.strip()
        if not query:
            raise HashHopError("the query is empty")
        if len(query) > MAX_QUERY_CHARS:
            raise HashHopError(f"the query is {len(query):,} characters; at most {MAX_QUERY_CHARS:,}")
        if k < 1:
            raise HashHopError(f"k must be at least 1, got {k}")
        fused: dict[int, float] = {}
        one_word = len(query.split()) == 1
        for name, channel in self.channels.items():
            if one_word and name in DESCRIPTION_ONLY:
                continue
            for position, score in channel.scores(query, CANDIDATES_PER_CHANNEL).items():
                fused[position] = fused.get(position, 0.0) + CHANNEL_WEIGHTS[name] * score
        ranked = sorted(fused, key=lambda position: fused[position] + self.priors[position], reverse=True)
        hits = [Hit(self.symbols[p], float(fused[p] + self.priors[p]), p) for p in ranked[: max(k, RERANK_DEPTH)]]
        if self.reranker is not None and not one_word and hits:
            hits = self._reranked(query, hits)
        return hits[:k]

    def rerank_features(self, query: str, hits: list[Hit]) -> np.ndarray:
        """The reranker's features of the first stage's top hits, in their order."""
        positions = [hit.position for hit in hits]
        scores = {name: self.channels[name].scores_of(query, positions) for name in ("bm25", "encoder")}
        first_stage = np.array([hit.score for hit in hits], dtype=np.float32)
        evidence = query_evidence(query, self.channels["bm25"])
        return candidate_features(evidence, self.symbols, positions, scores, first_stage, self.priors[positions])

    def _reranked(self, query: str, hits: list[Hit]) -> list[Hit]:
        """The top RERANK_DEPTH hits reordered, scored by the reranker's probability; the rest
        follow with score 0."""
        head = hits[:RERANK_DEPTH]
        probabilities = self.reranker.probabilities(self.rerank_features(query, head))
        order = np.argsort(-probabilities, kind="stable")
        reranked = [Hit(head[i].symbol, float(probabilities[i]), head[i].position) for i in order]
        return reranked + [Hit(hit.symbol, 0.0, hit.position) for hit in hits[RERANK_DEPTH:]]


def with_search_state(index: CodeIndex) -> CodeIndex:
    """`index` carrying its built BM25 retriever, so that loading it is enough to search."""
    return replace(index, search_state=BM25Channel(index.symbols).state())
