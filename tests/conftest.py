"""Shared test helpers: an independent reading of the HashHop format (not the scorer's)."""

from __future__ import annotations

import re

LINE = re.compile(r"^([A-Za-z0-9]+) = ('?)([A-Za-z0-9]+)\2$")


def parse_prompt(prompt: str) -> tuple[dict[str, str], set[str]]:
    """key -> value for every line, and the set of keys whose line is quoted (chain ends)."""
    pairs: dict[str, str] = {}
    quoted: set[str] = set()
    for line in prompt.split("\n"):
        match = LINE.match(line)
        assert match, f"malformed line {line!r}"
        key, quote, value = match.groups()
        assert key not in pairs, f"duplicate key {key}"
        pairs[key] = value
        if quote:
            quoted.add(key)
    return pairs, quoted


def follow(pairs: dict[str, str], start: str) -> list[str]:
    """The chain from `start`: [H1, H2, ..., last]."""
    chain = [start]
    while chain[-1] in pairs:
        chain.append(pairs[chain[-1]])
    return chain
