"""Greedy decoding for our own models: continue a batch of contexts until each closes its answer.

This is the harness's path (`--backend hashhop`). Answers are a few tokens long (a hash and
a quote with identifier tokens, a few dozen with characters), so each step reruns the model
over the whole sequence instead of keeping a KV cache: simpler, and correct for every
architecture. Measurements at long contexts use the one-pass teacher-forced equivalent
(evaluate_model.exact_matches), which a test checks against this decoder. The stop string is a generation
setting like any LM API's `stop`, applied to the decoded text, not a rule the model uses.
"""

from __future__ import annotations

import torch

from hashhop.task import QUOTE
from hashhop.tokenize import Encoded, Tokenizer
from hashhop.training_data import identifier_features

STOP = QUOTE
"""Generation ends once the new text contains this: the quote that closes an answer."""


@torch.no_grad()
def greedy_continue(
    model: torch.nn.Module,
    tokenizer: Tokenizer,
    contexts: list[Encoded],
    max_new_tokens: int,
    device: torch.device | str = "cpu",
) -> list[str]:
    """The text each context's model writes next, up to and including STOP (or the budget)."""
    model.eval()
    lengths = torch.tensor([len(c.ids) for c in contexts])
    ids = torch.zeros((len(contexts), int(lengths.max()) + max_new_tokens), dtype=torch.long)
    for row, context in enumerate(contexts):
        ids[row, : len(context.ids)] = torch.tensor(context.ids)
    features, counts = identifier_features(tokenizer, [c.identifiers for c in contexts])
    features = None if features is None else features.to(device)
    counts, ids = counts.to(device), ids.to(device)
    written: list[list[int]] = [[] for _ in contexts]
    done = [False] * len(contexts)
    rows = torch.arange(len(contexts))
    for _ in range(max_new_tokens):
        width = int(lengths.max())
        last = torch.zeros((len(contexts), width), dtype=torch.bool, device=ids.device)
        last[rows, lengths - 1] = True
        next_ids = model(ids[:, :width], features, counts, last).argmax(dim=-1).cpu()
        active = [row for row in range(len(contexts)) if not done[row]]
        for row in active:
            ids[row, lengths[row]] = next_ids[row]
            written[row].append(int(next_ids[row]))
            done[row] = STOP in tokenizer.decode(written[row], contexts[row].identifiers)
        lengths[active] += 1
        if all(done):
            break
    texts = [tokenizer.decode(tokens, c.identifiers) for tokens, c in zip(written, contexts)]
    return [text[: text.index(STOP) + 1] if STOP in text else text for text in texts]
