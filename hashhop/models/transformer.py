"""Decoder-only transformer: causal multi-head self-attention (PyTorch SDPA), RoPE or no positions.

With one token per hash, recall is a key-value lookup: the query's hash embedding meets, by
dot product, the key each VALUE position carries (via the block's short convolution), and
a sharp softmax copies that value. Attention keeps every past key and value: its state, the
KV cache, grows with the sequence. `KVCache` is that state at inference, so decoding a token
costs one query against the cached keys instead of a rerun of the whole sequence.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hashhop.errors import HashHopError
from hashhop.model_config import ModelConfig
from hashhop.models.blocks import BYTES_PER_FLOAT, LanguageModel

ROPE_BASE = 10000.0


def rotate(x: torch.Tensor, start: int = 0, base: float = ROPE_BASE) -> torch.Tensor:
    """Rotary position embedding of x [B, H, T, D] at positions start .. start + T - 1: pairs of
    dims turn by position * frequency."""
    half = x.size(-1) // 2
    frequencies = base ** (-torch.arange(half, device=x.device, dtype=torch.float32) / half)
    positions = torch.arange(start, start + x.size(2), device=x.device, dtype=torch.float32)
    angles = positions[:, None] * frequencies
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    first, second = x[..., :half], x[..., half:]
    return torch.cat([first * cos - second * sin, first * sin + second * cos], dim=-1)


class KVCache:
    """Keys and values [B, H, capacity, D] of a batch's past tokens, the first `length` filled.

    The buffers are allocated once (at the first append, in the activations' dtype and device)
    with the room the caller reserved, and double when full: appending a token costs O(1)
    amortised, never a copy of the whole cache per step as concatenation would.
    """

    def __init__(self, reserve: int):
        self.reserve = reserve
        self.keys: torch.Tensor | None = None
        self.values: torch.Tensor | None = None
        self.length = 0

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store k, v [B, H, T, D] after the past: every key and value so far (views)."""
        end = self.length + k.size(2)
        if self.keys is None or end > self.keys.size(2):
            self._allocate(k, max(end, self.reserve, 2 * self.length))
        self.keys[:, :, self.length : end] = k
        self.values[:, :, self.length : end] = v
        self.length = end
        return self.keys[:, :, :end], self.values[:, :, :end]

    def _allocate(self, like: torch.Tensor, capacity: int) -> None:
        shape = (like.size(0), like.size(1), capacity, like.size(3))
        keys, values = like.new_empty(shape), like.new_empty(shape)
        if self.keys is not None:
            keys[:, :, : self.length] = self.keys[:, :, : self.length]
            values[:, :, : self.length] = self.values[:, :, : self.length]
        self.keys, self.values = keys, values

    @property
    def nbytes(self) -> int:
        """Bytes of the filled keys and values (reserved room not counted)."""
        if self.keys is None:
            return 0
        return self.keys[:, :, : self.length].nbytes + self.values[:, :, : self.length].nbytes


class CausalSelfAttention(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.n_heads, self.d_head, self.width = config.n_heads, config.d_head, config.attention_width
        self.rope = config.positional == "rope"
        self.qkv = nn.Linear(config.d_model, 3 * self.width, bias=False)
        self.out = nn.Linear(self.width, config.d_model, bias=False)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """x [B, T, d]: a whole sequence, or with a cache the tokens that follow its past."""
        batch, length, _ = x.shape
        start = 0 if cache is None else cache.length
        if start and length > 1:
            # SDPA's causal mask is aligned top-left: right for a whole sequence, and one new
            # token needs none; a chunk after a past would need an offset mask.
            raise HashHopError("a cached attention step takes a whole context or one token")
        q, k, v = self.qkv(x).view(batch, length, 3, self.n_heads, self.d_head).unbind(2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # [B, H, T, D]
        if self.rope:
            q, k = rotate(q, start), rotate(k, start)
        if cache is not None:
            k, v = cache.append(k, v)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=length > 1)
        return self.out(y.transpose(1, 2).reshape(batch, length, self.width))

    def empty_cache(self, reserve: int) -> KVCache:
        return KVCache(reserve)

    def state_bytes(self, seq_len: int) -> int:
        """The KV cache: a key and a value of every head per past token."""
        return 2 * seq_len * self.width * BYTES_PER_FLOAT


def build(config: ModelConfig) -> LanguageModel:
    return LanguageModel(config, CausalSelfAttention)
