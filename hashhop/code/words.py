"""Text -> the words code search matches on: identifiers split at case and underscores, stemmed.

Code and questions about it use different surfaces for the same words (`readLines`,
`read_lines`, "reads the lines"): every channel sees both through these functions, so
the same rule applies to a query and to the code it should find.
"""

from __future__ import annotations

import re
from functools import lru_cache

import Stemmer

from hashhop.code.symbols import Symbol

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9]+")
# Boundaries inside an identifier: lower->Upper, ACRONYMWord, letter<->digit.
_CAMEL_PART = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")

STOP_WORDS = frozenset(
    {
        "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "have", "if", "in",
        "into", "is", "it", "its", "of", "on", "or", "that", "the", "this", "to", "was", "were",
        "will", "with", "which", "self", "cls", "none", "true", "false", "def", "return", "pass",
        "else", "elif", "not",
    }
)
"""English glue and Python words on nearly every line: they rank nothing."""

_stemmer = Stemmer.Stemmer("english")


def identifier_parts(identifier: str) -> list[str]:
    """'parseHTTPResponse_v2' -> ['parse', 'http', 'response', 'v', '2'], lower case."""
    return [part.lower() for piece in identifier.split("_") for part in _CAMEL_PART.findall(piece)]


def name_key(name: str) -> str:
    """The form names are compared in: case and separators dropped, so `foo_bar`, `fooBar`
    and `FooBar` all read `foobar`."""
    return name.replace("_", "").replace("-", "").replace(" ", "").lower()


def search_words(text: str) -> list[str]:
    """Stemmed words of `text`: each identifier's parts, and the whole identifier when it has
    several (so `commonprefix` and `common_prefix` both match), without stop words."""
    return [word for identifier in _IDENTIFIER.findall(text) for word in _identifier_words(identifier)]


def part_words(text: str) -> list[str]:
    """`search_words` without the whole identifiers: the words a name is made of."""
    return [word for identifier in _IDENTIFIER.findall(text) for word in _stemmed_parts(identifier)]


@lru_cache(maxsize=1 << 18)
def _stemmed_parts(identifier: str) -> tuple[str, ...]:
    """Cached: a tree repeats its identifiers, and splitting and stemming is the slow part."""
    return tuple(_stemmer.stemWord(part) for part in identifier_parts(identifier) if part not in STOP_WORDS and len(part) > 1)


@lru_cache(maxsize=1 << 18)
def _identifier_words(identifier: str) -> tuple[str, ...]:
    """The stemmed parts, and the whole identifier stemmed as one word: `load_appends` gives
    `loadappend`, as the query `loadappends` does (unstemmed, `load_append` matched it instead)."""
    words = _stemmed_parts(identifier)
    return words + (_stemmer.stemWord(name_key(identifier)),) if len(identifier_parts(identifier)) > 1 else words


MIN_SUMMARY_WORDS = 4
"""Shorter summaries ("Constructor.", "Return x.") say too little to learn from or to ask."""

_SENTENCE_END = re.compile(r"(.+?[.!?])(?:\s|$)")


def first_sentence(docstring: str) -> str:
    """A docstring's summary sentence, on one line: what a user asking for the code would say."""
    text = " ".join(docstring.split())
    match = _SENTENCE_END.match(text)
    return match.group(1) if match else text


def symbol_words(symbol: Symbol) -> tuple[list[str], list[str]]:
    """(name words, body words) of a symbol: its qualified name's words; its module,
    signature and own source (a class without its members' bodies; with the docstring, if
    the index kept it). BM25 and the encoder both read a symbol through this one split."""
    name = search_words(symbol.qualname.replace(".<locals>.", ".").replace(".", " "))
    body = search_words(symbol.module.replace(".", " ") + " " + symbol.signature + " " + symbol.own_source)
    return name, body
