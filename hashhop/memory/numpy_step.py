"""The memory model's decode step in numpy: what one generated token costs, without torch's overhead.

A decoded token runs the local decoder over `window` tokens, `n_reads` lookups and the pointer
head: about a hundred operations on vectors of a few hundred numbers. In torch each small op
costs 10-200 us of dispatch here (a depthwise convolution over 24 tokens: 230 us; a 128 x 512
matrix-vector product: 20 us, against 5 us in numpy): a decoded token took 5.4 ms at 1M tokens
of context in torch and 1.9 ms in numpy (benchmarks/RESULTS.md, fourth session). This module
holds the trained weights as arrays and computes the same functions as
`MemoryModel.local_state`, `MemoryModel.read` and `OutputHead` for one position, and only
what that position needs: the last local block attends from the last token only and runs its
MLP on it alone. tests/test_memory.py holds it equal to the torch model.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from hashhop.memory.model import MemoryModel
from hashhop.models.embedding import FEATURE_EPS
from hashhop.models.transformer import rotate
from hashhop.tokenize import IdentifierTokenizer

NumpyLookup = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]
"""Query logits [query bits] -> (agreement [M], score bias [M], value embeddings [M, d])."""


def _array(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().float().numpy().copy()


def _rms_norm(x: np.ndarray, weight: np.ndarray, eps: float) -> np.ndarray:
    # np.add.reduce, not np.mean: mean's Python wrapper costs more than the sum on 128 numbers
    return x / np.sqrt(np.add.reduce(x * x, axis=-1, keepdims=True) / x.shape[-1] + eps) * weight


def _gelu(x: np.ndarray) -> np.ndarray:
    """torch's exact (erf) GELU, through torch: numpy has no erf, and the array is shared, not copied."""
    return F.gelu(torch.from_numpy(x)).numpy()


