"""Drop-in API for users of Magic's reference generator: `MultiHopEval.make_one(...)`.

Same names, same arguments, same output fields; the sample is ours (exact size, unique
hashes, shuffled queries), and an optional `seed` makes it reproducible.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from hashhop.fit import make_sample
from hashhop.render import completion_text, prompt_text, targets
from hashhop.task import TaskSpec


@dataclass
class MultiHopSample:
    prompt: str
    """The shuffled hash pairs."""
    completion: str
    """What the model should write given the prompt."""
    targets: dict[str, str]
    """H1 -> answer for every chain in the prompt (only the completion's queries are asked)."""


class MultiHopEval:
    @staticmethod
    def make_one(
        n_chars_problem: int,
        num_queries: int,
        hops: int,
        hash_pair_str_length: int,
        chain_of_thought: bool,
        seed: int | None = None,
    ) -> MultiHopSample:
        """A sample whose prompt has at most `n_chars_problem` characters (a fresh seed if None)."""
        spec = TaskSpec(
            size=n_chars_problem,
            unit="chars",
            hops=hops,
            hash_len=hash_pair_str_length,
            queries=num_queries,
            cot=chain_of_thought,
            seed=secrets.randbits(63) if seed is None else seed,
        )
        sample = make_sample(spec)
        return MultiHopSample(prompt_text(sample), completion_text(sample), targets(sample))
