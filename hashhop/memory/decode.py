"""Greedy decoding over an ingested Memory: each token costs a window pass and a few index probes.

The question (what follows the ingested context: the completion header and the open answer
line) is written into a small overlay the same way the context was, so a saved memory
answers exactly as if the whole prompt had been ingested at once. Each decoded token runs
the local decoder over the last `window` tokens, makes `n_reads` lookups (index probes of
the memory and the whole overlay, the `top_k` best by the read's score), and points among the
fixed vocabulary, the window's identifiers and what the reads retrieved. Nothing in it grows
with the context but the index's probes past a 10M-token memory (as the square root of its
entries, for recall: `MemoryStore.default_probes`); benchmarks/memory.py measures it. The step
runs in numpy (`hashhop.memory.numpy_step`, held equal to the torch model by the tests):
in torch its hundred small operations cost more in dispatch than in arithmetic. Each lookup
is one compiled loop (`hashhop.memory.probe`), whose query the step computes already in the
memory's bit order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from threadpoolctl import ThreadpoolController

from hashhop.errors import HashHopError
from hashhop.memory.ingest import (
    Memory,
    StreamingWriter,
    check_tokenizer,
    model_digest,
)
from hashhop.memory.model import MemoryModel
from hashhop.memory.numpy_step import NumpyStep
from hashhop.memory.store import MemoryStore
from hashhop.task import QUOTE

RECALL_MATCH = 0.5
"""Agreement from which an exact nearest entry counts as a match for recall (random 256-bit
codes agree at 0 +- 0.06; the best of millions reaches ~0.35)."""
EMBEDDING_CACHE_SIZE = 1 << 16
"""Token embeddings a decoder keeps (32 MB at d = 128): a few thousand decoded tokens' worth."""
STOP = QUOTE
"""Decoding ends once the new text contains this: the quote that closes an answer."""


@dataclass
class Decoded:
    text: str
    n_tokens: int


