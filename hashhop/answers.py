"""Read the answers out of a model's free text: the grammar the scorer grades by.

Models write a right answer in many ways, and a scorer that misreads one marks it wrong. This
grammar reads every reasonable rendering and never reads chatter as part of a chain.

The text is first cut into tokens:

    WORD  a maximal run of ASCII letters and digits (a hash is always one WORD)
    SEP   =  :  ->  =>  →  (an arrow's shaft may be longer: -->, ==>), and the word `is`
    STOP  a line break, or any other visible character: . , ; ! ? ( ) [ ] { } - | ...

Spaces, tabs, quotes of every kind (' " ` ‘ ’ “ ”) and markdown emphasis (* _) are no tokens
at all, so quoting, bold, italics, code fences and spacing never change what is read.

A LINK is a WORD that is a hash: a hash of the prompt, or any WORD that does not read as
prose, that is, matches none of [a-z]+, [A-Z][a-z]*, [A-Z]+, [0-9]+. A random hash reads as
prose only by rare chance (about 1 in 20,000 for 16 letters drawn from 52), and is then still
a hash of the prompt. Without the prompt's hashes, the shape alone decides.

    answer := QUERY SEP+ LINK step*
    step   := SEP+ LINK             the chain goes on: H2 = H3, H2 -> H3, H2 is H3
            | GAP LAST SEP+ LINK    a restated step: `H2, then H2 = H3`, or `H2 = H3` a line on
    GAP    := (STOP | PROSE)*

QUERY is an asked query, a whole WORD; LAST is the chain's last LINK so far; PROSE is a WORD
that reads as prose. The chain ends at the first token that continues it neither way. So:
- `Q = 'H3' is my answer.` is the chain H3: `my` reads as prose;
- `Query Q: looking it up.` is no answer (no LINK follows), nor is `Q is not in the list`;
- a made-up hash (absent from the prompt, or one character off) is a LINK, and graded wrong.

A query's first answer counts; later ones are ignored, a corrected answer too. When one query
is asked and no answer names it, the word `answer` (or `Answer`, `ANSWER`) stands for it:
`The answer is H3.`, `**Answer:** H3`. Not read: an answer broken over lines, a table, or,
with more than one query asked, words between a query and its separator (`For Q the answer
is H3`).
"""

from __future__ import annotations

import re
from collections.abc import Container, Iterable

_SEP = "="
"""What every separator is written as among the tokens."""
_STOP = "."
"""What every stop is written as among the tokens."""
_INVISIBLE = "'\"`‘’“”*_"
_TOKEN = re.compile(rf"([A-Za-z0-9]+)|([-=]+>|→|=|:)|(\n|[^\sA-Za-z0-9{re.escape(_INVISIBLE)}])")
_PROSE = re.compile(r"[a-z]+|[A-Z][a-z]*|[A-Z]+|[0-9]+")
_WORD_SEPARATOR = "is"
_QUERY_STAND_INS = ("answer", "Answer", "ANSWER")
"""Stand for the query when only one is asked and no answer names it."""


def find_answers(
    text: str, queries: Iterable[str], prompt_hashes: Container[str] = frozenset()
) -> dict[str, list[str]]:
    """Query -> the chain of hashes the text gives for it, for each asked query it answers.

    `prompt_hashes` tells a hash that reads as prose from prose; it is asked only about such
    WORDs, so a lazily parsed prompt is parsed only when one turns up where a LINK may be.
    """
    asked = set(queries)
    reading = _Reading(text, prompt_hashes)
    answers = reading.first_answers({query: query for query in asked})
    if answers or len(asked) != 1:
        return answers
    return reading.first_answers(dict.fromkeys(_QUERY_STAND_INS, *asked))


def _tokens(text: str) -> list[str]:
    """The text's WORDs in order, each SEP written `=` and each STOP `.`."""
    tokens = []
    for word, separator, _ in _TOKEN.findall(text):
        if word and word != _WORD_SEPARATOR:
            tokens.append(word)
        else:
            tokens.append(_SEP if word or separator else _STOP)
    return tokens


class _Reading:
    """One model text as tokens, its LINKs told by the prompt's hashes or by their shape."""

    def __init__(self, text: str, prompt_hashes: Container[str]) -> None:
        self.tokens = _tokens(text)
        self.prompt_hashes = prompt_hashes

    def is_link(self, token: str) -> bool:
        """Whether a token is a hash: the prompt is asked only about a WORD that reads as prose."""
        return token.isalnum() and (not _PROSE.fullmatch(token) or token in self.prompt_hashes)

    def first_answers(self, mentions: dict[str, str]) -> dict[str, list[str]]:
        """Query -> the chain after its first mention that has one (mentions: WORD -> query)."""
        answers: dict[str, list[str]] = {}
        for position, token in enumerate(self.tokens):
            query = mentions.get(token)
            if query is None or query in answers:
                continue
            if chain := self.chain_after(position + 1):
                answers[query] = chain
        return answers

    def chain_after(self, position: int) -> list[str]:
        """The LINKs of `SEP+ LINK step*` read from `position`; empty when no LINK follows."""
        chain: list[str] = []
        step = self._link_after_separators(position)
        while step is not None:
            link, position = step
            chain.append(link)
            step = self._link_after_separators(position) or self._restated_step(position, link)
        return chain

    def _link_after_separators(self, position: int) -> tuple[str, int] | None:
        """`SEP+ LINK` at `position`: the LINK and the position after it, or None."""
        after = position
        while after < len(self.tokens) and self.tokens[after] == _SEP:
            after += 1
        if after == position or after == len(self.tokens) or not self.is_link(self.tokens[after]):
            return None
        return self.tokens[after], after + 1

    def _restated_step(self, position: int, last: str) -> tuple[str, int] | None:
        """`GAP LAST SEP+ LINK` at `position`: the new LINK and the position after it, or None."""
        while position < len(self.tokens) and _in_gap(self.tokens[position], last):
            position += 1
        if position < len(self.tokens) and self.tokens[position] == last:
            return self._link_after_separators(position + 1)
        return None


def _in_gap(token: str, last: str) -> bool:
    """STOP or PROSE, told by shape alone, so that a GAP never makes the prompt be parsed."""
    return token != last and (token == _STOP or bool(_PROSE.fullmatch(token)))
