"""Token texts as a memory keeps them: 6 bits a character, 12 bytes for a 16-letter hash.

The identifier tokenizer's pieces are identifier runs (letters and digits: 62 characters)
or one of its few fixed symbols (runs such as " = '" and single punctuation). So a character
of an identifier is one 6-bit symbol (1-62; 0 pads the row), and a symbol piece is the
escape symbol 63 followed by its number in SYMBOLS. Every 4 symbols of a row are packed into
3 bytes, the first symbol most significant; a row padded with zero bytes reads the same, so
blocks of different widths join by padding.

ASCII bytes would take 16 bytes for a 16-letter hash, and they were a third of what a memory
kept per entry (benchmarks/RESULTS.md: 80 bytes a pair on 2-hop prompts at 100M tokens).
"""

from __future__ import annotations

import numba
import numpy as np

from hashhop.errors import HashHopError
from hashhop.tokenize import ALPHABET, IDENTIFIER_CHARS, SYMBOL_RUNS

SYMBOL_BITS = 6
ESCAPE = (1 << SYMBOL_BITS) - 1
SYMBOLS = SYMBOL_RUNS + tuple(char for char in ALPHABET if char not in IDENTIFIER_CHARS)
"""Every piece that is not an identifier run (the tokenizer's fixed symbols)."""
assert len(IDENTIFIER_CHARS) < ESCAPE and len(SYMBOLS) <= 1 << SYMBOL_BITS
_SYMBOL_NUMBERS = {symbol: number for number, symbol in enumerate(SYMBOLS)}
_SYMBOL_OF_BYTE = np.zeros(256, np.uint32)
_SYMBOL_OF_BYTE[np.frombuffer(IDENTIFIER_CHARS.encode("ascii"), np.uint8)] = np.arange(1, len(IDENTIFIER_CHARS) + 1)
_BYTE_OF_SYMBOL = np.frombuffer(b"\0" + IDENTIFIER_CHARS.encode("ascii") + b"\0", np.uint8)
_ESCAPED = ord("?")
"""How `_characters` marks a symbol piece: never an identifier character."""
_GROUP_SHIFTS = np.array([18, 12, 6, 0], np.uint32)
"""4 symbols (24 bits) to a group of 3 bytes."""
_BYTE_SHIFTS = np.array([16, 8, 0], np.uint32)


def pack_texts(texts: list[str]) -> np.ndarray:
    """Token texts -> uint8 [N, 3 * groups]: each row its 6-bit symbols, packed, zero padded."""
    lengths = np.fromiter(map(len, texts), np.int64, len(texts))
    starts = np.cumsum(lengths) - lengths
    characters = np.frombuffer("".join(texts).encode("ascii", "replace"), np.uint8)
    width = max(2, int(lengths.max(initial=0)))
    symbols = np.zeros((len(texts), -(-width // 4) * 4), np.uint32)
    rows = np.repeat(np.arange(len(texts)), lengths)
    values = _SYMBOL_OF_BYTE[characters]
    symbols[rows, np.arange(len(characters)) - np.repeat(starts, lengths)] = values
    for row in np.union1d(rows[values == 0], np.flatnonzero(lengths == 0)):  # symbol pieces: few
        if texts[row] not in _SYMBOL_NUMBERS:
            raise HashHopError(f"{texts[row]!r} is neither an identifier nor a symbol of the identifier tokenizer")
        symbols[row] = 0
        symbols[row, :2] = ESCAPE, _SYMBOL_NUMBERS[texts[row]]
    groups = (symbols.reshape(len(texts), symbols.shape[1] // 4, 4) << _GROUP_SHIFTS).sum(axis=2, dtype=np.uint32)
    return (groups[:, :, None] >> _BYTE_SHIFTS).astype(np.uint8).reshape(len(texts), 3 * groups.shape[1])


@numba.njit(cache=True)
def _characters(rows: np.ndarray) -> np.ndarray:
    """Packed rows [N, 3 * groups] -> each row's characters as ASCII [N, 4 * groups], 0 where
    padded; an escaped row is _ESCAPED and 1 + its symbol's number."""
    out = np.zeros((rows.shape[0], rows.shape[1] // 3 * 4), np.uint8)
    for row in range(rows.shape[0]):
        for group in range(rows.shape[1] // 3):
            bits = (np.uint32(rows[row, 3 * group]) << 16) | (np.uint32(rows[row, 3 * group + 1]) << 8) | rows[row, 3 * group + 2]
            for place in range(4):
                out[row, 4 * group + place] = _BYTE_OF_SYMBOL[(bits >> (18 - 6 * place)) & ESCAPE]
        if rows.shape[1] and rows[row, 0] >> 2 == ESCAPE:
            out[row, 0], out[row, 1] = _ESCAPED, ((rows[row, 0] & 3) << 4 | rows[row, 1] >> 4) + 1
    return out


def unpack_texts(rows: np.ndarray) -> list[str]:
    """uint8 [N, 3 * groups] as `pack_texts` wrote them -> the token texts."""
    if not len(rows):
        return []
    characters = _characters(rows)
    width = characters.shape[1]
    joined = characters.tobytes().decode("ascii")
    texts = [joined[start : start + width].rstrip("\0") for start in range(0, len(joined), width)]
    escaped = chr(_ESCAPED)
    return [SYMBOLS[ord(text[1]) - 1] if text[:1] == escaped else text for text in texts]
