"""The long-term-memory model: a writer fills a memory of binary-keyed entries, a reader looks them up.

Write path, run once over the context, token by token, with a state of `conv_kernel - 1`
tokens (so it streams: `hashhop.memory.ingest`):

    before_t = [e_t-1, ..., e_t-K+1]                  the embeddings of the tokens before t
    key_t    = sign(address(before_t))               a code of `code_bits` bits
    gate_t   = gate(e_t, before_t)                   kept if gate_t > GATE_FLOOR

An entry is (key_t, token_t, log sigmoid(gate_t)): the key is learned from the tokens before
the entry, the value is the token itself, kept as its text. Nothing tells the writer where
lines, `=` or quotes are: it learns which positions are worth keeping (a cost per kept entry,
`write_price`) and what to key them by.

Read path, once per decoded token, at a cost that does not depend on the context length:

    x      = a small causal transformer over the last `window` tokens (the question, the header,
             the answer so far)
    for each of `n_reads` reads:
        guess  = W_guess [x, e_t, e_t-1, ..., found_1 ... found_r-1]   tokens the wanted entry follows
        query  = sign(address(guess))                                   the writer's own map
        found_r = sum over the best entries and a null entry of
                  softmax(read_scale * agreement + gate score) times the entry token's embedding
                  (decoding hands the next read the top entry's embedding instead: `read`)
    logits = pointer head over the fixed vocabulary and the identifiers at hand, from
             x + sum_r gate_r(x) * found_r

Agreement is 1 - 2 * Hamming distance / code_bits, the same number whether it is computed as a
dot product of +-1 codes (training) or by an index over packed bits (long contexts,
`hashhop.memory.store`). Keys and queries share `address`, so a read that guesses an entry's
predecessors meets its key exactly; each read may use what earlier reads found, so read r can
follow hop r without writing the chain out: that is how 2- and 3-hop skip answers are learnt.

Training reads every kept entry of the batch (a row's own entries before the position, every
other row's as distractors) with a softmax; signs pass tanh's gradient straight through.
Decoding reads the `top_k` best of what the index finds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hashhop.model_config import ModelConfig
from hashhop.models.blocks import MLP, Block
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
SEPARATOR_WEIGHT = 0.5
"""In the initial address map, the token between an entry and its source counts half as much
as the source: a query whose source matches but whose separator differs (a chain's middle
link is written `=`, its last `= '`) still agrees with its entry more than with the entries
that share only the separator."""
GATE_FLOOR = -6.0
"""An entry whose write-gate logit is at or below this is not kept. A kept entry's score gets
log sigmoid(gate) added, in training and decoding alike (the memory stores it), so a read
meets the same entries with the same scores in both. (Measured: a soft gate in training and
'kept if the logit is above 0' in decoding dropped the half-open entries training had been
reading, and every setting fell to chance.) An entry at the floor weighs sigmoid(-6) = 0.25%
of an open one with the same agreement.

