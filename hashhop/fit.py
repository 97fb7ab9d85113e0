"""Fit a sample to a size budget: the most lines whose prompt stays within it.

Chars are counted exactly in closed form. Tokens are counted by the evaluated model's own
tokenizer when one is given (RULER's rule: size to the model, never truncate), otherwise
converted at the spec's chars-per-token ratio.
"""

from __future__ import annotations

from collections.abc import Callable

from hashhop.errors import HashHopError
from hashhop.render import prompt_text
from hashhop.task import SEPARATOR, Sample, TaskSpec, prompt_chars

TokenCounter = Callable[[str], int]


def largest_fitting(measure: Callable[[int], int], budget: int, guess: int) -> int:
    """Largest n >= 0 with measure(n) <= budget, for a non-decreasing measure with measure(0)=0.

    Gallops up from `guess`, then bisects: about log2(guess) measurements.
    """
    low, high = 0, max(1, guess)
    while measure(high) <= budget:
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        if measure(middle) <= budget:
            low = middle
        else:
            high = middle
    return low


def make_sample(spec: TaskSpec, count_tokens: TokenCounter | None = None) -> Sample:
    """The sample of `spec`: as many lines as fit its budget, the last chain possibly partial.

    With `count_tokens` (the evaluated model's tokenizer), a token budget is met in that
    tokenizer's tokens; otherwise tokens are converted at `spec.chars_per_token`.
    """
    hops, hash_len = spec.hops, spec.hash_len
    guess = spec.char_budget // (2 * hash_len + len(SEPARATOR) + 1)
    if spec.unit == "tokens" and count_tokens is not None:

        def measure(n_lines: int) -> int:
            return count_tokens(prompt_text(_sample_of_lines(spec, n_lines))) if n_lines else 0

        n_lines = largest_fitting(measure, spec.size, guess)
    else:
        n_lines = largest_fitting(lambda n: prompt_chars(n, hops, hash_len), spec.char_budget, guess)
    n_chains = n_lines // hops
    if n_chains < 1:
        raise HashHopError(
            f"a budget of {spec.size} {spec.unit} is too small for one chain of {hops} hops "
            f"with {hash_len}-character hashes"
        )
    if spec.queries > n_chains:
        raise HashHopError(
            f"{spec.queries} queries asked but a budget of {spec.size} {spec.unit} holds only "
            f"{n_chains} chains"
        )
    return _sample_of_lines(spec, n_lines)


def _sample_of_lines(spec: TaskSpec, n_lines: int) -> Sample:
    return Sample(spec, n_chains=n_lines // spec.hops, filler_links=n_lines % spec.hops)
