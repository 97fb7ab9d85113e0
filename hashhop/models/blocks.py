"""The layout every architecture shares: embed, n pre-norm blocks, tied pointer head.

An architecture only supplies its sequence mixer (attention, gated linear attention, ...):
a module mapping [B, T, d] -> [B, T, d] causally, with `state_bytes(seq_len)` saying what it
keeps per sequence at inference, a fused input projection `qkv` (values last) and an output
projection `out`. Each block is

    x = x + conv(norm(x))     optional short causal depthwise convolution
    x = x + mixer(norm(x))
    x = x + mlp(norm(x))

The convolution lets each token see its few predecessors, so the VALUE of a `KEY = VALUE`
line can carry its KEY: one attention layer can then look a key up by content.

Decoding can be incremental where the mixer keeps a cache (`empty_cache`, the transformer's
KV cache): `prefill` runs the context once, then each `decode_step` feeds one token and costs
what its attention over the cached past costs, instead of rerunning the whole sequence.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from hashhop.errors import HashHopError
from hashhop.model_config import ModelConfig
from hashhop.models.embedding import OutputHead, TokenEmbedding

BYTES_PER_FLOAT = 4
CONV_INIT_STD = 1.5
"""Large enough that each token's neighbours are loud in its residual stream from the start:
smaller convolution weights leave one-layer recall on a long plateau before it is learnt."""
MLP_EXPANSION = 4


class ShortConv(nn.Module):
    """Causal depthwise convolution over time: out[t] mixes x[t - kernel + 1 .. t] per channel."""

    def __init__(self, d_model: int, kernel: int):
        super().__init__()
        self.kernel = kernel
        self.conv = nn.Conv1d(d_model, d_model, kernel, groups=d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.extend(x, x.new_zeros(x.size(0), self.kernel - 1, x.size(2)))[0]

    def extend(self, x: torch.Tensor, past: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Convolve x [B, T, d] that follows `past` [B, kernel - 1, d], the inputs just before it
        (zeros at a sequence's start): the output, and the `past` of whatever follows x."""
        window = torch.cat([past, x], dim=1)
        out = self.conv(window.transpose(1, 2)).transpose(1, 2)
        # A copy, not a view: a view would keep the whole window (the context, at prefill) alive.
        return out, window[:, x.size(1) :].clone()

    def state_bytes(self) -> int:
        return (self.kernel - 1) * self.conv.in_channels * BYTES_PER_FLOAT


class MixerCache(Protocol):
    """A mixer's inference state for a batch, updated in place as tokens arrive."""

    @property
    def nbytes(self) -> int:
        """Bytes of state the batch keeps: what `state_bytes` counts, times the batch size."""
        ...


@dataclass
class BlockCache:
    conv_past: torch.Tensor | None
    """[B, kernel - 1, d]: the convolution's last normalised inputs (None without a conv)."""
    mixer: MixerCache


@dataclass
class DecodeCache:
    """A batch's inference state after `position` tokens: what `decode_step` reads and updates."""

    blocks: list[BlockCache]
    identifiers: torch.Tensor | None
    """[B, U, d], projected once at prefill: decoding never introduces a new identifier."""
    n_identifiers: torch.Tensor | None
    position: int = 0

    @property
    def nbytes(self) -> int:
        """Bytes of state the batch keeps, the measured counterpart of batch * state_bytes(position).
        Identifiers are not counted: they are the sequence's vocabulary, which every
        architecture's pointer head needs, not its memory of the context."""
        conv = sum(b.conv_past.nbytes for b in self.blocks if b.conv_past is not None)
        return conv + sum(b.mixer.nbytes for b in self.blocks)


