"""Keyed pseudo-random permutations in pure numpy uint64 arithmetic.

HashHop needs (a) millions of hashes that are random-looking and *guaranteed* distinct and
(b) a shuffle of millions of lines, both reproducible from a seed on any machine and both
computable block by block so a 100M-token prompt streams in bounded memory.

A keyed bijection gives both at once: hash number g is `permute(g)` written in the
alphabet's digits (distinct because a bijection never maps two inputs to one output), and
line number p of the shuffled prompt is `permute(p)`. We build the bijection as a Feistel
network over a mixed-radix domain (each round adds a keyed pseudo-random function of the
other blocks to one block, modulo its radix, which is invertible whatever the function),
with splitmix64 as the round function. Only wrapping uint64 arithmetic is used, so the
output is byte-identical on every platform and numpy version.
"""

from __future__ import annotations

import math

import numpy as np

FEISTEL_ROUNDS = 6
"""Rounds per permutation: four make a pseudo-random permutation (Luby-Rackoff); two spare."""

MAX_BLOCK_BITS = 48
"""Largest block radix, as bits; keeps the round function's modulo bias below 2**-16."""

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def splitmix64(values: np.ndarray | np.uint64) -> np.ndarray:
    """Steele et al.'s splitmix64 finaliser: a fast, well-mixed 64-bit hash."""
    with np.errstate(over="ignore"):
        z = np.asarray(values, dtype=np.uint64) + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
        return z ^ (z >> np.uint64(31))


def derive_key(seed: int, purpose: int) -> int:
    """A 64-bit key for one use of a seed, so different uses never share a stream."""
    mixed = splitmix64(np.uint64(seed % 2**64) ^ splitmix64(np.uint64(purpose)))
    return int(mixed)


class FeistelPermutation:
    """A keyed bijection on the mixed-radix domain radices[0] x radices[1] x ... (two or more)."""

    def __init__(self, radices: tuple[int, ...], key: int) -> None:
        if len(radices) < 2:
            raise ValueError("a Feistel network needs at least two blocks")
        if any(r < 1 or r > 2**MAX_BLOCK_BITS for r in radices):
            raise ValueError(f"block radices must lie in [1, 2**{MAX_BLOCK_BITS}]: {radices}")
        self.radices = radices
        self.round_keys = splitmix64(np.uint64(key) ^ np.arange(FEISTEL_ROUNDS, dtype=np.uint64))

    def apply(self, blocks: list[np.ndarray]) -> list[np.ndarray]:
        """Permute element-wise; blocks[i] holds digits in [0, radices[i])."""
        blocks = [b.astype(np.uint64, copy=True) for b in blocks]
        for round_index, round_key in enumerate(self.round_keys):
            target = round_index % len(blocks)
            mix = np.full_like(blocks[target], round_key)
            for other, block in enumerate(blocks):
                if other != target:
                    mix = splitmix64(mix ^ block)
            radix = np.uint64(self.radices[target])
            total = blocks[target] + mix % radix
            blocks[target] = np.where(total >= radix, total - radix, total)
        return blocks


class IndexPermutation:
    """A keyed bijection on [0, n): a Feistel network on a near-square grid, cycle-walked."""

    def __init__(self, n: int, key: int) -> None:
        if n < 1:
            raise ValueError("cannot permute an empty range")
        self.n = n
        self.columns = max(2, math.isqrt(n - 1) + 1)
        rows = max(2, -(-n // self.columns))
        self.feistel = FeistelPermutation((self.columns, rows), key)

    def apply(self, indices: np.ndarray) -> np.ndarray:
        """The images of `indices` (each in [0, n)) under the permutation."""
        values = np.asarray(indices, dtype=np.uint64)
        columns = np.uint64(self.columns)
        pending = np.arange(values.size)
        while pending.size:
            low, high = self.feistel.apply([values[pending] % columns, values[pending] // columns])
            values[pending] = low + high * columns
            # Cycle walking: an image outside [0, n) is permuted again until it lands inside.
            pending = pending[values[pending] >= np.uint64(self.n)]
        return values.astype(np.int64)
