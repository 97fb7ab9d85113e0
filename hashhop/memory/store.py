"""The memory itself: packed binary keys, the tokens they hold, and an index over the keys.

An entry is a key of `code_bits` bits (the signs of the writer's key logits, packed into
uint64 words, bit 0 the most significant bit of word 0), its token's text (ASCII, zero
padded) and the score its write gate adds to reads (float16). Nothing else is kept: 32 + 16
+ 2 bytes for a 256-bit key and a 16-letter hash.

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
together split them most evenly. Hamming distance does not depend on the order; a query is
put in the same order before it is packed.

A query probes its own bucket and the buckets of the prefixes it is least sure of: prefixes
with the query's least confident bits flipped, in order of the summed confidence |logit| of
the flipped bits (query-directed multi-probe LSH, after Lv et al. 2007). The entries of all
probes are the query's `candidates`: `search` ranks them by full Hamming distance (a decoding
read ranks them by its own score: hashhop.memory.decode), `exact_search` ranks every entry,
and recall of the index against it is measured in benchmarks/memory.py.
A longer prefix is one more bit in which a matching key can disagree with its query, so the
probes a read needs grow with the memory (`default_probes`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cache

import numpy as np

from hashhop.errors import HashHopError

WORD_BITS = 64
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


def balanced_bit_order(signs: np.ndarray, prefix_bits: int = MAX_PREFIX_BITS) -> np.ndarray:
    """An order of the key bits whose first `prefix_bits` split the sample signs [N, bits]
    (bool) evenly: greedily, each next bit is the one with the least squared mean (as +-1)
    plus squared correlation with the bits already chosen (ties to the lower bit); the other
    bits follow in their order. Pairwise statistics only: a 65K-entry sample takes ~0.5 s."""
    n_bits = signs.shape[1]
    plus_minus = np.where(signs, 1.0, -1.0).astype(np.float32)
    samples = max(1, len(signs))
    cost = (plus_minus.sum(0) / samples).astype(np.float64) ** 2
    squared_correlation = (plus_minus.T @ plus_minus / samples).astype(np.float64) ** 2
    chosen: list[int] = []
    for _ in range(min(prefix_bits, n_bits)):
        best = int(np.argmin(cost))
        chosen.append(best)
        cost = cost + squared_correlation[best]
        cost[best] = np.inf
    return np.array(chosen + [bit for bit in range(n_bits) if bit not in chosen], dtype=np.int64)


def pack_tokens(texts: list[str], width: int) -> np.ndarray:
    """Token texts -> uint8 [N, width], zero padded (texts never hold a NUL)."""
    out = np.zeros((len(texts), width), dtype=np.uint8)
    for row, text in enumerate(texts):
        raw = text.encode("ascii")
        out[row, : len(raw)] = np.frombuffer(raw, dtype=np.uint8)
    return out


def hamming(codes: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Hamming distances [N] between packed codes [N, W] and one packed query [W]. (Summing the
    words' counts column by column is 3x faster than numpy's sum over the short last axis.)"""
    counts = np.bitwise_count(codes ^ query)
    total = counts[:, 0].astype(np.int64)
    for word in range(1, counts.shape[1]):
        total += counts[:, word]
    return total


@cache
def _subsets(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Every subset of n items as a 0/1 row [2^n, n], as float64 and as uint64 (computed once per n)."""
    subsets = (np.arange(1 << n)[:, None] >> np.arange(n)) & 1
    return subsets.astype(np.float64), subsets.astype(np.uint64)


def _flip_masks(confidence: np.ndarray, n_masks: int) -> np.ndarray:
    """The n_masks cheapest prefix flips (uint64 masks over `len(confidence)` prefix bits, the
    first bit most significant), cheapest first, starting with no flip. Cost of a flip is the
    summed confidence of its bits; the cheapest sets are drawn from the log2(n_masks) + 1 least
    confident bits (a set with a more confident bit costs more than most of those)."""
    n_bits = len(confidence)
    candidates = np.argsort(confidence, kind="stable")[: min(n_bits, max(1, n_masks.bit_length()))]
    subsets_float, subsets_int = _subsets(len(candidates))
    costs = subsets_float @ confidence[candidates].astype(np.float64)
    bit_values = np.left_shift(np.uint64(1), (n_bits - 1 - candidates).astype(np.uint64))
    return (subsets_int @ bit_values)[np.argsort(costs, kind="stable")[:n_masks]]


@dataclass
class MemoryStore:
    """Entries sorted by their first key word; `search` probes buckets of the key prefix."""

    codes: np.ndarray
    """uint64 [N, code_bits // 64], sorted by column 0."""
    tokens: np.ndarray
    """uint8 [N, width]: each entry's token text, zero padded."""
    bias: np.ndarray
    """float16 [N]: what each entry adds to a read's score (its write gate's log sigmoid)."""
    bit_order: np.ndarray
    """int64 [code_bits]: stored bit j is the key's bit bit_order[j] (`balanced_bit_order`)."""
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

    def token_texts(self, indices: np.ndarray) -> list[str]:
        return [row.tobytes().rstrip(b"\0").decode("ascii") for row in self.tokens[indices]]

    def pack_query(self, query_logits: np.ndarray) -> np.ndarray:
        """Query logits [code_bits] -> its packed signs in this memory's bit order [W]."""
        return pack_codes(np.asarray(query_logits)[self.bit_order][None])[0]

    def exact_search(self, query_logits: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k entries nearest the query's signs over the whole memory: (indices, distances),
        nearest first, ties in index order."""
        return nearest(np.arange(len(self)), hamming(self.codes, self.pack_query(query_logits)), k)

    def candidates(self, query_logits: np.ndarray, probes: int | None = None) -> np.ndarray:
        """Indices of the entries in the `probes` buckets (default: `default_probes`) whose
        prefixes the query is likeliest to share, bucket after bucket; every entry while the
        memory is too small for a prefix."""
        bits = self.prefix_bits
        if bits == 0:
            return np.arange(len(self))
        prefix_logits = np.asarray(query_logits, dtype=np.float32)[self.bit_order[:bits]]
        prefix = np.bitwise_or.reduce((prefix_logits >= 0).astype(np.uint64) << np.arange(bits - 1, -1, -1, dtype=np.uint64))
        prefixes = prefix ^ _flip_masks(np.abs(prefix_logits), probes or self.default_probes)
        starts = self.bucket_starts[prefixes].astype(np.int64)
        sizes = self.bucket_starts[prefixes + np.uint64(1)] - starts
        return np.repeat(starts - np.cumsum(sizes) + sizes, sizes) + np.arange(int(sizes.sum()))

    def search(self, query_logits: np.ndarray, k: int, probes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest among the `candidates`: (indices, distances) as exact_search."""
        candidates = self.candidates(query_logits, probes)
        distances = hamming(np.take(self.codes, candidates, axis=0), self.pack_query(query_logits))
        return nearest(candidates, distances, k)


def nearest(indices: np.ndarray, distances: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k smallest distances, ties broken by index: (indices, distances), smallest first (a
    partition first: N may be millions)."""
    if len(distances) > k:
        keep = distances <= np.partition(distances, k - 1)[k - 1]
        indices, distances = indices[keep], distances[keep]
    order = np.lexsort((indices, distances))[:k]
    return indices[order], distances[order]
