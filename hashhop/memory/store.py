"""The memory itself: packed binary keys, the tokens they hold, and an index over the keys.

An entry is a key of `key_bits` bits (the signs of the writer's key logits, packed into
uint64 words, bit 0 the most significant bit of word 0), its token's text (6 bits a
character: hashhop.memory.texts) and the score its write gate adds to reads (float16).
Nothing else is kept: 24 + 12 + 2 bytes for 192 key bits and a 16-letter hash.

A memory keeps the first KEPT_KEY_BITS of the model's code_bits, in the bit order below:
agreement over 192 of 256 independent-enough bits estimates the same agreement, and a
quarter of the bytes go (RESULTS.md: fifth session on saved memories, sixth session every
cell of the accuracy table).

Entries are stored sorted by their first word, so the entries whose first `prefix_bits` bits
equal a given prefix form one contiguous bucket; where each bucket starts is a table of
2^prefix_bits + 1 offsets (uint32: about 2 bytes an entry, rebuilt in one pass when a memory
is loaded), so a probe is two array reads instead of two binary searches. `prefix_bits`
grows with the memory (about ENTRIES_PER_BUCKET entries a bucket), so a probe reads a
constant number of entries whatever the context length.

That holds only if the prefix splits the entries evenly, and learned key bits are not
independent: in the first 16 bits of a trained model's keys, a 1M-token memory filled 11K
of 65K buckets and a probe met 535 entries on average. So the bits are stored in an order
chosen from the memory's first entries (`balanced_bit_order`): the prefix is the bits that
together split them most evenly, and the bits dropped past KEPT_KEY_BITS are the ones most
correlated with those kept. Hamming distance does not depend on the order; a query is given
in the same order (`order_query`, or a decoder computes it in that order).

A query probes its own bucket and the buckets of the prefixes it is least sure of: prefixes
with the query's least confident bits flipped, in order of the summed confidence |logit| of
the flipped bits (query-directed multi-probe LSH, after Lv et al. 2007). `search` scores the
entries of those buckets by Hamming distance, or as a read scores them (hashhop.memory.probe,
compiled); `exact_search` ranks every entry, and recall of the index against it is measured in
benchmarks/memory.py. A longer prefix is one more bit in which a matching key can disagree
with its query, so the probes a read needs grow with the memory (`default_probes`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from hashhop.errors import HashHopError
from hashhop.memory.probe import best_entries
from hashhop.memory.texts import unpack_texts

WORD_BITS = 64
KEPT_KEY_BITS = 192
"""Key bits a memory keeps. Measured on saved memories with the shipped model (same questions,
RESULTS.md fifth session): 256 / 192 / 128 bits answered 99 / 99 / - of 100 3-hop questions at
1M tokens, 98 / 98 / 97 2-hop at 10M and 100 / 99 / 98 2-hop at 100M."""
ENTRIES_PER_BUCKET = 2
BASE_PROBES = 256
"""Buckets a read probes up to BASE_PREFIX_BITS of prefix. Measured on 200 3-hop questions at
1M tokens with the second session's model (RESULTS.md): 188 right with 128, 191-194 with 256,
197 with 1024; a search of 160K random keys costs ~0.1, 0.2 and 0.7 ms."""
BASE_PREFIX_BITS = 19
"""Past this prefix (a 10M-token 2-hop prompt's 1.2M entries), probes double every two bits.
Measured with the shipped model on the 300 reads of 100 answers that have a match
(RESULTS.md, fifth session), the index found the exact nearest entry's token in 299 at 1M
tokens of 3-hop prompt (16 bits) and 298 at 10M of 2-hop (19 bits) with 256 probes, and at
100M of 2-hop (23 bits) in 292 with 256, 298 with 512, 300 with 1024."""
MAX_PREFIX_BITS = 32
"""The bucket table has 2^prefix_bits + 1 offsets: 32 bits serve 8.6G entries (a 32 GB table of int64 offsets)."""


def pack_codes(key_logits: np.ndarray) -> np.ndarray:
    """Key logits [N, bits] -> packed signs uint64 [N, bits // 64] (logit >= 0 is bit 1)."""
    return pack_signs(np.asarray(key_logits) >= 0)


def pack_signs(signs: np.ndarray) -> np.ndarray:
    """Bits [N, bits] (bool) -> uint64 [N, bits // 64], bit 0 the most significant of word 0."""
    packed = np.packbits(signs, axis=1, bitorder="big")
    return np.ascontiguousarray(packed).view(">u8").astype(np.uint64)


def balanced_bit_order(signs: np.ndarray, prefix_bits: int | None = None) -> np.ndarray:
    """An order of the key bits whose first `prefix_bits` (default: all) split the sample
    signs [N, bits] (bool) evenly: greedily, each next bit is the one with the least squared
    mean (as +-1) plus squared correlation with the bits already chosen (ties to the lower
    bit); the other bits follow in their order. Pairwise statistics only: a 65K-entry sample
    takes ~0.5 s."""
    n_bits = signs.shape[1]
    plus_minus = np.where(signs, 1.0, -1.0).astype(np.float32)
    samples = max(1, len(signs))
    cost = (plus_minus.sum(0) / samples).astype(np.float64) ** 2
    squared_correlation = (plus_minus.T @ plus_minus / samples).astype(np.float64) ** 2
    chosen: list[int] = []
    for _ in range(n_bits if prefix_bits is None else min(prefix_bits, n_bits)):
        best = int(np.argmin(cost))
        chosen.append(best)
        cost = cost + squared_correlation[best]
        cost[best] = np.inf
    return np.array(chosen + [bit for bit in range(n_bits) if bit not in chosen], dtype=np.int64)


def hamming(codes: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Hamming distances [N] between packed codes [N, W] and one packed query [W]. (Summing the
    words' counts column by column is 3x faster than numpy's sum over the short last axis.)"""
    counts = np.bitwise_count(codes ^ query)
    total = counts[:, 0].astype(np.int64)
    for word in range(1, counts.shape[1]):
        total += counts[:, word]
    return total


@dataclass
class MemoryStore:
    """Entries sorted by their first key word; `search` probes buckets of the key prefix."""

    codes: np.ndarray
    """uint64 [N, key_bits // 64], sorted by column 0."""
    tokens: np.ndarray
    """uint8 [N, width]: each entry's token text (`hashhop.memory.texts.pack_texts`)."""
    bias: np.ndarray
    """float16 [N]: what each entry adds to a read's score (its write gate's log sigmoid)."""
    bit_order: np.ndarray
    """int64 [code_bits]: stored bit j is the key's bit bit_order[j] (`balanced_bit_order`);
    the first key_bits are kept."""
    bucket_starts: np.ndarray = field(init=False, repr=False)
    """[2^prefix_bits + 1] (uint32 below 2^32 entries): bucket p holds entries bucket_starts[p]
    .. bucket_starts[p + 1]."""

    def __post_init__(self) -> None:
        shift = np.uint64(WORD_BITS - self.prefix_bits)
        counts = np.bincount((self.codes[:, 0] >> shift).astype(np.int64), minlength=1 << self.prefix_bits) if len(self) else [0]
        offset_type = np.uint32 if len(self) < 2**32 else np.int64
        self.bucket_starts = np.concatenate([[0], np.cumsum(counts)]).astype(offset_type)

    @classmethod
    def build(cls, codes: np.ndarray, tokens: np.ndarray, bias: np.ndarray, bit_order: np.ndarray) -> MemoryStore:
        """Sort entries (codes already in `bit_order`) into index order (a stable sort: equal
        prefixes keep write order)."""
        if not len(codes) == len(tokens) == len(bias):
            raise HashHopError(f"{len(codes)} keys, {len(tokens)} tokens and {len(bias)} scores")
        order = np.argsort(codes[:, 0], kind="stable")
        return cls(*(np.ascontiguousarray(part[order]) for part in (codes, tokens, bias)), bit_order)

    def __len__(self) -> int:
        return len(self.codes)

    @property
    def prefix_bits(self) -> int:
        """Bits of the bucket prefix: about ENTRIES_PER_BUCKET entries a bucket."""
        if len(self) <= ENTRIES_PER_BUCKET:
            return 0
        return min(MAX_PREFIX_BITS, round(math.log2(len(self) / ENTRIES_PER_BUCKET)))

    @property
    def nbytes(self) -> int:
        return self.codes.nbytes + self.tokens.nbytes + self.bias.nbytes + self.bucket_starts.nbytes

    @property
    def default_probes(self) -> int:
        """BASE_PROBES, doubled for every two prefix bits past BASE_PREFIX_BITS (512 at 100M tokens
        of 1-hop prompt, 1024 of 2-hop)."""
        return BASE_PROBES << max(0, self.prefix_bits - BASE_PREFIX_BITS) // 2

    @property
    def key_bits(self) -> int:
        return self.codes.shape[1] * WORD_BITS

    def token_texts(self, indices: np.ndarray) -> list[str]:
        return unpack_texts(self.tokens[indices])

    def order_query(self, query_logits: np.ndarray) -> np.ndarray:
        """Query logits [code_bits] in the model's order -> the kept bits' logits in this
        memory's order [key_bits] (float32), as `search` takes them."""
        return np.ascontiguousarray(np.asarray(query_logits, dtype=np.float32)[self.bit_order[: self.key_bits]])

    def exact_search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k entries nearest an ordered query's signs over the whole memory: (indices,
        distances), nearest first, ties in index order. numpy, independent of `search`."""
        return nearest(np.arange(len(self)), hamming(self.codes, pack_codes(query[None])[0]), k)

    def search(
        self, query: np.ndarray, k: int, probes: int | None = None, read_scale: float | None = None,
        overlay: MemoryStore | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The k best entries among those of the `probes` buckets (default: `default_probes`;
        every entry from 2^prefix_bits) whose prefixes an ordered query [key_bits] is likeliest
        to share, and every entry of `overlay` (indexed after this memory's): (indices, Hamming
        distances, biases). Ranked by distance, or with `read_scale` by a read's score
        (read_scale * agreement + bias); ties in index order."""
        extra_codes, extra_bias = (self.codes[:0], self.bias[:0]) if overlay is None else (overlay.codes, overlay.bias)
        if extra_codes.shape[1] != self.codes.shape[1]:
            raise HashHopError(f"an overlay of {overlay.key_bits}-bit keys cannot join a memory of {self.key_bits}-bit keys")
        return best_entries(self.codes, self.bias.view(np.uint16), self.bucket_starts, self.prefix_bits,
                            np.ascontiguousarray(query, dtype=np.float32), probes or self.default_probes,
                            1.0 if read_scale is None else read_scale, read_scale is not None,
                            extra_codes, extra_bias.view(np.uint16), k)


def nearest(indices: np.ndarray, distances: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k smallest distances, ties broken by index: (indices, distances), smallest first (a
    partition first: N may be millions)."""
    if len(distances) > k:
        keep = distances <= np.partition(distances, k - 1)[k - 1]
        indices, distances = indices[keep], distances[keep]
    order = np.lexsort((indices, distances))[:k]
    return indices[order], distances[order]

