"""Hand-made samples in Magic's format whose chains a test knows, for the scorer's tests."""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from itertools import pairwise


@dataclass
class Made:
    """A hand-made sample in Magic's format, with the chains that built it."""

    prompt: str
    completion: str
    targets: dict[str, str]
    chains: list[list[str]]
    """Each chain [H1, ..., H{hops+1}]; the first `asked` are asked, in order."""
    asked: int
    cot: bool

    def answer(self, chain: list[str]) -> str:
        return " = ".join(chain[1:]) if self.cot else chain[-1]

    def record(self) -> dict:
        return {"prompt": self.prompt, "completion": self.completion, "targets": self.targets}


def make(
    n_chains: int = 4,
    hops: int = 2,
    cot: bool = False,
    asked: int | None = None,
    seed: int = 0,
    alphabet: str = string.ascii_letters,
) -> Made:
    rng = random.Random(seed)
    unique: dict[str, None] = {}
    while len(unique) < n_chains * (hops + 1):
        unique["".join(rng.choices(alphabet, k=16))] = None
    hashes = list(unique)
    chains = [hashes[i * (hops + 1) : (i + 1) * (hops + 1)] for i in range(n_chains)]
    lines = [
        f"{key} = '{value}'" if level == hops - 1 else f"{key} = {value}"
        for chain in chains
        for level, (key, value) in enumerate(pairwise(chain))
    ]
    rng.shuffle(lines)
    made = Made("\n".join(lines), "", {}, chains, n_chains if asked is None else asked, cot)
    made.targets = {chain[0]: made.answer(chain) for chain in chains}
    queries = [f"{chain[0]} = '{made.answer(chain)}'" for chain in chains[: made.asked]]
    made.completion = f"COMPLETION:\nHops={hops}\n\nCoT={cot}\n\n" + "\n".join(queries) + "\n"
    return made
