"""Token batches for training and evaluating our own models, straight from the generator.

An example is a sample's text, `prompt + "\\n\\n" + completion header + "H1 = '"` (the
context), followed by the answer and its closing quote (the target). The answer comes from
the generator's ground truth, never from parsing text, and the model is trained on target
tokens only: the query hashes are given, not predicted. Context and target are encoded
separately, exactly as the model meets them at inference (it is handed the context and
writes the rest).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from hashhop.render import COMPLETION_HEADER, prompt_text, query_answers
from hashhop.task import QUOTE, SEPARATOR, Sample
from hashhop.tokenize import Tokenizer

ANSWER_END = QUOTE + "\n"
"""What closes an answer line; the model must write it to stop."""
IGNORE_INDEX = -100
TRAIN_SEEDS, EVAL_SEEDS = 11, 12
"""Seed domains: a training sample's seed and an evaluation sample's never coincide."""


def context_text(sample: Sample) -> str:
    """What the model is given: the pairs, the completion header, the first query's line opened."""
    header = COMPLETION_HEADER.format(hops=sample.spec.hops, cot=sample.spec.cot)
    query, _ = query_answers(sample)[0]
    return f"{prompt_text(sample)}\n\n{header}{query}{SEPARATOR}{QUOTE}"


def answer_text(sample: Sample) -> str:
    """What the model must write after the context: the first query's answer, then its close."""
    return query_answers(sample)[0][1] + ANSWER_END


@dataclass(frozen=True)
class Example:
    context_ids: list[int]
    target_ids: list[int]
    identifiers: list[str]


def encode_example(tokenizer: Tokenizer, sample: Sample) -> Example:
    context = tokenizer.encode(context_text(sample))
    target = tokenizer.encode(answer_text(sample), identifiers=context.identifiers)
    return Example(context.ids, target.ids, target.identifiers)


@dataclass(frozen=True)
class Batch:
    """Right-padded tensors: ids [B, T], features [B, U, F] (or None), labels [B, T]."""

    ids: torch.Tensor
    features: torch.Tensor | None
    n_identifiers: torch.Tensor
    labels: torch.Tensor
    """The next token at each position where it is a target token, else IGNORE_INDEX."""

    def to(self, device: torch.device) -> Batch:
        features = None if self.features is None else self.features.to(device)
        return Batch(self.ids.to(device), features, self.n_identifiers.to(device), self.labels.to(device))


def identifier_features(tokenizer: Tokenizer, identifier_lists: list[list[str]]) -> tuple[torch.Tensor | None, torch.Tensor]:
    """Each sequence's identifier features, zero-padded to the longest list, and the counts."""
    counts = torch.tensor([len(names) for names in identifier_lists], dtype=torch.long)
    if tokenizer.feature_dim == 0:
        return None, counts
    features = np.zeros((len(identifier_lists), max(1, int(counts.max())), tokenizer.feature_dim), np.float32)
    for row, names in enumerate(identifier_lists):
        if names:
            features[row, : len(names)] = tokenizer.features(names)
    return torch.from_numpy(features), counts


def collate(tokenizer: Tokenizer, examples: list[Example], pad_id: int = 0) -> Batch:
    """Pad a list of examples into one batch; labels mark the target tokens only."""
    lengths = [len(e.context_ids) + len(e.target_ids) for e in examples]
    ids = torch.full((len(examples), max(lengths)), pad_id, dtype=torch.long)
    labels = torch.full_like(ids, IGNORE_INDEX)
    for row, example in enumerate(examples):
        tokens = example.context_ids + example.target_ids
        ids[row, : len(tokens)] = torch.tensor(tokens)
        start = len(example.context_ids)
        # Position p predicts token p + 1: the last context token predicts the first target.
        labels[row, start - 1 : len(tokens) - 1] = torch.tensor(example.target_ids)
    features, counts = identifier_features(tokenizer, [e.identifiers for e in examples])
    return Batch(ids, features, counts, labels)


def batch_loss(model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean cross-entropy over target tokens (plus the model's auxiliary loss, if it has one),
    and per row whether every target is the argmax.

    A row whose every target token is the argmax given the true prefix is a row greedy
    decoding writes token for token (by induction over its tokens): so the second value is
    the greedy exact match, from one forward pass. It can only undercount: it also asks
    for the newline after the closing quote, and a BPE model spelling the right text with
    other pieces counts as wrong.
    """
    targets = batch.labels != IGNORE_INDEX
    logits = model(batch.ids, batch.features, batch.n_identifiers, targets)
    labels = batch.labels[targets]
    loss = torch.nn.functional.cross_entropy(logits.float(), labels)
    # A model may price its own choices (the memory model's write cost); DDP wraps it in .module.
    loss = loss + getattr(getattr(model, "module", model), "auxiliary_loss", 0.0)
    wrong = (logits.argmax(-1) != labels).float()
    rows = targets.nonzero()[:, 0]
    row_wrong = torch.zeros(len(batch.labels), device=wrong.device).index_add_(0, rows, wrong)
    return loss, row_wrong == 0
