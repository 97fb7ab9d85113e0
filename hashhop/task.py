"""HashHop task: a spec, and the compact sample it determines (numpy only, no text yet).

A sample is `n_chains` chains of `hops` links each (H1 = H2, H2 = H3, ...), plus at most
one shorter *filler* chain that tops the prompt up to the requested size, so the prompt
ends within one line of it (whole chains alone would leave up to `hops` lines unused). The
filler chain is never queried and not in `targets`.

Nothing is stored per hash: hash number g is a keyed permutation of g written in the
alphabet (distinct by construction), and prompt line p is a keyed permutation of p. So any
part of any sample is computed on demand, in any order, in memory proportional to the
part: that is what lets a 100M-token prompt stream to disk.
"""

from __future__ import annotations

import math
import string
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Literal

import numpy as np

from hashhop.errors import HashHopError
from hashhop.permutation import MAX_BLOCK_BITS, FeistelPermutation, IndexPermutation, derive_key

DEFAULT_ALPHABET = string.ascii_lowercase + string.ascii_uppercase
ALLOWED_HASH_CHARS = frozenset(string.ascii_letters + string.digits)
SEPARATOR = " = "
QUOTE = "'"

# Purposes for deriving independent keys from one seed.
_HASHES, _LINES, _QUERIES, _SAMPLES = 1, 2, 3, 4

Unit = Literal["chars", "tokens"]


@dataclass(frozen=True)
class TaskSpec:
    """Every parameter of one sample; the same spec always gives the same bytes."""

    size: int
    """Prompt budget: the prompt is at most this long and within one line of it."""
    unit: Unit = "tokens"
    chars_per_token: float = 3.0
    """Converts a token budget to characters when no real tokenizer counts them."""
    hops: int = 1
    hash_len: int = 16
    alphabet: str = DEFAULT_ALPHABET
    queries: int = 1
    cot: bool = False
    """Chain of thought: answers write every hop (H2 = H3 = ...), not only the last."""
    seed: int = 0
    tokenizer: str | None = None
    """Name of the tokenizer that sized the prompt, when `unit` is tokens and one was used."""

    def __post_init__(self) -> None:
        checks = [
            (self.size >= 1, f"size must be at least 1, got {self.size}"),
            (self.unit in ("chars", "tokens"), f"unit must be 'chars' or 'tokens', got {self.unit!r}"),
            (self.chars_per_token > 0, f"chars per token must be positive, got {self.chars_per_token}"),
            (self.hops >= 1, f"hops must be at least 1, got {self.hops}"),
            (self.hash_len >= 2, f"hash length must be at least 2, got {self.hash_len}"),
            (self.queries >= 1, f"queries must be at least 1, got {self.queries}"),
            (0 <= self.seed < 2**64, f"seed must lie in [0, 2**64), got {self.seed}"),
        ]
        for ok, message in checks:
            if not ok:
                raise HashHopError(message)
        unknown = sorted(set(self.alphabet) - ALLOWED_HASH_CHARS)
        if unknown:
            raise HashHopError(
                f"alphabet has characters hashes cannot use: {''.join(unknown)!r} "
                "(allowed: letters a-z, A-Z and digits 0-9)"
            )
        if len(set(self.alphabet)) != len(self.alphabet) or len(self.alphabet) < 2:
            raise HashHopError(f"alphabet needs at least 2 distinct characters, got {self.alphabet!r}")

    @property
    def char_budget(self) -> int:
        """The prompt budget in characters (tokens converted at `chars_per_token`)."""
        if self.unit == "chars":
            return self.size
        return math.floor(self.size * self.chars_per_token)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def sample_seed(dataset_seed: int, index: int) -> int:
    """The seed of sample `index` of a dataset: independent streams, not seed + index."""
    return derive_key(dataset_seed ^ derive_key(index, _SAMPLES), _SAMPLES)


