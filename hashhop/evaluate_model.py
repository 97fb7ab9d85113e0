"""Exact-match accuracy of our own checkpoints, in process, on held-out samples.

The harness (`hashhop eval --backend hashhop`) is the general path; this is the fast one the
training tests and the tokenization experiment use: contexts are batched straight into
greedy decoding, and samples come from the evaluation seed domain, which training never
draws from.
"""

from __future__ import annotations

from hashhop.checkpoint import Loaded
from hashhop.fit import make_sample
from hashhop.generation import greedy_continue
from hashhop.permutation import derive_key
from hashhop.task import TaskSpec
from hashhop.training_data import EVAL_SEEDS, answer_text, context_text

EVAL_BATCH = 16


def eval_specs(chars: int, hops: int, cot: bool, n_samples: int, seed: int, hash_len: int = 16) -> list[TaskSpec]:
    base = derive_key(seed, EVAL_SEEDS)
    return [
        TaskSpec(size=chars, unit="chars", hops=hops, cot=cot, hash_len=hash_len, seed=derive_key(base, index))
        for index in range(n_samples)
    ]


def answers(loaded: Loaded, chars: int, hops: int, cot: bool, n_samples: int, seed: int) -> list[str]:
    """What the model writes after each held-out context (up to its closing quote)."""
    samples = [make_sample(spec) for spec in eval_specs(chars, hops, cot, n_samples, seed)]
    written: list[str] = []
    for start in range(0, len(samples), EVAL_BATCH):
        chunk = samples[start : start + EVAL_BATCH]
        contexts = [loaded.tokenizer.encode(context_text(sample)) for sample in chunk]
        budget = max(len(loaded.tokenizer.encode(answer_text(s), c.identifiers).ids) for s, c in zip(chunk, contexts))
        written += greedy_continue(loaded.model, loaded.tokenizer, contexts, budget + 2, next(loaded.model.parameters()).device)
    return written


def accuracy(loaded: Loaded, chars: int, hops: int, cot: bool, n_samples: int, seed: int) -> float:
    """Fraction of held-out samples whose answer (and closing quote) is exactly right."""
    samples = [make_sample(spec) for spec in eval_specs(chars, hops, cot, n_samples, seed)]
    expected = [answer_text(sample).rstrip("\n") for sample in samples]
    got = answers(loaded, chars, hops, cot, n_samples, seed)
    return sum(a == b for a, b in zip(got, expected)) / n_samples
