"""A faithful re-implementation of Magic's reference HashHop generator (MIT), as a baseline.

It follows the reference algorithm step by step, defects included, so benchmarks compare
against what users run today and tests check that we read its samples:
- sizes by (2L+3)*hops characters per chain, so prompts overshoot the request;
- never checks that hashes are unique;
- `targets` holds every chain, not only the asked queries;
- the query shuffle is discarded, so the first chains created are the ones asked;
- plain Python dicts, one numpy call per hash.
Unlike the reference it takes a seed (its own random states) so tests are reproducible.
"""

from __future__ import annotations

import math
import random
import string
from dataclasses import dataclass

import numpy as np

ALPHABET = string.ascii_lowercase + string.ascii_uppercase


@dataclass
class ReferenceSample:
    prompt: str
    completion: str
    targets: dict[str, str]


def make_one(
    n_chars_problem: int,
    num_queries: int,
    hops: int,
    hash_pair_str_length: int,
    chain_of_thought: bool,
    seed: int = 0,
) -> ReferenceSample:
    numpy_random = np.random.RandomState(seed)
    python_random = random.Random(seed)

    def random_hash() -> str:
        return "".join(ALPHABET[i] for i in numpy_random.choice(len(ALPHABET), hash_pair_str_length))

    n_chains = math.ceil(n_chars_problem / ((hash_pair_str_length * 2 + 3) * hops))
    levels = [{random_hash(): random_hash() for _ in range(n_chains)}]
    for _ in range(hops - 1):
        levels.append({value: random_hash() for value in levels[-1].values()})

    lines = []
    for depth, level in enumerate(levels):
        quote = "'" if depth == len(levels) - 1 else ""
        lines.extend(f"{key} = {quote}{value}{quote}" for key, value in level.items())

    chains = {key: [value] for key, value in levels[0].items()}
    for level in levels[1:]:
        for chain in chains.values():
            chain.append(level[chain[-1]])
    answers = {
        key: " = ".join(chain) if chain_of_thought else chain[-1] for key, chain in chains.items()
    }
    python_random.shuffle(lines)
    assert num_queries <= len(answers), f"Got {num_queries} and {len(answers)}"
    asked = list(answers.items())[:num_queries]
    completion = (
        f"COMPLETION:\nHops={hops}\n\nCoT={chain_of_thought}\n\n"
        + "\n".join(f"{key} = '{answer}'" for key, answer in asked)
        + "\n"
    )
    return ReferenceSample("\n".join(lines), completion, answers)
