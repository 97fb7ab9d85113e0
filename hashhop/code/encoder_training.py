"""Train the code encoder: docstring summaries as queries, the code without its docstring as
the answer, InfoNCE over in-batch negatives. Torch is needed here and nowhere else in code
search: the trained arrays are exported to `CodeEncoder`, which runs on numpy.

The training trees are installed packages (torch, transformers, scipy ...); the evaluation
trees (the standard library and numpy) are `held_out`: a training pair whose body or whose
summary sentence also occurs there is dropped, so the benchmark asks about code the encoder
has not read.

    hashhop code train --config configs/code_encoder.toml --set steps=500
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import sysconfig
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from hashhop.code.encoder import PAD, CodeEncoder, symbol_bags, word_rows
from hashhop.code.index import build_index
from hashhop.code.reranker_training import train_reranker
from hashhop.code.symbols import Symbol
from hashhop.code.words import MIN_SUMMARY_WORDS, first_sentence, search_words
from hashhop.errors import HashHopError
from hashhop.tokenize import random_features
from hashhop.train_config import checked_config, read_config_data

MIN_LR_RATIO = 0.1
"""The learning rate decays along a cosine to this fraction of `lr`."""


class EncoderTrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    out_dir: str = "runs/code/encoder"
    packages: list[str] = Field(["torch", "transformers", "scipy", "sympy", "pandas", "sklearn"], min_length=1)
    """Top-level packages to learn from, found where Python would import them (never
    imported), or directories."""
    held_out: list[str] = ["stdlib", "numpy"]
    """Trees whose code must not be trained on: 'stdlib' or a package name."""
    rerank_packages: list[str] = []
    """Packages the reranker learns from (none: no reranker). The encoder never trains on
    them, so its scores there are scores on new code, as in a real search."""
    rerank_hidden: int = Field(32, ge=1)
    rerank_epochs: int = Field(20, ge=1)
    rerank_lr: float = Field(3e-3, gt=0)
    exclude: list[str] = ["tests", "test", "testing", "test_*.py", "site-packages"]
    dim: int = Field(128, ge=8)
    feature_dim: int = Field(128, ge=2)
    n_buckets: int = Field(4096, ge=1)
    min_count: int = Field(2, ge=1)
    """A word needs this many occurrences in training to get its own row."""
    max_query_words: int = Field(48, ge=1)
    max_name_words: int = Field(16, ge=1)
    max_body_words: int = Field(256, ge=1)
    steps: int = Field(3000, ge=1)
    batch_size: int = Field(512, ge=2)
    lr: float = Field(3e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    temperature: float = Field(0.05, gt=0)
    validation_pairs: int = Field(1000, ge=0)
    seed: int = Field(0, ge=0, lt=2**63)


def load_encoder_config(path: Path | None, overrides: list[str]) -> EncoderTrainConfig:
    return checked_config(EncoderTrainConfig, read_config_data(path, overrides))


def tree_of(name: str) -> Path:
    """'stdlib' -> this interpreter's standard library; a directory -> itself; a package ->
    its directory, found by `importlib.util.find_spec`, which locates a top-level package
    without running it."""
    if name == "stdlib":
        return Path(sysconfig.get_paths()["stdlib"])
    if Path(name).is_dir():
        return Path(name)
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise HashHopError(f"package {name!r} is not installed (or is a single module, not a tree)")
    return Path(next(iter(spec.submodule_search_locations)))


@dataclass(frozen=True)
class Pair:
    query: str
    symbol: Symbol
    """The symbol with its docstring removed: what a docstring-free index holds."""


def _body_key(symbol: Symbol) -> str:
    return hashlib.sha256(" ".join(symbol.code.split()).encode()).hexdigest()


def collect_pairs(config: EncoderTrainConfig, log: Callable[[str], None] = print) -> list[Pair]:
    """(summary, docstring-free code) pairs from the training packages, one per distinct
    body, none whose body or summary occurs in a held-out tree."""
    exclude = tuple(config.exclude)
    training_trees = {name: tree_of(name) for name in config.packages}  # a missing package fails first
    held_bodies: set[str] = set()
    held_summaries: set[str] = set()
    for name in config.held_out + config.rerank_packages:
        index, _ = build_index(tree_of(name), exclude)
        for symbol in index.symbols:
            held_bodies.add(_body_key(symbol))
            if symbol.docstring:
                held_summaries.add(first_sentence(symbol.docstring))
    seen: set[str] = set(held_bodies)
    pairs: list[Pair] = []
    for name, tree in training_trees.items():
        started = time.perf_counter()
        index, _ = build_index(tree, exclude, progress=True)
        kept = 0
        for symbol in index.symbols:
            summary = first_sentence(symbol.docstring)
            key = _body_key(symbol)
            if len(summary.split()) < MIN_SUMMARY_WORDS or key in seen or summary in held_summaries:
                continue
            seen.add(key)
            pairs.append(Pair(summary, symbol.without_docstring()))
            kept += 1
        log(f"{name}: {kept:,} pairs from {len(index.symbols):,} symbols ({time.perf_counter() - started:.0f} s)")
    return pairs


@dataclass
class TokenizedPairs:
    """Pairs as padded indices into `words` (PAD = -1), the form a batch is cut from."""

    words: list[str]
    query: np.ndarray
    name: np.ndarray
    body: np.ndarray


def _padded(sequences: list[list[int]], width: int) -> np.ndarray:
    out = np.full((len(sequences), width), PAD, dtype=np.int64)
    for row, sequence in enumerate(sequences):
        out[row, : min(width, len(sequence))] = sequence[:width]
    return out


def tokenize_pairs(pairs: list[Pair], config: EncoderTrainConfig) -> TokenizedPairs:
    positions: dict[str, int] = {}

    def at(words: list[str]) -> list[int]:
        return [positions.setdefault(word, len(positions)) for word in words]

    queries, names, bodies = [], [], []
    for pair in pairs:
        name, body = symbol_bags(pair.symbol)
        queries.append(at(search_words(pair.query)))
        names.append(at(name))
        bodies.append(at(body))
    return TokenizedPairs(
        words=list(positions),
        query=_padded(queries, config.max_query_words),
        name=_padded(names, config.max_name_words),
        body=_padded(bodies, config.max_body_words),
    )


def build_vocabulary(tokens: TokenizedPairs, min_count: int) -> dict[str, int]:
    counts = Counter(int(i) for array in (tokens.query, tokens.name, tokens.body) for i in array[array != PAD])
    frequent = sorted((index for index, count in counts.items() if count >= min_count), key=lambda i: tokens.words[i])
    return {tokens.words[index]: row for row, index in enumerate(frequent)}


def train_encoder(config: EncoderTrainConfig, log: Callable[[str], None] = print) -> CodeEncoder:
    """Collect pairs, train, and return the exported numpy encoder (also saved to out_dir)."""
    import torch
    from tqdm import tqdm

    from hashhop.code.encoder_model import EncoderModel, info_nce

    shared = sorted(set(config.packages) & set(config.rerank_packages))
    if shared:
        raise HashHopError(f"{shared[0]!r} is in both packages and rerank_packages: the reranker must learn on code the encoder never saw")
    torch.manual_seed(config.seed)
    pairs = collect_pairs(config, log)
    if len(pairs) < config.batch_size + config.validation_pairs:
        raise HashHopError(f"only {len(pairs):,} training pairs: fewer than batch_size + validation_pairs")
    order = np.random.default_rng(config.seed).permutation(len(pairs))
    pairs = [pairs[i] for i in order]
    tokens = tokenize_pairs(pairs, config)
    vocabulary = build_vocabulary(tokens, config.min_count)
    log(f"{len(pairs):,} pairs, {len(tokens.words):,} distinct words, {len(vocabulary):,} with their own row")
    rows = torch.from_numpy(word_rows(tokens.words, vocabulary, config.n_buckets))
    features = torch.from_numpy(random_features(tokens.words, config.feature_dim))
    model = EncoderModel(len(vocabulary) + config.n_buckets, config.dim, config.feature_dim, config.temperature)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    n_train = len(pairs) - config.validation_pairs
    arrays = {name: torch.from_numpy(getattr(tokens, name)) for name in ("query", "name", "body")}
    generator = torch.Generator().manual_seed(config.seed)
    progress = tqdm(range(config.steps), desc="training code encoder", unit="step")
    for step in progress:
        for group in optimizer.param_groups:
            cosine = 0.5 * (1 + math.cos(math.pi * step / config.steps))
            group["lr"] = config.lr * (MIN_LR_RATIO + (1 - MIN_LR_RATIO) * cosine)
        batch = torch.randint(n_train, (config.batch_size,), generator=generator)
        queries, codes = model(rows, features, *(arrays[name][batch] for name in ("query", "name", "body")))
        loss = info_nce(queries, codes, model.log_scale)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % 50 == 0:
            progress.set_postfix(loss=f"{loss.item():.3f}")
    encoder = model.export(vocabulary, config.n_buckets, meta={"config": config.model_dump(), "pairs": len(pairs)})
    if config.validation_pairs:
        held = slice(n_train, len(pairs))
        log(f"validation: {validation_report(encoder, pairs[held])}")
    if config.rerank_packages:
        trees = [tree_of(name) for name in config.rerank_packages]
        reranker = train_reranker(encoder, trees, tuple(config.exclude), config.rerank_hidden,
                                  config.rerank_epochs, config.rerank_lr, config.seed, log)
        encoder = replace(encoder, reranker=reranker)
    encoder.save(Path(config.out_dir))
    return encoder


def validation_report(encoder: CodeEncoder, pairs: list[Pair]) -> str:
    """Acc@1 and MRR@10 of each held-out summary among the held-out codes."""
    codes = encoder.encode_symbols([pair.symbol for pair in pairs])
    queries = np.stack([encoder.encode_query(pair.query) for pair in pairs])
    scores = queries @ codes.T
    ranks = (scores > np.diag(scores)[:, None]).sum(1)
    mrr = np.where(ranks < 10, 1.0 / (ranks + 1), 0.0).mean()
    return f"{len(pairs)} pairs, Acc@1 {np.mean(ranks == 0):.3f}, MRR@10 {mrr:.3f}"