def _softmax(x: np.ndarray) -> np.ndarray:
    shifted = np.exp(x - x.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def _rope_tables(length: int, head_dim: int) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin [length, head_dim // 2] of `rotate`'s angles at positions 0 .. length - 1, read
    back from rotate itself (a vector of ones in the first half turns into cos there, sin in the
    second), so the two cannot disagree."""
    half = head_dim // 2
    ones = torch.zeros(1, 1, length, head_dim)
    ones[..., :half] = 1.0
    turned = rotate(ones)[0, 0].numpy()
    return turned[:, :half].copy(), turned[:, half:].copy()


class _LocalBlock:
    """One pre-norm block of the local decoder: short convolution, attention, MLP."""

    def __init__(self, block: torch.nn.Module, eps: float, rope_tables: tuple[np.ndarray, np.ndarray] | None):
        self.eps, self.rope_tables = eps, rope_tables
        self.conv = None if block.conv is None else (_array(block.conv_norm.weight), _array(block.conv.conv.weight[:, 0]))
        attention = block.mixer
        self.heads, self.head_dim = attention.n_heads, attention.d_head
        self.mixer_norm, self.qkv_t, self.out_t = (_array(block.mixer_norm.weight), _array(attention.qkv.weight.T),
                                                   _array(attention.out.weight.T))
        self.mlp_norm, self.up_t, self.down_t = (_array(block.mlp_norm.weight), _array(block.mlp.up.weight.T),
                                                 _array(block.mlp.out.weight.T))

    def _rotate(self, x: np.ndarray) -> np.ndarray:
        """Rotary positions 0 .. T - 1 of x [H, T, D] (the window's own positions), as `rotate`."""
        cos, sin = self.rope_tables
        length, half = x.shape[1], x.shape[2] // 2
        cos, sin = cos[:length], sin[:length]
        first, second = x[..., :half], x[..., half:]
        return np.concatenate([first * cos - second * sin, first * sin + second * cos], axis=-1)

    def __call__(self, x: np.ndarray, last_only: bool) -> np.ndarray:
        """x [T, d] -> the block's output [T, d], or [1, d] at the last position with last_only."""
        if self.conv is not None:
            norm_weight, taps = self.conv
            normed = _rms_norm(x, norm_weight, self.eps)
            kernel = taps.shape[1]
            padded = np.concatenate([np.zeros((kernel - 1, x.shape[1]), np.float32), normed])
            length = x.shape[0]
            x = x + sum(padded[j : j + length] * taps[:, j] for j in range(kernel))
        length = x.shape[0]
        q, k, v = (_rms_norm(x, self.mixer_norm, self.eps) @ self.qkv_t).reshape(length, 3, self.heads, self.head_dim).transpose(1, 2, 0, 3)
        if self.rope_tables is not None:
            q, k = self._rotate(q), self._rotate(k)
        if last_only:
            x, q = x[-1:], q[:, -1:]
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(self.head_dim)  # [H, queries, T]
        if not last_only:
            scores = np.where(np.tril(np.ones((length, length), bool)), scores, -np.inf)
        attended = (_softmax(scores) @ v).transpose(1, 0, 2).reshape(x.shape[0], -1)
        x = x + attended @ self.out_t
        return x + _gelu(_rms_norm(x, self.mlp_norm, self.eps) @ self.up_t) @ self.down_t


class NumpyStep:
    """A trained MemoryModel's decode-time functions for one position, as numpy arrays.

    `query_bits`: the query logits a read computes, in that order (default: all code_bits in
    the model's order). A memory keeps some of the bits in its own order: computing just those,
    already in place, saves reordering every query."""

    def __init__(self, model: MemoryModel, query_bits: np.ndarray | None = None):
        config = model.config
        self.d, self.taps, self.window, self.read_scale = config.d_model, config.conv_kernel, config.window, config.read_scale
        self.eps = float(torch.finfo(torch.float32).eps)  # nn.RMSNorm's default
        rope_tables = _rope_tables(config.window, config.d_head) if config.positional == "rope" else None
        self.blocks = [_LocalBlock(block, self.eps, rope_tables) for block in model.local]
        self.local_norm, self.recent_norm = _array(model.local_norm.weight), _array(model.recent_norm.weight)
        address_t = _array(model.writer.address.weight.T)
        # guess, then address: both linear, so one matrix from what is known to query logits
        columns = np.arange(config.code_bits) if query_bits is None else np.asarray(query_bits)
        self.reads = [(np.ascontiguousarray((_array(read.guess.weight.T) @ address_t)[:, columns]), float(read.null.detach()),
                       _array(read.use.weight[0]), float(read.use.bias.detach())) for read in model.reads]
        self.combine_t = _array(model.combine.weight.T)
        self.mlp_norm, self.up_t, self.down_t = (_array(model.mlp_norm.weight), _array(model.mlp.up.weight.T),
                                                 _array(model.mlp.out.weight.T))
        self.head_norm, self.fixed = _array(model.head.norm.weight), _array(model.embedding.fixed.weight)
        self.project_t = _array(model.embedding.project.weight.T)
        self.pointer_scale = float(model.head.pointer_scale.detach())

    def embed(self, tokenizer: IdentifierTokenizer, texts: list[str]) -> np.ndarray:
        """Token texts -> their embeddings [len(texts), d], as TokenEmbedding computes them: a
        fixed token's row, or an identifier's random features scaled to unit RMS and projected.
        (Most tokens a read retrieves are new to the decoder: in torch, 8 of them took 420 us.)"""
        encoded = tokenizer.encode_pieces(texts)
        ids = np.asarray(encoded.ids, dtype=np.int64)
        rows = self.fixed[np.minimum(ids, len(self.fixed) - 1)]
        if encoded.identifiers:
            features = tokenizer.features(encoded.identifiers)
            features = features / np.sqrt(np.mean(features * features, axis=-1, keepdims=True) + FEATURE_EPS)
            is_identifier = ids >= len(self.fixed)
            rows[is_identifier] = (features @ self.project_t)[ids[is_identifier] - len(self.fixed)]
        return rows

    def local(self, window: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The last `window` token embeddings [T, d] (T <= window; fewer are zero padded on the
        left, as in training) -> the local decoder's output [d] and the recent tokens [taps * d],
        newest first."""
        if len(window) < self.window:
            window = np.concatenate([np.zeros((self.window - len(window), self.d), np.float32), window])
        window = window[-self.window :]
        x = window
        for number, block in enumerate(self.blocks):
            x = block(x, last_only=number == len(self.blocks) - 1)
        recent = _rms_norm(window[-self.taps :], self.recent_norm, self.eps)[::-1].reshape(-1)
        return x[-1], recent

    def read(self, x: np.ndarray, recent: np.ndarray, lookup: NumpyLookup) -> np.ndarray:
        """The reads, one after another, then the hidden state the head scores [d] (as
        MemoryModel.read with pass_top: each read hands the next the entry it weighs most)."""
        context = _rms_norm(x, self.local_norm, self.eps)
        known = [context, recent]
        used = []
        for query_t, null, use_weight, use_bias in self.reads:
            query_logits = np.concatenate(known) @ query_t
            agreement, bias, values = lookup(query_logits)
            weights = _softmax(np.concatenate([[null], self.read_scale * agreement + bias]))
            value = weights[1:].astype(np.float32) @ values
            top = int(np.argmax(weights[1:]))
            found = weights[1 + top] > weights[0]
            known.append(values[top] if found else np.zeros_like(value))  # MemoryModel.read's pass_top
            used.append(value / (1 + math.exp(-(float(context @ use_weight) + use_bias))))
        hidden = x + np.concatenate(used) @ self.combine_t
        return hidden + _gelu(_rms_norm(hidden, self.mlp_norm, self.eps) @ self.up_t) @ self.down_t

    def logits(self, hidden: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        """Logits [n_fixed + U] over the fixed vocabulary and the candidate identifiers [U, d]."""
        normed = _rms_norm(hidden, self.head_norm, self.eps) / math.sqrt(self.d)
        return np.concatenate([self.fixed @ normed, candidates @ normed * self.pointer_scale])
