"""A read's lookup as one compiled loop: choose the buckets, score their entries, keep the best k.

In numpy the same lookup was about twenty calls on arrays of a few hundred numbers (packing
the query, choosing the flips, gathering candidates, Hamming, the top k), ~245 us a read of
which most was the calls' own overhead (benchmarks/RESULTS.md, fifth session). numba compiles
it to one loop over the probed buckets (the compiled code is cached on disk beside this file).

What it computes is `MemoryStore`'s documented search, scored as a read scores:
score = scale * agreement + bias (agreement = 1 - 2 * Hamming / key bits), the best k by
score, ties to the lower index. The second store (a question's overlay, small) is scanned
whole; its entries count after the first store's.
"""

from __future__ import annotations

import math

import numba
import numpy as np

_M1, _M2, _M4 = np.uint64(0x5555555555555555), np.uint64(0x3333333333333333), np.uint64(0x0F0F0F0F0F0F0F0F)
_H01 = np.uint64(0x0101010101010101)


@numba.njit(cache=True, inline="always")
def _popcount(x: np.uint64) -> np.uint64:
    """Bits set in x, counted in parallel within the word (SWAR)."""
    x = x - ((x >> np.uint64(1)) & _M1)
    x = (x & _M2) + ((x >> np.uint64(2)) & _M2)
    x = (x + (x >> np.uint64(4))) & _M4
    return (x * _H01) >> np.uint64(56)


@numba.njit(cache=True, inline="always")
def half_to_float(bits: np.uint16) -> np.float32:
    """A float16 given by its bits, as float32 (exactly; inf and nan are never stored)."""
    exponent, fraction = (bits >> 10) & 0x1F, bits & 0x3FF
    value = math.ldexp(fraction, -24) if exponent == 0 else math.ldexp(1024 + fraction, exponent - 25)
    return np.float32(-value if bits >> 15 else value)


@numba.njit(cache=True)
def _pack_query(query: np.ndarray, words: int) -> np.ndarray:
    """Ordered query logits [>= 64 * words] -> their signs packed as stored keys (logit >= 0 is 1)."""
    packed = np.zeros(words, np.uint64)
    for bit in range(64 * words):
        if query[bit] >= 0:
            packed[bit // 64] |= np.uint64(1) << np.uint64(63 - bit % 64)
    return packed


@numba.njit(cache=True)
def flip_masks(confidence: np.ndarray, n_masks: int) -> np.ndarray:
    """The n_masks cheapest flips of a prefix (uint64 masks over len(confidence) bits, the first
    bit most significant), the empty flip among them. A flip costs the summed confidence of
    its bits; the cheapest are drawn from the bit_length(n_masks) least confident bits (a set
    with a more confident bit costs more than most of those). Which buckets are read matters,
    not their order (a read ranks what it finds by score and index), so the masks are selected,
    not sorted: at the cutoff cost, the lower subsets go first."""
    n_bits = len(confidence)
    n_least = 1
    while n_masks >> n_least:  # bit_length(n_masks)
        n_least += 1
    n_least = min(n_bits, n_least)
    least = np.argsort(confidence)[:n_least]
    costs = np.zeros(1 << n_least)
    masks = np.zeros(1 << n_least, np.uint64)
    for subset in range(1, 1 << n_least):  # each subset is a smaller one plus its lowest bit
        lowest = 0
        while not (subset >> lowest) & 1:
            lowest += 1
        rest = subset ^ (1 << lowest)
        costs[subset] = costs[rest] + confidence[least[lowest]]
        masks[subset] = masks[rest] | (np.uint64(1) << np.uint64(n_bits - 1 - least[lowest]))
    if n_masks >= len(costs):
        return masks
    cutoff = np.partition(costs, n_masks - 1)[n_masks - 1]
    chosen = np.empty(n_masks, np.uint64)
    count = 0
    for subset in range(len(costs)):
        if costs[subset] < cutoff:
            chosen[count] = masks[subset]
            count += 1
    for subset in range(len(costs)):
        if count < n_masks and costs[subset] == cutoff:
            chosen[count] = masks[subset]
            count += 1
    return chosen


@numba.njit(cache=True, inline="always")
def _ranks_before(score, index, other_score, other_index):
    """The read's order: higher score first, then lower index."""
    return score > other_score or (score == other_score and index < other_index)


@numba.njit(cache=True, inline="always")
def _keep(best_index, best_distance, best_score, best_bias, found, index, distance, score, bias):
    """Insert an entry into the best so far (in `_ranks_before` order) if it belongs there;
    returns how many are kept."""
    k = len(best_index)
    if found == k and not _ranks_before(score, index, best_score[k - 1], best_index[k - 1]):
        return found
    slot = min(found, k - 1)
    while slot > 0 and _ranks_before(score, index, best_score[slot - 1], best_index[slot - 1]):
        best_index[slot], best_distance[slot] = best_index[slot - 1], best_distance[slot - 1]
        best_score[slot], best_bias[slot] = best_score[slot - 1], best_bias[slot - 1]
        slot -= 1
    best_index[slot], best_distance[slot], best_score[slot], best_bias[slot] = index, distance, score, bias
    return min(found + 1, k)


@numba.njit(cache=True)
def _scan(codes, bias_bits, start, stop, offset, packed, scale, use_bias, best, found):
    """Score entries start .. stop - 1 (counted from `offset`) into `best`; returns how many are
    kept. A gate score is a log sigmoid, never above 0, so an entry whose agreement alone scores
    below the k-th best cannot enter, and its gate score is not read (a cache miss saved)."""
    bits = 64 * codes.shape[1]
    best_index, best_distance, best_score, best_bias = best
    k = len(best_index)
    for entry in range(start, stop):
        distance = 0
        for word in range(codes.shape[1]):
            distance += _popcount(codes[entry, word] ^ packed[word])
        score = np.float32(scale) * np.float32(1 - 2 * distance / bits)
        if found == k and score < best_score[k - 1]:
            continue
        bias = half_to_float(bias_bits[entry]) if use_bias else np.float32(0)
        score += bias
        found = _keep(best_index, best_distance, best_score, best_bias, found, offset + entry, distance, score, bias)
    return found


@numba.njit(cache=True)
def best_entries(codes, bias_bits, bucket_starts, prefix_bits, query, n_probes, scale, use_bias,
                 extra_codes, extra_bias_bits, k):
    """The k best entries for an ordered query (float32 logits): (indices, Hamming distances,
    biases) sorted by score. `n_probes` buckets of the `prefix_bits` prefix are read (every
    entry once n_probes covers every prefix); `extra_*` is scanned whole, its indices after
    len(codes). Biases are float16 bits, read as 0 where `use_bias` is false."""
    packed = _pack_query(query, codes.shape[1])
    best = (np.full(k, -1, np.int64), np.zeros(k, np.int64), np.full(k, -np.inf, np.float32), np.zeros(k, np.float32))
    found = 0
    if prefix_bits == 0 or n_probes >= (1 << prefix_bits):
        found = _scan(codes, bias_bits, 0, len(codes), 0, packed, scale, use_bias, best, found)
    else:
        prefix = packed[0] >> np.uint64(64 - prefix_bits)
        for mask in flip_masks(np.abs(query[:prefix_bits]), n_probes):
            bucket = prefix ^ mask
            found = _scan(codes, bias_bits, bucket_starts[bucket], bucket_starts[bucket + np.uint64(1)], 0, packed,
                          scale, use_bias, best, found)
    found = _scan(extra_codes, extra_bias_bits, 0, len(extra_codes), len(codes), packed, scale, use_bias, best, found)
    return best[0][:found], best[1][:found], best[3][:found]