A read feels its entry's gate only once log sigmoid(gate) nears -8 (a match scores ~18
against the null entry's 10), below this floor, so `write_price` can sink needed gates to
the floor unopposed: the shipped recipe is 100% batch exact at its last step (400), but run
for 800 steps it fell to 0% from step 440 (RESULTS.md). A floor of -12 held 800 steps at
100%, but that model stopped closing its answers on short contexts (1-hop 50% at 1K)."""
ALIGN_COST = 1.0
"""Training pulls each read's query towards the key of the entry it weighs most (a hinge on
every bit: query logit times key sign >= 1), in proportion to that weight. Without it the
best matches agreed at ~0.8, plenty for a softmax over a training prompt, but with 10% of its
bits wrong a query's prefix misses its entry's bucket in the index: at 100K tokens 1/2/3-hop
fell to 97.5/95/92% even with 512 probes; with it, 100/99/99.5% with 32 (RESULTS.md)."""
NULL_SCORE_INIT = 0.5
"""A read's 'found nothing' entry starts at this fraction of read_scale: above chance
agreement among millions of random codes (~0.33 at 256 bits), below a match (1.0)."""


def sign_code(logits: torch.Tensor) -> torch.Tensor:
    """+-1 (>= 0 is +1, as the packed bits are) forward; tanh's gradient backward.

    A saturating straight-through estimator: a bit far from zero is settled and gets almost no
    gradient. Measured (RESULTS.md): with the identity gradient, the reads of a model that was
    exact on 1-hop questions at step 100 kept being pushed after every bit had its sign, their
    softmax spread over more and more entries (top weight 0.83 -> 0.15) and exact match fell
    to 17% by step 400; with tanh's gradient the same run stays at 100%.
    """
    soft = torch.tanh(logits)
    signs = torch.where(logits >= 0, 1.0, -1.0).to(logits.dtype)
    return soft + (signs - soft).detach()


def bit_imbalance(logits: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """BALANCE_COST * mean over bits of (weighted mean of tanh(logits))^2: zero when every bit
    is +1 as often as -1. logits [..., bits], weights [...]."""
    soft = torch.tanh(logits).flatten(0, -2)
    weights = weights.flatten()
    mean = (weights[:, None] * soft).sum(0) / weights.sum().clamp(min=1e-6)
    return BALANCE_COST * mean.pow(2).mean()


def entry_bias(gate_logits: torch.Tensor) -> torch.Tensor:
    """What a kept entry adds to its read score, log sigmoid(gate); -inf where it is not kept."""
    return F.logsigmoid(gate_logits).masked_fill(gate_logits <= GATE_FLOOR, float("-inf"))


def write_price(gate_logits: torch.Tensor) -> torch.Tensor:
    """What keeping an entry costs, in units of `write_cost`: softplus(gate - GATE_FLOOR) /
    -GATE_FLOOR, 1 at gate 0, 0 far below the floor, rising with slope 1/6 above it.

    The slope is the point. A cost of sigmoid(gate - GATE_FLOOR) (the probability of being
    kept) is flat for an open gate, so it never closed one: the previous model kept 2 entries a
    line, the value and the next line's key, which no read can use (lines are shuffled), at
    100 bytes a line. With a price that keeps pushing, the same recipe keeps 1.0 entry a line
    of a 1-hop prompt (50 bytes), and 3-hop skip at 1M tokens went from 191 to 197 of 200
    (RESULTS.md)."""
    return F.softplus(gate_logits - GATE_FLOOR) / -GATE_FLOOR


def top_entry(weights: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """The value [N, d] of the entry each read weighs most, or zeros where its 'found nothing'
    entry (weight 1 - weights.sum(-1)) outweighs it. weights [N, M]; values [M, d] or [N, M, d]."""
    top_weight, top = weights.max(-1)
    hard = values[top] if values.dim() == 2 else values[torch.arange(len(top), device=top.device), top]
    return hard * (top_weight > 1 - weights.sum(-1)).unsqueeze(-1)


def recent(embedded: torch.Tensor, taps: int) -> torch.Tensor:
    """[..., T, d] -> [..., T, taps * d]: each position's vector, then its predecessors' (zeros
    before the start), so a linear map can single out any one of them exactly."""
    length = embedded.size(-2)
    padded = F.pad(embedded, (0, 0, taps - 1, 0))
    return torch.cat([padded[..., taps - 1 - j : taps - 1 - j + length, :] for j in range(taps)], -1)


class Writer(nn.Module):
    """Embeddings [..., T, d] -> key logits [..., T, code_bits] and write-gate logits [..., T].

    An entry's key is `address` of the tokens before it (its own token is what is read, and
    is left out); the gate sees them and the token itself."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        d, self.taps = config.d_model, config.conv_kernel
        self.norm = nn.RMSNorm(d)
        self.address = nn.Linear((self.taps - 1) * d, config.code_bits, bias=False)
        self.gate_hidden = nn.Linear(self.taps * d, d)
        self.gate = nn.Linear(d, 1)
        nn.init.constant_(self.gate.bias, WRITE_GATE_INIT)

    def forward(self, embedded: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        d = embedded.size(-1)
        window = recent(self.norm(embedded), self.taps)
        return self.address(window[..., d:]), self.gate(F.gelu(self.gate_hidden(window))).squeeze(-1)


class Read(nn.Module):
    """One lookup: from what is known so far, a guess of the tokens that precede the entry
    wanted (in embedding space), which the writer's own `address` turns into a query code;
    and a gate, from the local context, on whether what it found goes into the answer (a
    1-hop question has no second hop to follow)."""

    def __init__(self, known_dim: int, d_model: int, taps: int, read_scale: float):
        super().__init__()
        self.guess = nn.Linear(known_dim, (taps - 1) * d_model, bias=False)
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
    """[N, M, d] the embeddings of the entries' tokens ([M, d] when every query meets the same)."""
    codes: torch.Tensor | None = None
    """[M, code_bits] the entries' +-1 keys, in training only (for ALIGN_COST and the keep loss)."""


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
            Read(known + r * d, d, config.conv_kernel, config.read_scale) for r in range(config.n_reads)
        )
        self.combine = nn.Linear(config.n_reads * d, d, bias=False)
        self.mlp_norm, self.mlp = nn.RMSNorm(d), MLP(d)
        self.head = OutputHead(d)
        self.auxiliary_loss = torch.zeros(())
        """The write cost, keep loss, key balance and read alignment of the last forward pass;
        training adds it to the loss."""
        self.alignment_loss = torch.zeros(())
        self.entry_use = torch.zeros(())
        """With keep_cost, per batch position [B * T]: the most any read of the last training
        pass used its entry (softmax weight times the read's use gate), the keep loss's target."""
        self._init_lookups()

    def _init_lookups(self) -> None:
        """Start every lookup as a skip-bigram induction head, so that reads can chain.

        Keys and queries share one map, the writer's `address`, so a read that guesses an
        entry's preceding tokens exactly meets its key exactly, whatever training does to the
        map. `address` starts as P(e_t-2) + SEPARATOR_WEIGHT * S(e_t-1) with independent random
        P and S; read 1 guesses the predecessors (e_t-1, e_t-2) to be its own (e_t, e_t-1), so
        it first finds the entries two tokens after what it holds; read r guesses (e_t, what
        read r - 1 found), the next hop. Nothing in it names a token: which tokens sit
        between, and which entries are worth keeping, is left to training. What reads find
        enters the residual stream as is (the value/output half of mimetic initialisation).

        Measured (RESULTS.md): separate key and query maps drifted apart in training (the
        best match's agreement fell from 1.0 to ~0.65, enough in a short training prompt, not
        among millions of entries); keys P(e_t-1 + e_t-2), a sum that forgets order, gave
        the entry after a value the same key as the value's successor, and 2-hop questions
        stayed at chance; a key and query of all recent tokens matched a position to itself."""
        d = self.config.d_model
        address = self.writer.address.weight
        with torch.no_grad():
            address[:, :d] *= SEPARATOR_WEIGHT
            address[:, 2 * d :] = 0
            eye = torch.eye(d)
            for r, read in enumerate(self.reads):
                read.guess.weight.zero_()
                # a query's input: [local state (d), recent tokens e_t ... e_t-K+1, found 1 ... r-1]
                read.guess.weight[:d, d : 2 * d] = eye
                held = 2 * d if r == 0 else read.guess.in_features - d
                read.guess.weight[d : 2 * d, held : held + d] = eye
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

    def read(self, x: torch.Tensor, recent_tokens: torch.Tensor, lookup: Lookup, pass_top: bool = False) -> torch.Tensor:
        """The reads, one after another, then the hidden state the pointer head scores [N, d].

        Each read's query sees what earlier reads found; whether a read's find goes into the
        answer is a separate gate from the local context (for a 1-hop question, reads 2 and 3
        still look, and find nothing worth using).

        What a read hands the next read's query is the softmax mix of what it found in
        training, and with `pass_top` (decoding) the value of the entry it weighs most
        (`top_entry`). The next query guesses the found token's neighbours, so it is exact
        only when built from that token's own embedding; among millions of entries the mix
        carries a share of near misses into it, which a training prompt never has. Measured
        with the same trained model at 10M tokens (RESULTS.md): 3-hop skip 93 of 100 passing
        the mix, 99 of 100 passing the top entry. Trained with the top entry (gradient through
        the mix), the shipped recipe learnt nothing (37.5% batch exact after 400 steps)."""
        context = self.local_norm(x)
        known = [context, recent_tokens]
        used = []
        self.alignment_loss = torch.zeros(())
        self.entry_use = torch.zeros(())
        for read in self.reads:
            query_logits = self.writer.address(read.guess(torch.cat(known, -1)))
            found = lookup(query_logits)
            scores = self.config.read_scale * found.agreement + found.bias
            null = read.null.expand(scores.size(0), 1)
            weights = torch.softmax(torch.cat([null, scores], -1), -1)[:, 1:]
            if found.codes is not None:
                top_weight, top = weights.detach().max(-1)
                misfit = F.relu(1 - query_logits * found.codes[top].detach()).mean(-1)
                self.alignment_loss = self.alignment_loss + ALIGN_COST * (top_weight * misfit).mean()
            value = torch.matmul(weights.unsqueeze(1), found.values).squeeze(1)
            known.append(top_entry(weights, found.values) if pass_top else value)
            use = torch.sigmoid(read.use(context))
            used.append(value * use)
            if found.codes is not None and self.config.keep_cost:
                with torch.no_grad():
                    self.entry_use = torch.maximum(self.entry_use, (weights * use).amax(0))
        hidden = x + self.combine(torch.cat(used, -1))
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
        the entries its row wrote strictly before it and, when `at` is given, every entry the
        batch's other rows wrote in their contexts. Its own entry would be keyed by the same
        recent tokens as its query: reading it was a shortcut training fell into. The other
        rows' hashes are unrelated, so they are distractors, as a longer context would hold:
        a model trained on one short prompt per read let its best matches agree at ~0.7,
        enough among 100 entries, and its 1-hop accuracy fell to 45% at 10K tokens. Tokens
        after the context (the answer being written) reach the decoder only through its
        window, as in decoding.
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
        price = write_price(gate_logits) * written
        self.auxiliary_loss = self.config.write_cost * price.sum() / written.sum()
        self.auxiliary_loss = self.auxiliary_loss + bit_imbalance(key_logits, write_weight)

        rows, cols = at.nonzero(as_tuple=True)
        codes = sign_code(key_logits).flatten(0, 1)
        gates = entry_bias(gate_logits).flatten()
        # Other rows' contexts are distractors only where contexts are defined (targets given);
        # with every position decoded, rows are independent causal sequences.
        other_row = (torch.arange(batch, device=ids.device)[None, :, None] != rows[:, None, None]) & (not every_position)
        earlier = positions[None, None, :] < cols[:, None, None]
        visible = (written[None] & (other_row | earlier)).flatten(1)
        bias = gates[None].masked_fill(~visible, float("-inf"))
        values = embedded.flatten(0, 1)

        def lookup(query_logits: torch.Tensor) -> Found:
            agreement = sign_code(query_logits) @ codes.T / self.config.code_bits
            return Found(agreement, bias, values, codes)

        hidden = self.read(*self.local_state(embedded, rows, cols), lookup)
        self.auxiliary_loss = self.auxiliary_loss + self.alignment_loss
        if self.config.keep_cost:
            kept_target = self.entry_use.view_as(gate_logits)[written]
            keep_loss = F.binary_cross_entropy_with_logits(gate_logits[written], kept_target)
            self.auxiliary_loss = self.auxiliary_loss + self.config.keep_cost * keep_loss
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
