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
"""Rounds per permutation: four make a pseudo-random permutation (Luby-Rackoff); two spare.
A network of more blocks gets a multiple of this, so that each block is a round's target
(with 6 rounds, blocks past the sixth of a long hash were left as they came: constant)."""

MAX_BLOCK_BITS = 48
"""Largest block radix, as bits; keeps the round function's modulo bias below 2**-16."""

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def splitmix64(values: np.ndarray | np.uint64) -> np.ndarray:
    """Steele et al.'s splitmix64 finaliser: a fast, well-mixed 64-bit hash."""
    z = np.array(values, dtype=np.uint64)
    _splitmix64_in_place(z, np.empty_like(z))
    return z


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
        # Every block is the target of at least one round (round r targets block r mod n).
        rounds = FEISTEL_ROUNDS * -(-len(radices) // FEISTEL_ROUNDS)
        self.round_keys = splitmix64(np.uint64(key) ^ np.arange(rounds, dtype=np.uint64))

    def apply(self, blocks: list[np.ndarray]) -> list[np.ndarray]:
        """Permute element-wise, in place: blocks[i] is a uint64 array of digits in
        [0, radices[i]), overwritten with its image and returned (callers pass fresh arrays).

        The rounds run in place on two scratch arrays: a temporary per operation tripled the
        time of a 32K-hash block (benchmarks/RESULTS.md, "Generation speed")."""
        if any(block.dtype != np.uint64 for block in blocks):
            raise TypeError("Feistel blocks are uint64 arrays")
        mix = np.empty_like(blocks[0])
        scratch = np.empty_like(mix)
        for round_index, round_key in enumerate(self.round_keys):
            target = round_index % len(blocks)
            mix.fill(round_key)
            for other, block in enumerate(blocks):
                if other != target:
                    mix ^= block
                    _splitmix64_in_place(mix, scratch)
            radix = np.uint64(self.radices[target])
            np.remainder(mix, radix, out=mix)
            block = blocks[target]
            block += mix  # both below radix <= 2**48: no wrap
            # (block + mix) mod radix: block - radix wraps above block when block < radix.
            np.subtract(block, radix, out=scratch)
            np.minimum(block, scratch, out=block)
        return blocks


def _splitmix64_in_place(z: np.ndarray, scratch: np.ndarray) -> None:
    """`z = splitmix64(z)` without allocating (uint64 arrays wrap silently)."""
    z += _GOLDEN
    for shift, multiplier in ((30, _MIX1), (27, _MIX2)):
        np.right_shift(z, np.uint64(shift), out=scratch)
        z ^= scratch
        z *= multiplier
    np.right_shift(z, np.uint64(31), out=scratch)
    z ^= scratch


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
        values = self._grid_permute(np.asarray(indices, dtype=np.uint64))
        # Cycle walking: an image outside [0, n) is permuted again until it lands inside.
        outside = np.flatnonzero(values >= np.uint64(self.n))
        while outside.size:
            values[outside] = self._grid_permute(values[outside])
            outside = outside[values[outside] >= np.uint64(self.n)]
        return values.astype(np.int64)

    def _grid_permute(self, values: np.ndarray) -> np.ndarray:
        """One pass of the Feistel network over grid cells numbered row-major."""
        columns = np.uint64(self.columns)
        low, high = self.feistel.apply([values % columns, values // columns])
        high *= columns
        high += low
        return high
