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
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from hashhop.errors import HashHopError
from hashhop.models.config import ModelConfig
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
        x = F.pad(x.transpose(1, 2), (self.kernel - 1, 0))
        return self.conv(x).transpose(1, 2)

    def state_bytes(self) -> int:
        return (self.kernel - 1) * self.conv.in_channels * BYTES_PER_FLOAT


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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.conv is not None:
            x = x + self.conv(self.conv_norm(x))
        x = x + self.mixer(self.mixer_norm(x))
        return x + self.mlp(self.mlp_norm(x))

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
        if self.config.max_len and ids.size(1) > self.config.max_len:
            raise HashHopError(
                f"sequence of {ids.size(1)} tokens exceeds max_len {self.config.max_len}"
            )
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

    def state_bytes(self, seq_len: int) -> int:
        """Bytes kept per sequence at inference after seq_len tokens, at fp32."""
        return sum(block.state_bytes(seq_len) for block in self.blocks)
