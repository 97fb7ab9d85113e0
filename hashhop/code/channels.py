"""The channels of code search: names (exact and fuzzy), BM25 over words, learned vectors.

Each channel maps a query to {symbol position: score} for its best candidates; `search.py`
fuses them. Scores are comparable across queries, which a fusion by weighted sum needs: BM25
and the encoder score in [0, 1] (1 = as good as the channel can say); names score 1 for a
match up to case and separators, less per edit, and 2 for the exact spelling, so that no
other channel can lift another name above it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import bm25s
import numpy as np
from rapidfuzz import distance, process

from hashhop.code.encoder import CodeEncoder
from hashhop.code.symbols import Symbol
from hashhop.code.words import name_key, search_words, symbol_words

MAX_NAME_EDITS = 2
"""Typos a name match forgives: two edits (a transposition is one) cover most slips."""
EDIT_PENALTY = 0.2
"""Score lost per edit: a name equal up to case and separators scores 1, one typo 0.8, two 0.6."""
SAME_SPELLING_BONUS = 1.0
"""Added where the name is spelled exactly as asked, so that `Request` finds the class before
the `request` methods: more than BM25 and the prior can add to another name (at 0.3, BM25's
words put `request` methods first, and 5 of the benchmark's 1,000 exact names below rank 1)."""
NAME_WORDS_WEIGHT = 3
"""A symbol's own name words count this many times in its BM25 document: the name says
what a function does more densely than its body."""
NAME_QUERY_MAX_WORDS = 3
"""Longer queries are sentences, not names; the name channel stays out of them."""


def prominence(symbol: Symbol) -> float:
    """A prior in [0, 1) among equally good matches: public before private, shallow modules
    before deep ones, so `os.path.join` comes before `_pyio._helper.join`."""
    private = sum(part.startswith("_") and not part.startswith("__") for part in (symbol.module + "." + symbol.qualname).split("."))
    depth = symbol.module.count(".") + symbol.qualname.count(".")
    return 1.0 / (1.0 + private + 0.25 * depth)


class NameChannel:
    """Query -> symbols whose name is within two edits of it, compared case- and
    separator-blind (`foobar`, `fooBar`, `foo_bar`). A dotted query (`Counter.most_common`)
    matches its last part and rewards symbols whose qualified name holds the rest."""

    def __init__(self, symbols: list[Symbol]):
        keys: dict[str, list[int]] = {}
        for position, symbol in enumerate(symbols):
            keys.setdefault(_compared(symbol.name), []).append(position)
        self.keys = list(keys)
        self.positions = list(keys.values())
        self.symbols = symbols

    def scores(self, query: str, limit: int) -> dict[int, float]:
        words = query.split()
        if not words or len(words) > NAME_QUERY_MAX_WORDS:
            return {}
        *qualifiers, last = "".join(words).replace("(", "").replace(")", "").split(".")
        wanted = _compared(last)
        if not wanted:
            return {}
        matches = process.extract(
            wanted, self.keys, scorer=distance.OSA.distance, score_cutoff=MAX_NAME_EDITS, limit=limit
        )
        found: dict[int, float] = {}
        for _, edits, key_index in matches:
            for position in self.positions[key_index]:
                symbol = self.symbols[position]
                score = 1.0 - EDIT_PENALTY * edits + SAME_SPELLING_BONUS * (symbol.name == last)
                if qualifiers and not _holds(symbol, qualifiers):
                    score -= EDIT_PENALTY
                found[position] = score
        return found


def _compared(name: str) -> str:
    """`name_key`, or the name itself where it is all underscores (gettext's `_`)."""
    return name_key(name) or name


def _holds(symbol: Symbol, qualifiers: list[str]) -> bool:
    """Whether every qualifier of a dotted query names a part of the symbol's full name."""
    parts = {name_key(part) for part in symbol.full_name.split(".")}
    return all(name_key(qualifier) in parts for qualifier in qualifiers if qualifier)


def bm25_document(symbol: Symbol) -> list[str]:
    """A symbol's BM25 words: its name words counted NAME_WORDS_WEIGHT times, then the rest."""
    name, body = symbol_words(symbol)
    return name * NAME_WORDS_WEIGHT + body


class BM25Channel:
    """Query words -> BM25 over each symbol's words, scaled so the best candidate scores 1.

    Building it tokenizes every symbol (seconds on a large tree), so an index file carries
    it (`state` / `from_state`) and a search from the command line does not rebuild it."""

    def __init__(self, symbols: list[Symbol], retriever: bm25s.BM25 | None = None):
        if retriever is None:
            retriever = bm25s.BM25()
            retriever.index([bm25_document(symbol) or [""] for symbol in symbols], show_progress=False)
        self.retriever = retriever
        self.vocabulary = retriever.vocab_dict

    def state(self) -> dict[str, bytes]:
        """The built retriever as files (bm25s's own format: numpy arrays and JSON)."""
        with tempfile.TemporaryDirectory() as directory:
            self.retriever.save(directory, show_progress=False)
            return {path.name: path.read_bytes() for path in Path(directory).iterdir()}

    @classmethod
    def from_state(cls, symbols: list[Symbol], state: dict[str, bytes]) -> BM25Channel:
        with tempfile.TemporaryDirectory() as directory:
            for name, data in state.items():
                (Path(directory) / name).write_bytes(data)
            return cls(symbols, bm25s.BM25.load(directory, show_progress=False))

    @property
    def n_documents(self) -> int:
        return int(self.retriever.scores["num_docs"])

    def postings(self, words: tuple[str, ...]) -> dict[str, np.ndarray]:
        """Each known word -> the sorted positions of the symbols whose document holds it
        (read from the retriever's sparse word-by-document matrix)."""
        matrix = self.retriever.scores
        found = {}
        for word in words:
            column = self.vocabulary.get(word)
            if column is not None and column + 1 < len(matrix["indptr"]):
                found[word] = np.sort(matrix["indices"][matrix["indptr"][column] : matrix["indptr"][column + 1]])
        return found

    def _raw_scores(self, query: str) -> np.ndarray | None:
        """BM25 of every symbol for the query's known words; None if it has none."""
        words = [word for word in search_words(query) if word in self.vocabulary]
        return self.retriever.get_scores(words) if words else None

    def scores(self, query: str, limit: int) -> dict[int, float]:
        raw = self._raw_scores(query)
        if raw is None:
            return {}
        limit = min(limit, len(raw))
        best = np.argpartition(-raw, limit - 1)[:limit]
        top = float(raw[best].max())
        if top <= 0:
            return {}
        return {int(position): float(raw[position]) / top for position in best if raw[position] > 0}

    def scores_of(self, query: str, positions: list[int]) -> np.ndarray:
        """The scores `scores` gives these symbols (0 where it would leave them out)."""
        raw = self._raw_scores(query)
        top = float(raw.max()) if raw is not None else 0.0
        return (raw[positions] / top).astype(np.float32) if top > 0 else np.zeros(len(positions), dtype=np.float32)


class EncoderChannel:
    """Query -> the symbols whose learned code vectors are nearest its learned query vector
    (exact search: a matrix-vector product over every symbol, ~1 ms at 25K symbols).
    Scores are cosines, clipped at 0."""

    def __init__(self, encoder: CodeEncoder, vectors: np.ndarray):
        self.encoder = encoder
        self.vectors = vectors

    def scores(self, query: str, limit: int) -> dict[int, float]:
        similarity = self.vectors @ self.encoder.encode_query(query)
        limit = min(limit, len(similarity))
        best = np.argpartition(-similarity, limit - 1)[:limit]
        return {int(position): float(similarity[position]) for position in best if similarity[position] > 0}

    def scores_of(self, query: str, positions: list[int]) -> np.ndarray:
        """These symbols' cosines with the query, clipped at 0 as in `scores`."""
        return np.maximum(self.vectors[positions] @ self.encoder.encode_query(query), 0.0)
