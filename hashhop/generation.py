"""Greedy decoding for our own models: continue a batch of contexts until each closes its answer.

This is the harness's path (`--backend hashhop`). A model that decodes incrementally (the
transformer: `prefill` then `decode_step` over its KV cache) runs each context once and then
one token per step. Contexts of equal length share a batch; contexts of different lengths are
decoded in separate batches, which needs no padding, masks or per-row positions. Other models
(GLA) rerun the whole, right-padded batch at every step: correct for every architecture, and
answers are only a few tokens long. Both paths write the same text (a test checks it), unless
float rounding splits a near-tie between two logits.
Measurements at long contexts use the one-pass teacher-forced equivalent
(evaluate_model.exact_matches), which a test checks against this decoder. The stop string is a
generation setting like any LM API's `stop`, applied to the decoded text, not a rule the model uses.
"""

from __future__ import annotations

import torch

from hashhop.task import QUOTE
from hashhop.tokenize import Encoded, Tokenizer
from hashhop.training_data import identifier_features

STOP = QUOTE
"""Generation ends once the new text contains this: the quote that closes an answer."""


class _Answers:
    """The tokens each context's model has written, until every answer is closed or the budget
    of new tokens is spent."""

    def __init__(self, tokenizer: Tokenizer, contexts: list[Encoded], budget: int):
        self.tokenizer, self.contexts, self.budget = tokenizer, contexts, budget
        self.written: list[list[int]] = [[] for _ in contexts]
        self.done = [False] * len(contexts)
        self.steps = 0

    @property
    def active(self) -> list[int]:
        return [row for row, done in enumerate(self.done) if not done]

    @property
    def finished(self) -> bool:
        return all(self.done) or self.steps == self.budget

    def write(self, next_ids: torch.Tensor) -> None:
        """Append each still-open row's next token (next_ids [B], one per context)."""
        for row in self.active:
            self.written[row].append(int(next_ids[row]))
            text = self.tokenizer.decode(self.written[row], self.contexts[row].identifiers)
            self.done[row] = STOP in text
        self.steps += 1

    def texts(self) -> list[str]:
        """Each answer up to and including STOP (or all of it, if the budget ran out first)."""
        texts = [
            self.tokenizer.decode(t, c.identifiers) for t, c in zip(self.written, self.contexts)
        ]
        return [text[: text.index(STOP) + 1] if STOP in text else text for text in texts]


def _batch(
    tokenizer: Tokenizer, contexts: list[Encoded], width: int, device: torch.device | str
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Token ids [B, width] (contexts right-padded with zeros), identifier features and counts."""
    ids = torch.zeros((len(contexts), width), dtype=torch.long)
    for row, context in enumerate(contexts):
        ids[row, : len(context.ids)] = torch.tensor(context.ids)
    features, counts = identifier_features(tokenizer, [c.identifiers for c in contexts])
    features = None if features is None else features.to(device)
    return ids.to(device), features, counts.to(device)


def _continue_rerun(model: torch.nn.Module, answers: _Answers, device: torch.device | str) -> None:
    """Each step reruns the model over every row's context and answer so far."""
    lengths = torch.tensor([len(c.ids) for c in answers.contexts])
    ids, features, counts = _batch(
        answers.tokenizer, answers.contexts, int(lengths.max()) + answers.budget, device
    )
    rows = torch.arange(len(answers.contexts))
    while not answers.finished:
        width = int(lengths.max())
        last = torch.zeros((len(rows), width), dtype=torch.bool, device=ids.device)
        last[rows, lengths - 1] = True
        next_ids = model(ids[:, :width], features, counts, last).argmax(dim=-1).cpu()
        active = answers.active
        for row in active:
            ids[row, lengths[row]] = next_ids[row]
        lengths[active] += 1
        answers.write(next_ids)


def _continue_cached(model: torch.nn.Module, answers: _Answers, device: torch.device | str) -> None:
    """Prefill the contexts (all of one length) once, then feed one token per step."""
    ids, features, counts = _batch(
        answers.tokenizer, answers.contexts, len(answers.contexts[0].ids), device
    )
    logits, cache = model.prefill(ids, features, counts, answers.budget)
    while not answers.finished:
        next_ids = logits.argmax(dim=-1)
        answers.write(next_ids.cpu())
        if not answers.finished:
            logits, cache = model.decode_step(next_ids, cache)


@torch.no_grad()
def greedy_continue(
    model: torch.nn.Module,
    tokenizer: Tokenizer,
    contexts: list[Encoded],
    max_new_tokens: int,
    device: torch.device | str = "cpu",
    use_cache: bool = True,
) -> list[str]:
    """The text each context's model writes next, up to and including STOP (or the budget).
    `use_cache=False` forces the rerun path on a model that could decode incrementally."""
    model.eval()
    if not (use_cache and getattr(model, "decodes_incrementally", False)):
        answers = _Answers(tokenizer, contexts, max_new_tokens)
        _continue_rerun(model, answers, device)
        return answers.texts()
    texts = [""] * len(contexts)
    for length in sorted({len(c.ids) for c in contexts}):
        rows = [row for row, c in enumerate(contexts) if len(c.ids) == length]
        answers = _Answers(tokenizer, [contexts[row] for row in rows], max_new_tokens)
        _continue_cached(model, answers, device)
        for row, text in zip(rows, answers.texts()):
            texts[row] = text
    return texts
