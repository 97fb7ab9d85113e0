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

The local block, each read's softmax and mix, and the MLP after the reads are compiled by
numba: in numpy they were dozens of calls of a few microseconds of overhead each, and a step
at 1M tokens went from 1.3-2.0 to 0.9-1.1 ms (RESULTS.md, seventh session). What is left in
numpy is a handful of matrix products and the glue between lookups.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from numba import njit

from hashhop.memory.model import MemoryModel
from hashhop.models.embedding import FEATURE_EPS
from hashhop.models.transformer import rotate
from hashhop.tokenize import IdentifierTokenizer

NumpyLookup = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]
"""Query logits [query bits] -> (agreement [M], score bias [M], value embeddings [M, d])."""


def _array(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().float().numpy().copy()


@njit(cache=True)
def _gelu(x: np.ndarray) -> np.ndarray:
    """torch's exact (erf) GELU (numpy has no erf; through torch, one call cost ~10 us of dispatch)."""
    out = np.empty_like(x)
    flat, result = x.ravel(), out.ravel()
    for i in range(flat.size):
        result[i] = 0.5 * flat[i] * (1.0 + math.erf(flat[i] / math.sqrt(2.0)))
    return out


@njit(cache=True)
def _rms_norm(x: np.ndarray, weight: np.ndarray, eps: float) -> np.ndarray:
    """nn.RMSNorm of each row of x [T, d]."""
    rows, width = x.shape
    out = np.empty_like(x)
    for t in range(rows):
        total = np.float32(0.0)
        for j in range(width):
            total += x[t, j] * x[t, j]
        scale = np.float32(1.0) / np.sqrt(total / np.float32(width) + np.float32(eps))
        for j in range(width):
            out[t, j] = x[t, j] * scale * weight[j]
    return out


@njit(cache=True)
def _block_inputs(x: np.ndarray, conv_norm: np.ndarray, taps: np.ndarray, mixer_norm: np.ndarray, qkv_t: np.ndarray,
                  eps: float) -> np.ndarray:
    """What a block's attention needs of each position of x [T, d]: [T, d + 3 * heads * head_dim],
    the position's input after the causal short convolution (zeros before the first row; no
    taps, shape [0, 0]: none) and its q, k, v before rotary positions."""
    length, d = x.shape
    if taps.shape[0] > 0:
        normed = _rms_norm(x, conv_norm, eps)
        kernel = taps.shape[1]
        convolved = x.copy()
        for t in range(length):
            for j in range(kernel):
                source = t - (kernel - 1) + j
                if source >= 0:
                    for c in range(d):
                        convolved[t, c] += normed[source, c] * taps[c, j]
        x = convolved
    return np.concatenate((x, _rms_norm(x, mixer_norm, eps) @ qkv_t), axis=1)


@njit(cache=True)
def _block_output(rows: np.ndarray, out_t: np.ndarray, mlp_norm: np.ndarray, up_t: np.ndarray, down_t: np.ndarray,
                  heads: int, head_dim: int, cos: np.ndarray, sin: np.ndarray, last_only: bool, eps: float) -> np.ndarray:
    """A pre-norm block's output from `_block_inputs` rows [T, d + 3 * heads * head_dim]:
    causal attention (rotary positions 0 .. T - 1 unless cos is [0, 0]), then the MLP, as
    `hashhop.models.blocks.Block`: [T, d], or [1, d] at the last position with last_only."""
    length = rows.shape[0]
    width, half = heads * head_dim, head_dim // 2
    d = rows.shape[1] - 3 * width
    qkv = rows[:, d:].copy()  # [T, (q, k, v) x heads x head_dim]
    if cos.shape[0] > 0:
        for t in range(length):
            for start in range(0, 2 * width, head_dim):  # every head of q, then of k
                for j in range(half):
                    first, second = qkv[t, start + j], qkv[t, start + half + j]
                    qkv[t, start + j] = first * cos[t, j] - second * sin[t, j]
                    qkv[t, start + half + j] = first * sin[t, j] + second * cos[t, j]
    top_row = length - 1 if last_only else 0
    attended = np.zeros((length - top_row, width), np.float32)
    scale = np.float32(1.0 / math.sqrt(head_dim))
    weights = np.empty(length, np.float32)
    for t in range(top_row, length):
        for h in range(heads):
            q, k, v = h * head_dim, width + h * head_dim, 2 * width + h * head_dim
            highest = -np.inf
            for s in range(t + 1):
                score = np.float32(0.0)
                for j in range(head_dim):
                    score += qkv[t, q + j] * qkv[s, k + j]
                weights[s] = score * scale
                highest = max(highest, weights[s])
            total = np.float32(0.0)
            for s in range(t + 1):
                weights[s] = np.exp(weights[s] - highest)
                total += weights[s]
            for s in range(t + 1):
                share = weights[s] / total
                for j in range(head_dim):
                    attended[t - top_row, h * head_dim + j] += share * qkv[s, v + j]
    x = np.ascontiguousarray(rows[top_row:, :d]) + attended @ out_t
    return x + _gelu(_rms_norm(x, mlp_norm, eps) @ up_t) @ down_t


def _rope_tables(length: int, head_dim: int) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin [length, head_dim // 2] of `rotate`'s angles at positions 0 .. length - 1, read
    back from rotate itself (a vector of ones in the first half turns into cos there, sin in the
    second), so the two cannot disagree."""
    half = head_dim // 2
    ones = torch.zeros(1, 1, length, head_dim)
    ones[..., :half] = 1.0
    turned = rotate(ones)[0, 0].numpy()
    return turned[:, :half].copy(), turned[:, half:].copy()


@njit(cache=True)
def _mix(null: float, read_scale: float, agreement: np.ndarray, bias: np.ndarray,
         values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A read's softmax over its 'found nothing' score and its entries [M] (read_scale *
    agreement + bias), in float64: (the weighted mix of values [M, d], the value it weighs
    most, or zeros where 'found nothing' outweighs it: MemoryModel.read's pass_top)."""
    count, width = values.shape
    scores = np.empty(count + 1)
    scores[0] = null
    for i in range(count):
        scores[i + 1] = read_scale * agreement[i] + bias[i]
    scores = np.exp(scores - scores.max())
    scores /= scores.sum()
    mixed = np.zeros(width, np.float32)
    best = 0
    for i in range(count):
        for j in range(width):
            mixed[j] += np.float32(scores[i + 1]) * values[i, j]
        if scores[i + 1] > scores[best + 1]:
            best = i
    if count == 0 or scores[best + 1] <= scores[0]:
        return mixed, np.zeros(width, np.float32)
    return mixed, values[best].copy()


@njit(cache=True)
def _finish(x: np.ndarray, used: np.ndarray, combine_t: np.ndarray, mlp_norm: np.ndarray, up_t: np.ndarray,
            down_t: np.ndarray, eps: float) -> np.ndarray:
    """After the reads: hidden = x + combine(what they found), then the MLP's residual [d]."""
    hidden = x + np.dot(used, combine_t)
    return hidden + np.dot(_gelu(np.dot(_rms_norm(hidden.reshape(1, -1), mlp_norm, eps)[0], up_t)), down_t)


class _LocalBlock:
    """One block of the local decoder (pre-norm: short convolution, attention, MLP) as arrays,
    run by the compiled `_block_inputs` and `_block_output`."""

    def __init__(self, block: torch.nn.Module, eps: float, rope_tables: tuple[np.ndarray, np.ndarray] | None):
        no_table = np.zeros((0, 0), np.float32)
        attention = block.mixer
        conv = (no_table, no_table) if block.conv is None else (_array(block.conv_norm.weight), _array(block.conv.conv.weight[:, 0]))
        cos, sin = rope_tables or (no_table, no_table)
        self.input_arrays = (*conv, _array(block.mixer_norm.weight), _array(attention.qkv.weight.T))
        self.output_arrays = (_array(attention.out.weight.T), _array(block.mlp_norm.weight), _array(block.mlp.up.weight.T),
                              _array(block.mlp.out.weight.T), attention.n_heads, attention.d_head, cos, sin)
        self.eps = eps

    def __call__(self, x: np.ndarray, last_only: bool) -> np.ndarray:
        """x [T, d] -> the block's output [T, d], or [1, d] at the last position with last_only."""
        rows = _block_inputs(np.ascontiguousarray(x, dtype=np.float32), *self.input_arrays, self.eps)
        return _block_output(rows, *self.output_arrays, last_only, self.eps)


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
        self.reads = [(np.ascontiguousarray((_array(read.guess.weight.T) @ address_t)[:, columns]), float(read.null.detach()))
                      for read in model.reads]
        self.use_weights = np.stack([_array(read.use.weight[0]) for read in model.reads])
        self.use_biases = np.array([float(read.use.bias.detach()) for read in model.reads], np.float32)
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
        recent = _rms_norm(np.ascontiguousarray(window[-self.taps :]), self.recent_norm, self.eps)[::-1].reshape(-1)
        return x[-1], recent

    def read(self, x: np.ndarray, recent: np.ndarray, lookup: NumpyLookup) -> np.ndarray:
        """The reads, one after another, then the hidden state the head scores [d] (as
        MemoryModel.read with pass_top: each read hands the next the entry it weighs most)."""
        context = _rms_norm(x[None], self.local_norm, self.eps)[0]
        uses = 1 / (1 + np.exp(-(self.use_weights @ context + self.use_biases)))  # every read's gate at once
        known = [context, recent]
        used = []
        for (query_t, null), use in zip(self.reads, uses):
            agreement, bias, values = lookup(np.concatenate(known) @ query_t)
            value, top = _mix(null, self.read_scale, agreement, bias, np.ascontiguousarray(values, dtype=np.float32))
            known.append(top)
            used.append(value * use)
        return _finish(x, np.concatenate(used), self.combine_t, self.mlp_norm, self.up_t, self.down_t, self.eps)

    def logits(self, hidden: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        """Logits [n_fixed + U] over the fixed vocabulary and the candidate identifiers [U, d]."""
        normed = _rms_norm(hidden[None], self.head_norm, self.eps)[0] / math.sqrt(self.d)
        return np.concatenate([self.fixed @ normed, candidates @ normed * self.pointer_scale])
