"""Exact-match accuracy of our own checkpoints, in process, on held-out samples.

The harness (`hashhop eval --backend hashhop`) is the general path: it decodes greedily and
scores text. This is the fast path the training tests and the tokenization experiment use:
one teacher-forced forward pass per batch (see `batch_loss`: every answer token the argmax
given the true prefix is what greedy decoding writes), batched by a token budget so 64x
contexts fit in memory. Samples come from the evaluation seed domain, which training never
draws from.
"""

from __future__ import annotations

import torch

from hashhop.checkpoint import Loaded
from hashhop.fit import make_sample
from hashhop.generation import greedy_continue
from hashhop.permutation import derive_key
from hashhop.task import Sample, TaskSpec
from hashhop.tokenize import Tokenizer
from hashhop.training_data import (
    EVAL_SEEDS,
    answer_text,
    batch_loss,
    collate,
    context_text,
    encode_example,
)

EVAL_BATCH = 16
TOKENS_PER_BATCH = 1 << 16
"""Padded tokens per teacher-forced batch: bounds activation memory at long contexts."""


def eval_specs(chars: int, hops: int, cot: bool, n_samples: int, seed: int, hash_len: int = 16) -> list[TaskSpec]:
    base = derive_key(seed, EVAL_SEEDS)
    return [
        TaskSpec(size=chars, unit="chars", hops=hops, cot=cot, hash_len=hash_len, seed=derive_key(base, index))
        for index in range(n_samples)
    ]


def answers(loaded: Loaded, chars: int, hops: int, cot: bool, n_samples: int, seed: int) -> list[str]:
    """What the model writes greedily after each held-out context (up to its closing quote)."""
    samples = [make_sample(spec) for spec in eval_specs(chars, hops, cot, n_samples, seed)]
    written: list[str] = []
    for start in range(0, len(samples), EVAL_BATCH):
        chunk = samples[start : start + EVAL_BATCH]
        contexts = [loaded.tokenizer.encode(context_text(sample)) for sample in chunk]
        budget = max(len(loaded.tokenizer.encode(answer_text(s), c.identifiers).ids) for s, c in zip(chunk, contexts))
        written += greedy_continue(loaded.model, loaded.tokenizer, contexts, budget + 2, next(loaded.model.parameters()).device)
    return written


@torch.no_grad()
def exact_matches(model: torch.nn.Module, tokenizer: Tokenizer, samples: list[Sample]) -> list[bool]:
    """Per sample: is every answer token the model's argmax (teacher forced, one pass)?"""
    model.eval()
    device = next(model.parameters()).device
    examples = [encode_example(tokenizer, sample) for sample in samples]
    matches: list[bool] = []
    start = 0
    while start < len(examples):
        longest, end = 0, start
        while end < len(examples):
            longest = max(longest, len(examples[end].context_ids) + len(examples[end].target_ids))
            if end > start and longest * (end + 1 - start) > TOKENS_PER_BATCH:
                break
            end += 1
        _, row_exact = batch_loss(model, collate(tokenizer, examples[start:end]).to(device))
        matches += row_exact.tolist()
        start = end
    return matches


def accuracy(loaded: Loaded, chars: int, hops: int, cot: bool, n_samples: int, seed: int) -> float:
    """Fraction of held-out samples whose whole answer (and closing quote) is right."""
    samples = [make_sample(spec) for spec in eval_specs(chars, hops, cot, n_samples, seed)]
    matches = exact_matches(loaded.model, loaded.tokenizer, samples)
    return sum(matches) / n_samples
