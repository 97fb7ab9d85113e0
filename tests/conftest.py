"""Shared test helpers: an independent reading of the HashHop format (not the scorer's), and
the command line run in a process that reports whether it imported torch."""

from __future__ import annotations

import re
import subprocess
import sys

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


# `hashhop ARGS...`, then whether torch was imported, as the last line of stdout.
_CLI_THEN_SAY_IF_TORCH_LOADED = """
import sys
from hashhop.cli import main

sys.argv = ["hashhop", *sys.argv[1:]]
try:
    main()
finally:
    print("torch" in sys.modules)
"""


def run_cli_watching_torch(*args: str) -> tuple[subprocess.CompletedProcess, bool]:
    """Run `hashhop ARGS...` in a fresh process: its result, and whether it imported torch
    (the slow import that checks of cheap arguments must come before)."""
    result = subprocess.run([sys.executable, "-c", _CLI_THEN_SAY_IF_TORCH_LOADED, *args],
                            capture_output=True, text=True, check=False)
    return result, result.stdout.strip().splitlines()[-1] == "True"