class MLP(nn.Module):
    def __init__(self, d_model: int):
        super().__init__()
        self.up = nn.Linear(d_model, MLP_EXPANSION * d_model, bias=False)
        self.out = nn.Linear(MLP_EXPANSION * d_model, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(F.gelu(self.up(x)))


class Block(nn.Module):
    def __init__(self, config: ModelConfig, mixer: nn.Module):
        super().__init__()
        d = config.d_model
        self.conv = ShortConv(d, config.conv_kernel) if config.conv_kernel else None
        self.conv_norm = nn.RMSNorm(d) if config.conv_kernel else None
        self.mixer_norm, self.mixer = nn.RMSNorm(d), mixer
        self.mlp_norm, self.mlp = nn.RMSNorm(d), MLP(d)

    def forward(self, x: torch.Tensor, cache: BlockCache | None = None) -> torch.Tensor:
        """x [B, T, d]: a whole sequence, or with a cache the tokens that follow it (updated)."""
        if self.conv is not None:
            if cache is None:
                x = x + self.conv(self.conv_norm(x))
            else:
                mixed, cache.conv_past = self.conv.extend(self.conv_norm(x), cache.conv_past)
                x = x + mixed
        mixer_input = self.mixer_norm(x)
        x = x + (self.mixer(mixer_input) if cache is None else self.mixer(mixer_input, cache.mixer))
        return x + self.mlp(self.mlp_norm(x))

    def empty_cache(self, batch: int, reserve: int) -> BlockCache:
        """The state before a sequence's first token; the mixer reserves room for `reserve`."""
        conv_past = None
        if self.conv is not None:
            weight = self.conv.conv.weight
            conv_past = weight.new_zeros(batch, self.conv.kernel - 1, weight.size(0))
        return BlockCache(conv_past, self.mixer.empty_cache(reserve))

    def state_bytes(self, seq_len: int) -> int:
        conv = self.conv.state_bytes() if self.conv is not None else 0
        return conv + self.mixer.state_bytes(seq_len)


class LanguageModel(nn.Module):
    """Logits [B, T, n_fixed + U]: the fixed vocabulary, then this sequence's U identifiers."""

    def __init__(self, config: ModelConfig, make_mixer: Callable[[ModelConfig], nn.Module]):
        super().__init__()
        self.config = config
        self.embedding = TokenEmbedding(config.n_fixed, config.feature_dim, config.d_model)
        self.blocks = nn.ModuleList(
            Block(config, make_mixer(config)) for _ in range(config.n_layers)
        )
        self.head = OutputHead(config.d_model)
        self._init_weights()

    def _init_weights(self) -> None:
        """Unit-scale activations: linear weights ~ N(0, 1/fan_in), projections back into the
        residual stream smaller by sqrt(2 n_layers) as in GPT-2. Each mixer starts as a copier:
        out = value^T, so out @ value ~ identity and what a head attends to reaches the pointer
        head intact (the value/output half of mimetic initialisation, Trockman & Kolter 2023).
        Without it a random value/output map makes attending to identifiers costly at first,
        and recall waits on a long, seed-dependent plateau."""
        residual_scale = 1 / math.sqrt(2 * self.config.n_layers)
        for name, module in self.blocks.named_modules():
            if isinstance(module, nn.Linear):
                std = module.in_features**-0.5 * (residual_scale if name.endswith(".out") else 1)
                nn.init.normal_(module.weight, std=std)
            elif isinstance(module, nn.Conv1d):
                nn.init.normal_(module.weight, std=CONV_INIT_STD)
        with torch.no_grad():
            for block in self.blocks:
                values = block.mixer.qkv.weight[2 * self.config.attention_width :]
                block.mixer.out.weight.copy_(values.T * residual_scale)

    def forward(
        self,
        ids: torch.Tensor,
        features: torch.Tensor | None = None,
        n_identifiers: torch.Tensor | None = None,
        at: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits [B, T, V]; or, given a bool mask `at` [B, T], logits [N, V] at its N True
        positions in row-major order. Losses and decoding need only a few positions, and
        with a 49K-token vocabulary the full [B, T, V] tensor would dominate memory."""
        self._check_length(ids.size(1))
        identifiers = self.embedding.identifiers(features)
        x = self.embedding(ids, identifiers)
        for block in self.blocks:
            x = block(x)
        if at is None:
            return self.head(x, self.embedding, identifiers, n_identifiers)
        rows = at.nonzero()[:, 0]
        # Each selected position becomes a sequence of one token with its row's identifiers.
        picked = x[at].unsqueeze(1)
        row_identifiers = None if identifiers is None else identifiers[rows]
        row_counts = None if n_identifiers is None else n_identifiers[rows]
        return self.head(picked, self.embedding, row_identifiers, row_counts).squeeze(1)

    def _check_length(self, length: int) -> None:
        if self.config.max_len and length > self.config.max_len:
            raise HashHopError(f"sequence of {length} tokens exceeds max_len {self.config.max_len}")

    @property
    def decodes_incrementally(self) -> bool:
        """Whether every mixer keeps a cache, so `prefill` and `decode_step` work."""
        return all(hasattr(block.mixer, "empty_cache") for block in self.blocks)

    def prefill(
        self,
        ids: torch.Tensor,
        features: torch.Tensor | None = None,
        n_identifiers: torch.Tensor | None = None,
        max_new_tokens: int = 0,
    ) -> tuple[torch.Tensor, DecodeCache]:
        """Run contexts ids [B, T] (all of length T) once: logits at their last position [B, V]
        and the cache to decode from. `max_new_tokens` reserves cache room up front; decoding
        further still works, the cache then grows."""
        if not self.decodes_incrementally:
            mixer = type(self.blocks[0].mixer).__name__
            raise HashHopError(f"{mixer} has no incremental decode path; call the model instead")
        batch, length = ids.shape
        identifiers = self.embedding.identifiers(features)
        blocks = [block.empty_cache(batch, length + max_new_tokens) for block in self.blocks]
        cache = DecodeCache(blocks, identifiers, n_identifiers)
        return self._advance(ids, cache), cache

    def decode_step(
        self, next_ids: torch.Tensor, cache: DecodeCache
    ) -> tuple[torch.Tensor, DecodeCache]:
        """Feed one token per row, next_ids [B], at position cache.position: its logits [B, V].
        The cache is updated in place (and returned, for chaining)."""
        return self._advance(next_ids[:, None], cache), cache

    def _advance(self, ids: torch.Tensor, cache: DecodeCache) -> torch.Tensor:
        """Run ids [B, T] that follow the cached tokens, updating the cache: the logits [B, V] at
        the last of them."""
        self._check_length(cache.position + ids.size(1))
        x = self.embedding(ids, cache.identifiers)
        for block, block_cache in zip(self.blocks, cache.blocks):
            x = block(x, block_cache)
        cache.position += ids.size(1)
        last = self.head(x[:, -1:], self.embedding, cache.identifiers, cache.n_identifiers)
        return last.squeeze(1)

    def state_bytes(self, seq_len: int) -> int:
        """Bytes kept per sequence at inference after seq_len tokens, at fp32."""
        return sum(block.state_bytes(seq_len) for block in self.blocks)