class MemoryDecoder:
    """Answers questions about one Memory with one MemoryModel (the one that wrote it).

    `probes`: index buckets a read probes (default: the memory's `default_probes`); `exact`
    ranks every entry instead (slow: for measuring the index)."""

    def __init__(
        self, model: MemoryModel, tokenizer: object, memory: Memory, probes: int | None = None,
        exact: bool = False, track_recall: bool = False,
    ):
        if memory.model_digest != model_digest(model):
            raise HashHopError("this memory was written by another model: ingest the context again with this one")
        self.model, self.tokenizer, self.memory = model.eval(), check_tokenizer(tokenizer), memory
        store = memory.store
        self.numpy_step = NumpyStep(self.model, query_bits=store.bit_order[: store.key_bits])
        self._blas = ThreadpoolController()
        self.probes = 1 << store.prefix_bits if exact else probes
        self.track_recall = track_recall
        self.lookups = self.recall_hits = 0
        """With track_recall: lookups that had a real match, and how many found it."""
        self._embeddings: dict[str, np.ndarray] = {}

    def _note_recall(self, query: np.ndarray, found: np.ndarray) -> None:
        """Counts the lookups whose exact nearest entry is a real match (agreement >=
        RECALL_MATCH), and those among them where the index found that entry's token. A read
        with nothing to find (the second read of a 1-hop answer) has many near-ties among
        random codes, and which of them the index returns does not matter."""
        nearest, distance = self.memory.store.exact_search(query, 1)
        if len(nearest) == 0 or 1 - 2 * distance[0] / self.memory.store.key_bits < RECALL_MATCH:
            return
        self.lookups += 1
        texts = self.memory.store.token_texts
        self.recall_hits += texts(nearest)[0] in texts(found)  # the same token may be kept twice

    def _rank(self, query: np.ndarray, overlay: MemoryStore) -> tuple[list[str], np.ndarray, np.ndarray]:
        """What a read sees: the `top_k` entries by read score (read_scale * agreement + gate
        score) among the memory's index candidates (every entry with `exact`) and the whole
        overlay, as (texts, agreements, score biases). Ranking by the read's own score keeps the
        entries the training softmax weighs most. `query` is in the memory's bit order (the
        overlay shares it)."""
        store, config = self.memory.store, self.model.config
        best, distance, bias = store.search(query, config.top_k, self.probes, config.read_scale, overlay)
        from_main = best < len(store)
        if self.track_recall:
            self._note_recall(query, best[from_main])
        agreement = (1 - 2 * distance / store.key_bits).astype(np.float32)
        if from_main.all():  # most reads: one unpacking call, not two
            return store.token_texts(best), agreement, bias
        texts = iter(store.token_texts(best[from_main]))
        overlay_texts = iter(overlay.token_texts(best[~from_main] - len(store)))
        return [next(texts) if is_main else next(overlay_texts) for is_main in from_main], agreement, bias

    def _embed(self, texts: list[str]) -> np.ndarray:
        """Token texts -> their embeddings float32 [len(texts), d], each computed once while cached.

        A token's embedding depends on its text alone, and a decoded token meets the same
        texts again and again (the window slides by one; the head scores the window's and the
        reads' identifiers): the cache saves their features and projections. It is bounded:
        past EMBEDDING_CACHE_SIZE texts it starts again."""
        missing = list(dict.fromkeys(text for text in texts if text not in self._embeddings))
        if missing:
            if len(self._embeddings) + len(missing) > EMBEDDING_CACHE_SIZE:
                self._embeddings.clear()
            self._embeddings.update(zip(missing, self.numpy_step.embed(self.tokenizer, missing)))
        if not texts:
            return np.zeros((0, self.model.config.d_model), np.float32)
        return np.stack([self._embeddings[text] for text in texts])

    def step(self, window: list[str], overlay: MemoryStore) -> str:
        """The next token's text after `window` (the last tokens, oldest first)."""
        x, recent_tokens = self.numpy_step.local(self._embed(window))
        retrieved: list[str] = []

        def lookup(query: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            texts, agreement, bias = self._rank(query, overlay)
            retrieved.extend(texts)
            return agreement, bias, self._embed(texts)

        hidden = self.numpy_step.read(x, recent_tokens, lookup)
        identifiers = self.tokenizer.encode_pieces(window + retrieved).identifiers
        logits = self.numpy_step.logits(hidden, self._embed(identifiers))
        return self.tokenizer.decode([int(logits.argmax())], identifiers)

    def _overlay(self, pieces: list[str]) -> MemoryStore:
        """The entries `pieces` write after the memory's context (small: searched exactly)."""
        writer = StreamingWriter(self.model, self.tokenizer, self.memory.recent, self.memory.store.bit_order)
        writer.feed(pieces)
        return writer.finish(self.memory.model_digest).store

    def continue_text(self, question: str, max_new_tokens: int) -> Decoded:
        """What the model writes after the memory's context followed by `question` (at least
        one token: the position the first answer token is predicted from), up to and
        including STOP (or max_new_tokens tokens). A position reads the entries written
        before it: the question's last token is readable from the second step on."""
        question_pieces = self.tokenizer.pieces(question)
        if not question_pieces:
            raise HashHopError("the question must hold at least one token")
        overlays = [self._overlay(question_pieces[:-1]), self._overlay(question_pieces)]
        window = self.memory.recent + question_pieces
        written: list[str] = []
        # A step's matrices are a few hundred numbers wide: BLAS threads only add their
        # synchronisation (measured: 2 OpenBLAS threads made the local decoder 1.0 ms, not 0.4).
        with self._blas.limit(limits=1, user_api="blas"):
            for step in range(max_new_tokens):
                piece = self.step(window[-self.model.config.window :], overlays[min(step, 1)])
                written.append(piece)
                window.append(piece)
                if STOP in piece:
                    break
        text = "".join(written)
        return Decoded(text[: text.index(STOP) + 1] if STOP in text else text, len(written))

