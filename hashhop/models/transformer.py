"""Decoder-only transformer: causal multi-head self-attention (PyTorch SDPA), RoPE or no positions.

With one token per hash, recall is a key-value lookup: the query's hash embedding meets, by
dot product, the key each VALUE position carries (via the block's short convolution), and
a sharp softmax copies that value. Attention keeps every past key and value: its state, the
KV cache, grows with the sequence.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hashhop.models.blocks import BYTES_PER_FLOAT, LanguageModel
from hashhop.models.config import ModelConfig

ROPE_BASE = 10000.0


def rotate(x: torch.Tensor, base: float = ROPE_BASE) -> torch.Tensor:
    """Rotary position embedding of x [B, H, T, D]: pairs of dims turn by position * frequency."""
    half = x.size(-1) // 2
    frequencies = base ** (-torch.arange(half, device=x.device, dtype=torch.float32) / half)
    angles = torch.arange(x.size(2), device=x.device, dtype=torch.float32)[:, None] * frequencies
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    first, second = x[..., :half], x[..., half:]
    return torch.cat([first * cos - second * sin, first * sin + second * cos], dim=-1)


class CausalSelfAttention(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.n_heads, self.d_head, self.width = config.n_heads, config.d_head, config.attention_width
        self.rope = config.positional == "rope"
        self.qkv = nn.Linear(config.d_model, 3 * self.width, bias=False)
        self.out = nn.Linear(self.width, config.d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        q, k, v = self.qkv(x).view(batch, length, 3, self.n_heads, self.d_head).unbind(2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # [B, H, T, D]
        if self.rope:
            q, k = rotate(q), rotate(k)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.out(y.transpose(1, 2).reshape(batch, length, self.width))

    def state_bytes(self, seq_len: int) -> int:
        """The KV cache: a key and a value of every head per past token."""
        return 2 * seq_len * self.width * BYTES_PER_FLOAT


def build(config: ModelConfig) -> LanguageModel:
    return LanguageModel(config, CausalSelfAttention)
