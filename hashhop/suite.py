"""Standard suites: fixed, versioned grids, so two people's numbers are on the same prompts.

A suite is sized in characters, not in the model's tokens, so every model is asked exactly
the same samples, and its data digest (SHA-256 over the Magic-format prompt and completion
of every sample, in grid order) is pinned here; a test regenerates each suite and checks it.
A suite's grid never changes: a different grid is a new version.

v1 spans short to long context at about 3 characters per token: 1K, 4K, 16K and 64K tokens
(3,000 to 192,000 characters), hops 1 to 3, chain of thought and skip (sharing haystacks),
10 samples of one query per cell: 240 prompts, enough to place a model between chance and
perfect (a cell's Wilson interval is about +-25 points, the headline's about +-6), and about
15M characters that generate in seconds.
"""

from __future__ import annotations

import hashlib

from hashhop.errors import HashHopError
from hashhop.fit import make_sample
from hashhop.harness import Grid
from hashhop.render import completion_text, prompt_text

SUITES: dict[str, Grid] = {
    "v1": Grid(
        sizes=(3_000, 12_000, 48_000, 192_000),
        unit="chars",
        hops=(1, 2, 3),
        cot_modes=(False, True),
        samples=10,
        queries=1,
        hash_len=16,
        seed=0,
        suite="v1",
    ),
}
SUITE_DIGESTS: dict[str, str] = {
    "v1": "sha256:8d7c4e0a12093a2beb93ec1805f3ce8c4fc7bb414d276129d3dbab3a8136764c",
}
"""What `grid_digest` gives for each suite, pinned when the suite was made."""


def suite_grid(name: str) -> Grid:
    """The grid of the suite `name`, or an error listing the suites there are."""
    if name not in SUITES:
        raise HashHopError(f"unknown suite {name!r}; choose one of: {', '.join(SUITES)}")
    return SUITES[name]


def grid_digest(grid: Grid) -> str:
    """'sha256:<hex>' over every sample of a character-sized grid: prompt, then completion."""
    if grid.unit != "chars":
        raise HashHopError("only a grid sized in chars has one set of prompts to digest")
    digest = hashlib.sha256()
    for _, spec in grid.specs(tokenizer=None):
        sample = make_sample(spec)
        for text in (prompt_text(sample), completion_text(sample)):
            digest.update(text.encode())
            digest.update(b"\0")
    return "sha256:" + digest.hexdigest()