@dataclass(frozen=True)
class Sample:
    """One HashHop sample as numbers: which chains exist, how lines are ordered, what is asked."""

    spec: TaskSpec
    n_chains: int
    filler_links: int = 0
    _hash_blocks: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        alphabet_size = len(self.spec.alphabet)
        capacity = alphabet_size**self.spec.hash_len
        if self.n_hashes > capacity:
            raise HashHopError(
                f"{alphabet_size} characters at length {self.spec.hash_len} give only {capacity} "
                f"distinct hashes; this sample needs {self.n_hashes}: use longer hashes"
            )
        object.__setattr__(self, "_hash_blocks", _block_lengths(self.spec.hash_len, alphabet_size))

    @property
    def n_lines(self) -> int:
        return self.n_chains * self.spec.hops + self.filler_links

    @property
    def n_hashes(self) -> int:
        return self.n_chains * (self.spec.hops + 1) + (self.filler_links + 1 if self.filler_links else 0)

    @cached_property
    def _hash_permutation(self) -> FeistelPermutation:
        radices = tuple(len(self.spec.alphabet) ** n for n in self._hash_blocks)
        return FeistelPermutation(radices, derive_key(self.spec.seed, _HASHES))

    @cached_property
    def _line_permutation(self) -> IndexPermutation:
        return IndexPermutation(self.n_lines, derive_key(self.spec.seed, _LINES))

    def hash_index(self, chains: np.ndarray, levels: np.ndarray | int) -> np.ndarray:
        """Index of the hash at `levels` (0 = H1) of `chains` (n_chains = the filler chain)."""
        return np.asarray(chains, dtype=np.int64) * (self.spec.hops + 1) + levels

    def hashes(self, indices: np.ndarray) -> np.ndarray:
        """The hashes with these indices, as ASCII codes: uint8 array [len(indices), hash_len].

        Characters are written two at a time, from a table of every pair, into the 16-bit
        columns of a row-major matrix; the digit arithmetic runs in place (a new 256 KB array
        per operation cost more than the operation: benchmarks/RESULTS.md, "Generation speed")."""
        indices = np.asarray(indices, dtype=np.uint64)
        blocks = []
        rest = indices
        for length in self._hash_blocks:
            radix = np.uint64(len(self.spec.alphabet) ** length)
            blocks.append(rest % radix)
            rest = rest // radix
        codes, pair_codes = self._character_tables
        pair_radix = np.uint64(len(codes) ** 2)
        # Each block starts at an even column, so an odd-length block leaves one pad column.
        chars = np.empty((len(indices), sum(length + length % 2 for length in self._hash_blocks)), dtype=np.uint8)
        pair_columns = chars.view(np.uint16)
        quotient = np.empty_like(indices)
        used_columns: list[int] = []
        column = 0
        for block, length in zip(self._hash_permutation.apply(blocks), self._hash_blocks):
            # The block's digits, least significant first, are its characters left to right.
            for pair in range(length // 2):
                np.divmod(block, pair_radix, out=(quotient, block))
                pair_columns[:, column // 2 + pair] = np.take(pair_codes, block)
                block, quotient = quotient, block
            if length % 2:
                chars[:, column + length - 1] = np.take(codes, block)  # the last digit: block < A
            used_columns.extend(range(column, column + length))
            column += length + length % 2
        if len(used_columns) == chars.shape[1]:
            return chars
        return np.ascontiguousarray(chars[:, used_columns])

    @cached_property
    def _character_tables(self) -> tuple[np.ndarray, np.ndarray]:
        """The alphabet's ASCII codes, and the two codes of every digit pair d0 + A * d1 as
        one uint16 each (viewed in native byte order both ways, so bytes come out as written)."""
        codes = np.frombuffer(self.spec.alphabet.encode("ascii"), dtype=np.uint8)
        pair_numbers = np.arange(len(codes) ** 2)
        pairs = np.stack([codes[pair_numbers % len(codes)], codes[pair_numbers // len(codes)]], axis=1)
        return codes, np.ascontiguousarray(pairs).view(np.uint16).ravel()

    def lines_at(self, positions: np.ndarray) -> np.ndarray:
        """Which line (chain-major link number) sits at each prompt position: the shuffle."""
        return self._line_permutation.apply(positions)

    def line_links(self, lines: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For line numbers: (chain, link level, whether the link ends its chain)."""
        lines = np.asarray(lines, dtype=np.int64)
        hops = self.spec.hops
        in_filler = lines >= self.n_chains * hops
        chains = np.where(in_filler, self.n_chains, lines // hops)
        levels = np.where(in_filler, lines - self.n_chains * hops, lines % hops)
        ends = np.where(in_filler, levels == self.filler_links - 1, levels == hops - 1)
        return chains, levels, ends

    @cached_property
    def query_chains(self) -> np.ndarray:
        """The asked chains, in the order the completion asks them (a random subset)."""
        permutation = IndexPermutation(self.n_chains, derive_key(self.spec.seed, _QUERIES))
        return permutation.apply(np.arange(self.spec.queries))


def _block_lengths(hash_len: int, alphabet_size: int) -> tuple[int, ...]:
    """Split a hash's characters into at least two Feistel blocks of bounded radix."""
    max_chars = max(1, int(MAX_BLOCK_BITS / math.log2(alphabet_size)))
    n_blocks = max(2, -(-hash_len // max_chars))
    base, extra = divmod(hash_len, n_blocks)
    return tuple(base + (1 if i < extra else 0) for i in range(n_blocks))


def prompt_chars(n_lines: int, hops: int, hash_len: int) -> int:
    """Exact prompt length in characters for a sample of `n_lines` lines."""
    if n_lines == 0:
        return 0
    chain_ends = n_lines // hops + (1 if n_lines % hops else 0)
    line_chars = 2 * hash_len + len(SEPARATOR)
    return n_lines * (line_chars + 1) - 1 + len(QUOTE) * 2 * chain_ends
