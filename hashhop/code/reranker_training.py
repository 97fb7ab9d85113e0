"""Train the reranker (`reranker.py`) on packages the encoder never read.

Each docstring summary of a `rerank_packages` tree is a query against that tree's
docstring-free index, searched by the first stage exactly as `hashhop code search` does with
the freshly trained encoder. Its top RERANK_DEPTH hits and their features are one example;
the symbols opening with that summary are the answers. The loss is listwise: cross-entropy
between the softmax over a query's candidates and its answers. A query whose answer the
first stage missed teaches nothing and is left out of training (but counted in the log's
validation figures).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from hashhop.code.encoder import CodeEncoder
from hashhop.code.index import CodeIndex, build_index
from hashhop.code.reranker import FEATURES, RERANK_DEPTH, Reranker
from hashhop.code.search import MAX_QUERY_CHARS, CodeSearcher, with_search_state
from hashhop.code.words import MIN_SUMMARY_WORDS, first_sentence

VALIDATION_SHARE = 0.1
"""Queries kept out of training to report what the reranker gained."""


def rerank_queries(trees: list[Path], exclude: tuple[str, ...]) -> tuple[CodeIndex, dict[str, set[str]]]:
    """(the trees' docstring-free index, summary -> full names of the symbols it opens);
    a summary too long to search with is left out."""
    answers: dict[str, set[str]] = {}
    for tree in trees:
        for symbol in build_index(tree, exclude)[0].symbols:
            summary = first_sentence(symbol.docstring)
            if len(summary.split()) >= MIN_SUMMARY_WORDS and len(summary) <= MAX_QUERY_CHARS:
                answers.setdefault(summary, set()).add(symbol.full_name)
    without = CodeIndex.combine([build_index(tree, exclude, docstrings=False)[0] for tree in trees])
    return without, answers


def rerank_examples(searcher: CodeSearcher, answers: dict[str, set[str]], queries: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features [Q, RERANK_DEPTH, F], labels [Q, RERANK_DEPTH], mask [Q, RERANK_DEPTH]),
    padded where the first stage found fewer candidates."""
    from tqdm import tqdm

    features = np.zeros((len(queries), RERANK_DEPTH, len(FEATURES)), dtype=np.float32)
    labels = np.zeros((len(queries), RERANK_DEPTH), dtype=np.float32)
    mask = np.zeros((len(queries), RERANK_DEPTH), dtype=bool)
    for row, query in enumerate(tqdm(queries, desc="reranker examples", unit="query")):
        hits = searcher.search(query, RERANK_DEPTH)
        if not hits:
            continue
        features[row, : len(hits)] = searcher.rerank_features(query, hits)
        labels[row, : len(hits)] = [hit.symbol.full_name in answers[query] for hit in hits]
        mask[row, : len(hits)] = True
    return features, labels, mask


def fit_reranker(
    features: np.ndarray, labels: np.ndarray, mask: np.ndarray, hidden: int, epochs: int, lr: float, seed: int
) -> Reranker:
    """Listwise training on the examples with an answer among their candidates."""
    import torch

    torch.manual_seed(seed)
    useful = labels.sum(1) > 0
    x = torch.from_numpy(features[useful])
    target = torch.from_numpy(labels[useful] / labels[useful].sum(1, keepdims=True))
    padding = torch.from_numpy(~mask[useful])
    model = torch.nn.Sequential(torch.nn.Linear(len(FEATURES), hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1, bias=False))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for batch in torch.randperm(len(x), generator=generator).split(64):
            logits = model(x[batch]).squeeze(-1).masked_fill(padding[batch], float("-inf"))
            loss = -(torch.log_softmax(logits, dim=-1).nan_to_num(neginf=0.0) * target[batch]).sum(-1).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    first, out = model[0], model[2]
    return Reranker(
        hidden_weight=first.weight.detach().T.numpy().copy(),
        hidden_bias=first.bias.detach().numpy().copy(),
        out_weight=out.weight.detach()[0].numpy().copy(),
        meta={"queries": int(useful.sum()), "hidden": hidden, "epochs": epochs},
    )


def accuracy_at_1(scores: np.ndarray, labels: np.ndarray, mask: np.ndarray) -> float:
    """Share of queries whose best-scored candidate is an answer (no answer among them: a miss)."""
    best = np.where(mask, scores, -np.inf).argmax(1)
    return float(labels[np.arange(len(labels)), best].mean()) if len(labels) else 0.0


def train_reranker(
    encoder: CodeEncoder, trees: list[Path], exclude: tuple[str, ...], hidden: int, epochs: int, lr: float, seed: int,
    log: Callable[[str], None] = print,
) -> Reranker:
    """Examples from `trees` searched with `encoder`; a reranker trained on 90% of their
    queries; Acc@1 of the first stage and of the reranker on the other 10% logged."""
    without, answers = rerank_queries(trees, exclude)
    searcher = CodeSearcher(with_search_state(without.with_encoder(encoder)), rerank=False)
    queries = sorted(answers)
    np.random.default_rng(seed).shuffle(queries)
    features, labels, mask = rerank_examples(searcher, answers, queries)
    n_validation = int(len(queries) * VALIDATION_SHARE)
    train, held = slice(n_validation, None), slice(0, n_validation)
    reranker = fit_reranker(features[train], labels[train], mask[train], hidden, epochs, lr, seed)
    scores = np.stack([reranker.logits(example) for example in features[held]]) if n_validation else np.zeros((0, RERANK_DEPTH))
    first_stage = -np.arange(RERANK_DEPTH, dtype=np.float32)[None].repeat(n_validation, 0)
    before = accuracy_at_1(first_stage, labels[held], mask[held])
    after = accuracy_at_1(scores, labels[held], mask[held])
    log(f"reranker: {len(queries):,} queries from {len(without.symbols):,} symbols; "
        f"validation ({n_validation:,} queries) Acc@1 {before:.3f} first stage -> {after:.3f} reranked")
    reranker.meta["validation"] = {"queries": n_validation, "first_stage_acc@1": round(before, 4), "reranked_acc@1": round(after, 4)}
    return reranker
