"""The long-term-memory model: a writer fills a memory of binary-keyed entries, a reader looks them up.

Write path, run once over the context, token by token, with a state of `conv_kernel - 1`
tokens (so it streams: `hashhop.memory.ingest`):

    recent_t = [e_t, e_t-1, ..., e_t-K+1]            the token's embedding and its predecessors'
    key_t    = sign(W_key recent_t)                  a code of `code_bits` bits
    write_t  = gate(recent_t) > 0                    a learned decision: is this position kept?

An entry is (key_t, token_t): the key is learned from the token's neighbourhood, the value is
the token itself, kept as its text. Nothing tells the writer where lines, `=` or quotes are:
it learns which positions are worth keeping (a small cost per written entry pushes it to keep
few) and what to key them by.

Read path, once per decoded token, at a cost that does not depend on the context length:

    x      = a small causal transformer over the last `window` tokens (the question, the header,
             the answer so far)
    for each of `n_reads` reads:
        query  = sign(W_query [x, recent_t, found_1 ... found_r-1])
        found_r = sum over the best entries and a null entry of softmax(read_scale * agreement)
                  times the entry token's embedding, times a gate computed from x
    logits = pointer head over the fixed vocabulary and the identifiers at hand

Agreement is 1 - 2 * Hamming distance / code_bits, the same number whether it is computed as a
dot product of +-1 codes (training) or by an index over packed bits (long contexts,
`hashhop.memory.store`). Each read may use what earlier reads found, so read r can follow hop
r without writing the chain out: that is how 2- and 3-hop skip answers become learnable.

Training reads every written entry of a sample with a softmax (exact); signs pass gradients
straight through; a soft write gate (log sigmoid added to the entry's score) lets the writer
learn which positions matter. Decoding keeps only entries whose gate is open and reads the
`top_k` best by agreement through the index.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hashhop.models.blocks import MLP, Block
from hashhop.models.config import ModelConfig
from hashhop.models.embedding import OutputHead, TokenEmbedding
from hashhop.models.transformer import CausalSelfAttention

WRITE_GATE_INIT = 3.0
"""Every position starts written (sigmoid(3) = 0.95): the reads learn before the write cost
prunes, instead of the cost emptying the memory before anything is learnt."""
BALANCE_COST = 0.1
"""Loss on each key bit's mean sign over the written entries. Without it the codes drifted to
one common pattern (every key agreed with every query at 0.93): reading all values at once is
a cheap first optimum, and it would leave the index one full bucket. (Balancing the queries
too, at 1.0, pulled a working induction-head start apart within 50 steps: a batch's queries
share their structure, so balancing them fights the lookup.)"""
NULL_SCORE_INIT = 0.5
"""A read's 'found nothing' entry starts at this fraction of read_scale: above chance
agreement among millions of random codes (~0.33 at 256 bits), below a match (1.0)."""


def sign_code(logits: torch.Tensor) -> torch.Tensor:
    """+-1 (>= 0 is +1, as the packed bits are) forward, identity gradient backward."""
    signs = torch.where(logits >= 0, 1.0, -1.0).to(logits.dtype)
    return logits + (signs - logits).detach()


def bit_imbalance(logits: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """BALANCE_COST * mean over bits of (weighted mean of tanh(logits))^2: zero when every bit
    is +1 as often as -1. logits [..., bits], weights [...]."""
    soft = torch.tanh(logits).flatten(0, -2)
    weights = weights.flatten()
    mean = (weights[:, None] * soft).sum(0) / weights.sum().clamp(min=1e-6)
    return BALANCE_COST * mean.pow(2).mean()


def recent(embedded: torch.Tensor, taps: int) -> torch.Tensor:
    """[..., T, d] -> [..., T, taps * d]: each position's vector, then its predecessors' (zeros
    before the start), so a linear map can single out any one of them exactly."""
    length = embedded.size(-2)
    padded = F.pad(embedded, (0, 0, taps - 1, 0))
    return torch.cat([padded[..., taps - 1 - j : taps - 1 - j + length, :] for j in range(taps)], -1)


class Writer(nn.Module):
    """Embeddings [..., T, d] -> key logits [..., T, code_bits] and write-gate logits [..., T]."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        d, self.taps = config.d_model, config.conv_kernel
        self.norm = nn.RMSNorm(d)
        self.key = nn.Linear(self.taps * d, config.code_bits, bias=False)
        self.gate_hidden = nn.Linear(self.taps * d, d)
        self.gate = nn.Linear(d, 1)
        nn.init.constant_(self.gate.bias, WRITE_GATE_INIT)

    def forward(self, embedded: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        window = recent(self.norm(embedded), self.taps)
        return self.key(window), self.gate(F.gelu(self.gate_hidden(window))).squeeze(-1)


class Read(nn.Module):
    """One lookup: a query code from what is known so far; a gate, from the local context, on
    whether what it found is used at all (a 1-hop question has no second hop to follow)."""

    def __init__(self, known_dim: int, d_model: int, code_bits: int, read_scale: float):
        super().__init__()
        self.query = nn.Linear(known_dim, code_bits, bias=False)
        self.null = nn.Parameter(torch.tensor(NULL_SCORE_INIT * read_scale))
        self.use = nn.Linear(d_model, 1)


@dataclass
class Found:
    """What a lookup returns for N queries over M candidate entries each."""

    agreement: torch.Tensor
    """[N, M] in [-1, 1]: 1 - 2 * Hamming distance / code_bits."""
    bias: torch.Tensor
    """[N, M] added to the scaled agreement: log of the write gate in training, -inf on padding."""
    values: torch.Tensor
    """[N, M, d] the embeddings of the entries' tokens."""


Lookup = Callable[[torch.Tensor], Found]
"""Query logits [N, code_bits] (their signs are the query code) -> the entries they meet."""


class MemoryModel(nn.Module):
    """Writer, local decoder and reads; `forward` has the same contract as LanguageModel's."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        d = config.d_model
        self.embedding = TokenEmbedding(config.n_fixed, config.feature_dim, d)
        self.writer = Writer(config)
        self.local = nn.ModuleList(Block(config, CausalSelfAttention(config)) for _ in range(config.n_layers))
        self.local_norm = nn.RMSNorm(d)
        self.recent_norm = nn.RMSNorm(d)
        known = d + config.conv_kernel * d
        self.reads = nn.ModuleList(
            Read(known + r * d, d, config.code_bits, config.read_scale) for r in range(config.n_reads)
        )
        self.combine = nn.Linear(config.n_reads * d, d, bias=False)
        self.mlp_norm, self.mlp = nn.RMSNorm(d), MLP(d)
        self.head = OutputHead(d)
        self.auxiliary_loss = torch.zeros(())
        """The write cost of the last forward pass; training adds it to the loss."""
        self._init_lookups()

    def _init_lookups(self) -> None:
        """Start every lookup as an induction head: an entry's key is one projection P of the
        tokens before it, a query is P of the tokens it has seen, so a query first matches the
        entries that follow what it sees, and reads out the token that came next.

        Keys: P(e_t-1 + ... + e_t-K+1), the entry's own token left out (it is what is read).
        Read 1: P(e_t + ... + e_t-K+2), its recent tokens one step behind the keys'. Read r:
        P(what read r - 1 found). What reads find enters the residual stream as is (the
        value/output half of mimetic initialisation, as in the language models). Measured:
        independent random projections learnt slowly; a key and query both P(all recent
        tokens) matched a position to itself and to entries sharing its own token, and fell
        into those shortcuts (RESULTS.md)."""
        d, taps = self.config.d_model, self.config.conv_kernel
        shared = self.writer.key.weight[:, :d].detach().clone()
        with torch.no_grad():
            self.writer.key.weight.zero_()
            self.writer.key.weight[:, d:] = shared.repeat(1, taps - 1)
            for r, read in enumerate(self.reads):
                read.query.weight.zero_()
                if r == 0:
                    read.query.weight[:, d : d + (taps - 1) * d] = shared.repeat(1, taps - 1)
                else:
                    read.query.weight[:, -d:] = shared
            self.combine.weight.copy_(torch.eye(d).repeat(1, self.config.n_reads))

    def local_state(self, embedded: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """For decode positions (rows, cols) of embedded [B, T, d]: the local decoder's output
        [N, d] over the `window` tokens ending there, and their recent tokens [N, K * d]."""
        window = self.config.window
        padded = F.pad(embedded, (0, 0, window - 1, 0))
        span = cols[:, None] + torch.arange(window, device=cols.device)
        tokens = padded[rows[:, None], span]
        x = tokens
        for block in self.local:
            x = block(x)
        last = recent(self.recent_norm(tokens[:, -self.config.conv_kernel :]), self.config.conv_kernel)
        return x[:, -1], last[:, -1]

    def read(self, x: torch.Tensor, recent_tokens: torch.Tensor, lookup: Lookup) -> torch.Tensor:
        """The reads, one after another, then the hidden state the pointer head scores [N, d]."""
        context = self.local_norm(x)
        known = [context, recent_tokens]
        found_all = []
        for read in self.reads:
            found = lookup(read.query(torch.cat(known, -1)))
            scores = self.config.read_scale * found.agreement + found.bias
            null = read.null.expand(scores.size(0), 1)
            weights = torch.softmax(torch.cat([null, scores], -1), -1)[:, 1:]
            value = torch.bmm(weights.unsqueeze(1), found.values).squeeze(1)
            value = value * torch.sigmoid(read.use(context))
            known.append(value)
            found_all.append(value)
        hidden = x + self.combine(torch.cat(found_all, -1))
        return hidden + self.mlp(self.mlp_norm(hidden))

    def forward(
        self,
        ids: torch.Tensor,
        features: torch.Tensor | None = None,
        n_identifiers: torch.Tensor | None = None,
        at: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Teacher-forced logits, as LanguageModel.forward: [B, T, V], or [N, V] at `at`.

        The context of a row is everything up to its first `at` position (all of it when `at`
        is None); every context token goes through the writer, and each decode position reads
        the entries written strictly before it. (Its own entry would be keyed by the same
        recent tokens as its query: reading it was a shortcut training fell into.) Tokens after the context (the answer being
        written) reach the decoder only through its window, as in decoding.
        """
        batch, length = ids.shape
        every_position = at is None
        if at is None:
            at = torch.ones_like(ids, dtype=torch.bool)
        identifiers = self.embedding.identifiers(features)
        embedded = self.embedding(ids, identifiers)
        key_logits, gate_logits = self.writer(embedded)
        positions = torch.arange(length, device=ids.device)
        first_target = at.int().argmax(1) + 1
        context_len = torch.full_like(first_target, length) if every_position else first_target
        written = positions[None, :] < context_len[:, None]
        write_weight = torch.sigmoid(gate_logits) * written
        self.auxiliary_loss = self.config.write_cost * write_weight.sum() / written.sum()
        self.auxiliary_loss = self.auxiliary_loss + bit_imbalance(key_logits, write_weight)

        rows, cols = at.nonzero(as_tuple=True)
        codes, gates = sign_code(key_logits), F.logsigmoid(gate_logits)
        visible = written[rows] & (positions[None, :] < cols[:, None])

        def lookup(query_logits: torch.Tensor) -> Found:
            query = sign_code(query_logits)
            agreement = torch.bmm(codes[rows], query.unsqueeze(-1)).squeeze(-1) / self.config.code_bits
            bias = gates[rows].masked_fill(~visible, float("-inf"))
            return Found(agreement, bias, embedded[rows])

        hidden = self.read(*self.local_state(embedded, rows, cols), lookup)
        row_identifiers = None if identifiers is None else identifiers[rows]
        row_counts = None if n_identifiers is None else n_identifiers[rows]
        logits = self.head(hidden.unsqueeze(1), self.embedding, row_identifiers, row_counts).squeeze(1)
        if every_position:
            return logits.view(batch, length, -1)
        return logits

    def state_bytes(self, seq_len: int) -> int:
        """Kept per sequence at decode time besides the memory: the window's tokens (as ids)."""
        return 8 * min(seq_len, self.config.window)


def build(config: ModelConfig) -> MemoryModel:
    return MemoryModel(config)
